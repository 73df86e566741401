"""Errors a user can act on: the CLI prints them as one clear line instead of a traceback."""


class PipelineError(Exception):
    """Base class for failures with a message that says what to fix."""
