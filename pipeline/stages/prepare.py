"""Stage `prepare`: raw CSVs -> validated, de-duplicated, host-disjoint splits."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.dataset import prepare_dataset, prepare_out_of_source, subsample
from pipeline.stages import add_stage_command
from pipeline.params import write_json
from pipeline.validation import read_raw_csv

OUT_DIR = Path("data/prepared")
REPORT = Path("reports/data_report.json")


def run(params: dict, out_dir: Path = OUT_DIR, report_path: Path = REPORT) -> dict:
    data = params["data"]
    frames = []
    for i, source in enumerate(data["sources"]):
        frame = read_raw_csv(source["path"], source["name"])
        frames.append(subsample(frame, data.get("sample_fraction", 1.0), params["split"]["seed"] + i))
    raw = pd.concat(frames, ignore_index=True)
    clean, quarantine, report = prepare_dataset(raw, data["max_url_length"], params["split"])

    oos_raw = subsample(read_raw_csv(data["out_of_source"], "phishtank_dated"),
                        data.get("sample_fraction", 1.0), params["split"]["seed"] + 99)
    oos, oos_quarantine = prepare_out_of_source(oos_raw, data["max_url_length"],
                                                set(clean.loc[clean["split"] == "train", "url"]))
    report["out_of_source"] = {"rows": int(len(oos)), "quarantined": int(len(oos_quarantine)),
                               "seen_in_training": int(oos["seen_in_training"].sum()),
                               "years": {str(y): int(n) for y, n in oos.groupby("year").size().items()}}

    out_dir.mkdir(parents=True, exist_ok=True)
    columns = ["url", "label", "source", "line", "host", "registered_domain"]
    for name in ("train", "validation", "test"):
        clean.loc[clean["split"] == name, columns].reset_index(drop=True).to_parquet(
            out_dir / f"{name}.parquet", index=False)
    oos.to_parquet(out_dir / "out_of_source.parquet", index=False)
    all_quarantine = pd.concat([quarantine, oos_quarantine[quarantine.columns]], ignore_index=True)
    all_quarantine.to_csv(out_dir / "quarantine.csv", index=False, encoding="utf-8",
                          errors="backslashreplace")
    write_json(report_path, report)

    print(f"prepare: {len(raw):,} raw rows -> {len(clean):,} clean, {len(quarantine):,} quarantined "
          f"(see {out_dir / 'quarantine.csv'})")
    for reason, n in report["quarantine_reasons"].items():
        print(f"  quarantined  {n:>7,}  {reason}")
    for name, s in report["splits"].items():
        print(f"  {name:<10} {s['rows']:>7,} rows  phishing share {s['phishing_share']:.3f}  "
              f"{s['registered_domains']:,} registered domains")
    print(f"  out-of-source stream: {len(oos):,} rows, {len(oos_quarantine):,} quarantined")
    return report


def register(subparsers) -> None:
    add_stage_command(subparsers, "prepare",
                      "validate, de-duplicate and split the raw data (DVC stage)", __doc__, run)
