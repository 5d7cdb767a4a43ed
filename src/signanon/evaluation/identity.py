"""Identity removal measured with a real face recogniser (the paper's Table 1, and more).

A face embedder turns an RGB frame into one embedding per detected face. Two videos (original and
anonymized) are embedded frame by frame; the measures compare them:

* ``original_mean``: mean cosine similarity between faces of the *same signer*: every pair of
  sampled original frames, plus every pair across the extra clips of that signer. It is the
  ceiling: what "recognisably the same person" looks like to this recogniser.
* ``anonymized_mean`` / ``anonymized_max``: cosine similarity between the original face and the
  anonymized face of the same frame, averaged / worst frame.
* ``reid_rate``: share of sampled frames (where the original shows a face) in which the recogniser
  declares the anonymized face the same person as the original face of that frame, at its standard
  threshold. A frame where the anonymized video has no detectable face counts as not re-identified,
  and is also counted in ``anonymized_frames_without_face`` (never silently dropped).
* ``reid_rate_gallery``: the stronger attacker: the anonymized face matched against *every*
  original face (all frames and extra clips); re-identified when any is within the threshold.
* ``reid_rate_signer_mean`` (and ``signer_mean_distance_min``): the independent read-back's own
  measure (``../shared/tools/readback.py identity``): the largest anonymized face of every sampled
  frame against the mean of the original's largest faces, a share of all sampled frames. The mean
  takes in whatever the detector takes for the largest face, false finds included, so on a blurred
  clip it can lie 0.16 from the signer's face and nearer any other face than the signer is.
* ``reid_rate_every_face`` (and ``every_face_distance_min``): the privacy gate's measure
  (:mod:`.verify`): every face of the anonymized frame, not only the largest, against every face of
  every original frame and extra clip, so a second person left recognisable counts too.

dlib's ResNet embeddings are not centred (every face lies in one cone of the 128-d space), so its
cosine similarity is high even between strangers (about 0.74-0.88 on the five people of the test
photos, against 0.95-0.97 for the same person); dlib's own measure is the Euclidean distance with
0.6 as "same person". Both are reported. Centred embedders (FaceNet, ArcFace) use cosine natively.

Centred cosine (the paper's units): dlib's embeddings minus the mean embedding of a population of
public faces (:data:`POPULATION_FILE`, built by ``tools/build_face_population.py``; provenance in
``assets/SOURCES.md``), then the cosine. Unrelated faces land near 0 and the same person high, the
scale of DiffSLVA's Table 1 (FaceNet: same signer 0.77-0.89, anonymized -0.02 to 0.13). Every
``*_centred`` key is that; ``identity.population`` says which population was used.

Embedders:

* :class:`DlibEmbedder`: HOG face detector + 68-point alignment (:data:`EVALUATE_ALIGNMENT`, the
  read-back's) + dlib ResNet (128-d), from the
  model files of the ``face-recognition-models`` package (located without importing it: its
  ``__init__`` needs ``pkg_resources``, gone from setuptools >= 81).
* :class:`TorchFaceEmbedder`: any face-recognition network given as a weights file by path
  (TorchScript ``.pt``/``.pth`` or ``.onnx``); presets :data:`FACENET_VGGFACE2` (InceptionResnetV1
  trained on VGGFace2, the paper's recogniser, 160x160 input) and :data:`ARCFACE` (112x112).
  Faces are found and aligned with dlib; torch (or onnxruntime) is imported only when the model is
  loaded. A callable can be passed instead of a file (tests, custom runtimes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import InputError, SignanonError
from ..recognition import (
    DlibConfig, DlibEmbedder, DlibFaceFinder, Face, FaceEmbedder, check_frame, cosine_similarity, dlib_module,
    VIEWER_ALIGNMENT, native_distance, native_distances, rect_box,
)  # fmt: skip

POPULATION_FILE = Path(__file__).resolve().parent / "assets" / "dlib_population_mean.npz"
# evaluate, --verify and the population mean embed with dlib's 68-point alignment, as the
# independent read-back does, so that their distances are the read-back's
EVALUATE_ALIGNMENT = VIEWER_ALIGNMENT
# DiffSLVA's Table 1 (FaceNet cosine, centred by construction): (low, high) over its clips
PAPER_TABLE1 = {"same_signer": (0.77, 0.89), "anonymized": (-0.02, 0.13)}


# --------------------------------------------------------------------------------------------
# The population that centres dlib's embeddings


@dataclass(frozen=True)
class Population:
    """The mean embedding of a population of faces: ``mean`` float64 (D,), how many ``people``
    (each weighted equally in the mean) and ``embeddings`` went into it, per source ``groups``
    (name -> people), the ``embedder`` that made them and the ``file`` it was read from."""

    mean: np.ndarray
    people: int
    embeddings: int
    groups: dict[str, int]
    embedder: str
    file: str

    def describe(self) -> dict:
        return {"file": self.file, "people": self.people, "embeddings": self.embeddings,
                "groups": dict(self.groups), "embedder": self.embedder, "weighting": "each person equally"}


def load_population(path: str | Path | None = None) -> Population:
    """Read a population file (default: the shipped :data:`POPULATION_FILE`)."""
    path = Path(path) if path is not None else POPULATION_FILE
    if not path.is_file():
        raise InputError(f"face population file not found: {path}")
    with np.load(path) as z:
        return Population(
            mean=np.asarray(z["mean"], np.float64),
            people=len(z["people"]),
            embeddings=int(z["people_embeddings"].sum()),
            groups=dict(zip(z["groups"].tolist(), z["group_people"].astype(int).tolist())),
            embedder=str(z["embedder"]),
            file=path.name,
        )


def centred_cosine(a: np.ndarray, b: np.ndarray, mean: np.ndarray) -> float:
    """Cosine similarity of ``a - mean`` and ``b - mean`` (all (D,)), in [-1, 1]."""
    return cosine_similarity(np.asarray(a, np.float64) - mean, np.asarray(b, np.float64) - mean)


# --------------------------------------------------------------------------------------------
# Networks from weights by path (FaceNet, ArcFace): torch / onnxruntime only when used


@dataclass(frozen=True)
class TorchEmbedderSpec:
    """How to feed one face-recognition network.

    The aligned face chip is ``size`` x ``size`` RGB; the network input is float32
    ``(N, 3, size, size)`` = ``(chip - mean) / std``. ``padding`` is dlib's chip padding (0.25 =
    the face plus a quarter of its size on each side). Embeddings are L2-normalised and compared
    with cosine distance; ``threshold`` is a commonly used "same person" cosine distance for the
    network (calibrate it on your own faces).
    """

    name: str
    size: int
    mean: float = 127.5
    std: float = 128.0
    padding: float = 0.25
    threshold: float = 0.6


# FaceNet (InceptionResnetV1, VGGFace2): 160x160, (x - 127.5) / 128; L2 distance 1.1 between unit
# vectors = cosine distance 0.605.
FACENET_VGGFACE2 = TorchEmbedderSpec("facenet-vggface2", size=160, std=128.0, padding=0.25, threshold=0.605)
# ArcFace (insightface ResNet): 112x112, (x - 127.5) / 127.5; cosine similarity ~0.3 = same person.
ARCFACE = TorchEmbedderSpec("arcface", size=112, std=127.5, padding=0.0, threshold=0.7)
EMBEDDER_PRESETS = {"facenet": FACENET_VGGFACE2, "arcface": ARCFACE}

Network = Callable[[np.ndarray], np.ndarray]


def load_network(weights: str | Path) -> Network:
    """A callable ``(N, 3, S, S) float32 -> (N, D)`` from a TorchScript (.pt/.pth/.ts) or .onnx file."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise InputError(f"embedder weights not found: {path}")
    if path.suffix.lower() == ".onnx":
        return _load_onnx(path)
    return _load_torchscript(path)


