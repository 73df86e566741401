"""RESULTS.md's building blocks: a number as a table cell, a table, the machine a section ran on."""
from __future__ import annotations

from typing import Any

from pipeline.common import md_table
from pipeline.formatting import MISSING, count, is_missing, num


def cell(v: Any, nd: int = 2) -> str:
    """A table cell: a yes/**no** flag, a count, a large number without decimals, else ``nd`` decimals."""
    if is_missing(v):
        return MISSING
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else num(v, nd)
    if isinstance(v, int):
        return count(v)
    return str(v)


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """RESULTS.md's tables: numbers formatted here, the table itself the pipeline's one markdown table."""
    return [md_table(header, ["---"] * len(header), [[c if isinstance(c, str) else cell(c) for c in r] for r in rows]), ""]


def machine_line(m: dict[str, Any]) -> str:
    """The machine and date a section ran on (results.json's ``machine``), as one line."""
    libs = ", ".join(f"{k} {v}" for k, v in m["libraries"].items())
    return (f"{m['date']} on `{m['host']}`: {m['cpu']}, {m['logical_cpus']} logical CPUs, {m['memory_gb']} GB RAM, "
            f"Python {m['python']}; {libs}; git {m['git']}; load average at the end "
            f"{'/'.join(str(x) for x in m['load_average'])}")


def flat(d: dict[str, Any], prefix: str = "") -> str:
    """{'a': {'b': 1}} -> 'a.b=1' (a params override, readable)."""
    return ", ".join(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else f"{prefix}{k}={v}" for k, v in d.items())


def by_number(d: dict[str, Any]) -> list[str]:
    """Keys like '30x', '100x', '7 GB' in numeric order (results.json stores keys sorted as text)."""
    return sorted(d, key=lambda k: float(k.rstrip("x").split()[0]))
