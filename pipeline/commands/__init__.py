"""The CLI commands that are not DVC stages: one module per command (``python -m pipeline monitor`` is
``pipeline/commands/monitor.py``). Each is a thin shell over the pure functions of its area package."""
