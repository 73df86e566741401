"""Why a model cannot be used; ``exit_code`` is what the command line returns."""
from phishing_url_detector.exit_codes import ExitCode


class LoaderError(Exception):
    """Anything that stops the loader."""

    exit_code = ExitCode.ERROR


class FetchError(LoaderError):
    """The release could not be obtained (network, HTTP status, short download)."""


class VerificationError(LoaderError):
    """The files were obtained but cannot be vouched for; never load them."""

    exit_code = ExitCode.VERIFICATION


class UnscorableUrlError(LoaderError, ValueError):
    """``Detector.predict_proba`` got a URL the client refuses to score (see
    :func:`phishing_url_detector.detector.prepare_url`); ``Detector.score`` reports those per URL."""
