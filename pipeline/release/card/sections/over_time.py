"""How the model holds up over time: the Future split by month, the Backtest (recall by model age) and
recall on the out-of-source stream by year."""
from __future__ import annotations

from pipeline.common import md_cell, md_table
from pipeline.formatting import MISSING, count, num, pct, pp
from pipeline.release.card.format import RIGHT, and_list, months, rates, year_order
from pipeline.release.card.sources import (
    Sources,
    dig,
    latest_year,
    newest_key,
    newest_months,
)


def future_fields(src: Sources) -> dict[str, str]:
    """The future split's headline: size, sources, recall and FPR, and the newest months' recall."""
    future = src["metrics"].get("future") or {}
    newest = future.get(newest_key(src)) or {}
    by_source = dig(src["data_report"], "splits", "future", "by_source") or {}
    per_source = src["metrics"].get("per_source") or {}
    same = [f"{md_cell(s)} {num(r)}" for s in by_source
            if (r := dig(per_source, s, "ensemble", "recall")) is not None]
    return {
        "future_rows": count(future.get("rows")),
        "future_phishing": count(future.get("phishing")),
        "future_legitimate": count(future.get("legitimate")),
        "future_first_seen_min": md_cell(future.get("first_seen_min") or MISSING),
        "future_first_seen_max": md_cell(future.get("first_seen_max") or MISSING),
        "future_sources": "; ".join(f"{md_cell(s)}: {count(n)}" for s, n in by_source.items()) or MISSING,
        "future_recall": num(future.get("recall")),
        "future_fpr": num(future.get("fpr")),
        "test_recall_future_sources": "; ".join(same) or MISSING,
        "newest_months": str(newest_months(src)),
        "newest_months_list": and_list([md_cell(x) for x in newest.get("months", [])]),
        "newest_phishing": count(newest.get("phishing")),
        "newest_recall": num(newest.get("recall")),
        "newest_recall_pct": pct(newest.get("recall")),
    }


def future_table_fields(src: Sources) -> dict[str, str]:
    """The future split per model and per month first seen."""
    future = src["metrics"].get("future") or {}
    models = {"ensemble": future, **(future.get("members") or {})}
    month_rows = [[md_cell(month), count(e.get("rows")), count(e.get("phishing")),
                   count(e.get("legitimate")), *rates(e, ("recall", "fpr"))]
                  for month, e in (future.get("by_month") or {}).items()]
    return {
        "future_model_table": md_table(["model", "URLs", "ROC AUC", "recall", "FPR"], ["---"] + [RIGHT] * 4,
                                     [[md_cell(n), count(dig(e, "rows")), *rates(e)] for n, e in models.items()]),
        "future_month_table": md_table(["month first seen", "URLs", "phishing", "legitimate", "recall", "FPR"],
                                     ["---"] + [RIGHT] * 5, month_rows),
    }


def _decay_points(decay: dict) -> list[tuple[int, float]]:
    return sorted((int(age), d["recall"]) for age, d in decay.items() if d.get("recall") is not None)


def recall_drop_per_month(decay: dict) -> float | None:
    """Recall lost per month of model age: from the youngest to the oldest age with a recall."""
    points = _decay_points(decay)
    if len(points) < 2:
        return None
    (young, r_young), (old, r_old) = points[0], points[-1]
    return (r_young - r_old) / (old - young)


def widest_spread(decay: dict) -> tuple[str, float] | None:
    """(model age, highest minus lowest recall over the cut-offs at that age), the widest one."""
    spreads = [(age, d["max_recall"] - d["min_recall"]) for age, d in decay.items()
               if d.get("max_recall") is not None and d.get("min_recall") is not None]
    return max(spreads, key=lambda s: (s[1], s[0])) if spreads else None


def _cadence(decay: dict) -> str:
    """The retraining advice, derived from the decay table."""
    drop, points = recall_drop_per_month(decay), _decay_points(decay)
    if drop is None:
        return ("**Retraining cadence: not measurable here.** The backtest has a recall for fewer than two "
                "model ages.")
    (young, r_young), (old, r_old) = points[0], points[-1]
    text = (f"**Retraining cadence.** Pooled over the cut-offs, recall is {num(r_young)} at a model age of "
            f"{months(young)} and {num(r_old)} at {months(old)}")
    if drop <= 0:
        text += (": no decay over this horizon, so retraining can follow the arrival of new data rather than "
                 "a deadline.")
    else:
        text += (f": the model loses about {pp(drop)} of recall per month in service, so a model kept for "
                 f"{months(old)} ends about {pp(drop * (old - young))} below where it started. Retrain monthly, "
                 f"as each new month of dated data arrives.")
    spread = widest_spread(decay)
    if spread and spread[1] > abs(drop) * (old - young):
        text += (f" The spread between cut-offs at the same age (up to {pp(spread[1])}, at {months(int(spread[0]))}) "
                 f"is larger than this drift: a single month's recall says as much about that month's phishing "
                 f"as about the model's age.")
    return text