def _load_torchscript(path: Path) -> Network:
    try:
        import torch
    except ImportError:
        raise SignanonError(
            "this embedder needs PyTorch; install it with: pip install torch (CPU is enough)"
        ) from None
    try:
        module = torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as err:  # noqa: BLE001 - any load failure is the file's fault
        raise InputError(
            f"embedder weights are not a TorchScript model ({type(err).__name__}); export the "
            f"network with torch.jit.script/trace and save it: {path}"
        ) from None

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(batch)).cpu().numpy()

    return run


def _load_onnx(path: Path) -> Network:
    try:
        import onnxruntime
    except ImportError:
        raise SignanonError(
            "this embedder needs onnxruntime; install it with: pip install onnxruntime"
        ) from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def run(batch: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {input_name: batch})[0])

    return run


class TorchFaceEmbedder:
    """A face-recognition network by path (or callable), with dlib detection and alignment."""

    metric = "cosine"

    def __init__(
        self,
        spec: TorchEmbedderSpec,
        network: str | Path | Network,
        *,
        upsample: int | None = None,
        model_dir: Path | None = None,
    ):
        self.spec = spec
        self.name = spec.name
        self.threshold = float(spec.threshold)
        self._net = network if callable(network) else load_network(network)
        self._finder = DlibFaceFinder(upsample, model_dir)

    def chips(self, rgb: np.ndarray, shapes: Sequence) -> np.ndarray:
        """Aligned face chips: uint8 ``(N, size, size, 3)``."""
        dlib = dlib_module()
        size = self.spec.size
        out = np.zeros((len(shapes), size, size, 3), np.uint8)
        for i, shape in enumerate(shapes):
            out[i] = dlib.get_face_chip(rgb, shape, size=size, padding=self.spec.padding)
        return out

    def preprocess(self, chips: np.ndarray) -> np.ndarray:
        """uint8 ``(N, S, S, 3)`` -> float32 ``(N, 3, S, S)`` network input."""
        batch = (chips.astype(np.float32) - self.spec.mean) / self.spec.std
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))

    def faces(self, rgb: np.ndarray) -> list[Face]:
        check_frame(rgb)
        rgb = np.ascontiguousarray(rgb)
        found = self._finder.find(rgb)
        if not found:
            return []
        vectors = np.asarray(self._net(self.preprocess(self.chips(rgb, [s for _, s in found]))), np.float64)
        vectors = vectors.reshape(len(found), -1)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
        return [Face(rect_box(rect, rgb.shape), vec) for (rect, _), vec in zip(found, vectors)]

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return 1.0 - cosine_similarity(a, b)


