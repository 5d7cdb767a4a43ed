"""Streaming clean-up of per-frame landmarks: short-gap interpolation and lag-free smoothing.

Input is what :class:`~signanon.landmarks.holistic.HolisticEstimator` yields, one frame at a time:
``(data, confidence)``, float32 ``(586, 3)`` and ``(586,)`` in the layout of :mod:`.layout`
(confidence 0 = missing). Output is one :class:`LandmarkFrame` per input frame, in order.

Two steps, per component (body, face, left hand, right hand, world body; each is one unit):

1. **Gap interpolation.** A component that is missing for at most ``max_gap`` frames between two
   frames where it is present is filled in linearly, point by point (a point must be present at
   both ends); above 30 fps, for as many seconds (:func:`~.rate.frames_at_rate`: 16 frames at 60
   fps). Longer gaps, and gaps at the start or end of the video, stay missing. To decide this the
   processor holds back at most that many frames + 1, never the whole video.
2. **One-Euro smoothing** (Casiez, Roussel & Vogel, CHI 2012), causal, per coordinate. The cutoff
   frequency adapts to the point's image-plane speed, so still points are smoothed hard (less
   jitter) while fast movements pass with well under a frame of lag. A point's filter restarts
   from its raw value whenever it reappears after being missing.

Units: the image components are in pixels (z scaled like x), the world body in metres. The speed
that drives the cutoff is the image speed in px/s: world point ``i`` uses the cutoff of image body
point ``i`` (the same landmark), so ``beta`` has one unit everywhere; but a face smaller than
:attr:`SmoothingConfig.face_ref_px` has its speed counted as if it were that big, so a small face's
brow raise is not smoothed away as jitter.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterable, Iterator, Mapping

import numpy as np

from ..errors import InputError
from . import geometry, layout, regions
from .frame import LandmarkFrame
from .rate import frames_at_rate

COMPONENT_NAMES: tuple[str, ...] = tuple(name for name, _ in layout.COMPONENTS)
_WORLD = "POSE_WORLD_LANDMARKS"
_BODY = "POSE_LANDMARKS"
_FACE = "FACE_LANDMARKS"
_FACE_SIZE = regions.EYE_OUTER  # (within the face) a face's size: its outer eye corners' distance
_MAX_SPEED_SCALE = 20.0  # a face seen edge-on (eyes nearly together) is not filtered as if infinitely fast
_SHORT_NAMES = MappingProxyType(
    {
        "POSE_LANDMARKS": "body",
        "FACE_LANDMARKS": "face",
        "LEFT_HAND_LANDMARKS": "left hand",
        "RIGHT_HAND_LANDMARKS": "right hand",
        "POSE_WORLD_LANDMARKS": "world body",
    }
)


@dataclass(frozen=True)
class SmoothingConfig:
    """Settings of :class:`LandmarkProcessor`.

    max_gap:    longest run of missing frames (per component) that is interpolated, at up to 30
                fps; above, as many seconds (:func:`~.rate.frames_at_rate`; before, a hand lost
                for 0.2 s was bridged at 30 fps and not at 60). 0 turns gap filling off. The
                processor's delay is at most ``gap_frames(fps) + 1`` frames.
    min_cutoff: One-Euro cutoff frequency in Hz for a still point (lower = smoother, more lag
                on slow drifts).
    beta:       cutoff increase in Hz per px/s of image speed, i.e. unit 1/px (higher = less lag
                on fast movements, more jitter while moving).
    d_cutoff:   cutoff in Hz of the low-pass filter applied to the speed estimate.
    enabled:    False skips smoothing (gap interpolation still runs).
    face_ref_px: a face whose outer eye corners are ``d`` px apart (3-D, z scaled like x), ``d``
                under this, has its points' speed counted ``face_ref_px / d`` times: its speed in
                face sizes, as a face this big moves. None: plain px/s.
    upright_body: a body that does not stand head up (:func:`~.geometry.upright_body_present`:
                the nose too low for its shoulders, or the shoulders' line too steep) is dropped as
                missing before the gaps are filled and the points smoothed: MediaPipe's reading of
                a hand at the frame's edge as a tiny body upside down or lying, which the gap
                filler and the filters would otherwise carry into the frames of the real body
                (``signanon pose --raw`` keeps it).

    Defaults, measured at 30 fps: a point moving at a constant 60 px/s trails by 0.48 frames in
    steady state (0.73 at worst, while the filter picks up the speed), at 300 px/s by 0.10 (0.25);
    the frame-to-frame jitter of a still point with 1 px Gaussian noise drops from 1.77 to
    0.57 px; an 8 px, 4-frame blink keeps 91 % of its depth (plain px/s: on a face at least
    ``face_ref_px`` wide).

    Why a face is measured by its own size: the cutoff rises with speed in px/s, and
    the same brow raise or blink on a small face moves only a pixel or two, slowly in px/s, so the
    filter took it for a still point's jitter and smoothed it away. Against the raw read, the
    brow raise of 320x240 ASL DIFFERENT (eyes 32 px apart) kept 0.82 of its movement (r 0.89) and
    its eye openness 0.86 (r 0.90), ASL HOUSE's (31 px) 0.70 and 0.68, while faces over 100 px
    apart kept 0.95-1.00 (r 0.97-0.99). Counted in face sizes from 100 px down, ASL DIFFERENT keeps
    0.94 and 0.98 (r 0.96, 0.97), ASL HOUSE 0.80 and 0.79; a face at least 100 px wide is smoothed
    as before (benchmarks/signing_issue11.txt, session 26). Hands are not: counting a hand's speed
    in its wrist-to-middle-knuckle lengths the same way brought small hands' finger angles nearer
    the raw read (1.1-1.7 -> 0.4-0.9 deg) and their frame-to-frame jitter near the raw read's, but
    the read-back of 33 small clips did not follow (finger angle 9.00 vs 9.06 deg, recall 0.926 both).
    """

    max_gap: int = 8
    min_cutoff: float = 1.0
    beta: float = 0.15
    d_cutoff: float = 2.0
    enabled: bool = True
    face_ref_px: float | None = 100.0
    upright_body: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.max_gap, int) or self.max_gap < 0:
            raise InputError(f"max_gap must be a whole number >= 0, got {self.max_gap!r}")
        for name in ("min_cutoff", "d_cutoff"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{name} must be a positive number of Hz, got {value!r}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise InputError(f"beta must be a number >= 0, got {self.beta!r}")
        if self.face_ref_px is not None and not (math.isfinite(self.face_ref_px) and self.face_ref_px > 0):
            raise InputError(f"face_ref_px must be a positive number of pixels or None, got {self.face_ref_px!r}")

    def gap_frames(self, fps: float) -> int:
        """The longest gap bridged at ``fps`` frames/s: ``max_gap`` at 30 fps and below, as many seconds above."""
        return frames_at_rate(self.max_gap, fps)


@dataclass(frozen=True)
class ComponentStats:
    """Frame counts of one component: ``present + interpolated + missing == frames``."""

    present: int = 0  # present in the raw estimate
    interpolated: int = 0  # filled in by gap interpolation
    missing: int = 0  # still missing after processing


@dataclass(frozen=True)
class LandmarkStats:
    """Per-component frame counts of one processed stream (what the CLI summary reports)."""

    frames: int = 0
    components: Mapping[str, ComponentStats] = field(
        default_factory=lambda: MappingProxyType({n: ComponentStats() for n in COMPONENT_NAMES})
    )

    @property
    def present(self) -> dict[str, int]:
        """``{component: frames present in the raw estimate}``."""
        return {name: s.present for name, s in self.components.items()}

    @property
    def interpolated(self) -> dict[str, int]:
        """``{component: frames filled in by gap interpolation}``."""
        return {name: s.interpolated for name, s in self.components.items()}

    @property
    def missing(self) -> dict[str, int]:
        """``{component: frames still missing after processing}``."""
        return {name: s.missing for name, s in self.components.items()}

    def describe(self) -> str:
        """One line, e.g. ``58 frames; found: body 58, face 58, left hand 0, right hand 20
        (+9 interpolated), world body 58``."""
        parts = []
        for name, s in self.components.items():
            extra = f" (+{s.interpolated} interpolated)" if s.interpolated else ""
            parts.append(f"{_SHORT_NAMES.get(name, name)} {s.present}{extra}")
        return f"{self.frames} frames; found: " + ", ".join(parts)

    def summary(self) -> str:
        """Multi-line human-readable table, one line per component."""
        lines = [f"{self.frames} frames"]
        for name, s in self.components.items():
            lines.append(
                f"  {name:<21} present {s.present:>6}  interpolated {s.interpolated:>5}"
                f"  missing {s.missing:>6}"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class ProcessedLandmarks:
    """A whole processed sequence (see :func:`process_arrays`).

    data: float32 ``(T, 586, 3)``; confidence: float32 ``(T, 586)``; interpolated: bool ``(T, 5)``
    in :data:`COMPONENT_NAMES` order; stats: the counts.
    """

    data: np.ndarray
    confidence: np.ndarray
    interpolated: np.ndarray
    stats: LandmarkStats


class OneEuroFilter:
    """Causal One-Euro filter over ``n`` points x 3 coordinates, one call per frame.

    The cutoff is per point: ``min_cutoff + beta * |v| * speed_scale`` where ``v`` is the
    low-passed (x, y) speed in units/s and ``speed_scale`` a factor given per call (1 unless the
    caller counts speed in other units), or a cutoff given by the caller. Points that are absent in a call lose
    their state and restart from their raw value when they come back.
    """

    def __init__(self, fps: float, min_cutoff: float, beta: float, d_cutoff: float):
        self._dt = 1.0 / fps
        self._min_cutoff = min_cutoff
        self._beta = beta
        self._d_alpha = self._alpha(np.float64(d_cutoff))
        self._valid: np.ndarray | None = None  # (n,) bool: points with state
        self._x_hat: np.ndarray | None = None  # (n, 3) filtered value
        self._x_raw: np.ndarray | None = None  # (n, 3) previous raw value
        self._dx_hat: np.ndarray | None = None  # (n, 2) filtered speed
        self.cutoff: np.ndarray | None = None  # (n,) Hz used in the last call; nan = no state

    def _alpha(self, cutoff: np.ndarray) -> np.ndarray:
        r = 2.0 * math.pi * cutoff * self._dt
        return r / (r + 1.0)

    def reset(self) -> None:
        """Forget every point (the next call returns its input unchanged)."""
        self._valid = None

    def __call__(
        self, x: np.ndarray, present: np.ndarray, cutoff: np.ndarray | None = None, speed_scale: float = 1.0
    ) -> np.ndarray:
        """Filter one frame.

        x: ``(n, 3)``; present: bool ``(n,)``; cutoff: optional ``(n,)`` Hz overriding the
        speed-derived one (nan entries fall back to ``min_cutoff``); speed_scale: factor on the
        speed that drives the cutoff (the filtered speed itself is kept in units/s). Returns
        float64 ``(n, 3)``; absent points are returned as given.
        """
        x = np.asarray(x, np.float64)
        n = x.shape[0]
        if self._valid is None or self._valid.shape[0] != n:
            self._valid = np.zeros(n, bool)
            self._x_hat = np.zeros((n, 3))
            self._x_raw = np.zeros((n, 3))
            self._dx_hat = np.zeros((n, 2))
        run = present & self._valid
        start = present & ~self._valid
        out = x.copy()
        self.cutoff = np.full(n, np.nan)
        if run.any():
            v = (x[run, :2] - self._x_raw[run, :2]) / self._dt
            self._dx_hat[run] += self._d_alpha * (v - self._dx_hat[run])
            if cutoff is None:
                fc = self._min_cutoff + self._beta * speed_scale * np.linalg.norm(self._dx_hat[run], axis=1)
            else:
                fc = np.where(np.isfinite(cutoff[run]), cutoff[run], self._min_cutoff)
            a = self._alpha(fc)[:, None]
            self._x_hat[run] += a * (x[run] - self._x_hat[run])
            out[run] = self._x_hat[run]
            self.cutoff[run] = fc
        if start.any():
            self._x_hat[start] = x[start]
            self._dx_hat[start] = 0.0
            self.cutoff[start] = self._min_cutoff
        self._x_raw[present] = x[present]
        self._valid = present.copy()
        return out


class _Pending:
    """A held-back frame (mutable while gaps before it may still be filled)."""

    __slots__ = ("index", "data", "confidence", "raw_present", "interpolated")

    def __init__(self, index: int, data: np.ndarray, confidence: np.ndarray):
        self.index = index
        self.data = data
        self.confidence = confidence
        self.raw_present = tuple(bool((confidence[s] > 0).any()) for _, s in layout.COMPONENTS)
        self.interpolated: set[str] = set()


class _GapFiller:
    """Holds frames back while any component has an open gap of at most ``max_gap`` frames (the
    count at the video's rate: :meth:`SmoothingConfig.gap_frames`)."""

    def __init__(self, max_gap: int):
        self._max_gap = max_gap
        self._pending: deque[_Pending] = deque()
        self._last: list[_Pending | None] = [None] * len(layout.COMPONENTS)  # last present frame
        self._gap_start: list[int | None] = [None] * len(layout.COMPONENTS)

    def push(self, frame: _Pending) -> list[_Pending]:
        """Add the next frame; return the frames that can no longer change, in order."""
        self._pending.append(frame)
        for c, (name, rows) in enumerate(layout.COMPONENTS):
            last, start = self._last[c], self._gap_start[c]
            if frame.raw_present[c]:
                if start is not None:
                    self._fill(name, rows, last, frame)
                self._last[c], self._gap_start[c] = frame, None
            elif last is not None:
                if start is None:
                    start = self._gap_start[c] = frame.index
                if frame.index - start + 1 > self._max_gap:  # too long: stays missing
                    self._last[c], self._gap_start[c] = None, None
        return self._release()

    def flush(self) -> list[_Pending]:
        """End of stream: every held frame, open gaps left missing."""
        out = list(self._pending)
        self._pending.clear()
        return out

    def _fill(self, name: str, rows: slice, before: _Pending, after: _Pending) -> None:
        span = after.index - before.index
        both = (before.confidence[rows] > 0) & (after.confidence[rows] > 0)
        if not both.any():
            return
        p0, p1 = before.data[rows][both], after.data[rows][both]
        conf = np.minimum(before.confidence[rows][both], after.confidence[rows][both])
        for held in self._pending:
            if before.index < held.index < after.index:
                t = (held.index - before.index) / span
                held.data[rows][both] = (1.0 - t) * p0 + t * p1
                held.confidence[rows][both] = conf
                held.interpolated.add(name)

    def _release(self) -> list[_Pending]:
        open_starts = [s for s in self._gap_start if s is not None]
        limit = min(open_starts) if open_starts else math.inf
        out = []
        while self._pending and self._pending[0].index < limit:
            out.append(self._pending.popleft())
        return out


class LandmarkProcessor:
    """Gap interpolation + One-Euro smoothing over a stream of frames (see module docstring).

    ``fps`` is the video's real frame rate; ``size``, the frame's ``(width, height)`` in pixels when
    known, is carried by every :class:`LandmarkFrame` it yields. :meth:`process` is a generator; :attr:`stats` counts
    the frames it has yielded so far (complete once the generator is exhausted). Calling
    :meth:`process` again starts a fresh stream.
    """

    def __init__(
        self, fps: float, config: SmoothingConfig = SmoothingConfig(), size: tuple[int, int] | None = None
    ):
        try:
            self.fps = float(fps)
        except (TypeError, ValueError):
            self.fps = math.nan
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise InputError(f"frame rate must be a positive number, got {fps!r}")
        self.config = config
        self.size = None if size is None else (int(size[0]), int(size[1]))  # (width, height) px
        self._counts = np.zeros((len(COMPONENT_NAMES), 3), np.int64)
        self._frames = 0
        self.bodies_not_upright = 0  # frames whose body was dropped as not a signer's (SmoothingConfig.upright_body)

    @property
    def stats(self) -> LandmarkStats:
        comps = {
            name: ComponentStats(*(int(v) for v in self._counts[c]))
            for c, name in enumerate(COMPONENT_NAMES)
        }
        return LandmarkStats(self._frames, MappingProxyType(comps))

    def process(self, frames: Iterable[tuple[np.ndarray, np.ndarray]]) -> Iterator[LandmarkFrame]:
        """Yield one :class:`LandmarkFrame` per ``(data, confidence)`` pair, in order."""
        self._counts[:] = 0
        self._frames = 0
        self.bodies_not_upright = 0
        filler = _GapFiller(self.config.gap_frames(self.fps))
        filters = {name: self._new_filter() for name in COMPONENT_NAMES}
        for index, (data, confidence) in enumerate(frames):
            data, confidence = _checked(data, confidence)
            if self.config.upright_body and geometry.body_present(confidence) and not geometry.upright_body_present(confidence, data):
                confidence[layout.BODY] = confidence[layout.BODY_WORLD] = 0.0  # not a signer's body
                data[layout.BODY] = data[layout.BODY_WORLD] = 0.0
                self.bodies_not_upright += 1
            for held in filler.push(_Pending(index, data, confidence)):
                yield self._finish(held, filters)
        for held in filler.flush():
            yield self._finish(held, filters)

    def _new_filter(self) -> OneEuroFilter:
        c = self.config
        return OneEuroFilter(self.fps, c.min_cutoff, c.beta, c.d_cutoff)

    def _finish(self, held: _Pending, filters: dict[str, OneEuroFilter]) -> LandmarkFrame:
        # copies: held.data stays raw, it may still be an endpoint of a later interpolation
        data, conf = held.data.copy(), held.confidence.copy()
        for c, (name, rows) in enumerate(layout.COMPONENTS):
            present = conf[rows] > 0
            if self.config.enabled:
                cutoff = filters[_BODY].cutoff if name == _WORLD else None
                if cutoff is not None and cutoff.shape[0] != present.shape[0]:
                    cutoff = None
                data[rows] = filters[name](data[rows], present, cutoff, self._speed_scale(name, data[rows], present))
            data[rows][~present] = 0.0
            column = 0 if held.raw_present[c] else (1 if name in held.interpolated else 2)
            self._counts[c, column] += 1
        self._frames += 1
        return LandmarkFrame(held.index, data, conf, frozenset(held.interpolated), self.size)

    def _speed_scale(self, name: str, points: np.ndarray, present: np.ndarray) -> float:
        """The factor on component ``name``'s speed (px/s) that counts a face in sizes of a face
        ``face_ref_px`` big (``points`` ``(n, 3)`` px, this frame's raw values; size: the outer
        eye corners' 3-D distance): 1 for the other components, a face at least that big, or one
        whose eye corners are missing; at most :data:`_MAX_SPEED_SCALE`."""
        ref = self.config.face_ref_px
        if name != _FACE or ref is None or not present[list(_FACE_SIZE)].all():
            return 1.0
        size = float(np.linalg.norm(points[_FACE_SIZE[0]] - points[_FACE_SIZE[1]]))
        return float(np.clip(ref / max(size, 1e-6), 1.0, _MAX_SPEED_SCALE))


def process_arrays(
    data: np.ndarray, confidence: np.ndarray, fps: float, config: SmoothingConfig = SmoothingConfig()
) -> ProcessedLandmarks:
    """Process a whole sequence held in memory: data ``(T, 586, 3)``, confidence ``(T, 586)``."""
    processor = LandmarkProcessor(fps, config)
    out = list(processor.process(zip(data, confidence)))
    n = len(COMPONENT_NAMES)
    if not out:
        empty = np.zeros((0, n), bool)
        return ProcessedLandmarks(
            np.zeros((0, layout.NUM_POINTS, 3), np.float32),
            np.zeros((0, layout.NUM_POINTS), np.float32),
            empty,
            processor.stats,
        )
    interpolated = np.array([[name in f.interpolated for name in COMPONENT_NAMES] for f in out])
    return ProcessedLandmarks(
        np.stack([f.data for f in out]),
        np.stack([f.confidence for f in out]),
        interpolated.reshape(len(out), n),
        processor.stats,
    )


def _checked(data: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated float32 copies; non-finite coordinates count as missing points."""
    data = np.array(data, np.float32)
    confidence = np.array(confidence, np.float32)
    if data.shape != (layout.NUM_POINTS, 3) or confidence.shape != (layout.NUM_POINTS,):
        raise ValueError(
            f"expected data (586, 3) and confidence (586,), got {data.shape} and {confidence.shape}"
        )
    bad = ~np.isfinite(data).all(axis=1) | ~np.isfinite(confidence)
    confidence[bad] = 0.0
    confidence = np.clip(confidence, 0.0, 1.0)
    data[confidence == 0] = 0.0
    return data, confidence
