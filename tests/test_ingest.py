"""`python -m pipeline ingest`: batch checks, canonical label conflicts, shards, registration, replay."""
from __future__ import annotations

import datetime as dt
import gzip
import json
import sys

import pandas as pd
import pytest
import yaml
from conftest import REPO, SAMPLES, sample_project, sh

from pipeline.common import PipelineError
from pipeline.training.canonical import canonical_url
from pipeline.training.ingest import (
    add_date_column,
    batch_problems,
    label_conflicts,
    merge_csv,
    register_in_dvc_yaml,
    register_in_params,
    repository_keys,
    rows_by_month,
    shard_month,
    shard_path,
)


def batch(rows, source="feed") -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["url", "label", "first_seen"]).astype(str)
    return frame.assign(source=source, file="batch.csv", line=range(2, len(frame) + 2), malformed="")


SPELLINGS = ["HTTP://SHOP.EXAMPLE/", "http://shop.example", "http://shop.example/#", "http://shop.example/&#32;",
             "http://shop.example/&#8203;", " http://Shop.Example./ "]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_of_a_url_has_one_canonical_form(spelling):
    assert canonical_url(spelling) == canonical_url("http://shop.example/") == "http://shop.example"


def test_canonical_form_keeps_what_changes_the_resource():
    assert canonical_url("https://shop.example/") != canonical_url("http://shop.example/")
    assert canonical_url("http://shop.example/A") != canonical_url("http://shop.example/a")
    assert canonical_url("http://shop.example/?q=1") != canonical_url("http://shop.example/?q=2")
    assert canonical_url("http://shop.example/#top") != canonical_url("http://shop.example/")


def test_label_conflicts_are_found_on_the_canonical_url_with_where_the_other_label_is():
    known = repository_keys(batch([("http://shop.example/", "1", "")], source="jpcert"))
    new = batch([(u, "0", "2023-01-05") for u in SPELLINGS] + [("http://other.example/", "0", "2023-01-05")])
    conflicts, duplicates = label_conflicts(new, known)
    assert list(conflicts["url"]) == SPELLINGS
    assert set(conflicts["other_source"]) == {"jpcert"} and set(conflicts["other_line"]) == {2}
    assert duplicates == 0


def test_conflicts_inside_the_batch_and_same_label_copies():
    known = repository_keys(batch([("http://same.example/", "1", "")]))
    new = batch([("http://a.example/x", "1", ""), ("http://A.example/x/", "0", ""), ("HTTP://same.example", "1", "")])
    conflicts, duplicates = label_conflicts(new, known)
    assert sorted(conflicts["line"]) == [2, 3] and set(conflicts["other_source"]) == {"this batch"}
    assert duplicates == 1


def test_batch_problems_name_the_row_and_what_was_expected():
    today = dt.date(2024, 6, 1)
    new = batch([("http://ok.example/", "1", "2024-05-31"), ("http://late.example/", "1", "2024-06-02"),
                 ("http://bad-date.example/", "1", "31/05/2024"), ("http://label.example/", "yes", "2024-05-01"),
                 ("  ", "0", "2024-05-01")])
    problems = batch_problems(new, 2048, today).set_index("line")["reason"]
    assert list(problems.index) == [3, 4, 5, 6]
    assert problems[3] == "bad date: 2024-06-02 is after today (2024-06-01)"
    assert problems[4].startswith("bad date: expected an ISO 8601 date") and "31/05/2024" in problems[4]
    assert problems[5] == "bad label: expected 0 or 1, got 'yes'"
    assert problems[6].startswith("empty url")


def test_a_batch_becomes_one_shard_named_after_its_newest_month():
    new = batch([("http://a.example/", "1", "2023-01-30"), ("http://b.example/", "0", "2023-02-01T10:00:00Z"),
                 ("http://c.example/", "1", "not a date")])
    months = rows_by_month(new)
    assert months == {"2023-01": {"phishing": 1}, "2023-02": {"legitimate": 1}}
    assert shard_month(months, dt.date(2024, 1, 1)) == "2023-02"
    assert shard_month({}, dt.date(2024, 1, 9)) == "2024-01"
    assert shard_path("jpcert", "2023-02") == "data/raw/jpcert/2023-02.csv.gz"


