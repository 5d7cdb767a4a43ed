"""The avatar's privacy guard: no drawn frame may be recognised as the signer.

The avatar draws no pixel of the input, yet a drawn face can still fall within a face recogniser's
"same person" distance of the signer. Measured with the independent read-back (dlib, 0.6;
benchmarks/signing_issue11.txt): on a DGS clip downscaled to ~20 px between the eyes the default
palette's avatar matched the signer on 75 of 171 frames, and still on 89 with the expression
switched off (skin tone and head pose carry it at that size), while the dark-skin palette matched
on none. So an avatar run

1. finds the signer's face first (:func:`find_signer`): dlib's embedding of the largest face on
   ``signer_samples`` frames spread over the whole video, and the same as a viewer's recogniser
   with dlib's defaults reads them (:attr:`SignerFace.viewed`);
2. with ``palette="auto"`` / ``face_shape="auto"`` picks the palette and face shape whose drawn
   faces dlib puts nearest the signer least often, on ``probe_frames`` frames spread over the
   video (:func:`choose_look`);
3. checks the drawn faces (:class:`GuardedRenderer`: every frame near the limit, fewer far from
   it): encoded as the output will be, embedded, and compared with the signer's mean embedding
   (as the read-back compares), and with each other person's the sampled frames show
   (:func:`other_people`: Holistic follows one person, not always the one with the largest face). A frame within ``threshold + margin`` is drawn again with its
   expression calmed (half, then all of it: the facial grammar is weakened on that frame), else
   with a blank face (hair and skin, no features), else blurred: privacy fails closed, and the
   run summary counts each kind.

dlib is the recogniser ``evaluate`` and ``--verify`` use (:mod:`signanon.recognition`).
"""

from __future__ import annotations

import contextlib
import copy
import threading
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np

from ..config import setting
from ..landmarks.geometry import fit_stable
from ..landmarks.holistic import HolisticConfig
from ..landmarks.regions import BROW_UPPER_L, BROW_UPPER_R
from ..recognition import DlibConfig, DlibEmbedder, Face, viewer_config
from .canonical import CanonicalFace, load_canonical_face
from .skeleton import AvatarPose
from .style import Look

# dlib's HOG detector finds faces down to ~80 px (its box); the face mesh's extent is a little
# larger than that box, so a face under these extents (px) is looked for 2x / 4x upsampled
_UPSAMPLE_BELOW = (110.0, 55.0)


def face_square(frame: np.ndarray, face: np.ndarray, margin: float = 2.2) -> tuple[np.ndarray, np.ndarray, float]:
    """The square of ``frame`` (RGB uint8 (H, W, 3)) around face points (``(N, 2+)`` px),
    ``margin`` times their larger extent, edges replicated where it leaves the frame; returns
    ``(crop, offset, extent)``: the crop's top-left corner in the frame (``(2,)`` px) and the
    points' larger extent (px)."""
    import cv2

    lo, hi = face[:, :2].min(axis=0), face[:, :2].max(axis=0)
    extent = float((hi - lo).max())
    centre, half = (lo + hi) / 2, max(extent * margin / 2, 8.0)
    x0, y0 = (centre - half).round().astype(int)
    side = round(2 * half)
    h, w = frame.shape[:2]
    pad = max(0, -x0, -y0, x0 + side - w, y0 + side - h)
    if pad:
        frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = np.ascontiguousarray(frame[y0 + pad : y0 + pad + side, x0 + pad : x0 + pad + side])
    return crop, np.array([x0, y0], np.float64), extent


