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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..config import setting
from ..landmarks.grammar import brow_furrow
from .animator import AvatarAnimator
from .mouth_choice import gain_r, off, probe_faces, read_drawn, settled
from .skeleton import AvatarPose


@dataclass(frozen=True)
class FurrowChoiceConfig:
    """Settings of the per-signer furrow gain choice (see the module doc).

    gains: the candidate furrow gains (:attr:`~.expression.FaceConfig.furrow_gain`), tried after
    the configured one: doubled, the probe read expressive_man's furrow at 1.17-1.27 of the
    signer's (r 0.73-0.77) where the configured gain read 0.80-0.96 (r 0.44-0.52).
    probe_frames: at most this many frames are drawn per gain. min_series_std: the signer's furrow
    must move at least this much over the probe frames (inter-ocular distances) for a choice.
    min_r: a gain whose read correlates less than this with the signer does not follow the signer.
    settle: (low, high) gains within which the configured gain is kept without drawing the others.
    accept: where the configured gain does not follow the signer, a candidate that does is taken
    if its gain reads within 1/accept..accept (the goal's band; talking_woman darkened read 1.31
    at r 0.68 configured and 1.39 at r 0.70 doubled, and 0.84/1.14 and 0.83/1.23 whole: either is
    in the goal). margin: where the configured gain follows the signer, a candidate must read
    nearer 1 by more than this (log of the ratio; the probe strays from the read-back by 0.1-0.15).
    """

    enabled: bool = setting(
        True, "choose per signer how strongly the avatar draws the brow furrow, by reading the avatar's "
        "own drawing back", flag="furrow-choice",
    )  # fmt: skip
    gains: tuple[float, ...] = (3.2,)
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


def with_furrow_gain(animator: AvatarAnimator, gain: float) -> AvatarAnimator:
    """``animator`` (its calibrated signer and body) drawing the furrow at ``gain``."""
    face = animator.face
    return AvatarAnimator(animator.retargeter, face.with_config(replace(face.config, furrow_gain=float(gain))))


def choose_furrow(
    animator: AvatarAnimator,
    bodies: Sequence[tuple[np.ndarray, np.ndarray]],
    draw: Callable[[AvatarPose], np.ndarray],
    config: FurrowChoiceConfig = FurrowChoiceConfig(),
    holistic_factory: Callable[[], object] | None = None,
) -> tuple[AvatarAnimator, dict]:
    """``animator`` with the furrow gain this signer's furrow reads best at (see the module doc),
    and the record of the choice: ``{"own", "chosen", "probe_frames", "signer_std", "read": {gain:
    [gain read, r]}}`` (``read`` only where something was drawn).

    bodies: raw MediaPipe Holistic frames with a body, spread over the video where there are;
    draw(pose): the frame of a pose as the output will be (RGB uint8, encoded); holistic_factory:
    a fresh still-image MediaPipe Holistic (a context manager whose call returns ``(data,
    confidence)``)."""
    own = float(animator.face.config.furrow_gain)
    if not config.enabled:
        return animator, {}
    faces = probe_faces(animator, bodies, config.probe_frames, brow_furrow)
    signer = np.array([m for _, m in faces], np.float64)
    spread = float(signer.std()) if len(signer) else 0.0
    record: dict = {"own": own, "chosen": own, "probe_frames": len(faces), "signer_std": round(spread, 4)}
    if len(faces) < 4 or spread < config.min_series_std:  # nothing to read: the configured gain
        return animator, record
    if holistic_factory is None:
        from ..landmarks.holistic import HolisticConfig, HolisticEstimator

        def holistic_factory():
            return HolisticEstimator(HolisticConfig(static_image_mode=True))

    read: dict[float, tuple[float, float] | None] = {}
    with holistic_factory() as holistic:
        for gain in [own] + [float(g) for g in config.gains if not np.isclose(g, own)]:
            # the same frames, animated at this gain (the signer's series does not depend on it)
            drawn = faces if gain == own else probe_faces(with_furrow_gain(animator, gain), bodies, config.probe_frames, brow_furrow)
            poses = [p for p, _ in drawn]
            read[gain] = gain_r(signer, read_drawn(poses, draw, holistic, brow_furrow))
            if gain == own and settled(read[own], config):
                break  # reads well as it is: the others are not drawn
    record["read"] = {f"{g:g}": (None if v is None else [round(v[0], 2), round(v[1], 2)]) for g, v in read.items()}
    record["chosen"] = pick_furrow(read, own, config)
    return (animator if record["chosen"] == own else with_furrow_gain(animator, record["chosen"])), record


def pick_furrow(read: dict[float, tuple[float, float] | None], own: float, config: FurrowChoiceConfig = FurrowChoiceConfig()) -> float:
    """Of the gains read (``{furrow gain: (gain read, r)}``, None where too few frames were read),
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