def test_merging_into_an_existing_shard_keeps_its_rows_and_refuses_other_columns():
    old = b"url,label,date\nhttp://a.example/,1,2023-01-01\n"
    assert merge_csv(old, "url,label,date\nhttp://b.example/,1,2023-01-02\n") == \
        "url,label,date\nhttp://a.example/,1,2023-01-01\nhttp://b.example/,1,2023-01-02\n"
    assert merge_csv(None, "url,label\nx,1\n") == "url,label\nx,1\n"
    with pytest.raises(PipelineError, match="columns"):  # one line for the user, not a traceback
        merge_csv(old, "url,label\nhttp://b.example/,1\n")


def test_dating_an_undated_batch_keeps_every_line_where_it_was():
    text = ('url,label\nhttp://a.example/,1\n\n"http://q.example/,1\nhttp://b.example/\u2028x,0\r\n'
            'http://c.example/,1,extra\nhttp://d.example/,0')
    dated = add_date_column(text, dt.date(2023, 3, 15))
    assert dated == ('url,label,date\nhttp://a.example/,1,2023-03-15\n\n"http://q.example/,1\n'
                     'http://b.example/\u2028x,0,2023-03-15\nhttp://c.example/,1,extra,2023-03-15\n'
                     'http://d.example/,0,2023-03-15\n')


PARAMS = """# the pipeline's params
data:
  sources:            # order = de-duplication priority
    - name: jpcert
      files: [data/raw/jpcert_2019_2022.csv.gz]
      date_column: date                # JPCERT/CC's confirmation day
  max_url_length: 2048
train:
  seed: 42   # fixed
"""


def test_registering_a_shard_edits_params_without_losing_comments():
    text = register_in_params(PARAMS, "jpcert", "data/raw/jpcert/2023-01.csv.gz", "date")
    doc = yaml.safe_load(text)
    assert doc["data"]["sources"][0]["files"] == ["data/raw/jpcert_2019_2022.csv.gz", "data/raw/jpcert/2023-01.csv.gz"]
    assert "# JPCERT/CC's confirmation day" in text and "# fixed" in text and text.startswith("# the pipeline")
    assert register_in_params(text, "jpcert", "data/raw/jpcert/2023-01.csv.gz", "date") == text
    new_source = yaml.safe_load(register_in_params(PARAMS, "openfeed", "data/raw/openfeed/2023-01.csv.gz", "seen"))
    assert new_source["data"]["sources"][1] == {"name": "openfeed", "files": ["data/raw/openfeed/2023-01.csv.gz"],
                                                "date_column": "seen"}
    with pytest.raises(ValueError, match="date_column"):
        register_in_params(PARAMS, "jpcert", "data/raw/jpcert/2023-01.csv.gz", "observed")


DVC_YAML = """stages:
  prepare:
    cmd: python -m pipeline prepare
    deps:
      - data/raw/a.csv.gz
      - data/raw/b.csv.gz
      - pipeline/stages/prepare.py   # the stage
  manifest:
    cmd: python -m pipeline manifest
    deps:
      - dist/phishing-url-detector.onnx
      - data/raw/a.csv.gz
      - pipeline/stages/manifest.py
"""


def test_the_stages_that_read_raw_data_are_exactly_those_ingest_registers_shards_in():
    from pipeline.training.ingest import RAW_DATA_STAGES

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    reading = {name for name, stage in stages.items()
               if any(str(d).startswith("data/raw/") for d in stage.get("deps", []))}
    assert reading == set(RAW_DATA_STAGES)


def test_registering_a_shard_adds_it_to_the_stages_that_read_raw_data():
    text = register_in_dvc_yaml(DVC_YAML, "data/raw/a/2023-01.csv.gz")
    stages = yaml.safe_load(text)["stages"]
    assert stages["prepare"]["deps"][2] == "data/raw/a/2023-01.csv.gz"
    assert stages["manifest"]["deps"][2] == "data/raw/a/2023-01.csv.gz"
    assert "# the stage" in text
    assert register_in_dvc_yaml(text, "data/raw/a/2023-01.csv.gz") == text


# -- the command, for real, in a throwaway repository --------------------------------------------------
def ingest(root, *args):
    return sh(sys.executable, "-m", "pipeline", "ingest", *args, cwd=root, check=False)


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """Three months of JPCERT/CC phishing replayed through `ingest`, as three data PRs would."""
    root = sample_project(tmp_path_factory.mktemp("ingest") / "project", repro=False)
    outputs = [ingest(root, "--source", "jpcert", str(SAMPLES / f"jpcert_replay_{m}.csv"))
               for m in ("2022-10", "2022-11", "2022-12")]
    return root, outputs


