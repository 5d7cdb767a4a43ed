"""The strength of the avatar's facial grammar, measured on each clip by reading the drawn face back.

How much of a drawn expression a viewer sees depends on the clip: the size the face is drawn at,
how far the signer's own face moves (a landmark detector reads small movements more weakly than
large ones), how MediaPipe read the signer in the first place. One set of gains for every clip
over-does the mouth of one signer (read back at 2.1 times the original's movement) while damping
the brows of another (0.7). So, once per video, after the signer's neutral face is known:

1. some frames of the calibration window (spread evenly over it) are drawn and encoded as the
   output will show them;
2. MediaPipe Holistic reads each drawn frame back (the whole frame, single images), as the
   independent read-back does;
3. each facial-grammar series of the read-back (:mod:`signanon.landmarks.grammar`) is regressed
   on the same series of the signer's face in those frames: the slope is the share of the signer's
   movement a viewer reads on the avatar;
4. the series' gain is divided by the slope, aiming at ``aim_slope`` times the square root of
   the read-back's correlation with the signer (:func:`_aim`); repeated ``rounds`` times.
   The slope is not proportional to the gain (a drawn mouth reads some movement at any gain) and
   the series are not independent (a wider-open mouth reads wider), so one division does not land
   on the aim; each round measures where the last one landed (on the DGS clip, from gain 1, the
   mouth read back at 1.41, 1.06, then 1.02 of the signer's movement).

A series the signer hardly moves in the window, or whose read-back does not follow the signer
(r below ``min_r``), keeps its default gain: a slope fitted to noise would set it at random. Past
some strength a drawn face stops reading cleanly: when a gain raised over 20 % above the
best-reading one reads more than 0.1 lower in correlation, the series goes back to the gain whose
slope came closest to the aim. When a gain raised over 20 % does not raise the slope, something
else drives the series (the brow raise is measured down to the lid, which follows the eye gain:
on a signer who widens the eyes without moving the brows, the brow gain does nothing) and the
series goes back to the gain before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..landmarks import geometry, layout
from ..landmarks.grammar import FACE_SERIES
from .expression import FaceAnimator, FaceConfig

# facial-grammar series -> the FaceConfig gain that drives it
SERIES_GAINS = {
    "brow_raise": "brow_gain",
    "brow_furrow": "furrow_gain",
    "eye_openness": "eye_gain",
    "mouth_opening": "mouth_gain",
    "mouth_width": "mouth_width_gain",
}


@dataclass(frozen=True)
class FaceGainCalibration:
    """How the avatar's expression gains are measured on each clip (see the module doc).

    enabled:        True measures the gains; False (the default for now) keeps
                    :class:`~.expression.FaceConfig`'s. Kept off at first for privacy (the dark-
                    skin avatar animated by ASL HOUSE came within dlib's same-person distance of
                    a real face, 0.597). Re-measured (benchmarks/signing_issue11.txt, session 14;
                    8 looks x 6 clips, guard off): the fixed gains come that near a real person as
                    often (11 of 48 clip-look pairs with a frame under 0.6; calibrated 10), on the
                    talking heads' large faces; with the guard on, 0 frames re-identified on all
                    17 bench clips (nearest 0.613) and the same faces redrawn within 2. What keeps
                    it off now: one series more in the goal of 41 (within three reads' spread)
                    for 15% more time.
    frames:         frames of the calibration window drawn and read back per round.
    rounds:         draw-and-read rounds; each corrects the gains by the slope it measured.
    aim_slope:      read-back movement per unit of the signer's movement aimed at, for a
                    read-back that follows the signer exactly (see :func:`_aim`).
    gain_limits:    (low, high) bounds on every gain.
    min_series_std: a series whose std over the chosen frames is below this (inter-ocular
                    distances) keeps its gain.
    min_r:          a read-back correlating less than this with the signer keeps the default
                    gain: its slope is mostly the read-back's noise (at 0.5 the barely moving
                    mouth of ASL DIFFERENT measured a slope of 1.37, and the gain that followed,
                    0.6, drew no mouth movement at all).
    start:          the gain every measured series starts from. The smallest gain that reads
                    back at the aim is the one wanted: a drawn mouth's read-back saturates, so
                    started high (1.7) a wide mouth read at the aim while drawn far too wide.
    series:         the series whose gains are measured. Not the eyes by default: the eye gain
                    moves the upper lid, which the brow raise is measured down to, so setting it
                    alone trades one for the other (ASL DIFFERENT, whole clip: eyes read back
                    1.40 -> 0.93 of the signer's, brows 0.71 -> 0.53).
    """

    enabled: bool = False
    frames: int = 16
    rounds: int = 3
    aim_slope: float = 1.0
    gain_limits: tuple[float, float] = (0.6, 3.0)
    min_series_std: float = 0.006
    min_r: float = 0.7
    start: float = 1.0
    series: tuple[str, ...] = ("brow_raise", "brow_furrow", "mouth_opening", "mouth_width")


def _gains_of(config: FaceConfig) -> dict[str, float]:
    """Effective gain per series: the furrow's is brow_gain x furrow_gain (both act on it)."""
    gains = {series: float(getattr(config, name)) for series, name in SERIES_GAINS.items()}
    gains["brow_furrow"] *= config.brow_gain
    return gains


def _config_with(config: FaceConfig, gains: dict[str, float]) -> FaceConfig:
    """``config`` with the effective per-series ``gains`` (inverse of :func:`_gains_of`)."""
    values = {SERIES_GAINS[s]: g for s, g in gains.items()}
    values["furrow_gain"] = gains["brow_furrow"] / max(gains["brow_raise"], 1e-6)
    return replace(config, **values)


def calibrate_face_gains(
    face: FaceAnimator,
    frames: Sequence[tuple[np.ndarray, np.ndarray]],
    draw: Callable[[FaceAnimator, np.ndarray, np.ndarray], np.ndarray | None],
    read: Callable[[np.ndarray], np.ndarray | None],
    config: FaceGainCalibration = FaceGainCalibration(),
) -> tuple[FaceAnimator, dict]:
    """The face animator with this clip's gains, and the record of how they were found.

    face: a calibrated :class:`~.expression.FaceAnimator` (returned as is without a neutral face);
    frames: the calibration window, ``(data, confidence)`` float32 ``(586, 3)`` / ``(586,)``;
    draw: ``(face animator, data, confidence) -> RGB uint8 (H, W, 3)`` output frame, or None;
    read: ``frame -> (478, 2+) face mesh in its pixels``, or None when no face is read.
    Returns ``(animator, record)``: record ``{"gains": {series: gain}, "rounds": {series: [{"gain",
    "slope", "r"}, ...]}, "frames": n}`` (empty when nothing was measured).
    """
    if not config.enabled or face.neutral is None:
        return face, {}
    usable = [(d, c) for d, c in frames if geometry.face_present(c)]
    count = min(max(4, int(config.frames)), len(usable))
    if count < 4:
        return face, {}
    chosen = [usable[i] for i in np.unique(np.linspace(0, len(usable) - 1, count).round().astype(int))]
    signer = [_series(d[layout.FACE]) for d, _ in chosen]
    low, high = config.gain_limits
    defaults = {s: float(np.clip(g, low, high)) for s, g in _gains_of(face.config).items()}
    spread = {s: float(np.std([v[s] for v in signer])) for s in config.series}
    measured_series = [s for s in config.series if spread[s] >= config.min_series_std]
    gains = {s: (config.start if s in measured_series else g) for s, g in defaults.items()}
    rounds: dict[str, list[dict[str, float]]] = {}
    settled: set[str] = set()
    for _ in range(max(1, int(config.rounds))):
        face = face.with_config(_config_with(face.config, gains))
        seen = [_read(draw, read, face, d, c) for d, c in chosen]
        keep = [i for i, m in enumerate(seen) if m is not None]
        if len(keep) < 4:
            break
        back = [_series(seen[i]) for i in keep]
        for series in measured_series:
            x = np.array([signer[i][series] for i in keep])
            if series in settled:
                continue
            y = np.array([b[series] for b in back])
            slope = float(np.polyfit(x, y, 1)[0])
            r = float(np.corrcoef(x, y)[0, 1]) if y.std() > 0 else 0.0
            measured = rounds.setdefault(series, [])
            measured.append({"gain": round(gains[series], 3), "slope": round(slope, 3), "r": round(r, 3)})
            best = max(measured, key=lambda m: m["r"])
            if len(measured) > 1 and r < best["r"] - 0.1 and measured[-1]["gain"] > 1.2 * best["gain"]:
                # pushed too far: the face stops reading cleanly (a smaller rise, or a fall, and a
                # lower r is the read-back's noise on 16 frames)
                gains[series] = _closest_to_aim(measured, best["r"], config.aim_slope)
                settled.add(series)
                continue
            if len(measured) > 1 and _futile(measured[-2], measured[-1]):
                # a raised gain the read-back does not follow: something else drives this series
                # (the brow raise is measured to the lid, which the eye gain moves)
                gains[series] = measured[-2]["gain"]
                settled.add(series)
                continue
            if r < config.min_r or slope <= 0.05:
                # the read-back does not follow the signer: the slope says nothing, keep the default
                gains[series] = defaults[series] if len(measured) == 1 else measured[-2]["gain"]
                settled.add(series)
                continue
            gains[series] = float(np.clip(gains[series] * _aim(config, r) / slope, low, high))
    if not rounds:
        return face.with_config(_config_with(face.config, defaults)), {}
    face = face.with_config(_config_with(face.config, gains))
    record = {"gains": {s: round(g, 3) for s, g in gains.items()}, "rounds": rounds, "frames": len(chosen)}
    return face, record


def _series(face: np.ndarray) -> dict[str, float]:
    return {name: float(FACE_SERIES[name](face)) for name in SERIES_GAINS}


def _aim(config: FaceGainCalibration, r: float) -> float:
    """The slope aimed at for a read-back that correlates ``r`` with the signer: ``aim_slope``
    times sqrt(r). What a viewer's landmark detector reads of the drawn face is the signer's
    movement times the slope plus noise of its own, so at slope 1 the read-back moves 1/r times
    as much as the signer (1.27 at r 0.79, a talking face's mouth); at slope r it moves as much
    but carries only r of the signer's movement. sqrt(r) splits the difference: both slope and
    movement within 1/sqrt(r) of the signer's (0.89 and 1.13 at r 0.79)."""
    return config.aim_slope * float(np.sqrt(np.clip(r, config.min_r, 1.0)))


def _futile(before: dict[str, float], after: dict[str, float]) -> bool:
    """Whether a gain raised by over 20 % left the slope where it was or lower (a smaller rise, or
    a slope that moved a little, is within the read-back's noise on 16 frames)."""
    return after["gain"] > 1.2 * before["gain"] and after["slope"] <= before["slope"]


def _closest_to_aim(measured: list[dict[str, float]], best_r: float, aim: float) -> float:
    usable = [m for m in measured if m["r"] >= best_r - 0.05]
    return float(min(usable, key=lambda m: abs(np.log(max(m["slope"], 1e-3) / aim)))["gain"])


def _read(draw, read, face: FaceAnimator, data: np.ndarray, confidence: np.ndarray) -> np.ndarray | None:
    frame = draw(face, data, confidence)
    return None if frame is None else read(frame)


def tune_avatar_face(animator, frames, renderer, config: FaceGainCalibration = FaceGainCalibration()):
    """:func:`calibrate_face_gains` for a calibrated :class:`~.animator.AvatarAnimator`: its frames
    drawn by ``renderer`` (an :class:`~.renderer.AvatarRenderer` of the output's size and look),
    the whole frame encoded as the output will be (:func:`~signanon.video.writer.as_encoded`: on a
    192x144 clip the encoder halves what the mouth reads) and read back by MediaPipe Holistic on
    single images, as a viewer's detector reads the video. FaceMesh on the square around the face
    read ASL DIFFERENT's drawn brow raise at slope ~0.9 where Holistic on the whole frame reads ~0.6
    (Holistic crops the face from its pose), so the gains it chose stayed damped.
    Returns ``(animator, record)``; the animator's body half is untouched (each drawn frame uses a
    copy, so its size tracking does not see the calibration frames)."""
    import copy

    from ..landmarks.holistic import HolisticConfig, HolisticEstimator
    from ..video.writer import as_encoded
    from .animator import AvatarAnimator

    if not config.enabled or animator.face.neutral is None:
        return animator, {}

    sizes = []

    def draw(face: FaceAnimator, data: np.ndarray, confidence: np.ndarray) -> np.ndarray | None:
        pose = AvatarAnimator(copy.deepcopy(animator.retargeter), face)(data, confidence)
        if pose is None or pose.face is None:
            return None
        sizes.append(pose.face_scale)
        return as_encoded(renderer.render(pose))

    with HolisticEstimator(HolisticConfig(static_image_mode=True)) as holistic:

        def read(frame: np.ndarray) -> np.ndarray | None:
            data, confidence = holistic(frame)
            return data[layout.FACE] if geometry.face_present(confidence) else None

        face, record = calibrate_face_gains(animator.face, frames, draw, read, config)
    if record:
        record["face_px"] = round(float(np.median(sizes)), 1)
    return AvatarAnimator(animator.retargeter, face), record
