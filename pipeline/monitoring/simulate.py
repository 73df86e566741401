"""A realistic prediction log for demos and end-to-end checks.

Real phishing arrives in dated campaigns, so the phishing share of the
simulated traffic is drawn, day by day, from PhishTank URLs reported around
that day (``phishtank_dated``), mixed with held-out legitimate URLs at a chosen
prevalence, and scored by the released ONNX model(s) through the product
client's ``Detector``. Volume has a weekly
rhythm; labels come back for a small share of rows, as user reports would.
Everything random comes from one seeded generator, so a seed gives one log.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline.formatting import general, pct
from pipeline.monitoring.config import setting

if TYPE_CHECKING:  # the type only: scoring goes through the Detector the command loads
    from phishing_url_detector.detector import Detector

Scorer = Callable[[list[str]], np.ndarray]
ROLLOUTS = ("switch", "canary", "shadow")
UNVERSIONED = "1.0.0"  # the version a model whose manifest names none is logged under
SECTION = "monitor.simulate"
FROM_RUN = ("version_a", "version_b", "switch")  # what the run gives (models, flags), never params


@dataclass(frozen=True)
class TrafficConfig:
    """Shape of the simulated traffic: params.yaml ``monitor.simulate``, and the versions of the run."""

    start: str | None             # first day (ISO); None = ``months`` before the last dated phish
    months: int
    rows_per_day: int
    prevalence: float
    seed: int
    label_share: float            # rows whose true label is logged (user reports)
    weekend_factor: float         # weekend volume relative to weekdays
    version_a: str
    version_b: str | None
    switch: str | None            # ISO day from which version_b takes all traffic
    rollout: str                  # how B enters: switch, canary or shadow
    overlap_days: int             # canary/shadow days before ``switch``
    canary_share: float           # share of traffic B scores during a canary
    pool_days: int                # phish reported within +-pool_days of a day can appear that day
    min_pool: int                 # widen the pool to the nearest min_pool phish when sparse


def traffic_config(section: Mapping[str, Any], version_a: str, version_b: str | None = None,
                   switch: str | None = None, **given: Any) -> TrafficConfig:
    """params ``monitor.simulate`` (``section``) with the ``given`` values that are not None over it;
    ``version_b`` and ``switch`` (a second version, and when it takes over) only come from the run."""
    settings = {f.name: setting(section, f.name, SECTION) for f in dataclasses.fields(TrafficConfig)
                if f.name not in FROM_RUN and given.get(f.name) is None}
    settings.update({k: v for k, v in given.items() if v is not None})
    if settings["start"] is not None:  # YAML reads an unquoted 2024-01-01 as a date
        settings["start"] = str(settings["start"])
    return TrafficConfig(**settings, version_a=version_a, version_b=version_b,
                         switch=None if switch is None else str(switch))


def phish_file(section: Mapping[str, Any]) -> str:
    """params ``monitor.simulate.phish``: the dated phishing URLs to replay."""
    return str(setting(section, "phish", SECTION))


def load_phish(path: Path | str) -> pd.DataFrame:
    """Dated phishing URLs: ``url`` and UTC ``reported`` time, undated rows dropped."""
    frame = pd.read_csv(path, usecols=["url", "date"], dtype=str, keep_default_na=False)
    reported = pd.to_datetime(frame["date"], utc=True, format="ISO8601", errors="coerce")
    out = pd.DataFrame({"url": frame["url"], "reported": reported})
    out = out[out["reported"].notna() & (out["url"].str.len() > 0)]
    return out.sort_values("reported", kind="stable").reset_index(drop=True)


def load_legit(path: Path | str) -> np.ndarray:
    """Legitimate held-out URLs (label 0) from the prepared test split."""
    frame = pd.read_parquet(path, columns=["url", "label"])
    return frame.loc[frame["label"].astype(int) == 0, "url"].astype(str).to_numpy()


def plan_traffic(phish: pd.DataFrame, legit: np.ndarray, cfg: TrafficConfig) -> pd.DataFrame:
    """Timestamped URLs with their true label and serving version, not yet scored."""
    if cfg.rollout not in ROLLOUTS:
        raise ValueError(f"rollout must be one of {ROLLOUTS}, not {cfg.rollout!r}")
    if phish.empty or len(legit) == 0:
        raise ValueError("need both phishing and legitimate URLs")
    rng = np.random.default_rng(cfg.seed)
    reported = phish["reported"]
    if cfg.start is None:
        last = reported.max().tz_convert(None).to_period("M").start_time
        start = (last - pd.DateOffset(months=cfg.months - 1)).tz_localize("UTC")
    else:
        start = pd.Timestamp(cfg.start)
        start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    days = pd.date_range(start, start + pd.DateOffset(months=cfg.months), freq="D",
                         inclusive="left")
    rep_us = reported.dt.as_unit("us").astype("int64").to_numpy()
    day_us = 86_400_000_000
    phish_urls = phish["url"].to_numpy(dtype=object)
    legit = np.asarray(legit, dtype=object)
    parts = []
    for day in days:
        rate = cfg.rows_per_day * (cfg.weekend_factor if day.day_of_week >= 5 else 1.0)
        n = int(rng.poisson(rate))
        k = int(rng.binomial(n, cfg.prevalence))
        d = day.value // 1000  # .value is always nanoseconds
        lo = int(np.searchsorted(rep_us, d - cfg.pool_days * day_us))
        hi = int(np.searchsorted(rep_us, d + (cfg.pool_days + 1) * day_us))
        if hi - lo < cfg.min_pool:  # sparse period: the nearest reports instead
            mid = int(np.searchsorted(rep_us, d))
            lo = max(0, min(mid - cfg.min_pool // 2, len(rep_us) - cfg.min_pool))
            hi = min(len(rep_us), lo + cfg.min_pool)
        urls = np.concatenate([phish_urls[rng.integers(lo, hi, k)],
                               legit[rng.integers(0, len(legit), n - k)]])
        labels = np.concatenate([np.ones(k, np.int8), np.zeros(n - k, np.int8)])
        offsets = rng.integers(0, day_us, n)
        parts.append(pd.DataFrame({"t_us": d + offsets, "url": urls, "label": labels}))
    plan = pd.concat(parts, ignore_index=True).sort_values("t_us", kind="stable")
    plan["timestamp"] = pd.to_datetime(plan.pop("t_us"), unit="us", utc=True)
    plan = plan.reset_index(drop=True)[["timestamp", "url", "label"]]
    return _assign_versions(plan, cfg, rng)


def _assign_versions(plan: pd.DataFrame, cfg: TrafficConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Route rows to versions: a hard switch, a random canary share, or B shadowing A."""
    plan["model_version"] = cfg.version_a
    if cfg.version_b is None:
        return plan
    if cfg.switch is None:
        raise ValueError("a second version needs a switch day")
    switch = pd.Timestamp(cfg.switch)
    switch = switch.tz_localize("UTC") if switch.tzinfo is None else switch.tz_convert("UTC")
    overlap_start = switch - pd.Timedelta(days=cfg.overlap_days)
    after = plan["timestamp"] >= switch
    during = (plan["timestamp"] >= overlap_start) & ~after
    plan.loc[after, "model_version"] = cfg.version_b
    if cfg.rollout == "canary":
        routed = during & (rng.random(len(plan)) < cfg.canary_share)
        plan.loc[routed, "model_version"] = cfg.version_b
    elif cfg.rollout == "shadow":
        shadow = plan[during].copy()
        shadow["model_version"] = cfg.version_b
        plan = pd.concat([plan, shadow], ignore_index=True).sort_values(
            ["timestamp", "model_version"], kind="stable").reset_index(drop=True)
    return plan


