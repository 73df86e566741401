"""Reading params.yaml and writing outputs deterministically."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

PARAMS_FILE = Path("params.yaml")


def load_params(path: Path | str = PARAMS_FILE) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def write_json(path: Path | str, payload) -> None:
    """Sorted keys and a trailing newline, so equal content gives equal bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                    encoding="utf-8")


def read_json(path: Path | str):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
