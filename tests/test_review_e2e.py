"""The PR review end to end, for real, in a throwaway repository.

A ``main`` branch with the pipeline run on the small sample, and PR branches that change an
evaluation param (committing a stale dvc.lock), cripple the model, change a data pointer, and add
a month of feed data through ``ingest`` (with label conflicts).
On each, ``python -m pipeline report --base main --repro`` runs as CI would, and every number
in report.md is checked against the metrics file it came from. The PR workflow's run steps then
run under act on a ``pull_request`` event.
"""
from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import (
    REPO,
    SAMPLES,
    commit,
    sample_project,
    sh,
    small_params,
    venv_env,
    write_params,
)
from workflow_tools import act_command

from pipeline.review.cells import cell
from pipeline.review.stats import format_p
from pipeline.training.sources import raw_files

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("review-e2e")]

WORKFLOW = REPO / ".github" / "workflows" / "review.yml"
LABEL_TO_KEY = {"ROC AUC": "roc_auc", "PR AUC": "pr_auc", "TPR@FPR 0.001": "tpr_at_fpr_0.001",
                "TPR@FPR 0.01": "tpr_at_fpr_0.01", "precision": "precision", "recall": "recall", "F1": "f1",
                "FPR": "fpr", "threshold": "threshold"}
RAW_POINTERS = [f"{path}.dvc" for path in raw_files(small_params())]


# -- the throwaway repository -----------------------------------------------------------------------

def switch(root: Path, branch: str, create: bool = False) -> None:
    """Check out a branch and the DVC outputs its dvc.lock names (from the cache), as a fresh CI checkout would."""
    sh("git", "checkout", "-q", "-f", *(["-b"] if create else []), branch, cwd=root)
    sh("git", "clean", "-fdq", cwd=root)
    sh("dvc", "checkout", "--force", "--allow-missing", "--quiet", cwd=root)


def make_project(root: Path) -> Path:
    sample_project(root)

    # PR 1: an evaluation param only, committed without reproducing (a stale dvc.lock).
    switch(root, "pr-eval", create=True)
    params = small_params()
    params["evaluate"]["bootstrap_resamples"] = 60
    write_params(root, params)
    commit(root, "more bootstrap resamples")

    # PR 2: a crippled model, reproduced and committed properly.
    switch(root, "main")
    switch(root, "pr-cripple", create=True)
    params = small_params()
    params["train"]["char_tfidf"]["ngram_max"] = 1  # single characters only
    params["train"]["lexical_trees"].update(max_iter=1, max_leaf_nodes=2)
    write_params(root, params)
    sh("dvc", "repro", cwd=root)
    commit(root, "a much smaller model")

    # PR 3: new data: a third of the ebbu2017 sample removed (dvc add, dvc push, commit the pointer).
    switch(root, "main")
    switch(root, "pr-data", create=True)
    lines = (SAMPLES / "ebbu2017_sample.csv").read_text().splitlines(keepends=True)
    with gzip.GzipFile(root / "data/raw/ebbu2017.csv.gz", "wb", mtime=0) as fh:
        fh.write("".join(lines[:1001]).encode())
    sh("dvc", "add", "-q", "data/raw/ebbu2017.csv.gz", cwd=root)
    sh("dvc", "push", "-q", "data/raw/ebbu2017.csv.gz.dvc", cwd=root)
    commit(root, "fewer ebbu2017 rows")

    # PR 4: a feed batch through `ingest`: one month of JPCERT/CC phishing plus two URLs the repository
    # holds as legitimate (spelled differently): label conflicts the comment must list URL by URL.
    switch(root, "main")
    switch(root, "pr-ingest", create=True)
    batch = (SAMPLES / "jpcert_replay_2022-11.csv").read_text()
    legit = pd.read_csv(SAMPLES / "citizenlab_sample.csv", dtype=str, keep_default_na=False)["url"].iloc[:2]
    batch += "".join(f"{url.upper()},1,2022-11-30,none\n" for url in legit)
    (root / "batch.csv").write_text(batch)
    sh(sys.executable, "-m", "pipeline", "ingest", "--source", "jpcert", "batch.csv", cwd=root)
    (root / "batch.csv").unlink()
    sh("dvc", "push", "-q", cwd=root)
    sh("dvc", "repro", cwd=root)
    commit(root, "data: jpcert 2022-11")
    switch(root, "main")
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("review") / "project")