@dataclass(frozen=True)
class IdentityGuardConfig:
    """Settings of the avatar's identity guard (see the module doc).

    ``margin``: a drawn face is refused at a dlib distance <= ``threshold + margin`` from the
    signer's mean embedding. The guard embeds with dlib's 5-point alignment on a crop of the drawn
    frame, and the signer on ``signer_samples`` frames; the read-back uses the 68-point alignment
    on the encoded video and every frame. Measured: the alignments differed by up to 0.038 on the
    same faces (171 frames of a 20 px-between-the-eyes clip), the means by 0.012-0.013. Which
    faces the detector finds moves the mean further: the signer read with dlib's defaults
    (:attr:`viewer`: upsampled once at any size, 68 points) lay 0.08 from the guard's own reading
    on the 540x720 sample clip, 0.075 on ASL HOUSE (320x240), 0.03 on DGS ZUG (640x480) and 0.16
    on the sample clip blurred, so the guard keeps drawn faces from both readings.
    """

    enabled: bool = setting(
        True, "check the drawn faces against the signer's face (dlib, distance 0.6 + margin; every "
        "frame near that distance) and draw a face that is recognised blank", flag="identity-guard",
    )  # fmt: skip
    margin: float = setting(0.05, "identity guard: refuse a drawn face at a dlib distance <= 0.6 + this", cli=False)
    threshold: float = setting(DlibConfig.threshold, "the recogniser's 'same person' distance", cli=False)
    signer_samples: int = setting(30, "identity guard: frames of the input on which the signer's face is embedded "
                                  "(one in 5 on a clip shorter than 5 times this, at least 8)", cli=False)
    drift: tuple[float, float] = (0.04, 0.01)  # see GuardedRenderer: (a, b), k frames drift <= a + b k
    # a face within the limit is drawn again with its expression calmed by each of these in turn
    # (0 = as the signer, 1 = the canonical face's), then blank: on a talking head whose strong
    # expressions brought the avatar near him, calming by half moved 11 of 12 such frames past the
    # limit (0.58-0.65 -> 0.65-0.71), by all of it 12 of 12 (0.70-0.75)
    calm: tuple[float, ...] = (0.5, 1.0)
    max_stride: int = 8  # the most frames between two checks
    probe_frames: int = setting(12, "palette or face shape auto: frames (spread over the video) drawn in each look", cli=False)
    # auto keeps the first look whose probes all cost nothing (every probe face at limit + near or
    # beyond; the default palette on the average face, unless it resembles the signer), else the
    # one whose probes come nearest the limit least: a probe costs 0 at limit + near, 1 at
    # limit - near (linear between), and the look with the smallest sum wins (a tie: the furthest
    # nearest probe). A later cost-free look is not drawn, though its faces may lie further still
    # (the guard checks every frame either way): when auto kept only looks 0.1 past the limit, a
    # palette added last, furthest from the signer of a 192x144 NGT clip, took it from dark-skin
    # (both cost-free) and the mouth read back at r 0.20 (0.65 in dark-skin)
    near: float = 0.05
    # a later look must cost this much less than the best earlier one to be drawn instead: on the
    # 192x144 NGT clip mirrored, light-skin/short (cost 0.092) took it from dark-skin (0.097), a
    # two-hundredth of one probe face apart, and the mouth opening read back at gain 0.23 (dark-skin:
    # 1.07-1.97 on the unmirrored clip). Among 22 clips no other choice was that close (the next:
    # 0.062 apart, kept). The guard checks every drawn frame whichever look is drawn.
    tie: float = 0.05
    # ... or, at a cost within ``tie``, have its nearest face this much further (dlib distance): the
    # NGT looks' nearest faces were 0.0015 apart; where every look is the signer's own face (all
    # costs alike), the look whose nearest face is furthest is still drawn
    tie_distance: float = 0.01
    # Where the drawn face is small (the first look's probe faces' median face unit under
    # small_face_px: just under retarget.BodyProportions.min_face_px, 30, so a face the retargeter
    # grew to that size is not, one its 1.25x cap kept under it is: the NGT clip 28.9 px, the DGS
    # clip at a third 23.7, ASL DIFFERENT 30.1), only looks on the first look's face shape are drawn, and
    # these replace tie and tie_distance. At that size the shorter face's squeezed mouth reads
    # worse (whole clips, guard off, r/gain of the mouth opening read back against the signer):
    # the 192x144 NGT clip (28 px) light-skin 0.56/0.56, light-skin/short -0.05/0.16 (the guard
    # had taken it from dark-skin at probe cost 0.04 against 0.13; in the bench it read
    # 0.28/0.17); the DGS clip at a third (24 px) default 0.64/1.37, default/short 0.37/1.58,
    # light-skin 0.57/1.08, light-skin/short 0.41/1.43; at 34 px (ASL HOUSE) light-skin/short read
    # at r 0.96-0.98. And dlib's distances are noisy: the NGT clip re-encoded (bench_signing's
    # copy) moved the looks' costs by up to 0.83 (default 0.30 -> 1.14) and their nearest faces
    # by up to 0.023; taken on such a difference (0.28 against 0.44), dark-skin-black-hair read
    # the mouth at 0.25/1.43, dark-skin, kept before at the old face size, 0.40-0.50/1.05-1.44.
    small_face_px: float = 29.5
    small_face_tie: float = 1.0
    small_face_tie_distance: float = 0.03

    def __post_init__(self) -> None:
        if not self.margin >= 0:  # NaN too: the guard would never redraw a face
            raise ValueError(f"identity guard margin must be 0 or more, got {self.margin}")
        if not self.threshold > 0:  # NaN or <= 0: no drawn face would come near the signer's
            raise ValueError(f"identity guard threshold must be more than 0, got {self.threshold}")
        if min(self.tie, self.tie_distance, self.small_face_tie, self.small_face_tie_distance) < 0:
            raise ValueError("identity guard tie, tie_distance and their small_face_ forms must be 0 or more")
        if self.signer_samples < 1 or self.probe_frames < 1:
            raise ValueError("identity guard signer_samples and probe_frames must be at least 1")
        if self.near <= 0:
            raise ValueError(f"identity guard near must be more than 0, got {self.near}")
        if not all(0.0 < t <= 1.0 for t in self.calm):
            raise ValueError(f"identity guard calm steps must lie in (0, 1], got {self.calm}")

    @property
    def limit(self) -> float:
        return self.threshold + self.margin

    @property
    def viewer(self) -> DlibConfig:
        """dlib as a viewer's recogniser runs it by default (:func:`~signanon.recognition.viewer_config`).
        See :attr:`SignerFace.viewed`."""
        return viewer_config(self.threshold)


