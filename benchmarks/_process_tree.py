"""One poller for the RSS and CPU of a process and its descendants (every benchmark section uses it).

Summed RSS counts pages shared between processes once per process, so it is an upper bound of what
the tree holds; CPU per process is the largest user+system time seen for it while it lived.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Self

import psutil


class TreePoller:
    """Polls ``pid`` and its descendants every ``interval`` seconds until the ``with`` block ends."""

    def __init__(self, pid: int, interval: float = 0.1):
        self.psutil, self.root, self.interval = psutil, psutil.Process(pid), interval
        self.peak = 0  # bytes, summed over the tree
        self.cpu: dict[int, float] = {}  # pid -> user+system seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @property
    def processes(self) -> int:
        """How many distinct processes the tree had over the run."""
        return len(self.cpu)

    @property
    def cpu_s(self) -> float:
        return sum(self.cpu.values())

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def on_process(self, process: Any, rss: int, now: float) -> None:
        """Hook for subclasses: called for each live process at each poll."""

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.perf_counter()
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except self.psutil.Error:
                return
            total = 0
            for p in procs:
                try:
                    rss, times = p.memory_info().rss, p.cpu_times()
                except self.psutil.Error:
                    continue
                total += rss
                self.cpu[p.pid] = max(self.cpu.get(p.pid, 0.0), times.user + times.system)
                self.on_process(p, rss, now)
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)