@pytest.fixture(scope="module")
def review_of(project, tmp_path_factory):
    """``review_of(branch)``: the branch checked out as CI would, `report --base main --repro` run once."""
    done: dict = {}

    def run(branch: str):
        if branch not in done:
            switch(project, branch)
            out = tmp_path_factory.mktemp(f"out-{branch}")
            result = sh(sys.executable, "-m", "pipeline", "report", "--base", "main", "--repro", "--out", out,
                        "--head-name", branch, cwd=project, check=False)
            assert result.returncode in (0, 3), result.stdout[-5000:] + result.stderr[-5000:]
            done[branch] = (result, out, snapshot(project))
        return done[branch]
    return run


def snapshot(root: Path) -> dict:
    """The PR's and the base's metrics files, as the report must quote them."""
    def base(path):
        text = sh("git", "show", f"main:{path}", cwd=root).stdout
        return json.loads(text) if path.endswith(".json") else yaml.safe_load(text)

    def work(path):
        text = (root / path).read_text()
        return json.loads(text) if path.endswith(".json") else yaml.safe_load(text)

    files = ("metrics.json", "reports/operating_point.json", "reports/data_report.json", "dist/manifest.json",
             "reports/parity.json", "params.yaml")
    pointers = sorted(set(RAW_POINTERS) | set(sh("git", "ls-files", "*.dvc", cwd=root).stdout.split()))
    existing = [p for p in pointers if (root / p).is_file()]
    base_pointers = set(sh("git", "ls-tree", "-r", "--name-only", "main", cwd=root).stdout.split())
    return {"pr": {f: work(f) for f in files + tuple(existing)},
            "base": {f: base(f) for f in files + tuple(p for p in pointers if p in base_pointers)}}


# -- reading report.md back -------------------------------------------------------------------------

def tables(markdown: str) -> list[list[dict]]:
    """Every markdown table as a list of {header: cell} rows."""
    out, block = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            block.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
        elif block:
            header, rows = block[0], block[2:]
            out.append([dict(zip(header, row)) for row in rows])
            block = []
    return out


def table(markdown: str, *headers: str) -> list[dict]:
    """The one table whose header starts with ``headers``."""
    found = [t for t in tables(markdown) if t and list(t[0])[:len(headers)] == list(headers)]
    assert len(found) == 1, f"expected one table with headers {headers!r}, found {len(found)}"
    return found[0]


def f4(v) -> str:
    return f"{v:.4f}"


def s4(v) -> str:
    return f"{v:+.4f}"


