"""The re-enactment's privacy guard: an output face is never recognised as the driver's.

The re-enactment copies a *driver's* facial motion onto a *source* face; in DiffSLVA's face
enhancement (:mod:`signanon.diffusion.face_enhance`) the driver is the signer being anonymized,
so the driver's identity must not come through. Expression alone can do it: a landmark-warped face that frowns, pouts and talks like
the driver moves toward the driver in a face recogniser's space (on ``expressive_man`` driving
Obama's photo, dlib put 0.24 of the sampled output frames within 0.6 of the driver, although the
still photo sits 0.674 away; benchmarks/reenact_issue11.txt).

The guard uses the same recogniser and threshold as ``signanon evaluate`` (dlib's ResNet,
Euclidean distance 0.6; ``margin`` makes it stricter, as the anonymize privacy gate's does):

* before any frame is animated, the driver's reference embedding is the mean over up to
  ``samples`` evenly spaced driving face crops, and the still source face is checked against
  it: a source recognised as the driver is refused (:class:`~signanon.errors.InputError`);
* every output face crop at or under ``threshold + margin`` from the driver is rendered again
  with the driver's motion scaled down (``strengths``, the warp's expression and head motion
  relative to the reference), and, when even the weakest is too close, replaced by the still
  source crop, which was checked. A model animator cannot be scaled, so its frame is replaced
  by the still source crop at once.
* so that the face does not flicker between full and weakened motion, each frame starts one
  step stronger than the frame before it was written with (``strengths`` is the ladder; after a
  still frame, the weakest), not at full strength: motion comes back over a few frames.

Crops are the animator's ``(256, 256, 3)`` RGB uint8 output; an output crop in which dlib finds
no face is not changed (nothing recognises it), and is counted. The face enhancement uses the same
guard per frame, with that frame's original face as the reference (:meth:`DriverGuard.guard`'s
``reference``) and the un-enhanced diffusion frame in place of the still source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..config import setting
from ..errors import InputError
from ..recognition import DlibConfig, DlibEmbedder


@dataclass(frozen=True)
class DriverGuardConfig:
    """Settings of the guard (see the module doc)."""

    enabled: bool = setting(
        True, "re-enact any face that dlib recognises as the person whose motion drives it (reenact: "
        "the driver; anonymize: the signer) again with weaker expression, else leave it still (dlib "
        "distance <= 0.6 + --driver-margin)", flag="driver-guard",
    )  # fmt: skip
    margin: float = setting(
        0.03, "the driver guard acts at a dlib distance <= 0.6 + this (the written video is "
        "re-encoded: a margin keeps its frames past 0.6)", flag="driver-margin", metavar="D",
    )  # fmt: skip
    samples: int = setting(24, "driving frames whose faces make the driver's reference embedding", cli=False)
    strengths: tuple[float, ...] = setting(
        (0.9, 0.8, 0.7, 0.6, 0.5, 0.35, 0.2, 0.05), "weaker motion strengths tried in turn, before the still source face",
        cli=False,
    )  # fmt: skip
    threshold: float = setting(DlibConfig.threshold, "the recogniser's 'same person' distance", cli=False)

    def __post_init__(self) -> None:
        if not self.margin >= 0:  # NaN too: the guard would never weaken the motion
            raise InputError(f"driver margin must be 0 or more (a stricter guard), got {self.margin}")
        if not self.threshold > 0:  # NaN or <= 0: the driver would never be found in a frame
            raise InputError(f"driver guard threshold must be more than 0, got {self.threshold}")
        if self.samples < 1:
            raise InputError(f"driver guard samples must be at least 1, got {self.samples}")
        if any(not 0.0 <= s < 1.0 for s in self.strengths) or list(self.strengths) != sorted(self.strengths, reverse=True):
            raise InputError(f"driver guard strengths must be in [0, 1) and decreasing, got {self.strengths}")

    @property
    def limit(self) -> float:
        return self.threshold + self.margin


def sample_indices(found: np.ndarray, samples: int) -> list[int]:
    """Up to ``samples`` evenly spaced frame indices among those with ``found`` (F,) bool True."""
    idx = np.flatnonzero(np.asarray(found, bool))
    if len(idx) <= samples:
        return idx.tolist()
    return idx[np.round(np.linspace(0, len(idx) - 1, samples)).astype(int)].tolist()


class DriverGuard:
    """Keeps output faces away from the driver's identity (see the module doc).

    ``learn_driver`` once, ``check_source`` once, then :meth:`guard` per output frame. ``stats``:
    ``checked`` frames, ``weakened`` (re-rendered with weaker motion), ``still`` (replaced by the
    still source crop), ``no_face`` (no face dlib finds in the animated crop), ``nearest_driven``
    (the smallest distance to the driver of a frame rendered at full strength, before the guard;
    frames that start weaker while motion comes back are not rendered at full strength),
    ``nearest_output`` (of a frame as written, crop), ``limit``, ``driver_faces`` (driving crops
    in the reference).
    ``embedder``: a face embedder (``faces(rgb) -> [Face]``, ``distance(a, b)``); None = dlib.
    """

    def __init__(self, config: DriverGuardConfig = DriverGuardConfig(), embedder=None):
        self.config = config
        self._embedder = embedder
        self.reference: np.ndarray | None = None
        self._still_distance: float | None = None
        self._ladder = (1.0,) + tuple(config.strengths)
        self._step = 0  # the ladder step (len(ladder): still) the last frame was written with
        self._can_weaken = True  # False once render() returned None below full strength
        self.stats = {"checked": 0, "weakened": 0, "still": 0, "no_face": 0, "nearest_driven": None,
                      "nearest_output": None, "limit": round(config.limit, 3), "driver_faces": 0}  # fmt: skip

    @property
    def embedder(self):
        if self._embedder is None:
            self._embedder = DlibEmbedder(DlibConfig(upsample=0))  # 256 px crops: faces of ~150 px
        return self._embedder

    def embedding(self, crop: np.ndarray) -> np.ndarray | None:
        """The recogniser's embedding of the largest face in ``crop`` (None: no face found)."""
        faces = self.embedder.faces(np.ascontiguousarray(crop))
        return max(faces, key=lambda f: f.area).embedding if faces else None

    def learn_driver(self, crops: Iterable[np.ndarray]) -> int:
        """The driver's reference: the mean embedding of its face ``crops``; returns how many had a
        face dlib found (0: the guard cannot act and lets every frame through)."""
        found = [e for e in (self.embedding(c) for c in crops) if e is not None]
        self.reference = np.mean(found, axis=0) if found else None
        self.stats["driver_faces"] = len(found)
        return len(found)

    def distance(self, crop: np.ndarray, reference: np.ndarray | None = None) -> float | None:
        """dlib distance of the crop's largest face to ``reference`` (default: the driver's
        reference); None: no face, or no reference."""
        reference = self.reference if reference is None else reference
        if reference is None:
            return None
        emb = self.embedding(crop)
        return None if emb is None else float(self.embedder.distance(emb, reference))

    def check_source(self, source_crop: np.ndarray, where: str = "the source") -> None:
        """Refuse a source whose still face the recogniser takes for the driver."""
        d = self._still_distance = self.distance(source_crop)
        if d is not None and d <= self.config.limit:
            raise InputError(
                f"{where} is recognised as the driving video's person (dlib distance {d:.2f} <= "
                f"{self.config.limit:.2f}): the output would show the driver; use another source face"
            )

    def guard(
        self, render: Callable[[float], np.ndarray | None], still: np.ndarray | None, reference: np.ndarray | None = None
    ) -> np.ndarray | None:  # fmt: skip
        """The output crop for one frame: ``render(1.0)`` unless the driver is recognised in it.

        render(strength): the frame's face crop animated with the driver's motion scaled by
        ``strength`` (1 = as driven), or None when the animator cannot scale it; still: what to
        show when no strength is safe (the still source crop); reference: this frame's driver
        embedding (default: the driver's reference from :meth:`learn_driver`)."""
        ref = self.reference if reference is None else reference
        if ref is None:
            return render(1.0)
        self.stats["checked"] += 1
        return self._first_safe(render, still, ref)

    def _first_safe(self, render, still, ref: np.ndarray):
        """Down the ladder from one step above the last frame's strength (full strength only, once
        the animator has shown it cannot weaken); the first rendering past the limit, else still."""
        start = 0 if not self._can_weaken else max(0, self._step - 1)
        for step in range(start, len(self._ladder) if self._can_weaken else 1):
            face = render(self._ladder[step])
            if face is None:  # this animator cannot weaken a frame: full strength or still from now on
                self._can_weaken = False
                if start > 0:  # full strength was not tried for this frame yet
                    return self._first_safe(render, still, ref)
                break
            d = self.distance(face, ref)
            if step == 0:
                self.stats["no_face"] += d is None
                self._nearest("nearest_driven", d)
            if d is None or d > self.config.limit:
                self._step = step
                self.stats["weakened"] += step > 0
                self._nearest("nearest_output", d)
                return face
        self._step = len(self._ladder)
        self.stats["still"] += 1
        self._nearest("nearest_output", self._still_distance)
        return still

    def _nearest(self, key: str, d: float | None) -> None:
        if d is not None:
            m = self.stats[key]
            self.stats[key] = round(d, 3) if m is None else round(min(m, d), 3)
