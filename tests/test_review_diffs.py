"""Params/data/lock/repro-log/slice comparisons and the `dvc pull` diagnosis (pure, fast)."""
from __future__ import annotations

import yaml

from pipeline.review import diffs
from pipeline.store import remote
from pipeline.store.dvc import parse_repro_log

# -- params -----------------------------------------------------------------------------------

def test_params_diff_lists_only_changed_keys_dotted():
    old = {"train": {"seed": 1, "lexical_forest": {"n_estimators": 120, "max_depth": 18}, "weights": [3.0, 1.0]},
           "evaluate": {"fpr_points": [0.001, 0.01]}, "gone": {"x": 1}}
    new = {"train": {"seed": 1, "lexical_forest": {"n_estimators": 60, "max_depth": 18}, "weights": [2.0, 1.0]},
           "evaluate": {"fpr_points": [0.001, 0.01]}, "review": {"alpha": 0.05}}
    diff = diffs.params_diff(old, new)
    assert diff == [
        {"key": "train.lexical_forest.n_estimators", "change": "changed", "old": 120, "new": 60},
        {"key": "train.weights", "change": "changed", "old": [3.0, 1.0], "new": [2.0, 1.0]},
        {"key": "review.alpha", "change": "added", "old": None, "new": 0.05},
        {"key": "gone.x", "change": "removed", "old": 1, "new": None},
    ]
    assert diffs.params_diff(new, new) == []
    assert diffs.params_diff(None, {"a": 1}) == [{"key": "a", "change": "added", "old": None, "new": 1}]


def test_flatten_keeps_lists_and_empty_values_whole():
    assert diffs.flatten({"a": {"b": [1, {"c": 2}], "d": {}}, "e": None}) == {"a.b": [1, {"c": 2}], "a.d": {},
                                                                               "e": None}


# -- data -------------------------------------------------------------------------------------

def pointer(md5, size):
    return yaml.safe_dump({"outs": [{"md5": md5, "size": size, "hash": "md5", "path": "x.csv.gz"}]})


def test_pointers_diff():
    old = {"data/raw/a.csv.gz.dvc": pointer("aaa", 10), "data/raw/b.csv.gz.dvc": pointer("bbb", 20),
           "data/raw/c.csv.gz.dvc": pointer("ccc", 30)}
    new = {"data/raw/a.csv.gz.dvc": pointer("aaa", 10), "data/raw/b.csv.gz.dvc": pointer("BBB", 25),
           "data/raw/d.csv.gz.dvc": pointer("ddd", 40)}
    diff = diffs.pointers_diff(old, new)
    assert [(d["path"], d["change"]) for d in diff] == [
        ("data/raw/b.csv.gz.dvc", "changed"), ("data/raw/c.csv.gz.dvc", "removed"), ("data/raw/d.csv.gz.dvc", "added")]
    assert diff[0]["old_md5"] == "bbb" and diff[0]["new_md5"] == "BBB" and diff[0]["new_size"] == 25
    assert diffs.pointers_diff(old, old) == []


def report(legit, phish, test=(3, 2), oos=7):
    return {"raw_artefacts": {"0": {"rows": legit}, "1": {"rows": phish}},
            "splits": {"train": {"legitimate": legit - test[0], "phishing": phish - test[1]},
                       "test": {"legitimate": test[0], "phishing": test[1]}},
            "out_of_source": {"rows": oos}}


def test_rows_diff_per_class_before_and_after():
    rows = diffs.rows_diff(report(10, 8), report(12, 8, test=(4, 2)))
    table = {(r["scope"], r["class"]): (r["old"], r["new"]) for r in rows}
    assert table[("raw (training sources)", "legitimate")] == (10, 12)
    assert table[("raw (training sources)", "phishing")] == (8, 8)
    assert table[("test", "legitimate")] == (3, 4)
    assert table[("train", "legitimate")] == (7, 8)
    assert table[("out-of-source (evaluation only)", "phishing")] == (7, 7)
    assert ("out-of-source (evaluation only)", "legitimate") not in table
    assert all(r["old"] == r["new"] for r in diffs.rows_diff(report(1, 1), report(1, 1)))


