"""Windows and per-frame smoothing weights counted in frames, kept as long in seconds at high rates.

Several settings count frames: the gap filler's longest bridged gap, the avatar's size-tracking
median and its per-frame smoothing weight, the calibration window, the seam between parallel
chunks. Their defaults were measured on 25-30 fps video. A phone filming at 50 or 60 fps shows
the same signing in twice as many frames, so a window counted in frames covers half the time: a
hand lost for 0.2 s is bridged at 30 fps and not at 60, and a running median of 9 frames no
longer outvotes a hand passing over the face for 0.15 s.

The rule here: a count tuned at :data:`TUNED_FPS` (30) frames/s is used as it is at that rate and
below (so 25-30 fps video is processed exactly as before), and covers the same seconds above it.
"""

from __future__ import annotations

import math

TUNED_FPS = 30.0  # the frame rate the frame-counted defaults were measured at


def frames_at_rate(frames: int, fps: float) -> int:
    """``frames`` (a count tuned at 30 fps) at ``fps`` frames/s: ``frames`` at 30 fps and below,
    ``round(frames * fps / 30)`` above (90 -> 150 at 50 fps, 180 at 59.94; 0 stays 0)."""
    fps = float(fps)
    if not fps > TUNED_FPS:  # also a rate that is not a number: the tuned count
        return int(frames)
    return int(round(frames * fps / TUNED_FPS))


def weight_at_rate(weight: float, fps: float) -> float:
    """A per-frame smoothing weight in [0, 1] (``state += weight * (target - state)``) tuned at
    30 fps, at ``fps`` frames/s: ``weight`` at 30 fps and below; above, the weight whose
    ``fps / 30`` steps close as much of a gap as one step at 30 fps: ``1 - (1 - weight) ** (30 / fps)``
    (0.25 -> 0.134 at 60 fps)."""
    fps = float(fps)
    if not fps > TUNED_FPS or not 0.0 < weight < 1.0:
        return float(weight)
    return float(1.0 - math.exp(math.log1p(-weight) * TUNED_FPS / fps))
