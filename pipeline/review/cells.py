"""How one value reads in the PR comment: cells, folded tables, digests, durations (shared by the sections).

Numbers go through :mod:`pipeline.formatting` (the comment's precision: 4 decimals, rates in % with 2);
text from data or from the PR goes through :func:`md_cell` and nothing else.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pipeline.common import MISSING, md_cell
from pipeline.formatting import num, signed

CELL_CHARS = {"where": 60, "label": 20, "url": 120, "reason": 160}  # widest cells of the URL lists


def short_digest(digest: object, n: int) -> str:
    """The first ``n`` characters of a digest as code (a digest read from a PR's files is text too)."""
    return md_cell(str(digest or MISSING)[:n])


def value_cell(value: object) -> str:
    """A number as it is; anything else (a manifest field is the PR's text) through md_cell."""
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else md_cell(value)


def cell(value: Any) -> str:
    """A params value in a table cell."""
    if value is None:
        return MISSING
    return md_cell(json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value)


def rate_cells(base: dict | None, pr: dict | None, key: str) -> list[str]:
    """[base, PR, Δ] of one rate; MISSING where a side lacks it (e.g. FPR of a month without legitimate rows)."""
    b, p = (base or {}).get(key), (pr or {}).get(key)
    return [num(b), num(p), MISSING if b is None or p is None else signed(p - b)]


def collapsed(summary: str, lines: list[str], over: int = 12) -> list[str]:
    """A table, folded into <details> when it has more than ``over`` rows (``summary`` is our own text)."""
    if len(lines) - 2 <= over:
        return lines + [""]
    return [f"<details><summary>{summary}</summary>", ""] + lines + ["", "</details>", ""]


def short(sha: str | None) -> str:
    return (sha or "")[:7]


def delta_cell(row: dict) -> str:
    """A change of a count, its sign and thousands separators shown: ``+1,204``."""
    return MISSING if row["old"] is None or row["new"] is None else f"{row['new'] - row['old']:+,}"


def seconds(s: float | None) -> str:
    if s is None:
        return "time not recorded"
    return f"{num(s, 0)} s" if s < 120 else f"{num(s / 60, 1)} min"


def names(items: Iterable[str] | None) -> str:
    listed = list(items or [])
    return ", ".join(md_cell(n) for n in listed) if listed else "none"