# -- lock and repro log -----------------------------------------------------------------------

LOCK = """\
schema: '2.0'
stages:
  train:
    cmd: python -m pipeline train
    deps:
    - path: pipeline/training/model.py
      md5: m1
    params:
      params.yaml:
        train:
          seed: 42
    outs:
    - path: models/model.joblib
      md5: o1
  evaluate:
    cmd: python -m pipeline evaluate
    deps:
    - path: models/model.joblib
      md5: o1
    params:
      params.yaml:
        evaluate:
          bootstrap_resamples: 50
    outs:
    - path: metrics.json
      md5: x1
"""


def test_lock_mismatch_names_stages_and_what_differs():
    assert diffs.lock_mismatch(LOCK, LOCK) == []
    stale = LOCK.replace("bootstrap_resamples: 50", "bootstrap_resamples: 60").replace("md5: x1", "md5: x2")
    assert diffs.lock_mismatch(LOCK, stale) == [
        {"stage": "evaluate", "what": ["param `evaluate.bootstrap_resamples`", "out `metrics.json`"]}]
    code = LOCK.replace("md5: m1", "md5: m2")
    assert diffs.lock_mismatch(LOCK, code) == [{"stage": "train", "what": ["dep `pipeline/training/model.py`"]}]
    added = LOCK + "  export:\n    cmd: python -m pipeline export\n"
    assert diffs.lock_mismatch(LOCK, added) == [{"stage": "export", "what": ["not in the committed dvc.lock"]}]
    assert diffs.lock_mismatch(None, LOCK)[0]["what"] == ["not in the committed dvc.lock"]


REPRO_LOG = """\
'data/raw/ebbu2017.csv.gz.dvc' didn't change, skipping
Stage 'prepare' didn't change, skipping
Stage 'train' is cached - skipping run, checking out outputs
Running stage 'evaluate':
> python -m pipeline evaluate
evaluate: scoring 600 test URLs
parity gate (batch sizes):  50%|\x1b[32m█████\x1b[0m| 1/2\rparity gate 100%
Updating lock file 'dvc.lock'

Running stage 'export':
> python -m pipeline export
"""


def test_parse_repro_log():
    assert parse_repro_log(REPRO_LOG) == {"prepare": "up to date", "train": "restored from run-cache",
                                                "evaluate": "re-ran", "export": "re-ran"}
    assert parse_repro_log("Data and pipelines are up to date.\n") == {}


# -- slices -----------------------------------------------------------------------------------

def test_slice_movers_largest_change_first_and_small_slices_ignored():
    base = {"scheme": {"http": {"rows": 500, "recall": 0.80, "fpr": 0.010, "precision": 0.9, "roc_auc": 0.95},
                       "https": {"rows": 40, "recall": 0.20, "fpr": 0.0, "precision": 1.0}},
            "tld": {"com": {"rows": 300, "recall": 0.70, "fpr": 0.02, "precision": 0.8}}}
    pr = {"scheme": {"http": {"rows": 500, "recall": 0.75, "fpr": 0.010, "precision": 0.9, "roc_auc": 0.96},
                     "https": {"rows": 40, "recall": 0.90, "fpr": 0.0, "precision": 1.0}},
          "tld": {"com": {"rows": 300, "recall": 0.90, "fpr": 0.01, "precision": 0.8}, "new": {"rows": 99}}}
    movers = diffs.slice_movers(base, pr, min_rows=50, top=3)
    assert [(m["family"], m["slice"], m["metric"]) for m in movers] == [
        ("tld", "com", "recall"), ("scheme", "http", "recall"), ("scheme", "http", "roc_auc")]
    assert movers[0]["delta"] == pr["tld"]["com"]["recall"] - base["tld"]["com"]["recall"]
    assert diffs.slice_movers(base, base, 0, 10) == []