# -- where a face is ---------------------------------------------------------------------------


def _box_of(face_xy: np.ndarray) -> tuple[int, int, int, int]:
    """A dlib-like square box for a 478-point face mesh (px): the brows to the chin."""
    brows = face_xy[list(BROW_UPPER_L) + list(BROW_UPPER_R)]
    x0, x1 = face_xy[:, 0].min(), face_xy[:, 0].max()
    y0, y1 = brows[:, 1].min(), face_xy[:, 1].max()
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2))


def embed_face(embedder: DlibEmbedder, frame: np.ndarray, face_xy: np.ndarray) -> Face:
    """dlib's embedding of the face whose mesh points ``face_xy`` (``(478, 2)`` px) lie in the RGB
    uint8 ``frame``: the detected face nearest the mesh's centre, found on a crop around it at the
    frame's own resolution (upsampled for the detector only); where dlib detects none, the
    embedding at the mesh's box (a face a recogniser might still read)."""
    crop, offset, extent = face_square(frame, face_xy)
    local = face_xy - offset
    up = sum(extent < limit for limit in _UPSAMPLE_BELOW)
    found = embedder.faces(crop, upsample=up)
    if found:
        centre = local.mean(axis=0)
        return min(found, key=lambda f: np.hypot((f.box[0] + f.box[2]) / 2 - centre[0], (f.box[1] + f.box[3]) / 2 - centre[1]))
    return embedder.face_at(crop, _box_of(local))


# -- the signer ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignerFace:
    """The signer as the recogniser sees them: ``samples`` ``(n, 128)`` float64 dlib embeddings
    (n may be 0: dlib found no face), compared through their mean, as the read-back does; and
    ``bodies``, raw MediaPipe Holistic ``(data, confidence)`` (float32 ``(586, 3)``, ``(586,)``) of
    up to ``probe_frames`` of the same frames, spread over the whole clip, that have a body (empty
    unless asked for): :func:`choose_look` draws its probe faces on them."""

    samples: np.ndarray
    bodies: tuple[tuple[np.ndarray, np.ndarray], ...] = ()
    others: np.ndarray = field(default_factory=lambda: np.zeros((0, 128)))
    """``(k, 128)``: the mean embedding of each other person the sampled frames show (a second
    signer, an interpreter beside a speaker); a drawn face must not be recognised as them either."""
    viewed: np.ndarray = field(default_factory=lambda: np.zeros((0, 128)))
    """``(m, 128)``: the largest face of up to ``signer_samples`` frames spread over the clip as a
    viewer's recogniser with dlib's defaults finds it (:attr:`IdentityGuardConfig.viewer`; empty
    unless asked for). Its mean is a second reading of the signer: on a blurred 540x720 webcam
    clip the detector upsampled once missed the signer's face on most frames and took a false
    find (a 36 px box among the lights, a box over the chest) as the largest face on some, and the
    68-point alignment placed those differently, so that reading's mean lay 0.16 from ``mean``
    and an avatar face 0.72 from ``mean`` lay 0.55 from it (benchmarks/signing_issue11.txt,
    session 45)."""
    in_turn: int = 1
    """How many people are the largest face on at least a fifth of the sampled frames (2 or more:
    the clip cuts from one signer to another, or two take turns in front of the camera). ``mean``
    is then a blend of them, and lies nearer any face than they do (see :func:`people_in_turn`)."""

    @property
    def found(self) -> bool:
        """dlib found the signer on some sampled frame, either reading: where only a viewer's
        recogniser finds a face, that face is still guarded against."""
        return len(self.samples) > 0 or len(self.viewed) > 0

    @property
    def mean(self) -> np.ndarray:
        return self.samples.mean(axis=0)


