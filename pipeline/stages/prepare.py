"""Stage `prepare`: raw CSVs -> validated, de-duplicated, host-disjoint splits and a future split."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline import paths
from pipeline.common import terminal, write_csv, write_json
from pipeline.stages import add_stage_command
from pipeline.training.dataset import prepare_dataset, prepare_out_of_source, subsample
from pipeline.training.sources import Source, out_of_source, training_sources
from pipeline.training.splitting import ALL_SPLITS
from pipeline.training.validation import read_raw_csv

SPLIT_COLUMNS = ["url", "label", "source", "line", "first_seen", "host", "registered_domain"]


def read_source(source: Source, fraction: float, seed: int) -> pd.DataFrame:
    frames = [read_raw_csv(path, source.name, source.date_column) for path in source.files]
    return subsample(pd.concat(frames, ignore_index=True), fraction, seed)


def run(params: dict, out_dir: Path = paths.PREPARED, report_path: Path = paths.DATA_REPORT) -> dict:
    data, seed = params["data"], params["split"]["seed"]
    fraction = data["sample_fraction"]
    raw = pd.concat([read_source(s, fraction, seed + i) for i, s in enumerate(training_sources(params))],
                    ignore_index=True)
    clean, quarantine, report = prepare_dataset(raw, data["max_url_length"], params["split"])

    stream = out_of_source(params)
    oos, oos_quarantine = prepare_out_of_source(read_source(stream, fraction, seed + 99), data["max_url_length"],
                                                set(clean.loc[clean["split"] == "train", "url"]))
    report["out_of_source"] = {"name": stream.name, "rows": len(oos), "quarantined": len(oos_quarantine),
                               "seen_in_training": int(oos["seen_in_training"].sum()),
                               "years": {str(y): int(n) for y, n in oos.groupby("year").size().items()}}

    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ALL_SPLITS:
        clean.loc[clean["split"] == name, SPLIT_COLUMNS].reset_index(drop=True).to_parquet(
            out_dir / f"{name}.parquet", index=False)
    oos.to_parquet(out_dir / paths.OUT_OF_SOURCE.name, index=False)
    all_quarantine = pd.concat([quarantine, oos_quarantine[quarantine.columns]], ignore_index=True)
    write_csv(all_quarantine, out_dir / paths.QUARANTINE.name, encoding="utf-8", errors="backslashreplace")
    write_json(report_path, report)
    _summary(raw, clean, quarantine, oos, oos_quarantine, report, out_dir)
    return report


def _summary(raw, clean, quarantine, oos, oos_quarantine, report, out_dir: Path) -> None:
    print(f"prepare: {len(raw):,} raw rows -> {len(clean):,} clean, {len(quarantine):,} quarantined "
          f"(see {terminal(out_dir / paths.QUARANTINE.name)})")
    for reason, n in report["quarantine_reasons"].items():
        print(f"  quarantined  {n:>7,}  {terminal(reason)}")
    for name, s in report["splits"].items():
        share = "" if s["phishing_share"] is None else f"phishing share {s['phishing_share']:.3f}  "
        print(f"  {terminal(name):<10} {s['rows']:>7,} rows  {share}{s['registered_domains']:,} registered domains")
    if report["future_from"]:
        print(f"  future split: rows first seen on or after {report['future_from']}; "
              f"{report['test_rows_of_groups_in_future']:,} older rows of the same domains are test rows")
    print(f"  out-of-source stream: {len(oos):,} rows, {len(oos_quarantine):,} quarantined")


def register(subparsers) -> None:
    add_stage_command(subparsers, "prepare",
                      "validate, de-duplicate and split the raw data (DVC stage)", __doc__, run)