def make_embedder(kind: str = "dlib", weights: str | Path | None = None, *, upsample: int | None = None) -> FaceEmbedder:
    """``"dlib"`` (no weights needed), or ``"facenet"`` / ``"arcface"`` with ``weights`` = a path."""
    if kind == "dlib":
        return DlibEmbedder(DlibConfig(upsample=upsample, alignment=EVALUATE_ALIGNMENT))
    if kind not in EMBEDDER_PRESETS:
        raise InputError(f"unknown face embedder {kind!r} (choose dlib, facenet or arcface)")
    if weights is None:
        raise InputError(f"the {kind} embedder needs its weights: --embedder-weights PATH")
    return TorchFaceEmbedder(EMBEDDER_PRESETS[kind], weights, upsample=upsample)


# --------------------------------------------------------------------------------------------
# Face tracks of videos and the identity measures


@dataclass(frozen=True)
class FaceTrack:
    """The largest face of each sampled frame of one video (what the identity measures compare,
    as the paper does), and every face of it (what the privacy gate compares).

    ``frames``: int ``(N,)`` sampled frame indices; ``embeddings``: float64 ``(N, D)``, NaN rows
    where no face was found; ``boxes``: int ``(N, 4)`` (x0, y0, x1, y1), -1 where none;
    ``counts``: int ``(N,)`` faces found per frame. ``frame_count``: frames in the video.
    ``every_face``: per row, float64 ``(counts[i], D)``, all the frame's faces, largest first;
    empty when the track was built from largest faces only (then :meth:`faces_in` gives those).
    """

    frames: np.ndarray
    embeddings: np.ndarray
    boxes: np.ndarray
    counts: np.ndarray
    frame_count: int
    every_face: tuple[np.ndarray, ...] = ()

    def faces_in(self, row: int) -> np.ndarray:
        """float64 ``(k, D)``: every face of sampled row ``row`` (k = 0 where none was found)."""
        if self.every_face:
            return self.every_face[row]
        return self.embeddings[row : row + 1] if self.found[row] else self.embeddings[:0]

    @property
    def found(self) -> np.ndarray:
        """bool ``(N,)``: a face was found in the sampled frame."""
        return self.counts > 0

    def embedding_at(self, frame: int) -> np.ndarray | None:
        hit = np.nonzero(self.frames == frame)[0]
        if len(hit) == 0 or not self.found[hit[0]]:
            return None
        return self.embeddings[hit[0]]


