"""File digests, streamed: the one implementation, used by verification and by the training
repository that writes the digests (SHA-256) or checks DVC's records (MD5, DVC's content address)."""
from __future__ import annotations

import hashlib
import os
from typing import Protocol


class _Digest(Protocol):
    """What a hashlib digest offers (hashlib names its own type only privately)."""

    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


def _file_digest(path: str | os.PathLike[str], digest: _Digest) -> str:
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    return _file_digest(path, hashlib.sha256())


def md5_file(path: str | os.PathLike[str]) -> str:
    """DVC's content address of a file (``md5:`` in dvc.lock and .dvc files); not a security digest."""
    return _file_digest(path, hashlib.md5(usedforsecurity=False))
