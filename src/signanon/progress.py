"""One progress bar for every long job: frames done, frames/s and time left (tqdm)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass


@contextmanager
def progress_bar(total: int | None, *, enabled: bool = True, desc: str = "", unit: str = "frame") -> Iterator:
    """A tqdm bar on stderr showing ``frames/s`` and ETA, or a silent stand-in when disabled.

    The bar shows only when stderr is a terminal (logs of batch jobs stay clean), and is erased
    when the job fails, so that the error message is the one line left.
    """
    if not enabled:
        yield _Silent()
        return
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=True, disable=None)
    try:
        yield bar
    except BaseException:
        bar.leave = False
        raise
    finally:
        bar.close()