def check_numbers(out: Path, files: dict, data_changed: bool) -> dict:
    """Every number in report.md equals the metrics file (or review.json entry) it came from."""
    md = (out / "report.md").read_text()
    review = json.loads((out / "review.json").read_text())
    pr, base = files["pr"], files["base"]
    ensemble = pr["metrics.json"]["ensemble"]
    t_pr = pr["reports/operating_point.json"]["ensemble"]["threshold"]
    t_base = base["reports/operating_point.json"]["ensemble"]["threshold"]
    test_rows = pr["reports/data_report.json"]["splits"]["test"]["rows"]
    assert review["test_rows"] == test_rows == ensemble["rows"]

    # 1. the verdict line
    mc, scope = review["mcnemar"], review["verdict_scope"]
    first = md.splitlines()[0]
    if scope["restricted"]:
        assert f"on the {scope['rows']:,} of the PR's {test_rows:,} test URLs the base model never saw" in first
        assert scope["rows"] + scope["seen_by_base"] == test_rows
    else:
        assert f"on the PR's {test_rows:,} test URLs" in first
    if "McNemar" in first:
        assert f"p = {format_p(mc['p_value'])}" in first
        assert f"({mc['base_only']} URLs newly wrong, {mc['pr_only']} newly right)" in first

    # 2. the released model (final fit), apart from the held-out comparison: its own threshold and test metrics
    section = md[md.index("### Released model (final fit)"):md.index("### Params and data")]
    released = {r[""]: r for r in table(section, "", "base", "PR")}
    for who, side in (("base", base), ("PR", pr)):
        point = side["reports/operating_point.json"]["released"]["ensemble"]["threshold"]
        test = side["metrics.json"]["released_model"]["test"]
        assert released["threshold (chosen on validation)"][who] == f4(point)
        assert released["test recall"][who] == f4(test["recall"]["value"])
        assert released["test FPR"][who] == f4(test["fpr"]["value"])

    # 3. the metrics table: base (re-scored on the PR's split), PR (metrics.json), paired Δ
    rows = table(md, "metric")
    assert [r["metric"] for r in rows] == list(LABEL_TO_KEY)
    own_base = base["metrics.json"]["ensemble"]
    for row in rows:
        key = LABEL_TO_KEY[row["metric"]]
        delta_cell = row["Δ (PR − base)"].strip("*")
        if key == "threshold":
            assert (row["base"], row["PR"], delta_cell) == (f4(t_base), f4(t_pr), s4(t_pr - t_base))
            assert t_pr == ensemble["threshold"] == pr["metrics.json"]["threshold"]
            continue
        e, b, d = ensemble[key], review["base"]["metrics"][key], review["deltas"][key]
        assert row["PR"] == f4(e["value"]) and row["PR 95% interval"] == f"[{f4(e['ci95_low'])}, {f4(e['ci95_high'])}]"
        assert row["base"] == f4(b)
        assert delta_cell == s4(d["value"])
        assert row["Δ 95% interval (paired)"] == f"[{s4(d['ci95_low'])}, {s4(d['ci95_high'])}]"
        assert d["value"] == pytest.approx(e["value"] - b, abs=1e-12)
        assert row["Δ (PR − base)"].startswith("**") == (not e["ci95_low"] <= b <= e["ci95_high"])
        if not data_changed:  # same test split: the re-scored base equals the base's own metrics.json
            assert b == pytest.approx(own_base[key]["value"], abs=1e-12)

    # McNemar's table agrees with both confusion matrices
    mtab = {r[""]: r for r in table(md, "", "PR right")}
    assert mtab["**base right**"]["PR right"] == f"{mc['both_right']:,}"
    assert mtab["**base right**"]["PR wrong"] == f"{mc['base_only']:,}"
    assert mtab["**base wrong**"]["PR right"] == f"{mc['pr_only']:,}"
    assert mtab["**base wrong**"]["PR wrong"] == f"{mc['both_wrong']:,}"
    cm_pr, cm_base = ensemble["confusion"], review["base"]["confusion"]
    assert sum(cm_base.values()) == test_rows and mc["rows"] == scope["rows"]
    if not scope["restricted"]:
        assert mc["both_right"] + mc["pr_only"] == cm_pr["tn"] + cm_pr["tp"]
        assert mc["both_right"] + mc["base_only"] == cm_base["tn"] + cm_base["tp"]
    # the verdict's evidence is the findings' own numbers
    for f in review["verdict"]["findings"]:
        if f["name"] != "mcnemar" and (f["direction"] == review["verdict"]["outcome"]
                                       or review["verdict"]["outcome"] == "no significant change"):
            assert f"{s4(f['value'])} [{s4(f['ci_low'])}, {s4(f['ci_high'])}]" in first

    # 4. confusion matrices
    conf = {r["actual"].split(" (")[0]: r for r in table(md, "actual")}
    for actual, (neg_key, pos_key) in {"legitimate": ("tn", "fp"), "phishing": ("fn", "tp")}.items():
        for who, cm in (("base", cm_base), ("PR", cm_pr)):
            total = cm[neg_key] + cm[pos_key]
            assert conf[actual][f"{who}: predicted legitimate"] == f"{cm[neg_key]:,} ({cm[neg_key] / total:.2%})"
            assert conf[actual][f"{who}: predicted phishing"] == f"{cm[pos_key]:,} ({cm[pos_key] / total:.2%})"
    for name in review["plots"]:
        assert (out / name).read_bytes().startswith(b"\x89PNG") and f"]({name})" in md

    # 2. params and data
    if review["params_diff"]:
        for row in table(md, "key"):
            section = row["key"].strip("`").split(".")
            old, new = base["params.yaml"], pr["params.yaml"]
            for part in section:
                old, new = old[part], new[part]
            assert (row["base"], row["PR"]) == (cell(old), cell(new))
    if data_changed:
        for row in table(md, "pointer"):
            path = row["pointer"].strip("`")
            for who, side in (("base", base), ("PR", pr)):
                out_ = side[path]["outs"][0] if path in side else None
                assert row[f"{who} md5"] == (f"`{out_['md5'][:10]}`" if out_ else "`—`")
                assert row[f"{who} bytes"] == (f"{out_['size']:,}" if out_ else "—")
            assert row["change"] == ("added" if path not in base else "changed")
        for row in table(md, "rows"):
            for who, report in (("base", base["reports/data_report.json"]), ("PR", pr["reports/data_report.json"])):
                cls, sources = row["class"], report["sources"]
                if row["rows"] == "raw (training sources)":
                    expected = sum(s["classes"].get(cls, {}).get("raw_rows", 0) for s in sources.values())
                elif row["rows"].startswith("raw `"):
                    source = sources.get(row["rows"].removeprefix("raw `").removesuffix("`"), {"classes": {}})
                    expected = source["classes"].get(cls, {}).get("raw_rows")
                elif row["rows"].startswith("out-of-source"):
                    expected = report["out_of_source"]["rows"]
                else:
                    expected = report["splits"][row["rows"]][cls]
                assert row[who] == ("—" if expected is None else f"{expected:,}"), (row, who)
        assert "### Data changes" in md
        for name in ("label_conflicts", "new_quarantine"):
            listing = review["data_changes"][name]
            assert (out / f"{name}.csv").is_file() and len(listing["shown"]) == min(listing["rows"], 50)

    # 3b. the future split: PR as in metrics.json, base re-scored (review.json), per month
    future, own_future = review["future"], pr["metrics.json"].get("future") or {}
    if future.get("rows"):
        newest = own_future[f"newest_{future['newest_months']}_months"]
        assert future["pr"]["newest"]["months"] == newest["months"]
        assert future["pr"]["newest"]["recall"] == pytest.approx(newest["recall"], abs=1e-12)
        months = {r["month"].strip("`"): r for r in table(md, "month")}
        for month, e in own_future["by_month"].items():
            b = future["base"]["by_month"][month]
            for key, label in (("recall", "recall"), ("fpr", "FPR")):
                assert months[month][f"PR {label}"] == (f4(e[key]) if key in e else "—")
                assert months[month][f"base {label}"] == (f4(b[key]) if key in b else "—")

    # 3c. per source: PR as in metrics.json, base re-scored (review.json)
    for row in table(md, "source", "phishing"):
        key = {"ROC AUC": "roc_auc", "recall": "recall", "FPR": "fpr"}[row["metric"]]
        e = pr["metrics.json"]["per_source"][row["source"].strip("`")]["ensemble"]
        b = review["per_source"]["base"][row["source"].strip("`")]
        assert row["phishing"] == f"{e['phishing']:,}" and row["legitimate"] == f"{e['legitimate']:,}"
        assert row["PR"] == f4(e[key]) and row["base"] == (f4(b[key]) if key in b else "—")

    # 5. slices: base re-scored (review.json), PR from metrics.json
    if review["slice_movers"]:
        for row in table(md, "slice"):
            family, name = (part.strip("`") for part in row["slice"].split(": ", 1))
            key = next(k for k in ("recall", "fpr", "precision", "roc_auc")
                       if row["metric"] == {"recall": "recall", "fpr": "FPR", "precision": "precision",
                                            "roc_auc": "ROC AUC"}[k])
            p = pr["metrics.json"]["slices"][family][name]
            b = review["base"]["slices"][family][name]
            assert row["rows"] == f"{p['rows']:,}" and row["PR"] == f4(p[key]) and row["base"] == f4(b[key])
            assert row["Δ"] == s4(p[key] - b[key])

    # 7. ONNX facts from both manifests and parity reports
    onnx = {r[""]: r for r in table(md[md.index("### ONNX model"):], "", "base", "PR")}
    for who, side in (("base", base), ("PR", pr)):
        manifest, parity = side["dist/manifest.json"], side["reports/parity.json"]
        assert onnx["file size (bytes)"][who] == f"{manifest['model']['size_bytes']:,}"
        assert onnx["sha256"][who] == f"`{manifest['model']['sha256'][:12]}`"
        assert onnx["parity rows"][who] == f"{parity['rows']:,}"
        assert onnx["parity batch sizes"][who] == ", ".join(str(b) for b in sorted(map(int, parity["batch_sizes"])))
        assert onnx["label agreement"][who] == f"{parity['label_agreement']:.2%}"
        assert onnx["max \\|P_sklearn − P_onnx\\|"][who] == f"{parity['max_abs_proba_diff']:.2e}"
        assert onnx["parity tolerance"][who] == f"{parity['tolerance']:.2e}"
        assert onnx["contract digest"][who] == f"`{manifest['contract_digest'][:12]}`"
    return review


