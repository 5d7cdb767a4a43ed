"""How strongly the avatar draws this signer's brow furrow: chosen once per video, by reading the
avatar's own drawing back.

A furrow (the inner brows drawn together, the WH-question marker) is drawn as the signer's
sideways brow movement times ``brow_gain x furrow_gain`` (:class:`~.expression.FaceConfig`),
because MediaPipe, reading a drawn face, moves its inner brow points much less than the drawing
does. How much less depends on the face: read back whole, talking_woman's furrow came out at 1.03
of the signer's (r 0.85) with the shipped gains and 1.12 (r 0.85) with the furrow drawn twice as
far, while expressive_man's read 0.77 (r 0.55) and 1.23 (r 0.71), the same man rotated 6 degrees
0.80 (r 0.47) and 1.03 (r 0.65); and on the NGT clip, whose furrow hardly moves, the doubled
furrow read as 2.3 times the signer's and, through the read-back's mesh, raised its mouth width's
gain from 1.2-1.27 to 1.40-1.43 (benchmarks/signing_issue11.txt, session 36). One gain does not
suit every face; so, once per video, after the look, hand and mouth choices:

1. up to ``probe_frames`` of the signer's frames with a face (spread over the clip) are animated
   with the configured furrow gain and drawn as the output will be (the look chosen, at the
   output's size, encoded);
2. a still-image MediaPipe Holistic reads each back, and the read furrow is compared with the
   signer's own (gain = ratio of the standard deviations, r = their correlation);
3. the configured gain is kept where it reads within ``settle`` and follows the signer (r at
   least ``min_r``); otherwise each candidate gain is drawn and read the same way, and the one
   reading nearest 1 among those that follow the signer is taken where the configured gain does
   not follow (within ``accept``), or where it reads nearer 1 by more than ``margin``.

A signer whose furrow hardly moves in the probe frames (std under ``min_series_std``) keeps the
configured gain without anything drawn: there is nothing to read (the NGT clip: 0.004).

The eyes' opening and closing (blinks, squints, wide eyes) is chosen the same way and from the
same probe frames (:class:`EyeChoiceConfig`, :func:`choose_brows_and_eyes`): one drawing at the
configured gains is read for both series, and only a series that reads badly draws its candidates.
How much of a drawn lid MediaPipe reads differs by signer as the furrow does: ASL DIFFERENT's
eyes, at the configured eye gain 1.15, read back at 1.20-1.42 of hers on most of its framings,
the webcam signer's softened copies at 0.64-0.69 (benchmarks/signing_issue11.txt, session 51).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..config import setting
from ..landmarks.grammar import brow_furrow, eye_openness
from .animator import AvatarAnimator
from .mouth_choice import gain_r, off, probe_faces, read_drawn, settled
from .skeleton import AvatarPose


@dataclass(frozen=True)
class SeriesChoiceConfig:
    """How a per-signer gain is chosen for one facial-grammar series (the furrow's, the eyes'):
    the fields both choices share; :class:`FurrowChoiceConfig` and :class:`EyeChoiceConfig` set
    their own candidates and margin.

    gains: the candidate gains, tried after the configured one. probe_frames: at most this many
    frames are drawn per gain. min_series_std: the signer's series must move at least this much
    over the probe frames (inter-ocular distances) for a choice. min_r: a gain whose read
    correlates less than this with the signer does not follow the signer. settle: (low, high)
    gains within which the configured gain is kept without drawing the others. accept: where the
    configured gain does not follow the signer, a candidate that does is taken if its gain reads
    within 1/accept..accept (the goal's band). margin: where the configured gain follows the
    signer, a candidate must read nearer 1 by more than this (log of the ratio).
    """

    enabled: bool = True
    gains: tuple[float, ...] = ()
    probe_frames: int = 40
    min_series_std: float = 0.006
    min_r: float = 0.7
    settle: tuple[float, float] = (0.8, 1.25)
    accept: float = 1.4
    margin: float = 0.14

    def __post_init__(self) -> None:
        if not self.gains or not all(float(g) > 0.0 for g in self.gains):
            raise ValueError(f"gains must be one or more values > 0, got {self.gains!r}")
        if not self.settle[0] <= 1.0 <= self.settle[1]:
            raise ValueError(f"settle must be (low, high) with low <= 1 <= high, got {self.settle!r}")
        if self.accept < 1.0:
            raise ValueError(f"accept must be at least 1, got {self.accept!r}")


@dataclass(frozen=True)
class FurrowChoiceConfig(SeriesChoiceConfig):
    """Settings of the per-signer furrow gain choice (see the module doc and
    :class:`SeriesChoiceConfig`).

    gains: the candidate furrow gains (:attr:`~.expression.FaceConfig.furrow_gain`): doubled, the
    probe read expressive_man's furrow at 1.17-1.27 of the signer's (r 0.73-0.77) where the
    configured gain read 0.80-0.96 (r 0.44-0.52). accept: talking_woman darkened read 1.31 at r
    0.68 configured and 1.39 at r 0.70 doubled, and 0.84/1.14 and 0.83/1.23 whole: either is in
    the goal. margin: the probe strays from the read-back by 0.1-0.15.
    """

    enabled: bool = setting(
        True, "choose per signer how strongly the avatar draws the brow furrow, by reading the avatar's "
        "own drawing back", flag="furrow-choice",
    )  # fmt: skip
    gains: tuple[float, ...] = (3.2,)


@dataclass(frozen=True)
class EyeChoiceConfig(SeriesChoiceConfig):
    """Settings of the per-signer eye gain choice (:attr:`~.expression.FaceConfig.eye_gain`; see
    the module doc and :class:`SeriesChoiceConfig`).

    gains: one on each side of the configured 1.15: in the probe ASL DIFFERENT's eyes read 1.41 of
    hers at 1.15 and 1.03 at 0.9; the webcam signer's softened copy 0.75 at 1.15 and 1.18 at 1.5
    (whole clips read back 1.24 -> 1.02 and 0.66 -> 1.22). margin: smaller than the furrow's. It
    only acts where the configured gain reads outside ``settle``, and there the furrow's 0.14 kept
    two copies out of the goal whose candidate read nearer 1 by 0.08-0.11 in the probe (the webcam
    copy above; ASL DIFFERENT widened at a low bitrate, 1.52 -> 1.40, read back 1.42 -> 1.25). The
    probe strays from the read-back by 0.02-0.17 on the eyes. The brow raise is measured down to
    the upper lid, so the eyes' gain moves it a little too, in the same direction as the eyes'
    correction (the webcam copy 0.89 -> 1.04, ASL DIFFERENT 0.97 -> 0.85).
    """

    enabled: bool = setting(
        True, "choose per signer how far the avatar's eyes open and close, by reading the avatar's own "
        "drawing back", flag="eye-choice",
    )  # fmt: skip
    gains: tuple[float, ...] = (0.9, 1.5)
    margin: float = 0.05


# the series each choice reads and the FaceConfig gain it sets
_SERIES = (("furrow_gain", brow_furrow), ("eye_gain", eye_openness))


def with_gain(animator: AvatarAnimator, name: str, gain: float) -> AvatarAnimator:
    """``animator`` (its calibrated signer and body) drawing with FaceConfig's ``name`` at ``gain``."""
    face = animator.face
    return AvatarAnimator(animator.retargeter, face.with_config(replace(face.config, **{name: float(gain)})))


def with_furrow_gain(animator: AvatarAnimator, gain: float) -> AvatarAnimator:
    """``animator`` (its calibrated signer and body) drawing the furrow at ``gain``."""
    return with_gain(animator, "furrow_gain", gain)


def choose_furrow(
    animator: AvatarAnimator,
    bodies: Sequence[tuple[np.ndarray, np.ndarray]],
    draw: Callable[[AvatarPose], np.ndarray],
    config: FurrowChoiceConfig = FurrowChoiceConfig(),
    holistic_factory: Callable[[], object] | None = None,
) -> tuple[AvatarAnimator, dict]:
    """``animator`` with the furrow gain this signer's furrow reads best at (see the module doc),
    and the record of the choice (:func:`choose_brows_and_eyes` with the eyes' choice off)."""
    animator, records = choose_brows_and_eyes(
        animator, bodies, draw, config, EyeChoiceConfig(enabled=False), holistic_factory
    )  # fmt: skip
    return animator, records["furrow_gain"]


def choose_brows_and_eyes(
    animator: AvatarAnimator,
    bodies: Sequence[tuple[np.ndarray, np.ndarray]],
    draw: Callable[[AvatarPose], np.ndarray],
    furrow: FurrowChoiceConfig = FurrowChoiceConfig(),
    eyes: EyeChoiceConfig = EyeChoiceConfig(),
    holistic_factory: Callable[[], object] | None = None,
) -> tuple[AvatarAnimator, dict[str, dict]]:
    """``animator`` with the furrow and eye gains this signer reads best at (see the module doc),
    and the record of each choice, ``{"furrow_gain": record, "eye_gain": record}``, a record being
    ``{"own", "chosen", "probe_frames", "signer_std", "read": {gain: [gain read, r]}}`` (``read``
    only where something was drawn; ``{}`` for a choice that is off).

    One drawing of the probe frames at the configured gains is read for both series; a series
    that reads badly there has its candidates drawn, and each drawing is read for both series.
    The eyes are judged on the drawing with the furrow chosen: their configured gain's read is
    taken from the furrow candidate's drawing where that was chosen, and their candidates are
    drawn with it.

    bodies: raw MediaPipe Holistic frames with a body, spread over the video where there are;
    draw(pose): the frame of a pose as the output will be (RGB uint8, encoded); holistic_factory:
    a fresh still-image MediaPipe Holistic (a context manager whose call returns ``(data,
    confidence)``)."""
    configs = {"furrow_gain": furrow, "eye_gain": eyes}
    records: dict[str, dict] = {name: {} for name in configs}
    series = [(name, measure, configs[name]) for name, measure in _SERIES if configs[name].enabled]
    if not series:
        return animator, records
    limit = max(config.probe_frames for _, _, config in series)

    def measures(face: np.ndarray) -> np.ndarray:
        return np.array([measure(face) for _, measure, _ in series])

    faces = probe_faces(animator, bodies, limit, measures)
    signer = np.array([m for _, m in faces], np.float64).reshape(len(faces), len(series))
    moving = []
    for k, (name, _, config) in enumerate(series):
        own = float(getattr(animator.face.config, name))
        spread = float(signer[:, k].std()) if len(faces) else 0.0
        records[name] = {"own": own, "chosen": own, "probe_frames": len(faces), "signer_std": round(spread, 4)}
        if len(faces) >= 4 and spread >= config.min_series_std:  # else nothing to read: the configured gain
            moving.append(k)
    if not moving:
        return animator, records
    if holistic_factory is None:
        from ..landmarks.holistic import HolisticConfig, HolisticEstimator

        def holistic_factory():
            return HolisticEstimator(HolisticConfig(static_image_mode=True))

    def read_all(poses: list[AvatarPose]) -> np.ndarray:
        """(len(poses), len(series)) of every series read on the drawn poses (NaN: no face)."""
        values = read_drawn(poses, draw, holistic, measures)
        return values.reshape(len(poses), len(series)) if values.ndim == 2 else np.full((len(poses), len(series)), np.nan)

    with holistic_factory() as holistic:
        # every series read on the drawing at the gains chosen so far: a later series starts from
        # the drawing an earlier choice took (the furrow's candidate moves the lids a little too)
        current = read_all([p for p, _ in faces])
        for k in moving:
            name, _, config = series[k]
            own = records[name]["own"]
            drawings, mine = {own: current}, gain_r(signer[:, k], current[:, k])
            if not settled(mine, config):  # else it reads well as it is: the others are not drawn
                for gain in _towards_one(mine, own, config):
                    # the same frames, animated at this gain (the signer's series do not depend on it)
                    poses = [p for p, _ in probe_faces(with_gain(animator, name, gain), bodies, limit, measures)]
                    drawings[gain] = read_all(poses)
            read = {g: gain_r(signer[:, k], values[:, k]) for g, values in drawings.items()}
            records[name]["read"] = {f"{g:g}": (None if v is None else [round(v[0], 2), round(v[1], 2)]) for g, v in read.items()}
            records[name]["chosen"] = chosen = pick_gain(read, own, config)
            if chosen != own:
                animator, current = with_gain(animator, name, chosen), drawings[chosen]
    return animator, records


def _towards_one(read: tuple[float, float] | None, own: float, config: SeriesChoiceConfig) -> list[float]:
    """The candidate gains worth drawing after ``own`` read as ``read``: where it follows the
    signer, only those on the side that moves the read towards 1 (a damped series is not drawn
    weaker); else all of them."""
    others = [float(g) for g in config.gains if not np.isclose(g, own)]
    if read is None or read[1] < config.min_r:
        return others
    return [g for g in others if (g > own) == (read[0] < 1.0)]


def pick_gain(
    read: dict[float, tuple[float, float] | None], own: float, config: SeriesChoiceConfig = FurrowChoiceConfig()
) -> float:
    """Of the gains read for one series (``{gain: (gain read, r)}``: the furrow's or the eyes', None
    where too few frames were read),
    the one whose read is nearest 1 (as a ratio) among those correlating at least ``min_r``: taken
    where ``own`` does not follow the signer (r under ``min_r``, or too few frames) and it reads
    within ``accept``, or where ``own`` follows but it reads nearer 1 by more than ``margin``; else
    ``own``."""
    mine = read.get(own)
    if settled(mine, config):
        return own
    usable = {g: v for g, v in read.items() if g != own and v is not None and v[1] >= config.min_r}
    if not usable:
        return own
    best = min(usable, key=lambda g: off(usable[g][0]))
    if mine is None or mine[1] < config.min_r:
        return best if off(usable[best][0]) <= float(np.log(config.accept)) else own
    return best if off(usable[best][0]) < off(mine[0]) - config.margin else own