class _ViewerReading:
    """The largest face of frames as ``viewer`` reads them, on ``threads`` threads beside the
    caller (dlib releases the GIL; a detector is not safe to share, so each thread has its own:
    ``viewer`` for the first, its :meth:`~signanon.recognition.DlibEmbedder.twin` for the
    others). The embeddings come back in the order the frames were given, whichever thread read
    them. At most ``2 * threads`` frames wait, so an HD clip does not pile up in memory.
    ``threads`` 0 reads each frame on the caller's thread when it is added (as before session 46)."""

    def __init__(self, viewer: DlibEmbedder, threads: int = 2):
        from concurrent.futures import ThreadPoolExecutor

        self._viewer, self._spare, self._lock, self._local = viewer, [viewer], threading.Lock(), threading.local()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="signer-viewer") if threads > 0 else None
        self._pending, self._done, self._limit = [], [], 2 * threads

    def _embedder(self) -> DlibEmbedder:
        own = getattr(self._local, "embedder", None)
        if own is None:
            with self._lock:
                own = self._spare.pop() if self._spare else None
            self._local.embedder = own = own if own is not None else self._viewer.twin()
        return own

    def _read(self, rgb: np.ndarray) -> np.ndarray | None:
        face = self._embedder().largest(rgb)
        return None if face is None else face.embedding

    def add(self, rgb: np.ndarray) -> None:
        if self._pool is None:
            self._done.append(self._read(rgb))
            return
        if len(self._pending) >= self._limit:
            self._done.append(self._pending.pop(0).result())
        self._pending.append(self._pool.submit(self._read, rgb))

    def result(self) -> np.ndarray:
        """``(m, 128)`` float64: the faces found, in frame order."""
        self._done += [future.result() for future in self._pending]
        self._pending = []
        return np.array([e for e in self._done if e is not None], np.float64).reshape(-1, 128)

    def __enter__(self) -> "_ViewerReading":
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def find_signer(
    info, config: IdentityGuardConfig, embedder: DlibEmbedder, holistic: HolisticConfig | None = None,
    viewer: DlibEmbedder | None = None, viewer_threads: int = 2,
) -> SignerFace:
    """dlib's embedding of the largest face on ``config.signer_samples`` frames spread evenly over
    the probed video ``info`` (one in 5 on a shorter clip, at least 8; decoded for this alone,
    before anything is drawn; ~0.15-0.3 s a frame). With ``viewer`` (an embedder built from
    :attr:`IdentityGuardConfig.viewer`), also :attr:`SignerFace.viewed`: its largest face on
    ``config.signer_samples`` frames, every frame of a shorter clip (~0.2 s a frame at 540x720,
    0.6 s at 1440x1080, on ``viewer_threads`` threads beside this one): its false finds come and
    go, and their share in the mean is what moves it. On the blurred webcam clip of the tests (58
    frames, the face found on 14), 20 frames found 4 faces, whose mean lay 0.10 from the mean over
    every frame; 30 frames found 7, 0.05. The whole clip's mean is what the read-back compares with; a mean of the frames seen so far is not: on a talking
    face the mean of the first 30 / 50 / 100 frames lay 0.12 / 0.13 / 0.08 from the whole clip's,
    30 evenly spread frames 0.012. A frame of 480 px or more whose face the detector misses at
    its own resolution is looked at again 2x upsampled.

    With ``holistic``, ``config.probe_frames`` of those frames, spread evenly among them, are also
    given to a still-image MediaPipe Holistic (``SignerFace.bodies``): the look is then chosen on
    the whole clip, not on its first seconds (on a talking head, probes from the first 90 frames
    chose a look whose faces came within the guard's limit on 43 of 216 frames; with probes spread
    over the clip and :func:`choose_look`'s cost, 17)."""
    from ..landmarks.geometry import upright_body_present
    from ..landmarks.holistic import HolisticEstimator
    from ..video import iter_selected_frames
    from ..video.people import sampled_indices

    samples, bodies, every = [], [], []
    count = min(config.signer_samples, max(8, info.frame_count // 5))
    own = sampled_indices(info.frame_count, count)
    seen = sampled_indices(info.frame_count, config.signer_samples) if viewer is not None else set()
    probes = set(np.linspace(0, count - 1, min(config.probe_frames, count)).round().astype(int).tolist())
    still = HolisticEstimator(replace(holistic, static_image_mode=True)) if holistic is not None else contextlib.nullcontext()
    k = 0  # the own samples taken so far
    reading = _ViewerReading(viewer, viewer_threads) if viewer is not None else contextlib.nullcontext()
    with still as estimator, reading as viewing:
        for index, rgb in iter_selected_frames(info, own | seen):
            if index in seen:
                viewing.add(rgb)
            if index not in own:
                continue
            faces = embedder.faces(rgb) or (embedder.faces(rgb, upsample=1) if min(rgb.shape[:2]) >= 480 else [])
            if faces:
                samples.append(max(faces, key=lambda f: f.area).embedding)
                every += [f.embedding for f in faces]
            if estimator is not None and k in probes:
                data, confidence = estimator(rgb)
                if upright_body_present(confidence, data):
                    bodies.append((data, confidence))
            k += 1
        viewed_faces = viewing.result() if viewing is not None else np.zeros((0, 128))
    signer = np.array(samples, np.float64).reshape(-1, 128)
    if not len(signer):
        return SignerFace(signer, tuple(bodies), viewed=viewed_faces)
    others = other_people(every, signer.mean(axis=0), config.threshold)
    return SignerFace(signer, tuple(bodies), others, viewed_faces, people_in_turn(signer, config.threshold))


def _grouped(faces: Sequence[np.ndarray], threshold: float) -> list[list[np.ndarray]]:
    """Faces grouped into people in turn: each joins the first group whose mean is within
    ``threshold`` of it, else starts one."""
    groups: list[list[np.ndarray]] = []
    for face in faces:
        for group in groups:
            if np.linalg.norm(face - np.mean(group, axis=0)) <= threshold:
                group.append(face)
                break
        else:
            groups.append([face])
    return groups


def other_people(faces: Sequence[np.ndarray], signer_mean: np.ndarray, threshold: float) -> np.ndarray:
    """``(k, 128)``: one mean embedding per person among ``faces`` (every face of the sampled
    frames) other than the signer (:func:`_grouped`); a group whose mean lies within half the
    threshold of the signer's mean is the signer, and one face alone is not taken for a person (a
    detector's false find: expressive_man's frame 135 has one, 0.7 from the signer). Where the
    largest face changes hands between two people, the signer's mean is a blend of them and both
    come back here."""
    means = [np.mean(g, axis=0) for g in _grouped(faces, threshold) if len(g) > 1]
    return np.array([m for m in means if np.linalg.norm(m - signer_mean) > threshold / 2], np.float64).reshape(-1, 128)


def people_in_turn(samples: np.ndarray, threshold: float, share: float = 0.2) -> int:
    """How many people (:func:`_grouped`) are the largest face on at least ``share`` of the
    sampled frames (``samples``: ``(n, 128)``, each frame's largest face), at least two frames
    each; 1 where none is (no face, or a crowd).

    Where it is 2 or more, the signer's mean embedding, which the guard and a read-back over the
    whole clip compare with, is a blend that lies near any face: ASL HOUSE's first 60 frames cut to
    DGS ZUG's 60 (the two signers 0.88 apart, each 0.44 from the blend) drew no look 0.6 from the
    blend (its nearest probe 0.56) and 114 of 120 faces blank, though those lay 0.71 and 0.82 or
    more from the two signers; each shot anonymized alone drew every face with its expression,
    0.70 and 0.80 or more from its signer (and one frame 0.59 from the blend)."""
    groups = _grouped(list(samples), threshold)
    return max(1, sum(len(g) >= max(2, share * len(samples)) for g in groups))


def distance_to_signer(embedding: np.ndarray, signer: SignerFace) -> float:
    """The distance to the signer's mean embedding (as the read-back measures it; the nearest
    single sample is 0.01-0.03 nearer and would blank twice the frames for no measured gain), to
    the mean of the signer as a viewer's recogniser reads them (:attr:`SignerFace.viewed`), or
    to another person's the clip shows, whichever is nearest: the drawn face follows one person's
    landmarks, and Holistic may follow the person whose face is not the largest."""
    d = min(float(np.linalg.norm(embedding - faces.mean(axis=0))) for faces in (signer.samples, signer.viewed) if len(faces))
    if len(signer.others):
        d = min(d, float(np.linalg.norm(signer.others - embedding, axis=1).min()))
    return d


# -- every drawn frame ---------------------------------------------------------------------------


@dataclass
class GuardCounts:
    """What the guard did over a run's drawn frames (its part of the run summary)."""

    checked: int = 0  # drawn faces compared with the signer (the others: far enough at the last check)
    unchecked: int = 0  # drawn faces not checked because dlib found no face of the signer's at all
    calmed: int = 0  # within the limit, drawn again with a calmer expression that is not
    blanked: int = 0  # within the limit even with no expression: drawn with a blank face
    blurred: int = 0  # the blank face too was within the limit: blurred
    min_distance: float | None = None  # the nearest drawn face to the signer, before any redraw
    look: dict = field(default_factory=dict)  # choose_look's record
    other_people: int = 0  # other people the input shows, whom the drawn face is kept from too
    signers_in_turn: int = 1  # people who are the largest face in turn (SignerFace.in_turn)

    def as_dict(self) -> dict:
        return {
            "checked": self.checked, "unchecked": self.unchecked, "calmed": self.calmed,
            "blanked": self.blanked, "blurred": self.blurred, "min_distance": None if self.min_distance is None else round(self.min_distance, 4),
            **({"look": self.look} if self.look else {}),
            **({"other_people": self.other_people} if self.other_people else {}),
            **({"signers_in_turn": self.signers_in_turn} if self.signers_in_turn > 1 else {}),
        }  # fmt: skip

    def add(self, other: "GuardCounts") -> None:
        self.checked += other.checked
        self.unchecked += other.unchecked
        self.calmed += other.calmed
        self.blanked += other.blanked
        self.blurred += other.blurred
        if other.min_distance is not None:
            self.min_distance = other.min_distance if self.min_distance is None else min(self.min_distance, other.min_distance)
        self.look = self.look or other.look
        self.other_people = max(self.other_people, other.other_people)
        self.signers_in_turn = max(self.signers_in_turn, other.signers_in_turn)


def drawn_face(embedder: DlibEmbedder, frame: np.ndarray, pose: AvatarPose, scale: float = 1.0) -> Face:
    """dlib's embedding of the face drawn for ``pose`` in ``frame`` (RGB uint8 ``(H, W, 3)``, drawn
    ``scale`` output pixels per pose pixel): on the square around it, encoded as the output will
    be (H.264 at the writer's quality)."""
    from ..video.writer import as_encoded

    face_xy = pose.face[:, :2].astype(np.float64) * scale
    crop, offset, _ = face_square(frame, face_xy, margin=3.0)
    return embed_face(embedder, as_encoded(crop), face_xy - offset)


class GuardedRenderer:
    """``render(pose)``: the frame of an :class:`~.renderer.AvatarRenderer`, its face checked
    against ``signer`` (see the module doc); thread-safe (one dlib embedder per drawing thread).
    ``counts`` tallies what it did.

    A check costs ~0.1 s (dlib's ResNet on two cores, no BLAS), drawing a frame ~0.02 s, so a face
    far from the limit is not checked on every frame: frames are numbered in the order they are
    drawn (one at a time, in frame order, for the run to be repeatable), and frame ``i`` is checked unless the last check (frame ``j``, distance ``d``) leaves room
    for ``k = i - j`` frames of drift, ``d - limit > a + b k`` with ``(a, b) = config.drift``, and
    ``k <= config.max_stride``. Measured on the drawn face of a 20 px-between-the-eyes clip (the
    noisiest): the distance moved at most 0.035 / 0.041 / 0.051 / 0.061 over 1 / 2 / 3 / 5 frames.
    A face near the limit is checked on every frame."""

    def __init__(self, renderer, signer: SignerFace, config: IdentityGuardConfig, embedder_factory: Callable[[], DlibEmbedder]):
        self.renderer, self.signer, self.config = renderer, signer, config
        self._factory = embedder_factory
        self._thread_local = threading.local()
        self._lock = threading.Lock()
        self._drawn = 0  # frames numbered so far
        self._last: tuple[int, float] | None = None  # (frame, distance) of the latest check
        self.counts = GuardCounts(other_people=len(signer.others), signers_in_turn=signer.in_turn)

    def _embedder(self) -> DlibEmbedder:
        embedder = getattr(self._thread_local, "embedder", None)
        if embedder is None:
            embedder = self._thread_local.embedder = self._factory()
        return embedder

    def distance(self, frame: np.ndarray, pose: AvatarPose) -> float:
        """The distance of the face drawn for ``pose`` in ``frame`` to the signer."""
        return distance_to_signer(drawn_face(self._embedder(), frame, pose, self.renderer.scale).embedding, self.signer)

    def _due(self, index: int) -> bool:
        if self._last is None:
            return True
        last, d = self._last
        k = index - last
        a, b = self.config.drift
        return k > self.config.max_stride or d - self.config.limit <= a + b * k

    def render(self, pose: AvatarPose) -> np.ndarray:
        frame = self.renderer.render(pose)
        with self._lock:
            index, self._drawn = self._drawn, self._drawn + 1
            drawn = pose.face is not None and pose.presence > 0.0  # an empty frame has no face to check
            due = drawn and self.signer.found and self._due(index)
            if drawn and not self.signer.found:
                self.counts.unchecked += 1
        if not due:
            return frame
        d = self.distance(frame, pose)
        treated = None
        if d <= self.config.limit:
            frame, treated = self._unrecognisable(pose)
        with self._lock:
            if self._last is None or index > self._last[0]:
                self._last = (index, d)
            c = self.counts
            c.checked += 1
            if treated is not None:
                setattr(c, treated, getattr(c, treated) + 1)
            c.min_distance = d if c.min_distance is None else min(c.min_distance, d)
        return frame

    def _unrecognisable(self, pose: AvatarPose) -> tuple[np.ndarray, str]:
        """The frame of ``pose`` drawn so that its face is beyond the limit, and how: the
        expression calmed by each of ``config.calm`` in turn, else a blank face, else blurred."""
        canonical = self.renderer.canonical
        for t in self.config.calm:
            calm = calmed(pose, t, canonical)
            frame = self.renderer.render(calm)
            if self.distance(frame, calm) > self.config.limit:
                return frame, "calmed"
        still = calmed(pose, 1.0, canonical)
        frame = self.renderer.render(still, face_features=False)
        if self.distance(frame, still) > self.config.limit:
            return frame, "blanked"
        return _blur_face(frame, pose.face[:, :2] * self.renderer.scale), "blurred"


def calmed(pose: AvatarPose, t: float, canonical: CanonicalFace | None = None) -> AvatarPose:
    """``pose`` with its expression moved ``t`` of the way (0-1) to the neutral ``canonical`` face
    it was animated on (default: the average face), in the same head pose (the canonical face
    fitted to the drawn one by a similarity transform)."""
    face = pose.face.astype(np.float64)
    canon = (canonical or load_canonical_face()).points.astype(np.float64)
    s, rot, shift = fit_stable(canon, face)
    neutral = s * canon @ rot.T + shift
    return pose.with_face(((1.0 - t) * face + t * neutral).astype(np.float32))


def _blur_face(frame: np.ndarray, face_xy: np.ndarray) -> np.ndarray:
    """``frame`` with the square around the face (twice its extent) blurred past recognition."""
    import cv2

    lo, hi = face_xy.min(axis=0), face_xy.max(axis=0)
    extent = float((hi - lo).max())
    c = (lo + hi) / 2
    h, w = frame.shape[:2]
    x0, y0 = np.clip((c - extent).astype(int), 0, [w, h])
    x1, y1 = np.clip((c + extent).astype(int), 0, [w, h])
    out = frame.copy()
    if x1 > x0 and y1 > y0:
        sigma = max(2.0, extent / 4)
        out[y0:y1, x0:x1] = cv2.GaussianBlur(out[y0:y1, x0:x1], (0, 0), sigma)
    return out


# -- the look -------------------------------------------------------------------------------------


def probe_cost(distance: float, config: IdentityGuardConfig) -> float:
    """What a probe face at dlib ``distance`` from the signer costs its look (:func:`choose_look`):
    0 at ``limit + near`` or beyond, 1 at ``limit - near`` or nearer, linear between."""
    return float(np.clip((config.limit + config.near - distance) / (2 * config.near), 0.0, 1.0))


def _ties(config: IdentityGuardConfig, small: bool) -> tuple[float, float]:
    """``(tie, tie_distance)``, or on a small face ``(small_face_tie, small_face_tie_distance)``."""
    return (config.small_face_tie, config.small_face_tie_distance) if small else (config.tie, config.tie_distance)


def _beats(score: tuple[float, float], bar: tuple[float, float], config: IdentityGuardConfig, small: bool = False) -> bool:
    """Whether a later look scored ``score`` = (cost, -nearest) is drawn instead of the best earlier
    one, scored ``bar``: its probes cost ``config.tie`` less, or as much (within ``tie``) with its
    nearest face ``config.tie_distance`` further from the signer (on a ``small`` face, the
    ``small_face_`` ties). Differences inside both are noise, and the earlier look is kept."""
    (cost, near), (bar_cost, bar_near) = (score[0], -score[1]), (bar[0], -bar[1])
    tie, tie_distance = _ties(config, small)
    # "as much" is always within config.tie: a small face's wider tie makes a later look harder to
    # take on cost, never lets one that costs more win on distance
    return cost < bar_cost - tie or (cost <= bar_cost + config.tie and near > bar_near + tie_distance)


def _cannot_beat(score: tuple[float, float], bar: tuple[float, float], config: IdentityGuardConfig, small: bool = False) -> bool:
    """Whether a look drawn as far as ``score`` can no longer :func:`_beat <_beats>` ``bar``: its
    cost only grows and its nearest face only nears as more probes are drawn."""
    (cost, near), (bar_cost, bar_near) = (score[0], -score[1]), (bar[0], -bar[1])
    tie, tie_distance = _ties(config, small)  # exactly not _beats, as its cost grows and nearest nears
    return cost >= bar_cost - tie and (cost > bar_cost + config.tie or near <= bar_near + tie_distance)


def choose_look(
    animator,
    bodies: Sequence[tuple[np.ndarray, np.ndarray]],
    looks: Sequence[Look],
    make_renderer: Callable[[Look], object],
    signer: SignerFace,
    config: IdentityGuardConfig,
    embedder: DlibEmbedder,
) -> tuple[Look, dict]:
    """The look (palette and face shape, in order of preference) to draw: the first whose drawn
    faces all lie ``config.near`` beyond the guard's limit from the signer, else the one whose
    faces come nearest the limit least. ``config.probe_frames`` of ``bodies`` (raw
    ``(data, confidence)`` frames with a body: the signer's spread over the clip,
    :attr:`SignerFace.bodies`, or else the calibration's) are animated (on a copy of the animator's
    body half, on each look's face shape) and drawn in each look. A probe face at distance ``d``
    costs ``clip((limit + near - d) / (2 near), 0, 1)``; a look scores the sum (then, on a tie, its
    nearest face; a later look must beat the best earlier one by ``config.tie`` of cost, or by
    ``config.tie_distance`` on its nearest face at the same cost: :func:`_beats`). The sum
    counts the frames the guard would have to redraw, softly: the nearest
    face alone, scored before, is one frame's noise (on a talking head it ranked first the look
    that came within the limit on 43 of 216 frames; three others did on 14-20). The first look is
    the default palette on the average face, the one the drawing is tuned on (a 192x144 clip's
    mouth read back at gain 0.55 in it, 0.16 in the light-skin palette), so it is kept unless it
    resembles the signer. ``make_renderer(look)`` gives the :class:`~.renderer.AvatarRenderer` the
    run draws ``look`` with, at the output's size (its ``scale`` places the face in the drawing), so
    the probe faces are the size dlib will see in the output. Where the first look's probe faces are small (``config.small_face_px``),
    only the looks on the first look's face shape are drawn, and a later look must beat an earlier
    one by ``config.small_face_tie`` / ``small_face_tie_distance``: a squeezed mouth that small
    reads worse, and dlib's distances are noisier (see :class:`IdentityGuardConfig`).

    A look stops being drawn as soon as it can no longer win (its cost only grows and its nearest
    face only nears); the probes are drawn nearest-first as the first look ranked them, so a look
    that loses mostly loses early. The choice is the one drawing every probe in every look would
    make. Returns ``(look, record)``: ``scores`` by :attr:`~.style.Look.name` of the looks drawn
    (``[cost, nearest]``; of a look stopped early, as far as it was drawn), ``chosen``,
    ``face_px`` (the first look's probe faces) and ``small_face``; where dlib
    found no face of the signer's, the first look."""
    from .animator import AvatarAnimator

    if not signer.found or len(looks) == 1:
        return looks[0], {"chosen": looks[0].name, "scores": {}, "signer_samples": len(signer.samples)}
    picks = np.unique(np.linspace(0, len(bodies) - 1, config.probe_frames).round().astype(int))

    def probe_poses(shape_of: Look) -> list[AvatarPose | None]:
        probe = AvatarAnimator(copy.deepcopy(animator.retargeter), animator.face.with_canonical(shape_of.canonical()))
        return [p if p is not None and p.face is not None else None for p in (probe(*bodies[i]) for i in picks)]

    # face shape -> probe poses (in picks order)
    poses_of: dict[str, list[AvatarPose | None]] = {looks[0].shape: probe_poses(looks[0])}
    sizes = [p.face_scale for p in poses_of[looks[0].shape] if p is not None]
    face_px = float(np.median(sizes)) if sizes else np.inf  # the first look's probe faces' median face unit
    small = face_px < config.small_face_px
    order: list[int] | None = None  # the probes, nearest-first in the first look
    scores: dict[str, tuple[float, float]] = {}  # look -> (cost, -nearest): smaller is better
    best: Look | None = None
    for look in looks:  # in order, up to the first safe one (the later ones are not drawn)
        if small and look.shape != looks[0].shape:
            continue  # a squeezed mouth that small reads worse
        if look.shape not in poses_of:
            poses_of[look.shape] = probe_poses(look)
        poses = poses_of[look.shape]
        renderer = make_renderer(look)
        bar = scores[best.name] if best is not None else (np.inf, np.inf)
        total, nearest, seen = 0.0, np.inf, []
        for k in order if order is not None else range(len(poses)):
            if poses[k] is None:
                continue
            d = distance_to_signer(drawn_face(embedder, renderer.render(poses[k]), poses[k], renderer.scale).embedding, signer)
            seen.append((d, k))
            total, nearest = total + probe_cost(d, config), min(nearest, d)
            if best is not None and _cannot_beat((total, -nearest), bar, config, small):
                break
        if order is None:
            order = [k for _, k in sorted(seen)]
        scores[look.name] = (total, -nearest) if seen else (np.inf, np.inf)
        if best is None or _beats(scores[look.name], bar, config, small):
            best = look
        if nearest >= config.limit + config.near:  # every probe cost nothing
            break
    probes = max((sum(p is not None for p in v) for v in poses_of.values()), default=0)
    record = {name: [round(c, 3), round(-n, 4)] for name, (c, n) in scores.items()}
    size = {"face_px": round(face_px, 1), "small_face": small} if np.isfinite(face_px) else {}
    return best, {"chosen": best.name, "scores": record, "probe_frames": probes, "signer_samples": len(signer.samples), **size}
