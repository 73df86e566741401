"""Pipeline-scaling and CI-overhead benchmarks (sections ``scaling`` and ``ci`` of bench.py).

Every run happens in a scratch copy of the working tree (``snapshot``), never in
the repository itself: ``dvc repro --force`` rewrites every output it touches.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import random
import re
import resource
import shutil
import string
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks._common import LOG, REPO, Log, Progress, load_average, merged, venv_env
from benchmarks._process_tree import TreePoller
from pipeline import paths
from pipeline.common import load_params
from pipeline.training import sources


def raw_files(work: Path) -> list[str]:
    """Every raw file the pipeline in ``work`` reads (params.yaml ``data``)."""
    return sources.raw_files(load_params(work / paths.PARAMS))


# --------------------------------------------------------------------------- scratch copies
def snapshot(dest: Path, repo: Path = REPO) -> Path:
    """Copy the working tree as it is now (tracked + untracked, not ignored) and make it a git repo.

    A plain ``git clone`` would miss uncommitted work the pipeline already depends on. Outputs DVC
    caches are left out even when no .gitignore lists them yet (a new stage's outputs): DVC refuses
    to write an output git tracks.
    """
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=repo, check=True,
                           capture_output=True).stdout.decode().split("\0")
    cached = cached_outputs(repo)
    dest.mkdir(parents=True, exist_ok=True)
    for rel in filter(None, files):
        src = repo / rel
        if (not src.is_file() or rel.startswith(("benchmarks/results", "benchmarks/RESULTS"))
                or any(rel == out or rel.startswith(out + "/") for out in cached)):
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "benchmark snapshot"], cwd=dest, check=True)
    return dest


def cached_outputs(repo: Path = REPO) -> set[str]:
    """Paths of the dvc.yaml outputs (outs, metrics, plots) that DVC caches, i.e. git must not track."""
    cached = set()
    for stage in yaml.safe_load((repo / paths.DVC_YAML).read_text())["stages"].values():
        for entry in (e for kind in ("outs", "metrics", "plots") for e in stage.get(kind, [])):
            path, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
            if (options or {}).get("cache", True):
                cached.add(path.rstrip("/"))
    return cached


def dvc(work: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=work, env=venv_env(), check=check,
                          capture_output=True, text=True)


# --------------------------------------------------------------------------- scaled data
_WORDS_RE = re.compile(r"[A-Za-z]{3,12}")
_DIGITS_RE = re.compile(r"[0-9]+")
_STRUCTURAL = {"http", "https", "www", "com", "org", "net", "html", "htm", "php", "asp", "aspx"}
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)?([^/?#]*)(.*)$", re.DOTALL)


class Perturber:
    """Realistic variants of real URLs: what a crawl of the same sites / kits would also have produced.

    Each variant applies 1-3 of these edits (tokens are drawn from the *same class's* real URLs so
    no artificial label signal is introduced):
      * scheme/www toggle (http <-> https, add/drop ``www.``);
      * new subdomain label in front of the host;
      * typo-squat of the registered-domain label (substitute/insert/delete/swap a character): a new
        registered domain, i.e. a new split group, as new sites appear in real growth;
      * path segment replaced by / extended with a word from the class vocabulary;
      * digit runs (ids, dates) re-drawn with the same length;
      * query value re-drawn, or a query parameter appended.
    Variants are unique (dedup would otherwise quarantine them) and never equal an original URL.
    """

    def __init__(self, urls: Sequence[str], labels: Sequence[str], seed: float):
        self.rng = random.Random(seed)
        self.words: dict[str, list[str]] = {}
        for lab in ("0", "1"):
            sample = [u for u, lab_ in zip(urls, labels) if lab_ == lab][:20000]
            words = [w.lower() for u in sample for w in _WORDS_RE.findall(u)]
            words = [w for w in words if w not in _STRUCTURAL]
            self.words[lab] = words or ["index"]
        self.alnum = string.ascii_lowercase + string.digits

    def _word(self, label: str) -> str:
        return self.rng.choice(self.words.get(label) or self.words["0"])

    def variant(self, url: str, label: str) -> str:
        r = self.rng
        m = _SCHEME_RE.match(url)
        assert m is not None  # every part of the pattern is optional: it matches any string
        scheme, host, rest = (m.group(1) or ""), m.group(2), m.group(3)
        edits = r.sample(range(6), k=r.choice((1, 1, 2, 2, 3)))
        for e in edits:
            if e == 0:  # scheme / www
                if scheme and r.random() < 0.5:
                    scheme = {"http://": "https://", "https://": "http://"}.get(scheme, scheme)
                elif host.startswith("www."):
                    host = host[4:]
                else:
                    host = "www." + host
            elif e == 1 and host:  # new subdomain
                host = f"{self._word(label)[:10]}.{host}"
            elif e == 2 and "." in host:  # typo-squat of the registrable label
                labels_ = host.split(".")
                i = max(0, len(labels_) - 2)
                w = list(labels_[i]) or ["a"]
                j = r.randrange(len(w))
                op = r.randrange(4)
                c = r.choice(self.alnum)
                if op == 0:
                    w[j] = c
                elif op == 1:
                    w.insert(j, c)
                elif op == 2 and len(w) > 2:
                    del w[j]
                else:
                    w.insert(j, "-") if 0 < j < len(w) else w.append(c)
                labels_[i] = "".join(w)
                host = ".".join(labels_)
            elif e == 3:  # path
                segs = rest.split("?")[0].split("/")
                tail = rest[len("?".join([rest.split("?")[0]])):]
                if len(segs) > 1 and r.random() < 0.6:
                    k = r.randrange(1, len(segs))
                    segs[k] = self._word(label) + (segs[k][segs[k].rfind("."):] if "." in segs[k] else "")
                else:
                    segs.append(self._word(label))
                rest = "/".join(segs) + tail
                if rest and not rest.startswith(("/", "?", "#", ":")):
                    rest = "/" + rest
            elif e == 4 and _DIGITS_RE.search(url):  # digit runs
                rest = _DIGITS_RE.sub(lambda d: "".join(r.choice(string.digits) for _ in d.group()), rest)
                host = host if r.random() < 0.7 else _DIGITS_RE.sub(
                    lambda d: "".join(r.choice(string.digits) for _ in d.group()), host)
            else:  # query
                if "?" in rest and "=" in rest and r.random() < 0.6:
                    rest = re.sub(r"=([^&#]*)", lambda v: "=" + "".join(
                        r.choice(self.alnum) for _ in range(max(1, len(v.group(1))))), rest, count=1)
                else:
                    rest = (rest or "/") + ("&" if "?" in rest else "?") + f"{self._word(label)[:8]}=" + \
                        "".join(r.choice(self.alnum) for _ in range(r.randint(2, 10)))
        return scheme + host + rest


def write_scaled(src: Path, dst: Path, factor: float, seed: float) -> dict[str, Any]:
    """``dst`` = all rows of ``src`` + (factor-1) x len(src) perturbed copies of random real rows."""
    with gzip.open(src, "rt", encoding="utf-8", errors="surrogateescape", newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    ui, li = header.index("url"), header.index("label")
    extra = round((factor - 1) * len(body))
    pert = Perturber([r[ui] for r in body], [r[li] for r in body], seed)
    seen = {r[ui] for r in body}
    rng = random.Random(seed + 1)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows(body)
    made = fallback = 0
    while made < extra:
        row = list(rng.choice(body))
        for attempt in range(4):
            new = pert.variant(row[ui], row[li])
            if new not in seen:
                break
        else:
            fallback += 1
            new = row[ui] + ("&" if "?" in row[ui] else "?") + f"r={made}"
        seen.add(new)
        row[ui] = new
        w.writerow(row)
        made += 1
    dst.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(dst, "wt", encoding="utf-8", errors="surrogateescape", newline="") as fh:
        fh.write(out.getvalue())
    return {"file": str(dst.name), "rows_in": len(body), "rows_out": len(body) + extra, "fallback_suffix": fallback}


# --------------------------------------------------------------------------- measuring dvc repro
class TreeMonitor(TreePoller):
    """Polls a process tree; attributes wall time and peak RSS to each `python -m pipeline <stage>`."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(pid, interval)
        self.stages: dict[str, dict[str, Any]] = {}

    @property
    def peak_total(self) -> int:
        return self.peak

    def on_process(self, process: Any, rss: int, now: float) -> None:
        try:
            cmd = process.cmdline()
        except self.psutil.Error:
            return
        if "-m" not in cmd or "pipeline" not in cmd:
            return
        i = cmd.index("pipeline")
        stage = cmd[i + 1] if i + 1 < len(cmd) else "?"
        s = self.stages.setdefault(stage, {"start": now, "end": now, "peak_rss": 0, "cpu": 0.0})
        s["end"] = now
        try:
            s["cpu"] = max(s["cpu"], self.cpu[process.pid])
            rss += sum(c.memory_info().rss for c in process.children(recursive=True))
        except self.psutil.Error:
            pass
        s["peak_rss"] = max(s["peak_rss"], rss)


def timed_repro(work: Path, *args: str) -> dict[str, Any]:
    """Run ``dvc repro *args``; wall time, per-stage wall/peak RSS, stages that ran."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", *args], cwd=work, env=venv_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with TreeMonitor(proc.pid) as mon:
        output, _ = proc.communicate()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode:
        raise RuntimeError(f"dvc repro {' '.join(args)} failed in {work}:\n{output[-4000:]}")
    ran = re.findall(r"Running stage '([^']+)'", output)
    stages = {name: {"wall_s": round(s["end"] - s["start"], 2), "peak_rss_mb": round(s["peak_rss"] / 2**20, 1),
                     "cpu_s": round(s["cpu"], 2)} for name, s in mon.stages.items()}
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "load_average_after": load_average(), "stages_run": ran,
            "stages": stages,
            "peak_rss_tree_mb": round(mon.peak_total / 2**20, 1)}


def fit_exponent(rows: Sequence[float], seconds: Sequence[float]) -> float | None:
    """b in time = a * rows^b (least squares in log-log)."""
    x, y = np.asarray(rows, float), np.asarray(seconds, float)
    ok = (x > 0) & (y > 0)
    if ok.sum() < 2:
        return None
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


# --------------------------------------------------------------------------- sections
def _base_workdir(root: Path, params_override: dict[str, Any] | None = None, raw_source: Path | None = None) -> Path:
    """A snapshot with its raw data: pulled from the DVC remote, or copied from ``raw_source`` (by file name)."""
    work = snapshot(root / "base")
    if params_override:
        override_params(work, params_override)
    if raw_source is None:
        dvc(work, "pull", "-q", *[f"{f}.dvc" for f in raw_files(work)])
    else:
        for f in raw_files(work):
            shutil.copy2(raw_source / Path(f).name, work / f)
    return work


def override_params(work: Path, override: dict[str, Any]) -> None:
    path = work / paths.PARAMS
    path.write_text(yaml.safe_dump(merged(yaml.safe_load(path.read_text()), override), sort_keys=False))


def run_scaling(root: Path, factors: Sequence[float] = (1, 3, 10), params_override: dict[str, Any] | None = None,
                raw_source: Path | None = None, log: Log = LOG.info, progress: Progress | None = None,
                previous: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``dvc repro --force`` at each data factor; per-stage wall time and peak RSS; fitted exponents."""
    base = _base_workdir(root, params_override, raw_source)
    runs: list[dict[str, Any]] = []
    for factor in factors:
        work = root / f"x{factor}"
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(base, work, symlinks=True)
        t0 = time.perf_counter()
        data: list[dict[str, Any]] = []
        if factor < 1:  # smaller data: the pipeline's own seeded subsample of every source
            override_params(work, {"data": {"sample_fraction": float(factor)}})
        elif factor != 1:
            files = raw_files(work)
            for i, f in enumerate(files):
                data.append(write_scaled(base / f, work / f, factor, seed=1000 * factor + i))
            dvc(work, "add", "-q", *files)
        gen_s = time.perf_counter() - t0
        log(f"scaling x{factor}: data ready ({gen_s:.0f}s), dvc repro --force ...")
        result = timed_repro(work, "--force")
        report = json.loads((work / paths.DATA_REPORT).read_text())
        result.update({"factor": factor, "data_generation_s": round(gen_s, 1), "scaled_files": data,
                       "raw_rows": sum(s["raw_rows"] for s in report["sources"].values()),
                       "clean_rows": report["clean_rows"],
                       "train_rows": report["splits"]["train"]["rows"],
                       "test_rows": report["splits"]["test"]["rows"],
                       "out_of_source_rows": report["out_of_source"]["rows"]})
        log(f"scaling x{factor}: {result['wall_s']:.0f}s, stages "
            + ", ".join(f"{k} {v['wall_s']:.0f}s/{v['peak_rss_mb']:.0f}MB" for k, v in result["stages"].items()))
        runs.append(result)
        if progress:
            progress({"runs": sorted(runs, key=lambda r: r["factor"]), "partial": True})
        if factor != factors[0]:
            shutil.rmtree(work, ignore_errors=True)  # keep disk use bounded
    done = {r["factor"] for r in runs}
    runs += [r for r in (previous or []) if r["factor"] not in done]
    runs.sort(key=lambda r: r["factor"])
    exponents: dict[str, float | None] = {}
    if len(runs) >= 2:
        rows = [r["clean_rows"] for r in runs]
        exponents["total"] = fit_exponent(rows, [r["wall_s"] for r in runs])
        exponents["total_cpu"] = fit_exponent(rows, [r["cpu_s"] for r in runs])
        for stage in runs[-1]["stages"]:
            exponents[stage] = fit_exponent(rows, [r["stages"].get(stage, {}).get("wall_s", 0) for r in runs])
            exponents[stage + " (cpu)"] = fit_exponent(rows, [r["stages"].get(stage, {}).get("cpu_s", 0) for r in runs])
    return {"runs": runs, "exponent_time_vs_rows": exponents, "workdir": str(root),
            "note": "per-stage wall time and RSS from polling the dvc process tree every 0.1 s"}


def run_ci(root: Path, params_override: dict[str, Any] | None = None, raw_source: Path | None = None,
           log: Log = LOG.info, work: Path | None = None, noop_runs: int = 3) -> dict[str, Any]:
    """No-op ``dvc repro`` and a params change that only affects evaluation (evaluate.seed)."""
    build: dict[str, Any] | None = None
    if work is None:
        work = root / "ci"
        if work.exists():
            shutil.rmtree(work)
        base = _base_workdir(root / "ci-base", params_override, raw_source)
        shutil.copytree(base, work, symlinks=True)
        log("ci: building the cache (dvc repro) ...")
        build = timed_repro(work)
    noop = [timed_repro(work) for _ in range(noop_runs)]
    params = yaml.safe_load((work / paths.PARAMS).read_text())
    override_params(work, {"evaluate": {"seed": int(params["evaluate"]["seed"]) + 1}})
    log("ci: evaluate.seed changed, dvc repro ...")
    changed = timed_repro(work)
    status_t0 = time.perf_counter()
    dvc(work, "status", "-q", check=False)
    status_s = time.perf_counter() - status_t0
    return {"noop_repro_s": [r["wall_s"] for r in noop], "noop_stages_run": noop[-1]["stages_run"],
            "eval_params_change": {"change": "evaluate.seed +1", **changed},
            "dvc_status_s": round(status_s, 2), "cache_build": build}
