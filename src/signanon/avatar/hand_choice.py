"""Which hand drawing this signer's hands read best in: chosen once per video, by reading the
avatar's own drawing back.

A finger folded into the palm is the hardest thing the avatar draws: MediaPipe reads the drawn
fold as a finger 47-67 deg straighter than the signer's (benchmarks/hands_issue11.txt). Drawing the
folded bones under the palm (:attr:`~.hands.HandLook.tuck_deg`) reads DGS ZUG's V hand 1.8-2.8 deg
closer and ASL DIFFERENT's fingers curled at the chin 1.1-2.1 deg further off, and nothing in the
drawn points told the two apart. The fingers' width splits signers too: drawn 0.85 times as wide,
ASL DIFFERENT's hands read 8.8 deg from the signer's (10.1 as drawn), the webcam clip's 14.9
(12.7); 1.15 times as wide, folded, DGS ZUG's read 9.1 (folded as wide as drawn: 9.7) and the
webcam clip's 11.9 (read back independently, whole clips, three reads; session 30).

What does tell the signers apart is reading the drawing: the calibration draws probe frames of
this signer (up to ``probe_frames`` with a hand, spread over the clip) in each drawing of
:meth:`HandChoiceConfig.drawings` (three finger widths, each plain and folded), encodes them as the
output will be, reads the hands back with MediaPipe Holistic on single images and keeps the
drawing whose read finger angles come nearest the drawn ones, without losing more than
``max_recall_loss`` of the hands. Each drawing is read once, as drawn; the first and those within
``keep_within_deg`` of the nearest are read twice more (shifted half a pixel and scaled 0.97), and
each hand's errors averaged. Read this way on every frame (one read each) of four clips, the
drawing read nearest was on all four the one the independent read-back of the whole output read
nearest (of the six; hands_issue11.txt, session 30).

The probes are drawn at the output's size (a clip under ``min_output_side`` is drawn larger).
Until session 25 they were drawn at the input's: the 192x144 NGT clip's and DGS ZUG at a third's
probe hands at a third of their output size, where the probe read the fold -0.6 and 0.4 deg
nearer while the outputs' read-back read it 1.9 and 1.4-1.7 nearer; at the output's size the
probe reads 1.5 and 2.1. The margin is 0 (whichever reads nearer), not the 1 deg it started at
with one read and the wrong size, which kept the plain drawing on five small clips whose folded
drawing read 1.6-3.3 deg nearer the signer (benchmarks/signing_issue11.txt, session 25).
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

    tuck_deg: the middle-joint bend (degrees, 0 = straight) past which the folded drawings fold a
    finger under. finger_widths: the finger widths tried (times the look's), each drawn plain and
    folded; the first, drawn plain, is kept unless another drawing reads nearer. margin_deg: how
    much nearer (mean absolute flexion error over the probe hands every drawing's read-back finds,
    degrees) another drawing must read to be chosen (0: nearer at all; see the module doc), and
    max_recall_loss the share of the probe hands it may lose doing so. min_hands: fewer probe
    hands than this keep the first drawing; fewer with a folded finger than this leave the folded
    drawings out. probe_frames: at most this many probe frames (with a hand, spread over the
    clip) are drawn in each drawing. reads: each drawn probe frame is read this many times (up to
    3), as drawn and as the copies in :data:`READ_COPIES`, and each hand's errors averaged: one
    read's gain strays by 1-2 deg (DGS ZUG's first 100 frames: 0.6, 1.3 and 2.2 on the three),
    enough that a change to the mouth alone took that clip's one-read gain from 3.4 to 0.5 deg.
    keep_within_deg: every drawing is read once first; only the first and those whose mean error
    on that read lies within this of the nearest are read the other times (Holistic's reads are
    most of the choice's time).
    """

    enabled: bool = setting(
        True, "choose per signer how the hands are drawn (finger width; fingers folded into the palm drawn "
        "under it or not), by reading the avatar's own drawing back", flag="hand-choice",
    )  # fmt: skip
    tuck_deg: float = 90.0
    finger_widths: tuple[float, ...] = (1.0, 0.85, 1.15)
    keep_within_deg: float = 1.0
    margin_deg: float = 0.0
    max_recall_loss: float = 0.05
    min_hands: int = 6
    probe_frames: int = 40
    reads: int = 3

    def __post_init__(self) -> None:
        if not self.finger_widths or min(self.finger_widths) <= 0:
            raise ValueError(f"hand choice finger widths must be positive, got {self.finger_widths}")

    def drawings(self, base: HandLook) -> list[tuple[str, HandLook]]:
        """``(name, look)`` of every drawing tried, ``base`` as drawn first: each finger width plain,
        then folded (``"plain"``, ``"folded"``, ``"plain, fingers x0.85"``, ...)."""
        out = []
        for folded in (False, True):
            for k in self.finger_widths:
                look = replace(base, finger_width=tuple(w * k for w in base.finger_width),
                               tuck_deg=self.tuck_deg if folded else base.tuck_deg)  # fmt: skip
                out.append((("folded" if folded else "plain") + ("" if k == 1.0 else f", fingers x{k:g}"), look))
        return out


