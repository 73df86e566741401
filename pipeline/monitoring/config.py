"""The ``monitor:`` section of params.yaml: every setting of the monitor, with no default of its own.

Alert thresholds live in params.yaml so that a change to them is reviewed like any other change,
and params.yaml is their only home: a ``--params FILE`` names just what it changes, over the
repository's params.yaml (a FILE that does not exist changes nothing), and a key missing from both
is an error rather than a value written here. The command's flags override one run. Outputs go to
``pipeline/paths.py`` (MONITORING, SIMULATED_TRAFFIC), not to a folder named in params.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import paths
from pipeline.bounded_io import Caps
from pipeline.common import load_params

PARAMS_FILE = paths.PARAMS  # --params: the one in the working directory (the repository root)
# The values themselves: the params.yaml of the checkout this code is in. The same file when run from
# the repository root, and still found when the monitor runs elsewhere (the workflow under act).
REPOSITORY_PARAMS = Path(__file__).resolve().parents[2] / paths.PARAMS
SECTION = "monitor"
RETIRED = {  # keys no longer read, and why: a file that still sets one is told, not ignored
    "manifests": "a bare manifest cannot be verified; list release directories under monitor.releases instead",
    "out": f"the outputs go to {paths.MONITORING} (pipeline/paths.py MONITORING), or to --out",
}


@dataclass(frozen=True)
class MonitorParams:
    """Alerting and windowing settings (see params.yaml for the meaning of each)."""

    window: str
    alpha: float
    min_rows: int
    min_ratio_change: float
    psi_alert: float
    psi_bins: int
    reference_windows: int
    reference_start: str | None
    reference_end: str | None
    score_quantiles: tuple[float, ...]
    releases: tuple[str, ...]  # release directories giving a version's threshold
    repo: str | None  # OWNER/NAME whose release workflow must have signed those releases
    log_path: str
    log_url: str | None
    log_max_bytes: int  # per file, decompressed (monitor.logs.max_decompressed_bytes)
    log_max_rows: int  # per file (monitor.logs.max_rows)
    log_max_field_chars: int  # one CSV/JSON/Parquet text value (monitor.logs.max_field_chars)
    simulate: Mapping[str, Any]  # monitor.simulate, read by ``simulate.traffic_config``

    def log_caps(self) -> Caps:
        """The per-file caps every log file is read under (validated: positive integers)."""
        return Caps(self.log_max_bytes, self.log_max_rows, "monitor.logs.max_decompressed_bytes",
                    "monitor.logs.max_rows", self.log_max_field_chars, "monitor.logs.max_field_chars")

    def replace(self, **changes: Any) -> MonitorParams:
        """A copy with the given fields overridden (None means keep)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def load(path: Path | str = PARAMS_FILE) -> MonitorParams:
    """The repository's params.yaml, with ``path``'s ``monitor:`` keys over it."""
    path = Path(path)
    return from_mapping(read_section(path) if path.exists() else {})


def defaults() -> MonitorParams:
    """The repository's params.yaml as it is."""
    return from_mapping({})


def read_section(path: Path | str = PARAMS_FILE) -> dict[str, Any]:
    """The ``monitor:`` mapping of one params file (empty when it has none)."""
    return dict((load_params(path) or {}).get(SECTION) or {})


def from_mapping(section: Mapping[str, Any] | None) -> MonitorParams:
    """Params from a parsed ``monitor:`` mapping, its keys over the repository's params.yaml."""
    for key, why in RETIRED.items():
        if key in (section or {}):
            raise ValueError(f"params monitor.{key} is no longer read: {why}")
    merged = merge(read_section(REPOSITORY_PARAMS), section or {})

    def get(dotted: str) -> Any:
        return setting(merged, dotted)

    return MonitorParams(
        window=str(get("window")), alpha=float(get("alert.alpha")), min_rows=int(get("alert.min_rows")),
        min_ratio_change=float(get("alert.min_ratio_change")), psi_alert=float(get("alert.psi_alert")),
        psi_bins=int(get("psi_bins")), reference_windows=int(get("reference.windows")),
        reference_start=_opt_str(get("reference.start")), reference_end=_opt_str(get("reference.end")),
        score_quantiles=tuple(float(q) for q in get("score_quantiles")),
        releases=tuple(str(p) for p in get("releases") or ()), repo=_opt_str(get("repo")),
        log_path=str(get("logs.path")), log_url=_opt_str(get("logs.url")),
        log_max_bytes=get("logs.max_decompressed_bytes"), log_max_rows=get("logs.max_rows"),
        log_max_field_chars=get("logs.max_field_chars"), simulate=dict(get("simulate") or {}))


def setting(section: Mapping[str, Any], dotted: str, where: str = SECTION) -> Any:
    """``section[a][b]`` for ``a.b``; a missing key names itself (None is a value: YAML's empty)."""
    value: Any = section
    for key in dotted.split("."):
        if not isinstance(value, Mapping) or key not in value:
            raise ValueError(f"params {where}.{dotted} is missing: params.yaml's monitor section "
                             "holds every setting of the monitor")
        value = value[key]
    return value


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over``'s keys over it, nested mappings merged key by key."""
    out = dict(base)
    for key, value in over.items():
        below = out.get(key)
        out[key] = merge(below, value) if isinstance(below, Mapping) and isinstance(value, Mapping) else value
    return out


def _opt_str(value: object) -> str | None:
    # YAML turns an unquoted 2024-01-01 into a date; keep it as ISO text.
    if value is None or value == "":
        return None
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat()) if isoformat is not None else str(value)
