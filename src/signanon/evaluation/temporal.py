"""Temporal consistency: flow-warp error of the output, with the input's own as the floor.

For each pair of consecutive frames (t-1, t), optical flow is computed on the *input* video (OpenCV
DIS, :mod:`signanon.video.flow`), both ways. The previous frame is warped onto the current one with
the backward flow, and the error is the mean absolute difference between the warped and the actual
frame, over the pixels that are visible in both frames. Occluded pixels (and pixels that flow out of
the frame) are masked by the forward-backward consistency test of
:func:`~signanon.video.flow.occlusion_mask`: a pixel is kept when following the flow back and then
forth returns near to where it started (``|f + b|^2 <= 0.01 (|f|^2 + |b|^2) + 0.5``, in pixels).

The same warp (the input's motion) is applied to the anonymized frames: an output that flickers or
jitters where the input moves smoothly gets a higher error than the input itself. The input's error
is the floor (flow is never perfect; compression noise). Errors are in 8-bit intensity units
(0-255), averaged over the RGB channels.

Frames are compared at a working size whose longer side is at most ``max_side`` pixels (flow is
costly and the measure does not need full resolution); the anonymized video is resized to the
input's working size if the two differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import setting

DIS_PRESETS = ("ultrafast", "fast", "medium")  # the keys of signanon.video.flow.FLOW_PRESETS


@dataclass(frozen=True)
class TemporalConfig:
    """``preset``: DIS quality (ultrafast, fast, medium); ``max_side``: working size (px);
    ``every``: measure every n-th frame pair (1 = all)."""

    preset: str = setting("medium", "DIS optical-flow preset of the warp error", flag="flow", choices=DIS_PRESETS)
    max_side: int = 480
    every: int = 1

    def __post_init__(self) -> None:
        if self.preset not in DIS_PRESETS:
            raise ValueError(f"preset must be one of {DIS_PRESETS}, got {self.preset!r}")
        if self.max_side < 16 or self.every < 1:
            raise ValueError("max_side must be >= 16 and every >= 1")


def working_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(w, h) with the longer side at most ``max_side``, aspect kept."""
    scale = min(1.0, max_side / max(width, height))
    return max(8, int(round(width * scale))), max(8, int(round(height * scale)))


def _resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2  # lazy: OpenCV is large

    if (rgb.shape[1], rgb.shape[0]) == size:
        return rgb
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def warp_error(current: np.ndarray, warped: np.ndarray, mask: np.ndarray) -> float:
    """Mean |current - warped| over masked pixels and RGB channels, 0-255 units (NaN if empty)."""
    if not mask.any():
        return float("nan")
    diff = np.abs(current.astype(np.float32) - warped.astype(np.float32)).mean(axis=-1)
    return float(diff[mask].mean())


class WarpErrorMeter:
    """Feed frame pairs (input, anonymized) in order; get per-pair warp errors of both.

    Frames: RGB uint8 (H, W, 3), any size (resized to the working size of the first input frame).
    """

    def __init__(self, config: TemporalConfig = TemporalConfig()):
        self.config = config
        self._flow = None  # a signanon.video.flow.FlowEstimator, made on the first pair
        self._size: tuple[int, int] | None = None
        self._prev: tuple[np.ndarray, np.ndarray] | None = None
        self._index = 0
        self.frames: list[int] = []
        self.input_errors: list[float] = []
        self.output_errors: list[float] = []
        self.masked_share: list[float] = []

    def add(self, original: np.ndarray, anonymized: np.ndarray) -> None:
        from ..video.flow import FlowEstimator, warp

        if self._size is None:
            self._size = working_size(original.shape[1], original.shape[0], self.config.max_side)
        orig, anon = _resize(original, self._size), _resize(anonymized, self._size)
        index, self._index = self._index, self._index + 1
        prev, self._prev = self._prev, (orig, anon)
        if prev is None or index % self.config.every:
            return
        if self._flow is None:
            self._flow = FlowEstimator(self.config.preset)
        p_orig, p_anon = prev
        pair = self._flow.pair(p_orig, orig)  # backward flow t -> t-1 and occlusion on t's grid
        mask = pair.occlusion == 0
        self.frames.append(index)
        self.input_errors.append(warp_error(orig, warp(p_orig, pair.flow), mask))
        self.output_errors.append(warp_error(anon, warp(p_anon, pair.flow), mask))
        self.masked_share.append(float(1.0 - mask.mean()))

    def result(self) -> dict:
        """The ``temporal`` section of ``report.json`` (errors in 0-255 intensity units)."""
        out_err, in_err = np.asarray(self.output_errors), np.asarray(self.input_errors)

        def mean(values: np.ndarray) -> float | None:
            values = values[np.isfinite(values)]
            return float(values.mean()) if values.size else None

        warp, floor = mean(out_err), mean(in_err)
        return {
            "warp_error": warp,
            "warp_error_input": floor,
            "warp_error_ratio": warp / floor if warp is not None and floor else None,
            "warp_error_p95": float(np.nanpercentile(out_err, 95)) if np.isfinite(out_err).any() else None,
            "occluded_share": mean(np.asarray(self.masked_share)),
            "pairs": len(self.frames),
            "flow": f"OpenCV DIS {self.config.preset} on the input, {self._size[0]}x{self._size[1]}" if self._size else None,
            "per_frame": {"frame": list(self.frames), "output": self.output_errors, "input": self.input_errors},
        }
