"""The ``monitor:`` section of params.yaml, with defaults.

Alert thresholds live in params.yaml so that a change to them is reviewed
like any other change; the command's flags only override them for one run.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline import paths
from pipeline.bounded_io import Caps

PARAMS_FILE = paths.PARAMS


@dataclass(frozen=True)
class MonitorParams:
    """Alerting and windowing settings (see params.yaml for the meaning of each)."""

    window: str = "7D"
    alpha: float = 0.05
    min_rows: int = 500
    min_ratio_change: float = 0.02
    psi_alert: float = 0.2
    psi_bins: int = 10
    reference_windows: int = 4
    reference_start: str | None = None
    reference_end: str | None = None
    score_quantiles: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)
    releases: tuple[str, ...] = ()  # release directories giving a version's threshold
    repo: str | None = None  # OWNER/NAME whose release workflow must have signed those releases
    log_path: str = "data/monitoring/predictions"
    log_url: str | None = None
    log_max_bytes: int = 1 << 30  # per file, decompressed (monitor.logs.max_decompressed_bytes)
    log_max_rows: int = 10_000_000  # per file (monitor.logs.max_rows)
    log_max_field_chars: int = 1 << 16  # one CSV/JSON/Parquet text value (monitor.logs.max_field_chars)
    out: str = "build/monitoring"
    simulate: dict = field(default_factory=dict)

    def log_caps(self) -> Caps:
        """The per-file caps every log file is read under (validated: positive integers)."""
        return Caps(self.log_max_bytes, self.log_max_rows, "monitor.logs.max_decompressed_bytes",
                    "monitor.logs.max_rows", self.log_max_field_chars, "monitor.logs.max_field_chars")

    def replace(self, **changes) -> MonitorParams:
        """A copy with the given fields overridden (None means keep)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def from_mapping(section: dict | None) -> MonitorParams:
    """Build params from the parsed ``monitor:`` mapping; missing keys keep defaults."""
    section = dict(section or {})
    reference = section.pop("reference", {}) or {}
    logs = section.pop("logs", {}) or {}
    alert = section.pop("alert", {}) or {}
    kwargs: dict = {}
    for key in ("window", "psi_bins", "out", "simulate"):
        if key in section:
            kwargs[key] = section[key]
    for key in ("alpha", "min_rows", "min_ratio_change", "psi_alert"):
        if key in alert:
            kwargs[key] = alert[key]
    if "score_quantiles" in section:
        kwargs["score_quantiles"] = tuple(float(q) for q in section["score_quantiles"])
    if "manifests" in section:
        raise ValueError("params monitor.manifests is no longer read: a bare manifest cannot be "
                         "verified; list release directories under monitor.releases instead")
    if "releases" in section:
        kwargs["releases"] = tuple(str(p) for p in section["releases"] or ())
    kwargs["repo"] = _opt_str(section.get("repo"))
    if "windows" in reference:
        kwargs["reference_windows"] = int(reference["windows"])
    kwargs["reference_start"] = _opt_str(reference.get("start"))
    kwargs["reference_end"] = _opt_str(reference.get("end"))
    if "path" in logs:
        kwargs["log_path"] = str(logs["path"])
    kwargs["log_url"] = _opt_str(logs.get("url"))
    if "max_decompressed_bytes" in logs:
        kwargs["log_max_bytes"] = logs["max_decompressed_bytes"]
    if "max_rows" in logs:
        kwargs["log_max_rows"] = logs["max_rows"]
    if "max_field_chars" in logs:
        kwargs["log_max_field_chars"] = logs["max_field_chars"]
    params = MonitorParams(**kwargs)
    return dataclasses.replace(params, alpha=float(params.alpha), min_rows=int(params.min_rows),
                               min_ratio_change=float(params.min_ratio_change),
                               psi_alert=float(params.psi_alert), psi_bins=int(params.psi_bins))


def load(path: Path | str = PARAMS_FILE) -> MonitorParams:
    """Read params.yaml; a missing file or section gives the defaults."""
    path = Path(path)
    if not path.exists():
        return MonitorParams()
    data = yaml.safe_load(path.read_text()) or {}
    return from_mapping(data.get("monitor"))


def _opt_str(value) -> str | None:
    # YAML turns an unquoted 2024-01-01 into a date; keep it as ISO text.
    if value is None or value == "":
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
