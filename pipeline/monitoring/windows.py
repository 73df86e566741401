"""Time windows: their length (``7D``, ``1M``, ``6h``), where each starts, what it is called, and the
reference range a run compares against.

Hours and days count from one origin, 1970-01-05, a Monday, so ``7D`` windows are ISO weeks; months
are calendar months. The shared SQL (``sql``) computes the same starts in epoch microseconds.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
ORIGIN_US = 4 * DAY_US  # 1970-01-05, a Monday: 7D windows are ISO weeks
ORIGIN = pd.Timestamp(ORIGIN_US, unit="us", tz="UTC")

TimeRange = tuple[pd.Timestamp | None, pd.Timestamp | None]  # half-open [start, end); None = open


@dataclass(frozen=True)
class WindowSpec:
    """A window length: ``count`` hours (h), days (D) or calendar months (M)."""

    count: int
    unit: str

    @property
    def text(self) -> str:
        return f"{self.count}{self.unit}"

    def floor(self, ts: pd.Series) -> pd.Series:
        """Start of the window each timestamp falls in (UTC)."""
        if self.unit == "M":
            months = (ts.dt.year * 12 + ts.dt.month - 1) // self.count * self.count
            return pd.to_datetime(pd.DataFrame({"year": months // 12, "month": months % 12 + 1,
                                                "day": 1}), utc=True)
        step = pd.Timedelta(hours=self.count) if self.unit == "h" else pd.Timedelta(days=self.count)
        k = (ts - ORIGIN) // step
        return ORIGIN + k * step

    def end(self, start: pd.Timestamp) -> pd.Timestamp:
        if self.unit == "M":
            return start + pd.DateOffset(months=self.count)
        return start + (pd.Timedelta(hours=self.count) if self.unit == "h"
                        else pd.Timedelta(days=self.count))

    def label(self, start: pd.Timestamp) -> str:
        """Human name of a window: ``2024-03`` for months, the start date otherwise."""
        if self.unit == "M":
            return start.strftime("%Y-%m")
        if self.unit == "h":
            return start.strftime("%Y-%m-%dT%H:%MZ")
        return start.strftime("%Y-%m-%d")


def parse_window(text: str) -> WindowSpec:
    """``1D``, ``7D``, ``1M``, ``6h``, ``2W`` (= 14D) into a WindowSpec."""
    match = re.fullmatch(r"\s*(\d+)\s*([hHdDwWmM])\s*", text or "")
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"window must look like 1D, 7D, 1M or 6h, not {text!r}")
    count, unit = int(match.group(1)), match.group(2)
    unit = {"H": "h", "d": "D", "m": "M"}.get(unit, unit)
    if unit in ("w", "W"):
        count, unit = count * 7, "D"
    return WindowSpec(count, unit)


def parse_timestamp(text: str, *, end: bool = False) -> pd.Timestamp:
    """ISO date or datetime to UTC; a plain date as an end bound means the whole day."""
    ts = pd.Timestamp(text)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if end and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        ts += pd.Timedelta(days=1)
    return ts


def parse_reference(text: str) -> TimeRange:
    """``START..END`` (either side may be empty) to a half-open UTC range."""
    if ".." not in text:
        raise ValueError(f"reference must be START..END, not {text!r}")
    start, end = (part.strip() for part in text.split("..", 1))
    lo = parse_timestamp(start) if start else None
    hi = parse_timestamp(end, end=True) if end else None
    if lo is not None and hi is not None and hi <= lo:
        raise ValueError(f"reference range is empty: {text!r}")
    return lo, hi


def reference_range(given: str | None, start: str | None, end: str | None) -> TimeRange | None:
    """``given`` (``--reference``), else the ``start``/``end`` of params monitor.reference, else None
    (each version is then compared with its own first windows)."""
    if given:
        return parse_reference(given)
    if start or end:
        return parse_reference(f"{start or ''}..{end or ''}")
    return None
