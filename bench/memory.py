"""Resident-memory measuring for the CPU benches (on a GPU they read torch's own peak instead)."""

from __future__ import annotations

import ctypes
import gc
import threading
import time


def malloc_trim() -> None:
    """Give freed heap back to the OS (glibc), so RSS baselines are not inflated by old frees."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakRSS:
    """Peak resident memory of this process while the block runs, sampled in a thread.

    `start` is the RSS on entry (after malloc_trim), `peak` the highest seen, `above` their gap."""

    def __init__(self, interval: float = 0.005):
        import psutil

        self.process, self.interval = psutil.Process(), interval

    def __enter__(self):
        malloc_trim()
        self.start = self.peak = self.process.memory_info().rss
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def above(self) -> int:
        return self.peak - self.start
