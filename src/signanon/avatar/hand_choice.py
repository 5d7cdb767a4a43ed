"""Which hand drawing this signer's folded fingers read best in: chosen once per video, by reading
the avatar's own drawing back.

A finger folded into the palm is the hardest thing the avatar draws: MediaPipe reads the drawn
fold as a finger 47-67 deg straighter than the signer's (benchmarks/hands_issue11.txt). Drawing the
folded bones under the palm (:attr:`~.hands.HandLook.tuck_deg`) reads DGS ZUG's V hand 1.8-2.8 deg
closer and ASL DIFFERENT's fingers curled at the chin 1.1-2.1 deg further off, and nothing in the
drawn points told the two apart. What does tell them apart is reading the drawing: the calibration
draws probe frames of this signer (the ones with a finger bent past ``tuck_deg``; both drawings are
the same elsewhere) both ways, encodes them as the output will be, reads the hands back with
MediaPipe Holistic on single images (each frame three times: as drawn, shifted half a pixel and
scaled 0.97, each hand's errors averaged), and keeps the folded drawing wherever its read finger
angles come nearer the drawn ones (by more than ``margin_deg``, 0) without losing more than
``max_recall_loss`` of the hands.

The probes are drawn at the output's size (a clip under ``min_output_side`` is drawn larger).
Until session 25 they were drawn at the input's: the 192x144 NGT clip's and DGS ZUG at a third's
probe hands at a third of their output size, where the probe read the fold -0.6 and 0.4 deg
nearer while the outputs' read-back read it 1.9 and 1.4-1.7 nearer; at the output's size the
probe reads 1.5 and 2.1. The margin is 0 (whichever reads nearer), not the 1 deg it started at
with one read and the wrong size, which kept the plain drawing on five small clips whose folded
drawing read 1.6-3.3 deg nearer the signer (benchmarks/signing_issue11.txt, session 25).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..config import setting
from ..landmarks import geometry, layout
from .hands import HandLook, tucked_fingers
from .renderer import drawn_ahead
from .skeleton import AvatarPose

_SIDES = ((0, layout.LEFT_HAND), (1, layout.RIGHT_HAND))


@dataclass(frozen=True)
class HandChoiceConfig:
    """Settings of the per-signer hand drawing choice (see the module doc).

    tuck_deg: the middle-joint bend (degrees, 0 = straight) past which the folded drawing folds a
    finger under. margin_deg: how much nearer (mean absolute flexion error over the hands both
    drawings' read-backs find, degrees) the folded drawing must read to be chosen (0: nearer at
    all; see the module doc), and
    max_recall_loss the share of the probe hands it may lose doing so. min_hands:
    fewer probe hands with a folded finger than this keep the plain drawing. probe_frames: at most
    this many probe frames are drawn each way. reads: each drawn probe frame is read this many
    times (up to 3), as drawn and as the copies in :data:`READ_COPIES`, and each hand's errors averaged:
    one read's gain strays by 1-2 deg (DGS ZUG's first 100 frames: 0.6, 1.3 and 2.2 on the three),
    enough that a change to the mouth alone took that clip's one-read gain from 3.4 to 0.5 deg.
    """

    enabled: bool = setting(
        True, "choose per signer whether fingers folded into the palm are drawn under it, by reading the "
        "avatar's own drawing back", flag="hand-choice",
    )  # fmt: skip
    tuck_deg: float = 90.0
    margin_deg: float = 0.0
    max_recall_loss: float = 0.05
    min_hands: int = 6
    probe_frames: int = 40
    reads: int = 3


def _hand_error(read: np.ndarray, drawn: np.ndarray) -> float:
    """Mean absolute difference of the 15 flexion angles (degrees) of two (21, 3) hands."""
    return float(np.mean(np.abs(geometry.flexion_angles(read) - geometry.flexion_angles(drawn))))


def probe_poses(animator, bodies: Sequence[tuple[np.ndarray, np.ndarray]], look: HandLook, limit: int) -> list[AvatarPose]:
    """Up to ``limit`` poses (evenly spread) of ``bodies`` (raw ``(data, confidence)`` frames)
    animated on a copy of ``animator`` (both halves keep state), of those with a hand that ``look`` folds."""
    probe = animator.probe_copy()
    poses = []
    for data, confidence in bodies:
        pose = probe(data, confidence)
        if pose is not None and any(h is not None and tucked_fingers(h, look) for h in (pose.left_hand, pose.right_hand)):
            poses.append(pose)
    if len(poses) > limit:
        poses = [poses[i] for i in np.linspace(0, len(poses) - 1, limit).round().astype(int)]
    return poses


# copies of a probe frame no viewer could tell from it, read besides the frame itself (the
# read-back's hand finder lands a little differently on each): (2, 3) affines of (width, height)
READ_COPIES: tuple[Callable[[int, int], np.ndarray], ...] = (
    lambda w, h: np.float32([[1, 0, 0.5], [0, 1, 0.5]]),  # shifted half a pixel
    lambda w, h: np.float32([[0.97, 0, 0.015 * w], [0, 0.97, 0.015 * h]]),  # scaled 0.97 about the middle
)


def read_copies(image: np.ndarray, reads: int) -> list[np.ndarray]:
    """``image`` (uint8 ``(H, W, 3)``) and its first ``reads - 1`` :data:`READ_COPIES` (edges
    replicated). Finger angles are unchanged by a shift or a uniform scale, so reads compare as they are."""
    import cv2

    h, w = image.shape[:2]
    copies = [cv2.warpAffine(image, m(w, h), (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
              for m in READ_COPIES[: max(reads, 1) - 1]]  # fmt: skip
    return [image, *copies]


def read_errors(
    poses: Sequence[AvatarPose], draw: Callable[[AvatarPose], np.ndarray], width: int, holistic, fold: HandLook,
    reads: int = 1,
) -> list[list[float | None]]:
    """Per probe hand that ``fold`` folds (in pose order, left then right), per read (``draw(pose)``,
    RGB uint8 ``(H, W, 3)``, then its :func:`read_copies`): the flexion error (degrees) of the hand
    ``holistic`` reads against the drawn points; None where that read finds no such hand."""
    def folded(pose: AvatarPose) -> list[tuple[int, slice, np.ndarray]]:
        return [(side, rows, hand) for side, rows in _SIDES
                if (hand := (pose.left_hand, pose.right_hand)[side]) is not None and tucked_fingers(hand, fold)]  # fmt: skip

    out: list[list[float | None]] = []
    for pose, drawn in drawn_ahead([p for p in poses if folded(p)], draw):
        sides = folded(pose)
        per_hand: list[list[float | None]] = [[] for _ in sides]
        for image in read_copies(drawn, reads):
            data, confidence = holistic(image)
            for errs, (side, rows, hand) in zip(per_hand, sides):
                found = geometry.hand_present(confidence, side)
                errs.append(_hand_error(geometry.to_metric(data[rows], width), np.asarray(hand, np.float64)) if found else None)
        out.extend(per_hand)
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

    reads = max(1, min(config.reads, 1 + len(READ_COPIES)))
    errors = {}
    for name, look in (("plain", base), ("folded", tucked)):
        with holistic_factory() as holistic:
            errors[name] = read_errors(poses, make_draw(look), width, holistic, tucked, reads)
    # (probe hands, reads) errors, NaN where that read missed the hand; paired: both drawings found it
    plain_err, folded_err = (np.array([[np.nan if e is None else e for e in hand] for hand in errors[name]],
                                      np.float64).reshape(-1, reads) for name in ("plain", "folded"))  # fmt: skip
    paired = np.isfinite(plain_err) & np.isfinite(folded_err)
    gain = plain_err - folded_err
    # hands found, in hands: a hand found on 2 of 3 reads counts 2/3
    found = {name: round(float(np.isfinite(err).sum()) / reads, 2) for name, err in (("plain", plain_err), ("folded", folded_err))}
    # the gain each read alone would have measured: how far one read's choice could stray
    per_read = [round(float(gain[paired[:, k], k].mean()), 2) if paired[:, k].any() else None for k in range(reads)]
    record.update(found=found, reads=reads, gain_by_read_deg=per_read)
    hands = paired.any(axis=1)
    if not hands.any():
        return base, record

    def per_hand(err: np.ndarray) -> np.ndarray:  # each probe hand's paired reads, averaged
        return np.where(paired, err, 0.0)[hands].sum(axis=1) / paired[hands].sum(axis=1)

    plain, folded = float(per_hand(plain_err).mean()), float(per_hand(folded_err).mean())
    # how sure: the standard error of the mean paired gain (plain - folded, per probe hand)
    gains = per_hand(gain)
    se = float(gains.std(ddof=1) / np.sqrt(len(gains))) if len(gains) > 1 else None
    record.update(error_deg={"plain": round(plain, 2), "folded": round(folded, 2)}, pairs=len(gains),
                  gain_se_deg=None if se is None else round(se, 2))
    if plain - folded > config.margin_deg and (found["plain"] - found["folded"]) / folded_hands <= config.max_recall_loss:
        record["chosen"] = "folded"
        return tucked, record
    return base, record