def backtest_fields(src: Sources) -> dict[str, str]:
    """Refits on everything up to each cut-off, tested on the months after (reports/backtest.json)."""
    bt = src["backtest"]
    decay, rows = bt.get("decay") or {}, bt.get("rows") or []
    decay_rows = [[md_cell(age), num(d.get("recall")), count(d.get("phishing")), count(d.get("cutoffs")),
                   MISSING if d.get("min_recall") is None else f"{num(d['min_recall'])} to {num(d['max_recall'])}"]
                  for age, d in sorted(decay.items(), key=lambda kv: int(kv[0]))]
    fold_rows = [[md_cell(r.get("cutoff", MISSING)), md_cell(r.get("month", MISSING)), count(r.get("age_months")),
                  count(r.get("rows")), count(r.get("phishing")), *rates(r, ("recall", "fpr"))]
                 for r in rows]
    drop = recall_drop_per_month(decay)
    return {
        "backtest_cutoffs": and_list(sorted({md_cell(r["cutoff"]) for r in rows if "cutoff" in r})),
        "backtest_horizon": count(bt.get("horizon_months")),
        "backtest_max_train_rows": count(bt.get("max_train_rows")),
        "decay_table": md_table(["model age (months)", "recall", "phishing URLs", "cut-offs", "lowest to highest"],
                              [RIGHT] * 4 + [RIGHT], decay_rows),
        "backtest_table": md_table(["cut-off", "month tested", "model age", "URLs", "phishing", "recall", "FPR"],
                                 ["---", "---"] + [RIGHT] * 5, fold_rows),
        "backtest_verdict": _cadence(decay),
        "decay_phrase": ("the backtest could not measure it" if drop is None else
                         "the backtest shows no decay over its horizon" if drop <= 0 else
                         f"in the backtest the model loses about {pp(drop)} of recall per month of age"),
    }


def year_fields(src: Sources) -> dict[str, str]:
    """Recall on the out-of-source PhishTank stream, by submission year."""
    m = src["metrics"]
    oos = m.get("out_of_source") or {}
    rby = oos.get("recall_by_year") or {}
    year = latest_year(rby)
    rows = [[md_cell(y), count(dig(rby, y, "rows")), num(dig(rby, y, "recall"))]
            for y in sorted(rby, key=year_order)]
    rows.append(["all", count(oos.get("rows")), num(oos.get("recall"))])
    return {
        "oos_recall": num(oos.get("recall")),
        "oos_recall_pct": pct(oos.get("recall")),
        "oos_scored": count(oos.get("rows")),
        "oos_latest_year": year or MISSING,
        "oos_latest_year_recall": num(dig(rby, year, "recall")),
        "oos_latest_year_recall_pct": pct(dig(rby, year, "recall")),
        "year_table": md_table(["year", "URLs", "recall"], ["---", RIGHT, RIGHT], rows),
        "year_verdict": _year_verdict(rby, year, m["ensemble"]["recall"]["ci95_low"]),
    }


def _year_verdict(rby: dict, year: str | None, low: float) -> str:
    below = [y for y in sorted(rby, key=year_order) if dig(rby, y, "recall") is not None and rby[y]["recall"] < low]
    if year is None or dig(rby, year, "recall") is None:
        return "**Check: not possible.** The out-of-source stream has no year with enough URLs."
    recall = num(rby[year]["recall"])
    if year in below:
        return (f"**Check: recall on this stream is below the test split's.** Recall on {year} phishing "
                f"({recall}) is below the lower end of the test recall's 95% interval ({num(low)}). Years below "
                f"that bound: {', '.join(below)}. The test metrics overstate what to expect on "
                f"phishing from a feed the model never saw.")
    others = f" Years below it: {', '.join(below)}." if below else ""
    return (f"**Check: recall on recent phishing holds up.** Recall on {year} phishing ({recall}) is not below "
            f"the lower end of the test recall's 95% interval ({num(low)}).{others}")