class FaceTrackBuilder:
    """Collects :class:`FaceTrack` rows while frames stream past (every ``every``-th frame)."""

    def __init__(self, embedder: FaceEmbedder, every: int = 1):
        if every < 1:
            raise ValueError("every must be >= 1")
        self.embedder, self.every = embedder, every
        self._rows: list[tuple[int, np.ndarray | None, tuple[int, ...] | None, int]] = []
        self._every: list[np.ndarray] = []
        self._seen = 0

    def wants(self, index: int) -> bool:
        return index % self.every == 0

    def add(self, index: int, rgb: np.ndarray) -> list[Face]:
        """Embed frame ``index`` if it is sampled; returns the faces found (largest first)."""
        self._seen = max(self._seen, index + 1)
        if not self.wants(index):
            return []
        faces = self.embedder.faces(rgb)
        first = faces[0] if faces else None
        self._rows.append((index, None if first is None else first.embedding,
                           None if first is None else first.box, len(faces)))
        self._every.append(np.array([f.embedding for f in faces], np.float64) if faces else np.zeros((0, 0)))
        return faces

    def build(self, frame_count: int | None = None) -> FaceTrack:
        dim = next((len(e) for _, e, _, _ in self._rows if e is not None), 128)
        n = len(self._rows)
        emb = np.full((n, dim), np.nan)
        boxes = np.full((n, 4), -1, np.int64)
        for i, (_, vec, box, _) in enumerate(self._rows):
            if vec is not None:
                emb[i], boxes[i] = vec, box
        return FaceTrack(
            frames=np.array([r[0] for r in self._rows], np.int64),
            embeddings=emb,
            boxes=boxes,
            counts=np.array([r[3] for r in self._rows], np.int64),
            frame_count=int(frame_count if frame_count is not None else self._seen),
            every_face=tuple(e if len(e) else np.zeros((0, dim)) for e in self._every),
        )


def face_track(frames: Iterable[np.ndarray], embedder: FaceEmbedder, every: int = 1) -> FaceTrack:
    """Embed every ``every``-th frame of an RGB uint8 frame stream."""
    builder = FaceTrackBuilder(embedder, every)
    for index, rgb in enumerate(frames):
        builder.add(index, rgb)
    return builder.build()


def _pair_stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "min": None, "max": None}
    arr = np.asarray(values)
    return {"mean": float(arr.mean()), "min": float(arr.min()), "max": float(arr.max())}


def same_signer_pairs(tracks: Sequence[FaceTrack], metric: str) -> tuple[list[float], list[float], list[float]]:
    """(cosines, distances, cross-clip cosines) over every pair of faces of the same signer."""
    vecs = [t.embeddings[t.found] for t in tracks]
    clip = np.concatenate([np.full(len(v), i) for i, v in enumerate(vecs)]) if vecs else np.zeros(0)
    allv = np.concatenate(vecs) if vecs else np.zeros((0, 128))
    cos, dist, cross = [], [], []
    for i in range(len(allv)):
        for j in range(i + 1, len(allv)):
            c = cosine_similarity(allv[i], allv[j])
            cos.append(c)
            dist.append(native_distance(metric, allv[i], allv[j]))
            if clip[i] != clip[j]:
                cross.append(c)
    return cos, dist, cross


@dataclass(frozen=True)
class FramePair:
    """One sampled frame compared: cosine and native distance, None when a face is missing."""

    frame: int
    original_face: bool
    anonymized_face: bool
    cosine: float | None
    distance: float | None
    reidentified: bool
    gallery_distance: float | None  # nearest original face of any frame/clip
    gallery_reidentified: bool