def score_traffic(plan: pd.DataFrame, scorers: Mapping[str, Scorer],
                  thresholds: Mapping[str, float] | None, cfg: TrafficConfig) -> pd.DataFrame:
    """The prediction log: each row scored by its version, verdict at that version's threshold
    (no verdict column when ``thresholds`` is None, as a product that logs only scores)."""
    rng = np.random.default_rng([cfg.seed, 1])  # independent of the routing draws
    out = plan.copy()
    score = np.full(len(out), np.nan)
    urls = out["url"].to_numpy(dtype=object)
    # Versions that share a model (e.g. only the threshold changed) are scored once.
    by_scorer: dict[int, list[np.ndarray]] = {}
    for version, idx in out.groupby("model_version").indices.items():
        by_scorer.setdefault(id(scorers[version]), []).append(idx)
    for version in out["model_version"].unique():
        parts = by_scorer.pop(id(scorers[version]), None)
        if parts is None:
            continue
        idx = np.concatenate(parts)
        unique, inverse = np.unique(urls[idx], return_inverse=True)
        score[idx] = np.asarray(scorers[version](list(unique)), dtype=float)[inverse]
    out["score"] = score
    out["score"] = out["score"].round(6)
    columns = ["timestamp", "model_version", "score", "url", "label"]
    if thresholds is not None:
        threshold = out["model_version"].map(thresholds).astype(float)
        out["verdict"] = (out["score"] >= threshold).astype(np.int8)
        columns.insert(3, "verdict")
    reported = rng.random(len(out)) < cfg.label_share
    out["label"] = out["label"].astype("Int8").where(reported)
    return out[columns]


