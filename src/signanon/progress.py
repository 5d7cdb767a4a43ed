"""Progress of long work: one callback type every front-end plugs into, and the tqdm bar of the CLI.

A pipeline reports :class:`Progress` records (stage, units done, total) to a
:data:`ProgressCallback`. The command line turns them into a tqdm bar (:func:`tqdm_callback`), batch
into a per-clip record, the web page into its progress bar: the pipeline never knows which.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Union


@dataclass(frozen=True)
class Progress:
    """One report: ``done`` of ``total`` units (frames, clips, steps) of ``stage`` after ``elapsed`` s.

    ``total`` is None when unknown. ``eta`` (seconds left) is None until something is done.
    """

    stage: str
    done: int
    total: int | None
    elapsed: float
    unit: str = "frame"

    @property
    def eta(self) -> float | None:
        if not self.total or self.done <= 0:
            return None
        return self.elapsed / self.done * max(0, self.total - self.done)

    @property
    def fraction(self) -> float | None:
        return None if not self.total else min(1.0, self.done / self.total)


ProgressCallback = Callable[[Progress], None]
#: What a pipeline accepts: a callback, True (a tqdm bar on stderr), or False/None (silent).
ProgressArg = Union[ProgressCallback, bool, None]


class _Reporter:
    """``update(n)`` counts units and calls the callback; ``set_postfix_str`` is kept for tqdm parity."""

    def __init__(self, callback: ProgressCallback | None, total: int | None, stage: str, unit: str):
        self._callback, self.total, self.stage, self.unit = callback, total, stage, unit
        self.done = 0
        self._start = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._callback is not None:
            self._callback(Progress(self.stage, self.done, self.total, time.perf_counter() - self._start, self.unit))

    def set_postfix_str(self, text: str) -> None:
        pass


@contextmanager
def progress_reporter(
    total: int | None, progress: ProgressArg, *, desc: str = "", unit: str = "frame"
) -> Iterator[_Reporter]:
    """A reporter whose ``update(n)`` drives ``progress``: a callback, True (tqdm bar) or False/None.

    Reports once at 0 so a front-end shows the stage before the first unit is done.
    """
    if progress is True:
        with tqdm_callback() as callback:
            reporter = _Reporter(callback, total, desc, unit)
            reporter.update(0)
            yield reporter
        return
    reporter = _Reporter(progress or None, total, desc, unit)
    reporter.update(0)
    yield reporter


@contextmanager
def tqdm_callback(enabled: bool = True) -> Iterator[ProgressCallback | None]:
    """A :data:`ProgressCallback` drawing a tqdm bar on stderr (one bar per stage, frames/s, ETA).

    The bar shows only when stderr is a terminal (logs of batch jobs stay clean) and is erased when
    the job fails, so the error message is the one line left. ``enabled=False`` yields None.
    """
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def callback(p: Progress) -> None:
        bar = bars.get(p.stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[p.stage] = tqdm(
                total=p.total, desc=p.stage, unit=p.unit, dynamic_ncols=True, leave=True, disable=None
            )
        if p.done > bar.n:
            bar.update(p.done - bar.n)

    try:
        yield callback
    except BaseException:
        for bar in bars.values():
            bar.leave = False
        raise
    finally:
        for bar in bars.values():
            bar.close()


@contextmanager
def progress_bar(total: int | None, *, enabled: bool = True, desc: str = "", unit: str = "frame") -> Iterator:
    """A tqdm bar on stderr (frames/s, ETA) for commands without a front-end callback, or a silent
    stand-in when disabled; erased when the job fails."""
    with progress_reporter(total, bool(enabled), desc=desc, unit=unit) as reporter:
        yield reporter