# -- dvc pull diagnosis -----------------------------------------------------------------------

S3_NO_CREDS = "ERROR: failed to pull data from the cloud - Unable to locate credentials"
MISSING = ("WARNING: Some of the cache files do not exist neither locally nor on remote. Missing cache files:\n"
           "md5: 764efa883dda1e11db47671c4a3bbd9e\nERROR: failed to pull data from the cloud")


def test_fork_without_credentials_says_why_and_what_to_do():
    d = remote.diagnose(S3_NO_CREDS, "storage", "s3://bucket/dvc", env={}, from_fork=True)
    assert d.kind == "credentials"
    assert "`storage` (s3://bucket/dvc) needs credentials" in d.title
    assert "fork" in d.advice and "does not give repository secrets" in d.advice
    assert "python -m pipeline report --base main" in d.advice


def test_missing_secret_names_the_variables():
    d = remote.diagnose(MISSING, "storage", "s3://bucket/dvc", env={}, from_fork=False)
    assert d.kind == "credentials" and "`AWS_ACCESS_KEY_ID`" in d.advice and "repository secrets" in d.advice
    rejected = remote.diagnose("ERROR: 403 Forbidden", "gcs", "gs://b/x",
                               env={"GOOGLE_APPLICATION_CREDENTIALS": "/k.json"}, from_fork=False)
    assert rejected.kind == "credentials" and "rejected" in rejected.advice


def test_other_failures():
    local = remote.diagnose(MISSING, "local", "../dvc-store", env={}, from_fork=True)
    assert local.kind == "missing-data" and "dvc push" in local.advice
    with_creds = remote.diagnose(MISSING, "s", "s3://b/x", env={"AWS_ACCESS_KEY_ID": "k"}, from_fork=False)
    assert with_creds.kind == "missing-data"
    plugin = remote.diagnose("ERROR: unexpected error - s3 is supported, but requires 'dvc-s3' to be installed",
                             "s", "s3://b/x", env={}, from_fork=False)
    assert plugin.kind == "plugin" and "dvc[s3]" in plugin.advice
    none = remote.diagnose("No remote provided and no default remote set.", None, None, env={}, from_fork=False)
    assert none.kind == "no-remote"
    assert remote.diagnose("boom", "local", "/srv/dvc", env={}, from_fork=False).kind == "other"
    assert remote.diagnose(S3_NO_CREDS, "s", "s3://b", {}, True).markdown().startswith("### ⚠️ ")


def test_scheme_detection():
    assert remote.scheme_of("../dvc-store") == "" and remote.scheme_of("/abs/path") == ""
    assert remote.scheme_of("C:\\dvc") == "" and remote.scheme_of("s3://b/k") == "s3"
    assert not remote.needs_credentials("file:///tmp/x") and remote.needs_credentials("azure://c/p")


# -- the data report with per-source classes, and quarantine.csv -------------------------------------

def source_entry(**classes):
    """{class: (raw_rows, {month: clean rows})} -> a data_report.json ``sources`` entry."""
    return {"classes": {c: {"raw_rows": raw, "clean_rows_by_month": months, "quarantined": {}}
                        for c, (raw, months) in classes.items()}}


def new_report(sources, future=(1, 4), oos=7):
    return {"sources": sources,
            "splits": {"train": {"legitimate": 10, "phishing": 20}, "test": {"legitimate": 3, "phishing": 2},
                       "future": {"legitimate": future[0], "phishing": future[1]}},
            "out_of_source": {"rows": oos}}


BASE_SOURCES = {"ebbu2017": source_entry(legitimate=(30, {}), phishing=(25, {})),
                "jpcert": source_entry(phishing=(100, {"2022-09": 40, "2022-10": 50}))}
