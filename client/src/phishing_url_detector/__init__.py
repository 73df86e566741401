"""Score URLs with a released phishing-URL model, verified before it is loaded.

    from phishing_url_detector import Detector
    detector = Detector.from_release("OWNER/NAME", "latest")   # fetch, verify, cache, load
    for s in detector.score(["http://paypal.com.secure-login.example.tk/webscr"]):
        print(s.verdict, s.p_phishing, s.url)

Runtime dependencies: numpy, onnxruntime and sigstore (provenance); fetching uses the standard
library only. Names are imported on first use, so ``import phishing_url_detector`` (and the
training repository, which imports only the contract from here) loads nothing it does not need.
"""
import importlib
from typing import Any

from phishing_url_detector.contract import CONTRACT_MAJOR, normalise_url

_LAZY = {"__version__": "_version", "Detector": "detector", "UrlScore": "detector", "fetch": "fetch", "FetchError": "errors",
         "LoaderError": "errors", "UnscorableUrlError": "errors", "VerificationError": "errors",
         "VerifiedModel": "releases", "prepare_url": "detector", "verify_local_model": "releases",
         "verify_release_dir": "releases"}
# normalise_url, CONTRACT_MAJOR and _LAZY's public names (tests/test_client.py checks they agree)
__all__ = ["CONTRACT_MAJOR", "Detector", "FetchError", "LoaderError", "UnscorableUrlError", "UrlScore",
           "VerificationError", "VerifiedModel", "fetch", "normalise_url", "prepare_url", "verify_local_model",
           "verify_release_dir"]


def __getattr__(name: str) -> Any:  # Any: the attribute of whichever module _LAZY names
    if name in _LAZY:
        return getattr(importlib.import_module(f"phishing_url_detector.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'phishing_url_detector' has no attribute {name!r}")