def simulate_traffic(phish: pd.DataFrame, legit: np.ndarray, scorers: Mapping[str, Scorer],
                     thresholds: Mapping[str, float] | None, cfg: TrafficConfig) -> pd.DataFrame:
    """Plan, route and score: the whole simulated prediction log."""
    return score_traffic(plan_traffic(phish, legit, cfg), scorers, thresholds, cfg)


def detector_scorer(detector: Detector) -> Scorer:
    """P(phishing) from the client's :class:`Detector`: the product's own URL
    normalisation, batching and output checks, so a simulated score is the
    score the product would have logged."""
    def score(urls: list[str]) -> np.ndarray:
        return np.asarray(detector.predict_proba(urls)[:, 1], dtype=float)
    return score


def version_threshold(given: float | None, detector: Detector, what: str) -> float:
    """``given`` (a flag), else the threshold in the (verified) manifest beside the model."""
    threshold = given if given is not None else detector.threshold
    if threshold is None:
        raise ValueError(f"no threshold for {what}: {detector.model.onnx_path} has no manifest.json "
                         f"beside it; give --threshold{'-b' if what == 'version B' else ''}")
    return float(threshold)


def flagged_summary(log: pd.DataFrame, thresholds: Mapping[str, float]) -> str:
    """Rows and flagged share per version (at the version's threshold, logged or not)."""
    flagged = log["score"] >= log["model_version"].map(thresholds)
    per_version = flagged.groupby(log["model_version"]).agg(["size", "mean"])
    return ", ".join(f"{v}: {int(r['size'])} rows, {pct(r['mean'])} flagged at {general(thresholds[v])}"
                     for v, r in per_version.iterrows())


def write_log(log: pd.DataFrame, path: Path | str) -> Path:
    """Write the log in the format its suffix names (csv/jsonl/parquet, .gz allowed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = log.copy()
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes:
        frame.to_parquet(path, index=False)
    elif ".jsonl" in suffixes or ".ndjson" in suffixes:
        frame.to_json(path, orient="records", lines=True)
    elif ".csv" in suffixes:
        frame.to_csv(path, index=False)
    else:
        raise ValueError(f"{path}: use a .csv, .jsonl or .parquet name (optionally .gz)")
    return path