PR_SOURCES = {"ebbu2017": source_entry(legitimate=(30, {}), phishing=(25, {})),
              "jpcert": source_entry(phishing=(130, {"2022-09": 40, "2022-10": 60, "2022-11": 20})),
              "citizenlab": source_entry(legitimate=(9, {"2023-01": 9}))}


def test_class_rows_per_source_and_class_and_every_split():
    rows = diffs.class_rows(new_report(PR_SOURCES))
    assert rows[(diffs.POOLED, None)] == {"legitimate": 39, "phishing": 155}
    assert rows[("raw", "jpcert")] == {"phishing": 130} and rows[("raw", "citizenlab")] == {"legitimate": 9}
    assert rows[("future", None)] == {"legitimate": 1, "phishing": 4}
    assert rows[(diffs.OUT_OF_SOURCE, None)] == {"phishing": 7}
    assert ("validation", None) not in rows and diffs.class_rows(None) == {}


def test_rows_diff_new_report_and_against_an_old_format_base():
    table = {(r["scope"], r["source"], r["class"]): (r["old"], r["new"])
             for r in diffs.rows_diff(new_report(BASE_SOURCES), new_report(PR_SOURCES, future=(2, 4)))}
    assert table[("raw", "jpcert", "phishing")] == (100, 130)
    assert table[("raw", "citizenlab", "legitimate")] == (None, 9)   # a new source
    assert ("raw", "jpcert", "legitimate") not in table               # no side has that class
    assert ("raw", "citizenlab", "phishing") not in table
    assert table[("future", None, "legitimate")] == (1, 2)
    # A base report from before per-source classes still compares on the pooled raw rows.
    old = diffs.rows_diff(report(40, 120), new_report(PR_SOURCES))
    pooled = {r["class"]: (r["old"], r["new"]) for r in old if r["scope"] == diffs.POOLED}
    assert pooled == {"legitimate": (40, 39), "phishing": (120, 155)}
    assert {(r["old"], r["new"]) for r in old if r["source"] == "jpcert"} == {(None, 130)}


def test_months_diff_lists_only_changed_counts_sorted():
    assert diffs.months_diff(new_report(BASE_SOURCES), new_report(PR_SOURCES)) == [
        {"source": "citizenlab", "class": "legitimate", "month": "2023-01", "old": 0, "new": 9},
        {"source": "jpcert", "class": "phishing", "month": "2022-10", "old": 50, "new": 60},
        {"source": "jpcert", "class": "phishing", "month": "2022-11", "old": 0, "new": 20}]
    gone = diffs.months_diff(new_report(PR_SOURCES), new_report(BASE_SOURCES))
    assert {"source": "jpcert", "class": "phishing", "month": "2022-11", "old": 20, "new": 0} in gone
    assert diffs.months_diff(new_report(PR_SOURCES), new_report(PR_SOURCES)) == []
    assert len(diffs.months_diff(report(1, 1), new_report(PR_SOURCES))) == 4   # an old base: every month is new


CONFLICT = "conflicting labels: the same url is phishing at jpcert:7 and legitimate at citizenlab:9"


def quarantine(*rows):
    import pandas as pd

    return pd.DataFrame([dict(zip(diffs.QUARANTINE_COLUMNS, r)) for r in rows], columns=diffs.QUARANTINE_COLUMNS)


BASE_Q = quarantine(("ebbu2017", "e.csv", "5", "http://a/", "1", "", "duplicate: same url as ebbu2017:2"),
                    ("phishstorm", "p.csv", "9", "http://b/\x13", "1", "", "control character: url contains U+0013"))