def stage_status(md: str) -> dict[str, str]:
    return {r["stage"].strip("`"): r["PR (this run)"] for r in table(md, "stage")}


def test_evaluation_param_change_reruns_only_the_stages_after_training_and_flags_the_stale_lock(review_of):
    result, out, files = review_of("pr-eval")
    assert result.returncode == 0
    md = (out / "report.md").read_text()
    assert md.startswith("**➖ No significant change**: challenger `pr-eval`")
    review = check_numbers(out, files, data_changed=False)
    assert [d["key"] for d in review["params_diff"]] == ["evaluate.bootstrap_resamples"]
    status = stage_status(md)
    assert all(status[s].endswith("up to date (outputs from the DVC cache)") for s in ("prepare", "train",
                                                                                       "operating-point"))
    assert status["evaluate"] == status["manifest"] == "🔄 re-ran"
    assert status["export"].endswith("up to date (outputs from the DVC cache)")  # no re-conversion
    assert "re-ran `evaluate`, `manifest`" in md
    # The committed lock still has the old param: said plainly, with the command that fixes it.
    assert "**⚠️ The committed `dvc.lock` does not match what was reproduced here.**" in md
    assert "- `evaluate`: param `evaluate.bootstrap_resamples`" in md
    assert re.search(r"dvc repro && git add dvc\.lock \S*.*metrics\.json.* && git commit", md)
    assert f"no `.dvc` pointer changed ({len(RAW_POINTERS)} pointers)" in md


