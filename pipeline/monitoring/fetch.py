"""How the prediction log configured in params is brought into place: with DVC, so that one set of
remote credentials serves the pipeline and the monitoring."""
from __future__ import annotations

import sys


def dvc_command(path: str, url: str | None = None) -> list[str]:
    """``dvc get-url`` of ``url`` (an artifact location) into ``path``, or ``dvc pull`` of the
    DVC-tracked ``path`` when there is no URL."""
    if url:
        return [sys.executable, "-m", "dvc", "get-url", "--force", url, path]
    return [sys.executable, "-m", "dvc", "pull", path]
