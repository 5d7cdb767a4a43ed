"""Face recognition shared by every stage that must tell people apart: detection, embedding and
the recogniser's distance (dlib's ResNet, from the ``face-recognition-models`` wheel).

It sits below the stages so that the privacy checks inside them (the re-enactment's driver guard,
the diffusion face stage) and the evaluation use one recogniser, one threshold and one loader;
:mod:`signanon.evaluation.identity` builds the identity measures (and the torch embedders) on it.
dlib is imported only when an embedder is built, with an install hint when it is missing.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import SignanonError

DLIB_INSTALL_HINT = "pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0"


@dataclass(frozen=True)
class Face:
    """One detected face: ``box`` = (x0, y0, x1, y1) int pixels, ``embedding`` float64 ``(D,)``."""

    box: tuple[int, int, int, int]
    embedding: np.ndarray

    @property
    def area(self) -> int:
        x0, y0, x1, y1 = self.box
        return max(0, x1 - x0) * max(0, y1 - y0)


class FaceEmbedder(Protocol):
    """What the identity measures need from a recogniser.

    ``metric`` names its native distance (``"euclidean"`` or ``"cosine"`` = 1 - cosine similarity);
    two faces are the same person when ``distance(a, b) <= threshold``.
    """

    name: str
    metric: str
    threshold: float

    def faces(self, rgb: np.ndarray) -> list[Face]:
        """All faces of an RGB uint8 ``(H, W, 3)`` frame, largest first."""
        ...

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        ...


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two ``(D,)`` vectors, in [-1, 1]."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def euclidean_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


def native_distance(metric: str, a: np.ndarray, b: np.ndarray) -> float:
    if metric == "euclidean":
        return euclidean_distance(a, b)
    if metric == "cosine":
        return 1.0 - cosine_similarity(a, b)
    raise ValueError(f"unknown metric {metric!r}")


def native_distances(metric: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64 ``(k, m)``: :func:`native_distance` between every row of ``a`` ``(k, D)`` and every
    row of ``b`` ``(m, D)``, at once (a long clip's every face against every face)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if metric == "euclidean":
        return np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)  # k is a frame's few faces: (k, m, D) is small
    if metric == "cosine":
        an = a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-12)
        bn = b / (np.linalg.norm(b, axis=1, keepdims=True) + 1e-12)
        return 1.0 - an @ bn.T
    raise ValueError(f"unknown metric {metric!r}")


def dlib_module():
    try:
        import dlib
    except ImportError:
        raise SignanonError(f"dlib is not installed; install it with: {DLIB_INSTALL_HINT}") from None
    return dlib


def dlib_model_dir() -> Path:
    """Folder holding dlib's model files from ``face-recognition-models`` (not imported)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise SignanonError(
            f"the dlib face models are not installed; install them with: {DLIB_INSTALL_HINT}"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@dataclass(frozen=True)
class DlibConfig:
    """dlib face detection and embedding.

    ``upsample``: times the HOG detector doubles the image first (finds faces down to about 40 px
    at 1, 80 px at 0); None = 1 for frames whose short side is under 480 px, else 0 (a 540x720
    frame takes ~140 ms at 1 and ~35 ms at 0 on one core). ``jitter``: dlib's re-sampling count
    (0 = one pass). ``threshold``: dlib's standard "same person" Euclidean distance.
    ``alignment``: the shape predictor that places the face for the ResNet, 5 or 68 points (the
    independent read-back, ``../shared/tools/readback.py``, uses 68; on the same 171 faces the two
    embeddings lay up to 0.038 apart).
    """

    upsample: int | None = None
    jitter: int = 0
    threshold: float = 0.6
    model_dir: Path | None = None
    alignment: int = 5

    def __post_init__(self) -> None:
        if self.alignment not in ALIGNMENTS:
            raise ValueError(f"dlib alignment must be one of {sorted(ALIGNMENTS)} points, got {self.alignment}")


RESNET_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
# points of dlib's shape predictor -> its model file in face-recognition-models
ALIGNMENTS = {5: "shape_predictor_5_face_landmarks.dat", 68: "shape_predictor_68_face_landmarks.dat"}
# dlib as a viewer's recogniser runs it by default (face_recognition's settings, and the independent
# read-back's): the detector upsampled once at any frame size, the 68-point alignment
VIEWER_UPSAMPLE, VIEWER_ALIGNMENT = 1, 68


def viewer_config(threshold: float = DlibConfig.threshold) -> DlibConfig:
    """dlib with a viewer's default settings (:data:`VIEWER_UPSAMPLE`, :data:`VIEWER_ALIGNMENT`)."""
    return DlibConfig(threshold=threshold, upsample=VIEWER_UPSAMPLE, alignment=VIEWER_ALIGNMENT)


@functools.lru_cache(maxsize=4)
def shape_predictor(path: Path):
    """dlib's shape predictor in the file ``path``, loaded once per process: it only reads its
    trees once loaded, so every finder and thread shares it (the 68-point one is 99 MB and takes
    0.5 s to load; an anonymize run builds three finders)."""
    return dlib_module().shape_predictor(str(path))