def test_crippled_model_is_worse_and_fails_the_check(review_of):
    result, out, files = review_of("pr-cripple")
    assert result.returncode == 3, result.stdout[-3000:]
    md = (out / "report.md").read_text()
    assert md.startswith("**❌ Worse**: challenger `pr-cripple`")
    review = check_numbers(out, files, data_changed=False)
    assert review["verdict"]["outcome"] == "worse" and review["verdict"]["fails_check"]
    worse = {f["name"] for f in review["verdict"]["findings"] if f["direction"] == "worse"}
    assert {"mcnemar", "roc_auc"} <= worse
    assert review["base"]["metrics"]["roc_auc"] - review["pr"]["metrics"]["roc_auc"]["value"] > 0.05
    assert "**This fails the check.** To accept the regression, add the label `accept-regression`" in md
    assert "✅ The committed `dvc.lock` matches what was reproduced." in md
    assert set(stage_status(md).values()) == {"✔️ up to date (outputs from the DVC cache)"}
    assert "| `train.char_tfidf.ngram_max` | `4` | `1` |" in md
    assert "I/O contract unchanged." in md


def test_data_pointer_change_rescored_base_on_the_new_split(review_of):
    result, out, files = review_of("pr-data")
    md = (out / "report.md").read_text()
    review = check_numbers(out, files, data_changed=True)
    assert [p["path"] for p in review["pointers_diff"]] == ["data/raw/ebbu2017.csv.gz.dvc"]
    assert review["data_changed"] and not review["params_diff"]
    pr_rows = files["pr"]["reports/data_report.json"]["sources"]["ebbu2017"]["raw_rows"]
    base_rows = files["base"]["reports/data_report.json"]["sources"]["ebbu2017"]["raw_rows"]
    assert base_rows == 1500 and pr_rows == 1000
    assert "The base model is re-scored on the PR's test split." in md
    # The re-split put URLs the base model trained on into the PR's test split: the verdict leaves them out.
    scope = review["verdict_scope"]
    assert scope["seen_by_base"] > 0 and scope["restricted"]
    assert f"the verdict's tests use only the {scope['rows']:,} URLs the base never saw" in md
    assert set(stage_status(md).values()) == {"🔄 re-ran"}
    assert result.returncode == (3 if review["verdict"]["fails_check"] else 0)