def compare_frames(
    original: FaceTrack, anonymized: FaceTrack, gallery: np.ndarray, embedder: FaceEmbedder
) -> list[FramePair]:
    """Compare the sampled frames both tracks share (same frame index), in frame order."""
    anon_index = {int(f): i for i, f in enumerate(anonymized.frames)}
    pairs = []
    for i, frame in enumerate(original.frames):
        j = anon_index.get(int(frame))
        if j is None:
            continue
        has_o, has_a = bool(original.found[i]), bool(anonymized.found[j])
        cos = dist = gdist = None
        if has_o and has_a:
            a, b = original.embeddings[i], anonymized.embeddings[j]
            cos, dist = cosine_similarity(a, b), embedder.distance(a, b)
        if has_a and len(gallery):
            gdist = min(embedder.distance(g, anonymized.embeddings[j]) for g in gallery)
        pairs.append(FramePair(
            frame=int(frame), original_face=has_o, anonymized_face=has_a, cosine=cos, distance=dist,
            reidentified=dist is not None and dist <= embedder.threshold,
            gallery_distance=gdist,
            gallery_reidentified=gdist is not None and gdist <= embedder.threshold,
        ))
    return pairs


def nearest_distance(faces: np.ndarray, people: np.ndarray, embedder: FaceEmbedder) -> float | None:
    """The smallest distance in ``embedder.metric`` between any row of ``faces`` float64 ``(k, D)``
    and any row of ``people`` float64 ``(m, D)``; None when either is empty. Computed as one matrix:
    per frame against every face of a long clip, a distance call per pair was the evaluation's and
    the privacy check's slowest loop."""
    if not len(faces) or not len(people):
        return None
    return float(native_distances(embedder.metric, faces, people).min())


def every_face(tracks: Sequence[FaceTrack]) -> np.ndarray:
    """float64 ``(n, D)``: every face of every sampled frame of ``tracks``."""
    rows = [t.faces_in(i) for t in tracks for i in range(len(t.frames))]
    rows = [r for r in rows if len(r)]
    return np.concatenate(rows) if rows else np.zeros((0, 128))


def signer_mean_distances(original: FaceTrack, anonymized: FaceTrack, embedder: FaceEmbedder) -> list[float]:
    """The distance of each sampled anonymized frame's largest face to the mean of the original's
    largest faces (the read-back's measure; frames without a face are left out of the list but
    count in a rate over ``anonymized.frames``)."""
    mean = original.embeddings[original.found].mean(axis=0)
    return [embedder.distance(mean, e) for e in anonymized.embeddings[anonymized.found]]


def _rate(flags: list[bool]) -> float | None:
    return float(np.mean(flags)) if flags else None


def require_face(track: FaceTrack, what: str = "the original video") -> None:
    """Raise :class:`~signanon.errors.NoPersonError` when ``track`` holds no face at all."""
    from ..errors import NoPersonError

    if not track.found.any():
        raise NoPersonError(
            f"no face found in any of the {len(track.frames)} sampled frames of {what}, so identity "
            "removal cannot be measured (the face must be visible and roughly frontal)"
        )


