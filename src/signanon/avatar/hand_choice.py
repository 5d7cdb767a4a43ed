"""Which hand drawing this signer's folded fingers read best in: chosen once per video, by reading
the avatar's own drawing back.

A finger folded into the palm is the hardest thing the avatar draws: MediaPipe reads the drawn
fold as a finger 47-67 deg straighter than the signer's (benchmarks/hands_issue11.txt). Drawing the
folded bones under the palm (:attr:`~.hands.HandLook.tuck_deg`) reads DGS ZUG's V hand 1.8-2.8 deg
closer and ASL DIFFERENT's fingers curled at the chin 1.1-2.1 deg further off, and nothing in the
drawn points told the two apart. What does tell them apart is reading the drawing: the calibration
draws probe frames of this signer (the ones with a finger bent past ``tuck_deg``; both drawings are
the same elsewhere) both ways, encodes them as the output will be, reads the hands back with
MediaPipe Holistic on single images, and keeps the folded drawing only where its read finger
angles come nearer the drawn ones by more than ``margin_deg`` without losing more than
``max_recall_loss`` of the hands. Measured
before this was built (tracking read-back, unencoded), that reading agreed in sign with the
independent read-back on every clip where the folded drawing moved it by more than 1 deg.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..config import setting
from ..landmarks import geometry, layout
from .hands import HandLook, tucked_fingers
from .skeleton import AvatarPose

_SIDES = ((0, layout.LEFT_HAND), (1, layout.RIGHT_HAND))


@dataclass(frozen=True)
class HandChoiceConfig:
    """Settings of the per-signer hand drawing choice (see the module doc).

    tuck_deg: the middle-joint bend (degrees, 0 = straight) past which the folded drawing folds a
    finger under. margin_deg: how much nearer (mean absolute flexion error over the hands both
    drawings' read-backs find, degrees) the folded drawing must read to be chosen, and
    max_recall_loss the share of the probe hands it may lose doing so. min_hands:
    fewer probe hands with a folded finger than this keep the plain drawing. probe_frames: at most
    this many probe frames are drawn each way.
    """

    enabled: bool = setting(
        True, "choose per signer whether fingers folded into the palm are drawn under it, by reading the "
        "avatar's own drawing back", flag="hand-choice",
    )  # fmt: skip
    tuck_deg: float = 90.0
    margin_deg: float = 1.0
    max_recall_loss: float = 0.05
    min_hands: int = 6
    probe_frames: int = 40


def _hand_error(read: np.ndarray, drawn: np.ndarray) -> float:
    """Mean absolute difference of the 15 flexion angles (degrees) of two (21, 3) hands."""
    return float(np.mean(np.abs(geometry.flexion_angles(read) - geometry.flexion_angles(drawn))))


def probe_poses(animator, bodies: Sequence[tuple[np.ndarray, np.ndarray]], look: HandLook, limit: int) -> list[AvatarPose]:
    """Up to ``limit`` poses (evenly spread) of ``bodies`` (raw ``(data, confidence)`` frames)
    animated on a copy of ``animator`` (both halves keep state), of those with a hand that ``look`` folds."""
    from .animator import AvatarAnimator

    probe = AvatarAnimator(copy.deepcopy(animator.retargeter), copy.deepcopy(animator.face))  # the run's own stay as they are
    poses = []
    for data, confidence in bodies:
        pose = probe(data, confidence)
        if pose is not None and any(h is not None and tucked_fingers(h, look) for h in (pose.left_hand, pose.right_hand)):
            poses.append(pose)
    if len(poses) > limit:
        poses = [poses[i] for i in np.linspace(0, len(poses) - 1, limit).round().astype(int)]
    return poses


def read_errors(
    poses: Sequence[AvatarPose], draw: Callable[[AvatarPose], np.ndarray], width: int, holistic, fold: HandLook
) -> list[float | None]:
    """Per probe hand that ``fold`` folds (in pose order, left then right): the flexion error of
    the hand read from ``draw(pose)`` (RGB uint8 ``(H, W, 3)``) by ``holistic`` against the drawn
    points; None where the read-back finds no such hand."""
    out: list[float | None] = []
    for pose in poses:
        data, confidence = holistic(draw(pose))
        for side, rows in _SIDES:
            hand = (pose.left_hand, pose.right_hand)[side]
            if hand is None or not tucked_fingers(hand, fold):
                continue
            found = geometry.hand_present(confidence, side)
            out.append(_hand_error(geometry.to_metric(data[rows], width), np.asarray(hand, np.float64)) if found else None)
    return out


def choose_hands(
    animator,
    bodies: Sequence[tuple[np.ndarray, np.ndarray]],
    base: HandLook,
    make_draw: Callable[[HandLook], Callable[[AvatarPose], np.ndarray]],
    width: int,
    config: HandChoiceConfig = HandChoiceConfig(),
    holistic_factory: Callable[[], object] | None = None,
) -> tuple[HandLook, dict]:
    """``base`` or ``base`` with ``tuck_deg`` set, whichever this signer's folded fingers read
    nearer in (see the module doc), and the record of the choice.

    bodies: raw MediaPipe Holistic ``(data, confidence)`` frames with a body (float32 ``(586, 3)``,
    ``(586,)``), spread over the video where there are; make_draw(look): the frame of a pose with
    the hands drawn in ``look``, as the output will be (RGB uint8, encoded); holistic_factory: a
    fresh still-image MediaPipe Holistic (a context manager whose call returns ``(data,
    confidence)``); width: the frame width in pixels (the read-back's z unit)."""
    if not config.enabled:
        return base, {}
    tucked = replace(base, tuck_deg=config.tuck_deg)
    poses = probe_poses(animator, bodies, tucked, config.probe_frames)
    folded_hands = sum(h is not None and bool(tucked_fingers(h, tucked)) for p in poses for h in (p.left_hand, p.right_hand))
    record: dict = {"chosen": "plain", "probe_frames": len(poses), "hands": folded_hands}
    if folded_hands < config.min_hands:  # too few to tell: not drawn
        return base, record
    if holistic_factory is None:
        from ..landmarks.holistic import HolisticConfig, HolisticEstimator

        def holistic_factory():
            return HolisticEstimator(HolisticConfig(static_image_mode=True))

    errors = {}
    for name, look in (("plain", base), ("folded", tucked)):
        with holistic_factory() as holistic:
            errors[name] = read_errors(poses, make_draw(look), width, holistic, tucked)
    both = [(p, f) for p, f in zip(errors["plain"], errors["folded"]) if p is not None and f is not None]
    found = {name: sum(e is not None for e in errs) for name, errs in errors.items()}
    record["found"] = found
    if not both:
        return base, record
    plain, folded = (float(np.mean([b[k] for b in both])) for k in (0, 1))
    # how sure: the standard error of the mean paired gain (plain - folded, per probe hand)
    gains = np.array([b[0] - b[1] for b in both])
    se = float(gains.std(ddof=1) / np.sqrt(len(gains))) if len(gains) > 1 else None
    record.update(error_deg={"plain": round(plain, 2), "folded": round(folded, 2)}, pairs=len(gains),
                  gain_se_deg=None if se is None else round(se, 2))
    if plain - folded > config.margin_deg and (found["plain"] - found["folded"]) / folded_hands <= config.max_recall_loss:
        record["chosen"] = "folded"
        return tucked, record
    return base, record