def _hand_error(read: np.ndarray, drawn: np.ndarray) -> float:
    """Mean absolute difference of the 15 flexion angles (degrees) of two (21, 3) hands."""
    return float(np.mean(np.abs(geometry.flexion_angles(read) - geometry.flexion_angles(drawn))))


def probe_poses(animator, bodies: Sequence[tuple[np.ndarray, np.ndarray]], limit: int) -> list[AvatarPose]:
    """Up to ``limit`` poses (evenly spread) of ``bodies`` (raw ``(data, confidence)`` frames)
    animated on a copy of ``animator`` (both halves keep state), of those with a hand."""
    from .animator import AvatarAnimator

    probe = AvatarAnimator(copy.deepcopy(animator.retargeter), copy.deepcopy(animator.face))  # the run's own stay as they are
    poses = []
    for data, confidence in bodies:
        pose = probe(data, confidence)
        if pose is not None and (pose.left_hand is not None or pose.right_hand is not None):
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
    poses: Sequence[AvatarPose], draw: Callable[[AvatarPose], np.ndarray], width: int, holistic,
    copies: Sequence[int] = (0,), only: Callable[[AvatarPose, np.ndarray], bool] | None = None,
) -> dict[tuple[int, int], list[float | None]]:
    """Per probe hand ``(pose index, side)`` (side 0 left, 1 right; the hands ``only(pose, hand)``
    keeps, default all), per read (``copies`` of ``draw(pose)``, RGB uint8 ``(H, W, 3)``: 0 as
    drawn, k the k-th of :data:`READ_COPIES`): the flexion error (degrees) of the hand ``holistic``
    reads against the drawn points; None where that read finds no such hand. Frames without such
    a hand are not drawn."""
    out: dict[tuple[int, int], list[float | None]] = {}
    for i, pose in enumerate(poses):
        sides = [(side, rows, hand) for side, rows in _SIDES
                 if (hand := (pose.left_hand, pose.right_hand)[side]) is not None and (only is None or only(pose, hand))]  # fmt: skip
        if not sides:
            continue
        for side, _, _ in sides:
            out[(i, side)] = []
        images = read_copies(draw(pose), max(copies) + 1)
        for image in (images[k] for k in copies):
            data, confidence = holistic(image)
            for side, rows, hand in sides:
                found = geometry.hand_present(confidence, side)
                out[(i, side)].append(_hand_error(geometry.to_metric(data[rows], width), np.asarray(hand, np.float64)) if found else None)
    return out


def _means(errors: dict[str, dict[tuple[int, int], list[float | None]]], hands: Sequence[tuple[int, int]]) -> dict[str, float]:
    """Each drawing's mean flexion error (degrees) over ``hands``, each hand's reads averaged, over
    the hands every drawing found on at least one read; empty where there are none."""
    err = {name: np.array([[np.nan if e is None else e for e in errors[name][h]] for h in hands], np.float64) for name in errors}
    common = np.all([np.isfinite(e).any(axis=1) for e in err.values()], axis=0)
    return {name: float(np.nanmean(e[common], axis=1).mean()) for name, e in err.items()} if common.any() else {}