def identity_report(
    original: FaceTrack,
    anonymized: FaceTrack,
    embedder: FaceEmbedder,
    extras: Sequence[FaceTrack] = (),
    population: Population | None = None,
) -> dict:
    """The identity section of ``report.json`` (see the module docstring for each measure).

    ``population``: centres the embeddings for the ``*_centred`` cosines; None = the shipped dlib
    population when the embedder is dlib's (other embedders get no centred keys: FaceNet and
    ArcFace are centred already).

    Raises :class:`~signanon.errors.NoPersonError` when the original shows no face in any sampled
    frame: then there is no identity to remove and nothing to measure.
    """
    require_face(original)
    cos, dist, cross = same_signer_pairs([original, *extras], embedder.metric)
    gallery = np.concatenate([t.embeddings[t.found] for t in (original, *extras)])
    pairs = compare_frames(original, anonymized, gallery, embedder)
    judged = [p for p in pairs if p.original_face]
    both = [p for p in judged if p.anonymized_face]
    anon_cos = [p.cosine for p in both]
    anon_dist = [p.distance for p in both]
    everyone, row = every_face([original, *extras]), {int(f): j for j, f in enumerate(anonymized.frames)}
    nearest = [nearest_distance(anonymized.faces_in(row[p.frame]), everyone, embedder) for p in judged]
    to_mean = signer_mean_distances(original, anonymized, embedder)
    return {
        "embedder": embedder.name,
        "metric": embedder.metric,
        "threshold": embedder.threshold,
        "original_mean": _pair_stats(cos)["mean"],
        "original_min": _pair_stats(cos)["min"],
        "original_cross_clip_mean": _pair_stats(cross)["mean"],
        "original_distance_mean": _pair_stats(dist)["mean"],
        "original_distance_max": _pair_stats(dist)["max"],
        "original_pairs": len(cos),
        "anonymized_mean": _pair_stats(anon_cos)["mean"],
        "anonymized_max": _pair_stats(anon_cos)["max"],
        "anonymized_distance_mean": _pair_stats(anon_dist)["mean"],
        "anonymized_distance_min": _pair_stats(anon_dist)["min"],
        "reid_rate": _rate([p.reidentified for p in judged]),
        "reid_rate_with_face": _rate([p.reidentified for p in both]),
        "reid_rate_gallery": _rate([p.gallery_reidentified for p in judged]),
        "reid_rate_every_face": _rate([d is not None and d <= embedder.threshold for d in nearest]),
        "every_face_distance_min": min((d for d in nearest if d is not None), default=None),
        "reid_rate_signer_mean": (sum(d <= embedder.threshold for d in to_mean) / len(anonymized.frames)
                                  if len(anonymized.frames) else None),
        "signer_mean_distance_min": min(to_mean, default=None),
        "frames_sampled": len(pairs),
        "frames_judged": len(judged),
        "original_frames_without_face": sum(not p.original_face for p in pairs),
        "anonymized_frames_without_face": sum(not p.anonymized_face for p in judged),
        "anonymized_frames_with_several_faces": int(np.sum(anonymized.counts > 1)),
        "original_frames_with_several_faces": int(np.sum(original.counts > 1)),
        "extra_clips": len(extras),
        "extra_clip_faces": [int(t.found.sum()) for t in extras],
        "per_frame": [asdict(p) for p in pairs],
    } | centred_section(original, anonymized, extras, both, _population_for(embedder, population))


def _population_for(embedder: FaceEmbedder, population: Population | None) -> Population | None:
    """The population to centre with: the given one, else the shipped one for dlib, else None."""
    if population is not None:
        return population
    if embedder.name == DlibEmbedder.name and POPULATION_FILE.is_file():
        return load_population()
    return None


def _centred(track: FaceTrack, mean: np.ndarray) -> FaceTrack:
    return replace(track, embeddings=track.embeddings - mean)


def centred_section(
    original: FaceTrack, anonymized: FaceTrack, extras: Sequence[FaceTrack],
    both: Sequence[FramePair], population: Population | None,
) -> dict:
    """Table 1 in centred cosine (see the module docstring): same-signer pairs and frame pairs
    (``both``: frames with a face in both videos) after subtracting the population mean."""
    if population is None:
        return {"population": None}
    mean = population.mean
    cos, _, cross = same_signer_pairs([_centred(t, mean) for t in (original, *extras)], "euclidean")
    anon = [centred_cosine(original.embedding_at(p.frame), anonymized.embedding_at(p.frame), mean) for p in both]
    return {
        "original_mean_centred": _pair_stats(cos)["mean"],
        "original_min_centred": _pair_stats(cos)["min"],
        "original_cross_clip_mean_centred": _pair_stats(cross)["mean"],
        "anonymized_mean_centred": _pair_stats(anon)["mean"],
        "anonymized_max_centred": _pair_stats(anon)["max"],
        "population": population.describe(),
        "paper_table1": {k: list(v) for k, v in PAPER_TABLE1.items()},
    }
