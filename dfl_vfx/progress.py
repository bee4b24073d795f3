"""Progress for long work: a tqdm bar on a terminal, plain log lines every N items in a redirected log.

Farm logs and ``make demo > log`` must not fill with carriage returns, so a bar is drawn only when stderr is a
terminal. Elsewhere :class:`LineProgress` logs ``desc: 12/48 frames (25%), 3.1 frames/s, 12 s left`` every
``every`` items (default: a tenth of the total), at most one line per ``min_interval`` seconds (default 1 s, so a
short job is not one line per item), and once at the end. ``enabled=False`` shows nothing.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from tqdm import tqdm

log = logging.getLogger("dfl_vfx.progress")


def _plural(unit: str, n: float) -> str:
    return unit if n == 1 or unit.endswith("s") else unit + "s"


class LineProgress:
    """The parts of tqdm's interface we use, reported as a log line every ``every`` items."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "",
                 unit: str = "it", initial: int = 0, every: int | None = None, quiet: bool = False,
                 min_interval: float = 1.0) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = initial
        self._start_n = initial
        self.every = max(1, every if every else (math.ceil(total / 10) if total else 100))
        self.quiet = quiet
        self.min_interval = min_interval
        self.postfix = ""
        self._start = time.monotonic()
        self._last_reported = initial
        self._last_time = self._start
        self._closed = False

    def __iter__(self) -> Iterator:
        assert self.iterable is not None
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def line(self) -> str:
        done = self.n
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = (done - self._start_n) / elapsed
        text = f"{self.desc}: {done}"
        if self.total:
            text += f"/{self.total} {_plural(self.unit, self.total)} ({100 * done / self.total:.0f}%)"
        else:
            text += f" {_plural(self.unit, done)}"
        text += f", {rate:.2f} {_plural(self.unit, 2)}/s"
        if self.total and rate > 0 and done < self.total:
            text += f", {(self.total - done) / rate:.0f} s left"
        if self.postfix:
            text += f", {self.postfix}"
        return text

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.quiet or self.n - self._last_reported < self.every:
            return
        now = time.monotonic()
        if now - self._last_time >= self.min_interval:
            self._last_reported, self._last_time = self.n, now
            log.info("%s", self.line())

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs: Any) -> None:
        items = dict(ordered_dict or {}) | kwargs
        self.postfix = " ".join(f"{k} {v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self.quiet and self.n != self._last_reported:
            log.info("%s", self.line())


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
                 enabled: bool | None = None, initial: int = 0, every: int | None = None,
                 min_interval: float = 1.0, stream: TextIO | None = None) -> Any:
    """A progress reporter with tqdm's interface (iterate, ``update``, ``set_postfix``, ``close``).

    ``enabled``: None or True report progress (a bar on a terminal, log lines elsewhere); False reports nothing.
    """
    stream = stream if stream is not None else sys.stderr
    is_terminal = bool(getattr(stream, "isatty", lambda: False)())
    if enabled is not False and is_terminal:
        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, file=stream)
    return LineProgress(iterable, total=total, desc=desc, unit=unit, initial=initial, every=every,
                        quiet=enabled is False, min_interval=min_interval)
