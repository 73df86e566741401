"""Params/data/lock/repro-log/slice comparisons and the `dvc pull` diagnosis (pure, fast)."""
from __future__ import annotations

import yaml

from pipeline.review import diffs, remote

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
    - path: pipeline/model.py
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
    assert diffs.lock_mismatch(LOCK, code) == [{"stage": "train", "what": ["dep `pipeline/model.py`"]}]
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
    assert diffs.parse_repro_log(REPRO_LOG) == {"prepare": "up to date", "train": "restored from run-cache",
                                                "evaluate": "re-ran", "export": "re-ran"}
    assert diffs.parse_repro_log("Data and pipelines are up to date.\n") == {}


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