@pytest.mark.slow
def test_replaying_three_months_writes_three_registered_tracked_shards(replayed):
    root, outputs = replayed
    assert [o.returncode for o in outputs] == [0, 0, 0], [o.stderr for o in outputs]
    shards = [f"data/raw/jpcert/{m}.csv.gz" for m in ("2022-10", "2022-11", "2022-12")]
    for shard, sample in zip(shards, ("2022-10", "2022-11", "2022-12")):
        assert gzip.decompress((root / shard).read_bytes()) == (SAMPLES / f"jpcert_replay_{sample}.csv").read_bytes()
        assert yaml.safe_load((root / f"{shard}.dvc").read_text())["outs"][0]["path"] == shard.rsplit("/", 1)[1]
    params = yaml.safe_load((root / "params.yaml").read_text())
    jpcert = next(s for s in params["data"]["sources"] if s["name"] == "jpcert")
    assert jpcert["files"][1:] == shards
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    assert set(shards) <= set(stages["prepare"]["deps"]) and set(shards) <= set(stages["manifest"]["deps"])
    out = outputs[0].stdout
    assert "2022-10  phishing 60" in out and "dvc push" in out and "git commit" in out
    assert out.index("dvc push") < out.index("git commit")


@pytest.mark.slow
def test_the_replayed_months_reach_the_prepared_data_after_push(replayed):
    root, _ = replayed
    sh("dvc", "push", "-q", cwd=root)
    sh("dvc", "repro", "prepare", cwd=root)
    report = json.loads((root / "reports/data_report.json").read_text())
    by_month = report["sources"]["jpcert"]["classes"]["phishing"]["clean_rows_by_month"]
    sample = pd.read_csv(SAMPLES / "jpcert_sample.csv", dtype=str)
    for month in ("2022-10", "2022-11", "2022-12"):
        assert by_month[month] == (sample["date"].str[:7] == month).sum() + 60
    status = sh("dvc", "status", "--cloud", cwd=root).stdout
    assert "new:" not in status and "missing" not in status


@pytest.mark.slow
def test_a_conflicting_batch_is_listed_url_by_url_and_quarantined_on_both_sides(tmp_path):
    root = sample_project(tmp_path / "project", repro=False)
    legit = pd.read_csv(SAMPLES / "citizenlab_sample.csv", dtype=str, keep_default_na=False)["url"].iloc[:2]
    feed = tmp_path / "feed.csv"
    feed.write_text("url,label\n" + "".join(f"{u.upper()},1\n" for u in legit) + "http://fresh.example/x,1\n")
    result = ingest(root, "--source", "openfeed", str(feed), "--observed-on", "2023-03-15")
    assert result.returncode == 0, result.stderr
    assert "label conflicts with the repository (prepare quarantines every copy): 2" in result.stdout
    for url in legit:
        assert url.upper() in result.stdout
    shard = "data/raw/openfeed/2023-03.csv.gz"
    assert gzip.decompress((root / shard).read_bytes()).decode().splitlines()[0] == "url,label,date"
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["data"]["sources"][-1] == {"name": "openfeed", "files": [shard], "date_column": "date"}
    sh("dvc", "repro", "prepare", cwd=root)
    quarantine = pd.read_csv(root / "data/prepared/quarantine.csv", dtype=str, keep_default_na=False)
    conflicts = quarantine[quarantine["reason"].str.startswith("conflicting labels")]
    assert len(conflicts) == 4 and set(conflicts["source"]) == {"citizenlab", "openfeed"}


@pytest.mark.slow
def test_a_batch_without_the_required_columns_is_refused_with_the_file_named(tmp_path):
    root = sample_project(tmp_path / "project", repro=False)
    feed = tmp_path / "feed.csv"
    feed.write_text("link,class\nhttp://a.example/,1\n")
    result = ingest(root, "--source", "jpcert", str(feed))
    assert result.returncode == 2
    assert "feed.csv" in result.stderr and "lacks column(s) ['url', 'label', 'date']" in result.stderr
    assert not (root / "data/raw/jpcert").exists()
