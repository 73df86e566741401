"""The measured process of the train-memory section: the train stage in ``WORK``, every phase marked.

    python benchmarks/_train_child.py WORK [--code DIR]    # what benchmarks/train_memory.py starts

``--code`` puts another checkout's ``pipeline`` package first on sys.path (to measure the code at a git
ref on the same data), so this module imports nothing of the pipeline before it has done that, and
nothing of the benchmarks: the standard library only at the top.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

MB = 2**20
MARKS_FILE, RESULT_FILE = "phase-marks.txt", "train-result.json"
# (owner module, attribute, phase): the child wraps these so every RSS sample has a phase.
PHASES = (("pandas", "read_parquet", "read train split"),
          ("pipeline.training.model", "url_parts", "URL split (onnxruntime)"),
          ("pipeline.training.model:HostPathTfidf", "fit", "TF-IDF vocabulary (sample)"),
          ("pipeline.training.model:HostPathTfidf", "transform", "TF-IDF transform (all rows)"),
          ("sklearn.linear_model:LogisticRegression", "fit", "logistic regression fit"),
          ("pipeline.training.features:LexicalFeatures", "transform", "lexical features"),
          ("sklearn.ensemble:HistGradientBoostingClassifier", "fit", "trees fit"),
          ("joblib", "dump", "save model"))


class Marks:
    """Phase marks ``<unix time> <phase>`` appended to a file; nested phases restore the outer one."""

    def __init__(self, fh: Any):
        self.fh = fh
        self.stack = ["other (imports, ensemble)"]
        self.mark()

    def mark(self) -> None:
        self.fh.write(f"{time.time():.4f} {self.stack[-1]}\n")

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.stack.append(name)
        self.mark()
        try:
            yield
        finally:
            self.stack.pop()
            self.mark()


def install_phase_hooks(marks: Marks) -> None:
    """Wrap every PHASES callable so that it marks its phase while it runs."""
    for owner, attr, name in PHASES:
        module, _, cls = owner.partition(":")
        target = importlib.import_module(module)
        target = getattr(target, cls) if cls else target
        setattr(target, attr, _marked(getattr(target, attr), name, marks))


def _marked(original: Callable[..., Any], name: str, marks: Marks) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with marks.phase(name):
            return original(*args, **kwargs)
    return wrapped


def child(work: Path, code: Path | None) -> None:
    """Run the train stage in ``work`` (its params.yaml and data/prepared), phases marked, result to JSON."""
    started = time.perf_counter()
    if code:
        sys.path.insert(0, str(code))
    os.chdir(work)
    with open(work / MARKS_FILE, "w", buffering=1, encoding="utf-8") as fh:
        marks = Marks(fh)
        install_phase_hooks(marks)
        # lazy: the pipeline must come from --code's checkout, which is on sys.path only from here on
        import pyarrow.parquet as pq

        import pipeline
        from pipeline.common import load_params
        from pipeline.stages import train
        from pipeline.training.model import vocabulary_size

        model = train.run(load_params(Path("params.yaml")), Path("data/prepared/train.parquet"),
                          Path("build-model/model.joblib"))
        marks.stack = ["exit"]
        marks.mark()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    (work / RESULT_FILE).write_text(json.dumps({
        "rows": pq.ParquetFile("data/prepared/train.parquet").metadata.num_rows,
        "vocabulary": vocabulary_size(model), "wall_s": round(time.perf_counter() - started, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "ru_maxrss_mb": round(usage.ru_maxrss * 1024 / MB, 1),
        "model_file": str(work / "build-model/model.joblib"), "code": str(Path(pipeline.__file__).parent)}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", type=Path, help="a scaled work dir (params.yaml, data/prepared)")
    ap.add_argument("--code", type=Path, default=None, help="a directory holding another `pipeline` package")
    args = ap.parse_args(argv)
    child(args.work, args.code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