PR_Q = quarantine(("ebbu2017", "e.csv", "6", "http://a/", "1", "", "duplicate: same url as ebbu2017:2"),
                  ("phishstorm", "p.csv", "9", "http://b/\x13", "1", "", "control character: url contains U+0013"),
                  ("jpcert", "j.csv", "7", "http://c/", "1", "2022-10-01", CONFLICT),
                  ("citizenlab", "c.csv", "9", "http://c/", "0", "2023-01-02", CONFLICT),
                  ("ebbu2017", "e.csv", "8", "http://a/", "1", "", "duplicate: same url as phishstorm:3"),
                  ("esdaung2021", "s.csv", "2", "NA", "x", "", "bad label: expected 0 or 1, got 'x'"))


def test_quarantine_counts_per_source_and_reason_kind():
    assert diffs.quarantine_counts(PR_Q) == {("ebbu2017", "duplicate"): 2, ("phishstorm", "control character"): 1,
                                             ("jpcert", "conflicting labels"): 1,
                                             ("citizenlab", "conflicting labels"): 1,
                                             ("esdaung2021", "bad label"): 1}
    diff = {(r["source"], r["reason"]): (r["old"], r["new"]) for r in diffs.quarantine_diff(BASE_Q, PR_Q)}
    assert diff[("ebbu2017", "duplicate")] == (1, 2) and diff[("jpcert", "conflicting labels")] == (0, 1)
    assert diff[("phishstorm", "control character")] == (1, 1)
    no_base = diffs.quarantine_diff(None, PR_Q)
    assert all(r["old"] is None for r in no_base) and len(no_base) == 5
    assert diffs.quarantine_diff(None, None) == []


def test_new_quarantine_splits_label_conflicts_from_the_rest_by_url_and_reason():
    new = diffs.new_quarantine(BASE_Q, PR_Q)
    assert list(new["label_conflicts"]["url"]) == ["http://c/", "http://c/"]
    assert list(new["label_conflicts"]["source"]) == ["jpcert", "citizenlab"]
    # Same (url, reason) on another line is not new; the same URL with a new reason is.
    assert list(zip(new["new_quarantine"]["line"], new["new_quarantine"]["url"])) == [("8", "http://a/"), ("2", "NA")]
    everything = diffs.new_quarantine(None, PR_Q)
    assert len(everything["label_conflicts"]) == 2 and len(everything["new_quarantine"]) == 4
    assert all(len(frame) == 0 for frame in diffs.new_quarantine(BASE_Q, None).values())


def test_url_lists_in_full_as_csv_and_capped_in_review_json(tmp_path):
    hostile = "http://x/|`<script>@octocat\n\u202e"
    rows = [("jpcert", "j.csv", str(i), f"http://p{i}/" if i else hostile, "1", "", CONFLICT) for i in range(60)]
    summary = diffs.write_url_lists({"label_conflicts": quarantine(*rows), "new_quarantine": quarantine()}, tmp_path)
    conflicts = summary["label_conflicts"]
    assert conflicts["rows"] == 60 and conflicts["csv"] == "label_conflicts.csv"
    assert len(conflicts["shown"]) == diffs.LISTED == 50 and conflicts["shown"][0]["url"] == hostile
    back = diffs.read_quarantine(tmp_path / "label_conflicts.csv")
    assert len(back) == 60 and back["url"][0] == hostile and list(back.columns) == diffs.QUARANTINE_COLUMNS
    assert summary["new_quarantine"] == {"rows": 0, "csv": "new_quarantine.csv", "shown": []}
    assert len(diffs.read_quarantine(tmp_path / "new_quarantine.csv")) == 0


def test_read_quarantine_keeps_every_value_as_text(tmp_path):
    path = tmp_path / "quarantine.csv"
    path.write_text("source,line,url,label,reason\nebbu2017,3,NA,null,\"bad label: expected 0 or 1, got 'null'\"\n")
    frame = diffs.read_quarantine(path)
    assert frame.iloc[0].to_dict() == {"source": "ebbu2017", "file": "", "line": "3", "url": "NA", "label": "null",
                                       "first_seen": "", "reason": "bad label: expected 0 or 1, got 'null'"}
    assert diffs.read_quarantine(tmp_path / "missing.csv") is None