@functools.lru_cache(maxsize=1)
def _face_detector_model():
    return dlib_module().get_frontal_face_detector()


def face_detector():
    """A dlib HOG face detector of its own: a detector keeps the image it scans, so no two
    threads may share one. It is a copy of one built once per process (building one takes
    0.3 s, copying it 2 ms, with the same detections)."""
    return copy.copy(_face_detector_model())


class DlibFaceFinder:
    """dlib's HOG detector and a 5- or 68-point shape predictor (shared by every embedder here)."""

    def __init__(self, upsample: int | None, model_dir: Path | None, alignment: int = 5):
        folder = Path(model_dir) if model_dir is not None else dlib_model_dir()
        self.model_dir = folder
        self.upsample = upsample
        self._detector = face_detector()
        self._shape = shape_predictor(folder / ALIGNMENTS[alignment])

    def twin(self) -> "DlibFaceFinder":
        """A finder for another thread: its own detector (dlib's is not safe to share: it keeps
        the image it scans), the same shape predictor (read-only; 0.55 s to load the 68-point one)."""
        other = copy.copy(self)
        other._detector = face_detector()
        return other

    def find(self, rgb: np.ndarray, upsample: int | None = None) -> list:
        """[(dlib.rectangle, full_object_detection)], largest face first; ``upsample`` overrides
        the finder's own for this call."""
        rgb = np.ascontiguousarray(rgb)
        up = upsample if upsample is not None else self.upsample
        up = up if up is not None else int(min(rgb.shape[:2]) < 480)
        boxes = sorted(self._detector(rgb, up), key=lambda r: r.area(), reverse=True)
        return [(box, self._shape(rgb, box)) for box in boxes]

    def at(self, rgb: np.ndarray, box: tuple[int, int, int, int]):
        """``(dlib.rectangle, full_object_detection)`` of the face assumed in ``box`` = (x0, y0,
        x1, y1) int pixels, without detecting it (the shape predictor places the points)."""
        rect = dlib_module().rectangle(*(int(v) for v in box))
        return rect, self._shape(np.ascontiguousarray(rgb), rect)


def rect_box(rect, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    return (max(0, rect.left()), max(0, rect.top()), min(w, rect.right()), min(h, rect.bottom()))


def check_frame(rgb: np.ndarray) -> None:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) frame, got {rgb.dtype} {rgb.shape}")


class DlibEmbedder:
    """dlib's face-recognition ResNet (128-d; Euclidean distance <= 0.6 = same person)."""

    name = "dlib-resnet"
    metric = "euclidean"

    def __init__(self, config: DlibConfig = DlibConfig()):
        dlib = dlib_module()
        self.config = config
        self.threshold = float(config.threshold)
        self._finder = DlibFaceFinder(config.upsample, config.model_dir, config.alignment)
        self._net = dlib.face_recognition_model_v1(str(self._finder.model_dir / RESNET_MODEL))

    def faces(self, rgb: np.ndarray, upsample: int | None = None) -> list[Face]:
        """All faces of an RGB uint8 ``(H, W, 3)`` frame, largest first; ``upsample`` overrides
        ``config.upsample`` for this call."""
        check_frame(rgb)
        rgb = np.ascontiguousarray(rgb)
        return [self._face(rgb, rect, shape) for rect, shape in self._finder.find(rgb, upsample)]

    def twin(self) -> "DlibEmbedder":
        """The same embedder for another thread (:meth:`DlibFaceFinder.twin`, its own ResNet)."""
        other = copy.copy(self)
        other._finder = self._finder.twin()
        other._net = dlib_module().face_recognition_model_v1(str(self._finder.model_dir / RESNET_MODEL))
        return other

    def largest(self, rgb: np.ndarray, upsample: int | None = None) -> Face | None:
        """The largest face of an RGB uint8 ``(H, W, 3)`` frame (:meth:`faces`' first), None if
        there is none; the others are detected but not embedded."""
        check_frame(rgb)
        rgb = np.ascontiguousarray(rgb)
        found = self._finder.find(rgb, upsample)
        return self._face(rgb, *found[0]) if found else None

    def face_at(self, rgb: np.ndarray, box: tuple[int, int, int, int]) -> Face:
        """The embedding of the face assumed in ``box`` = (x0, y0, x1, y1) int pixels of an RGB
        uint8 frame, whether or not the detector would find it there."""
        check_frame(rgb)
        rgb = np.ascontiguousarray(rgb)
        return self._face(rgb, *self._finder.at(rgb, box))

    def _face(self, rgb: np.ndarray, rect, shape) -> Face:
        vec = self._net.compute_face_descriptor(rgb, shape, self.config.jitter)
        return Face(rect_box(rect, rgb.shape), np.asarray(vec, np.float64))

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return euclidean_distance(a, b)