def test_an_ingested_month_shows_its_rows_and_every_label_conflict_url_by_url(review_of):
    _, out, files = review_of("pr-ingest")
    md = (out / "report.md").read_text()
    review = check_numbers(out, files, data_changed=True)
    assert [p["path"] for p in review["pointers_diff"]] == ["data/raw/jpcert/2022-11.csv.gz.dvc"]
    months = {(m["source"], m["class"], m["month"]): m for m in review["data_changes"]["months"]}
    added = months[("jpcert", "phishing", "2022-11")]
    assert added["new"] - added["old"] == 60  # the replayed rows; the 2 conflicting ones are quarantined
    conflicts = pd.read_csv(out / "label_conflicts.csv", dtype=str, keep_default_na=False)
    legit = pd.read_csv(SAMPLES / "citizenlab_sample.csv", dtype=str, keep_default_na=False)["url"].iloc[:2]
    assert len(conflicts) == 4 and set(conflicts["source"]) == {"jpcert", "citizenlab"}
    for url in legit:
        assert f"`{url}`" in md and f"`{url.upper()}`" in md
    assert review["data_changes"]["label_conflicts"]["rows"] == 4
    assert "label_conflicts.csv" in md


def test_unpushed_data_is_explained_not_a_stack_trace(project, tmp_path):
    """A pointer committed without `dvc push`: a fresh clone's pull-data says so and what to do."""
    switch(project, "main")
    switch(project, "pr-unpushed", create=True)
    with gzip.GzipFile(project / "data/raw/phishstorm.csv.gz", "wb", mtime=0) as fh:
        fh.write((SAMPLES / "phishstorm_sample.csv").read_bytes()[:20000].rsplit(b"\n", 1)[0] + b"\n")
    sh("dvc", "add", "-q", "data/raw/phishstorm.csv.gz", cwd=project)
    commit(project, "new data, not pushed")
    switch(project, "main")
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", "-b", "pr-unpushed", project, clone, cwd=tmp_path)
    result = sh(sys.executable, "-m", "pipeline", "pull-data", "--out", tmp_path / "out", cwd=clone, check=False)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "does not have the data a `.dvc` pointer names" in result.stderr
    assert "run `dvc push`" in result.stderr
    assert "dvc push" in (tmp_path / "out" / "report.md").read_text()


# -- the PR workflow under act ---------------------------------------------------------------------

def test_pr_workflow_run_steps_under_act(project, tmp_path):
    """checkout (act's copy of the work tree), pull-data, dvc repro, report; GitHub-only steps skipped.

    The event carries the label that accepts the crippled model's regression, so the job passes.
    act's copy shares the project's DVC cache (as CI restores .dvc/cache), through DVC's global config.
    """
    switch(project, "pr-cripple")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "number": 7, "pull_request": {
        "number": 7, "base": {"ref": "main"}, "head": {"ref": "pr-cripple"},
        "labels": [{"name": "bug"}, {"name": "accept-regression"}]}}))
    dvc_global = tmp_path / "dvc-global"
    dvc_global.mkdir()
    (dvc_global / "config").write_text(f"[cache]\n    dir = {project / '.dvc' / 'cache'}\n")
    out = tmp_path / "out"
    command = act_command("pull_request", WORKFLOW, event, tmp_path / "stub") + ["--var", f"REVIEW_OUT={out}"]
    result = subprocess.run(command, cwd=project, capture_output=True, text=True,
                            timeout=1200, env=venv_env({"DVC_GLOBAL_CONFIG_DIR": str(dvc_global)}))
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    md = (out / "report.md").read_text()
    assert md.startswith("**❌ Worse**: challenger `pr-cripple`")
    assert "The regression is accepted by label `accept-regression`, so the check passes." in md
    assert (out / "pr-number").read_text().strip() == "7"
    assert (out / "summary.md").is_file() and "![" not in (out / "summary.md").read_text()
    assert f"pull-data: {len(RAW_POINTERS)} .dvc pointers" in log
    assert "Job succeeded" in log
    review = json.loads((out / "review.json").read_text())
    assert review["labels"] == ["bug", "accept-regression"]
    assert set(review["pipeline"]["pr"]["stages"].values()) == {"up to date"}
    assert review["pipeline"]["pr"]["seconds"] is not None and not review["pipeline"]["lock_mismatch"]
