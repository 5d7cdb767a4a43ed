"""Black bars around the picture: a portrait phone video uploaded as 16:9 (bars left and right) or
a landscape video posted as 9:16 (bars above and below).

The signer is inside the picture, not the frame: a rule that keeps the avatar's hands in view must
keep them in the picture. :class:`BarFinder` is offered decoded frames and names the picture's box.
A bar is a run of rows (or columns) from the frame's edge that stays near black in every pixel of
every frame seen; bars count only in pairs, on two opposite sides and about as wide, as padding
makes them (a dark studio backdrop on one side is not a bar).
"""

from __future__ import annotations

import numpy as np

#: the brightest 8-bit value a bar's pixel may have (black after H.264: 0-20 measured)
DARK = 24
#: the narrowest bar, as a fraction of the frame's side
MIN_BAR = 0.02


class BarFinder:
    """Running brightest value of each row and column over the frames offered."""

    def __init__(self) -> None:
        self._rows: np.ndarray | None = None  # (H,) uint8
        self._cols: np.ndarray | None = None  # (W,) uint8

    def offer(self, frame: np.ndarray) -> None:
        """One decoded frame, ``(H, W, 3)`` uint8 RGB."""
        brightest = frame.max(axis=2)
        rows, cols = brightest.max(axis=1), brightest.max(axis=0)
        if self._rows is None:  # every frame of a video has the first one's size
            self._rows, self._cols = rows, cols
        else:
            np.maximum(self._rows, rows, out=self._rows)
            np.maximum(self._cols, cols, out=self._cols)

    def box(self) -> tuple[int, int, int, int] | None:
        """The picture ``(x0, y0, x1, y1)`` in frame pixels (x1, y1 exclusive), or None where no
        frame was offered or no pair of bars was found."""
        if self._rows is None:
            return None
        y0, y1 = _picture_span(self._rows)
        x0, x1 = _picture_span(self._cols)
        if (x0, y0, x1, y1) == (0, 0, self._cols.size, self._rows.size):
            return None
        return x0, y0, x1, y1


def _picture_span(brightest: np.ndarray) -> tuple[int, int]:
    """``(start, stop)`` of the picture along one axis, given each line's brightest value: the
    whole axis unless both ends have a dark run at least ``MIN_BAR`` of it and the two runs are
    within a tenth (and 4 px) of each other."""
    n = brightest.size
    dark = brightest <= DARK
    if dark.all():
        return 0, n
    lead = int(np.argmin(dark))  # dark lines from the start
    trail = int(np.argmin(dark[::-1]))  # ... from the end
    least = max(2, int(np.ceil(MIN_BAR * n)))
    if min(lead, trail) < least or abs(lead - trail) > 0.1 * max(lead, trail) + 4:
        return 0, n
    return lead, n - trail
