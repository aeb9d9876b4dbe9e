"""The one terminal progress bar of the command line: downloads, hashing and workflow runs.

It shows the latest state it was given and never counts on seeing every update (ComfyUI throttles
its progress messages): a stage that ends is drawn complete. On a terminal it redraws one line at
most ten times a second; off a terminal it writes one line per finished stage, so that logs stay
short.
"""

from __future__ import annotations

import sys
import time

WIDTH = 30


def human_size(n: int | None) -> str:
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


class ProgressBar:
    """One stage at a time: ``update`` as work advances, ``stage`` to move on, ``finish`` at the end.

    ``unit`` is ``"steps"`` (value/total) or ``"bytes"`` (sizes and rate). ``quiet_below``: off a
    terminal, a finished stage whose total is below this is not written (small downloads).
    """

    def __init__(self, label: str = "", total: float | None = None, stream=None, unit: str = "steps", quiet_below=0):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.unit, self.quiet_below = unit, quiet_below
        self._begin(label, total)

    def _begin(self, label: str, total: float | None) -> None:
        self.label, self.total, self.done = label, total, 0
        self.started = self.drawn = time.monotonic()
        self.drawn_line = ""

    def update(self, done: float, total: float | None = None) -> None:
        self.done = done
        if total:
            self.total = total
        now = time.monotonic()
        if self.tty and now - self.drawn >= 0.1:
            self._draw(self._line(now))
            self.drawn = now

    def stage(self, label: str, total: float | None = None) -> None:
        """End the current stage (drawn complete if it had a total) and start the next one."""
        self._end(complete=True)
        self._begin(label, total)
        if self.tty:
            self._draw(self._line(time.monotonic()))

    def finish(self, failed: bool = False) -> None:
        self._end(complete=not failed, failed=failed)
        self.label = ""

    def _end(self, complete: bool, failed: bool = False) -> None:
        if not self.label:
            return
        if complete and self.total:
            self.done = self.total
        if self.tty:
            self.stream.write("\r\x1b[K")
        shown = self.unit == "steps" and self.total or self.unit == "bytes" and self._big_enough()
        if not failed and (self.tty and self.unit == "bytes" or shown):
            self.stream.write(self._final_line() + "\n")
        self.stream.flush()

    def _big_enough(self) -> bool:
        return self.total is None or self.total >= self.quiet_below

    def _draw(self, line: str) -> None:
        if line != self.drawn_line:
            self.stream.write("\r" + line + "\x1b[K")
            self.stream.flush()
            self.drawn_line = line

    def _bar(self) -> str:
        fraction = min(self.done / self.total, 1.0) if self.total else 0.0
        return "[" + ("#" * int(WIDTH * fraction)).ljust(WIDTH, ".") + "]"

    def _line(self, now: float) -> str:
        elapsed = now - self.started
        if self.unit == "bytes":
            rate = human_size(int(self.done / max(elapsed, 1e-6)))
            if self.total:
                percent = 100 * min(self.done / self.total, 1.0)
                return (
                    f"{self.label} {self._bar()} {percent:5.1f}% "
                    f"{human_size(self.done)}/{human_size(self.total)} {rate}/s"
                )
            return f"{self.label} {human_size(self.done)} {rate}/s"
        steps = f" {self._bar()} {int(self.done)}/{int(self.total)}" if self.total else ""
        return f"{self.label[:28]:<28}{steps}  {elapsed:5.1f}s"

    def _final_line(self) -> str:
        elapsed = time.monotonic() - self.started
        if self.unit == "bytes":
            return f"{self.label}: {human_size(self.done)} in {elapsed:.1f} s"
        return self._line(time.monotonic())
