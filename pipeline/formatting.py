"""How numbers read, in every report: the model card, the review comment, the monitor and reproduce reports.

One set of functions, so a rate reads the same way wherever it appears. Each report states its own
precision once (the card rounds a recall to 4 decimals, the monitor a PSI to 3), by passing ``digits``.
A missing value (None or NaN) reads as :data:`MISSING` in every report. The results are plain text:
a caller puts them in a markdown cell with ``md_cell`` like any other text.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from pipeline.common import MISSING  # the one "no value" mark, shared with md tables

__all__ = ["MISSING", "count", "general", "interval", "is_missing", "num", "pct", "pp", "signed", "small"]

Number = float | int


def is_missing(value: object) -> bool:
    """None, or a float NaN (numpy's included): both read as :data:`MISSING`."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def num(value: Number | None, digits: int = 4) -> str:
    """A metric value with ``digits`` decimals: ``0.9910``."""
    return MISSING if value is None or is_missing(value) else f"{value:.{digits}f}"


def signed(value: Number | None, digits: int = 4) -> str:
    """A difference, its sign always shown: ``+0.0253``."""
    return MISSING if value is None or is_missing(value) else f"{value:+.{digits}f}"


def pct(value: Number | None, digits: int = 1) -> str:
    """A rate as a percentage: ``0.0067`` → ``0.7%`` (``digits`` decimals)."""
    return MISSING if value is None or is_missing(value) else f"{value:.{digits}%}"


def pp(value: Number | None, digits: int = 1) -> str:
    """A difference of two rates, in percentage points: ``0.021`` → ``2.1 pp``."""
    return MISSING if value is None or is_missing(value) else f"{100 * value:.{digits}f} pp"


def count(value: Number | None) -> str:
    """A count with thousands separators: ``368645`` → ``368,645``."""
    return MISSING if value is None or is_missing(value) else f"{int(value):,}"


def small(value: Number | None) -> str:
    """A tiny non-negative difference (score changes, parity): ``0`` exactly, else scientific ``1.2e-07``."""
    if value is None or is_missing(value):
        return MISSING
    return "0" if value == 0 else f"{value:.1e}"


def general(value: Number | None, digits: int = 6) -> str:
    """A number of any size with ``digits`` significant digits (``%g``): ``0.000123457``."""
    return MISSING if value is None or is_missing(value) else f"{value:.{digits}g}"


Formatter = Callable[[Number | None], str]


def interval(low: Number | None, high: Number | None, fmt: Formatter = num) -> str:
    """A confidence interval: ``[0.9891, 0.9925]``; :data:`MISSING` when either end is."""
    return MISSING if is_missing(low) or is_missing(high) else f"[{fmt(low)}, {fmt(high)}]"