def choose_hands(
    animator,
    bodies: Sequence[tuple[np.ndarray, np.ndarray]],
    base: HandLook,
    make_draw: Callable[[HandLook], Callable[[AvatarPose], np.ndarray]],
    width: int,
    config: HandChoiceConfig = HandChoiceConfig(),
    holistic_factory: Callable[[], object] | None = None,
) -> tuple[HandLook, dict]:
    """Of :meth:`HandChoiceConfig.drawings` of ``base``, the one this signer's hands read nearest
    in (see the module doc), and the record of the choice.

    bodies: raw MediaPipe Holistic ``(data, confidence)`` frames with a body (float32 ``(586, 3)``,
    ``(586,)``), spread over the video where there are; make_draw(look): the frame of a pose with
    the hands drawn in ``look``, as the output will be (RGB uint8, encoded); holistic_factory: a
    fresh still-image MediaPipe Holistic (a context manager whose call returns ``(data,
    confidence)``); width: the frame width in pixels (the read-back's z unit)."""
    if not config.enabled:
        return base, {}
    drawings = config.drawings(base)
    fold = replace(base, tuck_deg=config.tuck_deg)
    poses = probe_poses(animator, bodies, config.probe_frames)
    hands = [(i, side) for i, p in enumerate(poses) for side in (0, 1) if (p.left_hand, p.right_hand)[side] is not None]
    folds = sum(bool(tucked_fingers((poses[i].left_hand, poses[i].right_hand)[side], fold)) for i, side in hands)
    record: dict = {"chosen": drawings[0][0], "probe_frames": len(poses), "hands": len(hands), "folded_hands": folds}
    if len(hands) < config.min_hands:  # too few to tell: the first drawing
        return base, record
    if folds < config.min_hands:  # the folded drawings differ from the plain ones on too few hands to tell
        drawings = [(name, look) for name, look in drawings if look.tuck_deg == base.tuck_deg]
    if holistic_factory is None:
        from ..landmarks.holistic import HolisticConfig, HolisticEstimator

        def holistic_factory():
            return HolisticEstimator(HolisticConfig(static_image_mode=True))

    reads = max(1, min(config.reads, 1 + len(READ_COPIES)))
    twin_of = {name: next(n for n, other in drawings if other == replace(look, tuck_deg=base.tuck_deg)) for name, look in drawings}
    errors: dict[str, dict[tuple[int, int], list[float | None]]] = {name: {} for name, _ in drawings}

    def read(names: Sequence[str], copies: Sequence[int]) -> None:  # each drawing's reads of these copies, added
        for name in names:
            look = dict(drawings)[name]
            if twin_of[name] == name:
                new = read_errors(poses, make_draw(look), width, holistic, copies)
            else:  # a folded drawing: only the frames with a finger it folds differ from its plain twin's
                new = read_errors(poses, make_draw(look), width, holistic, copies,
                                  only=lambda pose, hand: bool(tucked_fingers(hand, look)))  # fmt: skip
                new = {h: new.get(h, errors[twin_of[name]][h][-len(copies):]) for h in hands}
            for h in hands:
                errors[name].setdefault(h, []).extend(new[h])

    with holistic_factory() as holistic:
        # every drawing read once; those within keep_within_deg of the nearest, and the first, read again
        read([n for n, _ in drawings if twin_of[n] == n] + [n for n, _ in drawings if twin_of[n] != n], (0,))
        first_read = _means(errors, hands)
        nearest = min(first_read.values(), default=np.inf)
        kept = [n for n, _ in drawings if n == drawings[0][0] or first_read.get(n, nearest) <= nearest + config.keep_within_deg]
        kept = [n for n, _ in drawings if n in kept or any(twin_of[k] == n for k in kept)]  # a kept folded drawing's twin too
        if reads > 1:
            read([n for n in kept if twin_of[n] == n] + [n for n in kept if twin_of[n] != n], range(1, reads))
    drawings = [(n, look) for n, look in drawings if n in kept]
    errors = {n: errors[n] for n in kept}
    # (probe hands, reads) errors per drawing, NaN where that read missed the hand
    err = {name: np.array([[np.nan if e is None else e for e in errors[name][h]] for h in hands], np.float64).reshape(-1, reads)
           for name in errors}  # fmt: skip
    # hands found, in hands: a hand found on 2 of 3 reads counts 2/3
    found = {name: round(float(np.isfinite(e).sum()) / reads, 2) for name, e in err.items()}
    # each hand's reads averaged, over the hands every drawing found on at least one read
    common = np.all([np.isfinite(e).any(axis=1) for e in err.values()], axis=0)
    record.update(found=found, reads=reads, pairs=int(common.sum()),
                  first_read_deg={name: round(v, 2) for name, v in first_read.items()})
    if not common.any():
        return base, record
    per_hand = {name: np.nanmean(e[common], axis=1) for name, e in err.items()}
    mean = {name: float(v.mean()) for name, v in per_hand.items()}
    first = drawings[0][0]
    allowed = [name for name, _ in drawings if (found[first] - found[name]) / len(hands) <= config.max_recall_loss]
    best = min(allowed, key=lambda name: mean[name])
    if mean[first] - mean[best] <= config.margin_deg:
        best = first
    # how sure: the standard error of the mean gain (first - chosen, per probe hand)
    gains = per_hand[first] - per_hand[best]
    se = float(gains.std(ddof=1) / np.sqrt(len(gains))) if len(gains) > 1 else None
    record.update(chosen=best, error_deg={name: round(v, 2) for name, v in mean.items()},
                  gain_se_deg=None if se is None else round(se, 2))
    return dict(drawings)[best], record
