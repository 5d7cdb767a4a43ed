"""How far the avatar's lips part at rest for this signer: chosen once per video, by reading the
avatar's own drawing back.

The lips are drawn parted a little at rest (:attr:`~.style.AvatarStyle.rest_parting`) because
MediaPipe reads a drawn inner-lip gap under some size as closed lips, and small mouthing was lost.
Where that size lies depends on the clip: the face's size in pixels, the look, the head's pose
(benchmarks/signing_issue11.txt, session 33: the gap starts to read near 0.045 inter-ocular
distances on a face drawn 49 px between the eyes, 0.058 at 92 px, while DGS ZUG's rest mouth at
55 px reads open). One parting cannot sit at that edge on every clip; a rest mouth drawn at the
edge reads as flickering between closed and open by more than a barely moving mouth moves
(the NGT clip padded to portrait: mouth opening read back at 1.66 times the signer's movement).

So, once per video, after the look and the hand drawing are chosen:

1. up to ``probe_frames`` of the signer's frames (spread over the clip where there are) are
   animated and drawn with each candidate parting, at the output's size, encoded as the output
   will be;
2. MediaPipe Holistic reads each drawn frame back (the whole frame, single images, as a viewer's
   detector does; on drawn faces a still-image read gives the read-back's video-mode figures:
   the NGT clip's mouth opening std 0.0054 / 0.0145 / 0.0226 / 0.0184 both ways at the four
   partings);
3. the read mouth opening is compared with the signer's own (their raw landmarks): gain = ratio
   of the two standard deviations, r = their correlation;
4. the look's own parting is kept when it reads within ``settle``; otherwise the candidate whose
   gain is nearest 1 (in ratio) among those that correlate at least ``min_r`` (``min_r_trusted``
   where the look's own parting correlates at least ``min_r``: the probe follows this signer) is
   drawn, where it reads clearly nearer than the look's own (``margin``).

A signer whose mouth hardly moves in the probe frames (std under ``min_series_std``) keeps the
look's parting: there is nothing to read. The mouth's width does not depend on the parting (the
webcam clip's width read 1.65-1.86 at every parting), so only the opening is measured.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..config import setting
from ..landmarks import geometry, layout
from ..landmarks.grammar import mouth_opening
from .renderer import drawn_ahead
from .skeleton import AvatarPose

if TYPE_CHECKING:
    from .furrow_choice import SeriesChoiceConfig

Measure = Callable[[np.ndarray], "float | np.ndarray"]  # facial-grammar series (one or K) of one (478, 3) face mesh (px)


@dataclass(frozen=True)
class MouthChoiceConfig:
    """Settings of the per-signer rest parting choice (see the module doc).

    partings: the candidate partings (face units, :attr:`~.style.AvatarStyle.rest_parting`); the
    look's own is tried first. probe_frames: at most this many frames are drawn per parting.
    min_series_std: the signer's mouth opening must move at least this much over the probe frames
    (inter-ocular distances) for a choice to be made. min_r: a parting whose read-back correlates
    less than this with the signer is not chosen (on ASL DIFFERENT, whose mouth the read-back
    itself follows at r 0.36 on a copy of the original, every parting read r 0.53-0.64 and the one
    picked at 0.6 damped the output's mouth from gain 0.96 to 0.68; there the look's own parting
    read r 0.64 and gain 1.69 against the output's 0.96: the probe did not follow that signer).
    min_r_trusted: where the look's own parting reads at r >= ``min_r`` (the probe follows this
    signer, so its gains can be compared), another parting needs only this (the goal's own floor):
    the NGT clip zoomed in and out read its own parting at 1.95 (r 0.76) and no parting at 0.95
    (r 0.65); its output, read back, 0.71 / 1.41 with the look's own and 0.75 / 0.82 with none.
    settle: (low, high) gains within which the
    look's own parting is kept without drawing the others. margin: another parting is drawn only
    where its gain is nearer 1 than the look's own by more than this (log of the ratio; 0.14 is
    15 %): the probe's gain strays from the read-back's by about 0.1-0.15 (DGS ZUG at a third:
    the look's own read 1.52 in the probe and 1.34 in the output, 0.035 read 1.38 and 1.49).
    """

    enabled: bool = setting(
        True, "choose per signer how far the avatar's lips part at rest, by reading the avatar's own "
        "drawing back", flag="mouth-choice",
    )  # fmt: skip
    partings: tuple[float, ...] = (0.0, 0.0175, 0.035, 0.05)
    probe_frames: int = 40
    min_series_std: float = 0.006
    min_r: float = 0.7
    min_r_trusted: float = 0.6
    settle: tuple[float, float] = (0.8, 1.25)
    margin: float = 0.14

    def __post_init__(self) -> None:
        if not self.partings or not all(float(p) >= 0.0 for p in self.partings):
            raise ValueError(f"partings must be one or more values >= 0 (face units), got {self.partings!r}")
        if not self.settle[0] <= 1.0 <= self.settle[1]:
            raise ValueError(f"settle must be (low, high) with low <= 1 <= high, got {self.settle!r}")


def probe_faces(
    animator, bodies: Sequence[tuple[np.ndarray, np.ndarray]], limit: int, measure: Measure = mouth_opening
) -> list[tuple[AvatarPose, float]]:
    """Up to ``limit`` (evenly spread) of ``bodies`` (raw ``(data, confidence)`` frames, float32
    ``(586, 3)`` / ``(586,)``) with a face, animated on a copy of ``animator`` (both halves keep
    state): ``(pose, measure(the signer's face))`` pairs (by default the mouth opening, in
    inter-ocular distances)."""
    probe = animator.probe_copy()
    faces = []
    for data, confidence in bodies:
        pose = probe(data, confidence)
        if pose is not None and pose.face is not None and geometry.face_present(confidence):
            faces.append((pose, measure(data[layout.FACE])))
    if len(faces) > limit:
        faces = [faces[i] for i in np.linspace(0, len(faces) - 1, limit).round().astype(int)]
    return faces


def read_drawn(
    poses: Sequence[AvatarPose], draw: Callable[[AvatarPose], np.ndarray], holistic, measure: Measure = mouth_opening
) -> np.ndarray:
    """``measure`` (by default the mouth opening, inter-ocular distances) of the face ``holistic``
    reads on ``draw(pose)`` (RGB uint8 ``(H, W, 3)``) of each pose: float64 ``(len(poses),)``, NaN
    where it finds no face; ``(len(poses), K)`` for a measure returning K values (``(len(poses),)``
    of NaN where no face was found at all)."""
    values: list = [None] * len(poses)
    for i, (_, image) in enumerate(drawn_ahead(poses, draw)):
        data, confidence = holistic(image)
        if geometry.face_present(confidence):
            values[i] = np.asarray(measure(data[layout.FACE]), np.float64)
    found = next((v for v in values if v is not None), None)
    if found is None:
        return np.full(len(poses), np.nan)
    return np.array([np.full(found.shape, np.nan) if v is None else v for v in values])


def gain_r(signer: np.ndarray, read: np.ndarray) -> tuple[float, float] | None:
    """(std ratio, correlation) of ``read`` against ``signer`` over the frames read; None under 4."""
    ok = np.isfinite(read)
    if ok.sum() < 4 or signer[ok].std() <= 0:
        return None
    x, y = signer[ok], read[ok]
    r = float(np.corrcoef(x, y)[0, 1]) if y.std() > 0 else 0.0
    return float(y.std() / x.std()), r


def choose_parting(
    animator,
    bodies: Sequence[tuple[np.ndarray, np.ndarray]],
    own: float,
    make_draw: Callable[[float], Callable[[AvatarPose], np.ndarray]],
    config: MouthChoiceConfig = MouthChoiceConfig(),
    holistic_factory: Callable[[], object] | None = None,
) -> tuple[float, dict]:
    """The rest parting this signer's mouthing reads best at (see the module doc), and the record
    of the choice: ``{"own", "chosen", "probe_frames", "signer_std", "read": {parting: [gain, r]}}``
    (``read`` only where the partings were drawn).

    bodies: raw MediaPipe Holistic frames with a body, spread over the video where there are;
    own: the look's parting; make_draw(parting): the frame of a pose drawn with that parting, as
    the output will be (RGB uint8, encoded); holistic_factory: a fresh still-image MediaPipe
    Holistic (a context manager whose call returns ``(data, confidence)``)."""
    if not config.enabled:
        return own, {}
    faces = probe_faces(animator, bodies, config.probe_frames)
    signer = np.array([m for _, m in faces], np.float64)
    spread = float(signer.std()) if len(signer) else 0.0
    record: dict = {"own": own, "chosen": own, "probe_frames": len(faces), "signer_std": round(spread, 4)}
    if len(faces) < 4 or spread < config.min_series_std:  # nothing to read: the look's own
        return own, record
    if holistic_factory is None:
        from ..landmarks.holistic import HolisticConfig, HolisticEstimator

        def holistic_factory():
            return HolisticEstimator(HolisticConfig(static_image_mode=True))

    poses = [p for p, _ in faces]
    candidates = [own] + [float(p) for p in config.partings if not np.isclose(p, own)]
    read: dict[float, tuple[float, float] | None] = {}
    with holistic_factory() as holistic:
        for parting in candidates:
            read[parting] = gain_r(signer, read_drawn(poses, make_draw(parting), holistic))
            if parting == own and settled(read[own], config):
                break  # reads well as it is: the others are not drawn
    record["read"] = {f"{p:g}": (None if v is None else [round(v[0], 2), round(v[1], 2)]) for p, v in read.items()}
    record["chosen"] = pick_parting(read, own, config)
    return record["chosen"], record


def settled(read: tuple[float, float] | None, config: "MouthChoiceConfig | SeriesChoiceConfig") -> bool:
    """Whether a setting (a parting, a furrow gain) read as ``(gain, r)`` reads well enough to keep
    without trying others: within ``config.settle`` and at r of at least ``config.min_r``."""
    return read is not None and config.settle[0] <= read[0] <= config.settle[1] and read[1] >= config.min_r


def pick_parting(read: dict[float, tuple[float, float] | None], own: float, config: MouthChoiceConfig = MouthChoiceConfig()) -> float:
    """Of the partings read (``{parting: (gain, r)}``, None where too few frames were read), the
    one whose gain is nearest 1 (as a ratio) among those correlating at least ``min_r`` (at least
    ``min_r_trusted`` where ``own`` reads at ``min_r`` or more), where it reads nearer than ``own``
    by more than ``margin``; else ``own``."""
    mine = read.get(own)
    if settled(mine, config):
        return own
    floor = config.min_r_trusted if mine is not None and mine[1] >= config.min_r else config.min_r
    usable = {p: v for p, v in read.items() if p != own and v is not None and v[1] >= floor}
    if not usable:
        return own
    best = min(usable, key=lambda p: off(usable[p][0]))
    if mine is not None and off(usable[best][0]) > off(mine[0]) - config.margin:
        return own
    return best


def off(gain: float) -> float:
    """How far a gain is from 1, as the log of the ratio (1.25 and 0.8 are equally far)."""
    return abs(float(np.log(max(gain, 1e-6))))
