"""One face-animator interface: prepare a source face once, then animate it per driving frame.

Two animators sit behind :class:`FaceAnimator`, and :func:`load_face_animator` picks one:

* :class:`LandmarkFaceAnimator` (``face_model=None``): the checkpoint-free thin-plate-spline warp of
  :class:`~.landmark_warp.LandmarkAnimator`, driven by face meshes; CPU, nothing downloaded.
* :class:`ModelFaceAnimator` (``face_model="vox.pth.tar"``): an image-animation model driven by face
  crops, normally the Thin-Plate Spline Motion Model (:class:`~.tpsmm.TPSMMAnimator`; needs torch).

Both re-enactment (:mod:`.reenact`) and the diffusion method's face stage
(:mod:`signanon.diffusion.face_enhance`) use them the same way::

    animator = load_face_animator(face_model, device)
    animator.prepare(source, reference)          # FaceFrame of the face to animate / neutral driver
    crop = animator(driving, out_box)            # (256, 256, 3) uint8, once per driving frame

Coordinates: a :class:`FaceFrame`'s mesh is in its image's pixels (z in pixels too). For the
landmark warp the source, reference and driving meshes must share one coordinate frame (the same
video, or all mapped into crops); the output crop shows the source image's ``out_box`` region.
A model animator renders the source face crop and ignores ``out_box``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..errors import InputError
from .face_track import CROP_SIZE, crop, crop_matrix
from .landmark_warp import LandmarkAnimator, LandmarkWarpConfig

MODES = ("relative", "absolute")
CROP_BOX = np.array([0.0, 0.0, CROP_SIZE, CROP_SIZE], np.float32)  # a whole 256x256 crop as a box


@dataclass(frozen=True)
class FaceFrame:
    """One face as an animator sees it.

    image: RGB uint8 ``(H, W, 3)``, or None when the animator does not need images
    (:attr:`FaceAnimator.needs_images`); mesh: float ``(478, 3)`` x, y, z in the image's pixels, or
    None when it needs only images; box: square face box float32 ``(4,)`` x0, y0, x1, y1 in the
    image's pixels (where a model animator crops the face).
    """

    image: np.ndarray | None = None
    mesh: np.ndarray | None = None
    box: np.ndarray | None = None


class FaceAnimator(ABC):
    """Animates one source face with driving faces: :meth:`prepare` once, then call per frame."""

    #: True when driving and reference faces must carry their ``image`` (a model driven by crops).
    needs_images: bool = False
    #: side of the square crops the animator returns
    size: int = CROP_SIZE

    def __init__(self, mode: str = "relative"):
        if mode not in self.modes():
            raise InputError(f"mode must be one of {', '.join(self.modes())}, got {mode!r}")
        self.mode = mode

    def modes(self) -> tuple[str, ...]:
        return MODES

    @abstractmethod
    def prepare(self, source: FaceFrame, reference: FaceFrame) -> None:
        """Take the face to animate (``source``, image and mesh) and the driving face whose
        expression counts as neutral (``reference``, used by relative motion)."""

    @abstractmethod
    def __call__(self, driving: FaceFrame, out_box: np.ndarray = CROP_BOX) -> np.ndarray:
        """The source face moved like ``driving``: RGB uint8 ``(CROP_SIZE, CROP_SIZE, 3)``
        showing ``out_box`` (source-image pixels) of the re-enacted source image."""

    def animate(self, driving: Iterable[FaceFrame], out_box: np.ndarray = CROP_BOX) -> Iterator[np.ndarray]:
        """One crop per driving face, lazily (an animator may batch them)."""
        return (self(face, out_box) for face in driving)


class LandmarkFaceAnimator(FaceAnimator):
    """The landmark-driven thin-plate-spline warp (:class:`~.landmark_warp.LandmarkAnimator`)."""

    def __init__(self, mode: str = "relative", config: LandmarkWarpConfig = LandmarkWarpConfig()):
        super().__init__(mode)
        self.warper = LandmarkAnimator(config, mode)
        self._reference: np.ndarray | None = None

    def prepare(self, source: FaceFrame, reference: FaceFrame) -> None:
        self.warper.prepare(np.ascontiguousarray(source.image), source.mesh)
        self._reference = np.asarray(reference.mesh if reference.mesh is not None else source.mesh, np.float64)

    def __call__(self, driving: FaceFrame, out_box: np.ndarray = CROP_BOX) -> np.ndarray:
        if self._reference is None:
            raise RuntimeError("call prepare() first")
        return self.warper(driving.mesh, self._reference, crop_matrix(out_box, CROP_SIZE), CROP_SIZE)


def _resized(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    image = np.asarray(image, np.uint8)
    if image.shape[0] == size:
        return image
    shrink = image.shape[0] > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class ModelFaceAnimator(FaceAnimator):
    """An image-animation model driven by face crops, e.g. :class:`~.tpsmm.TPSMMAnimator`.

    ``model``: any object with ``animate(source, driving_iter, mode, reference)`` yielding RGB
    uint8 crops, working on ``model.size`` crops (default 256).
    """

    needs_images = True

    def __init__(self, model, mode: str = "relative"):
        self.model = model
        self.model_size = int(getattr(model, "size", CROP_SIZE))
        super().__init__(mode)
        self._source: np.ndarray | None = None
        self._reference: np.ndarray | None = None

    def modes(self) -> tuple[str, ...]:
        return tuple(getattr(self.model, "modes", MODES + ("avd",)))

    def _crop(self, face: FaceFrame) -> np.ndarray:
        if face.image is None:
            raise InputError("a face model needs the driving images, not only their landmarks")
        return crop(face.image, face.box, self.model_size)

    def prepare(self, source: FaceFrame, reference: FaceFrame) -> None:
        self._source = self._crop(source)
        self._reference = self._crop(reference)

    def __call__(self, driving: FaceFrame, out_box: np.ndarray = CROP_BOX) -> np.ndarray:
        return next(iter(self.animate([driving], out_box)))

    def animate(self, driving: Iterable[FaceFrame], out_box: np.ndarray = CROP_BOX) -> Iterator[np.ndarray]:
        if self._source is None:
            raise RuntimeError("call prepare() first")
        crops = (self._crop(face) for face in driving)
        frames = self.model.animate(self._source, crops, self.mode, self._reference)  # batched by the model
        return (_resized(face, CROP_SIZE) for face in frames)


def as_face_animator(animator=None, mode: str = "relative", warp: LandmarkWarpConfig = LandmarkWarpConfig()) -> FaceAnimator:
    """A :class:`FaceAnimator` for ``animator``: itself, a model wrapped in :class:`ModelFaceAnimator`,
    or (None) the landmark warp."""
    if animator is None:
        return LandmarkFaceAnimator(mode, warp)
    if isinstance(animator, FaceAnimator):
        return animator
    return ModelFaceAnimator(animator, mode)


def check_face_model(face_model: str | Path) -> Path:
    """The checkpoint's path, or a one-line InputError naming the missing file (checked before
    any work, then again by :func:`load_face_animator`)."""
    path = Path(face_model).expanduser()
    if not path.is_file():
        raise InputError(f"face model not found: {path} (a TPSMM checkpoint such as vox.pth.tar)")
    return path


def load_face_animator(
    face_model: str | Path | None, device: str = "auto", *, mode: str = "relative",
    warp: LandmarkWarpConfig = LandmarkWarpConfig(),
) -> FaceAnimator:  # fmt: skip
    """The one loader: ``face_model`` None -> the landmark warp; a path -> TPSMM loaded from that
    checkpoint (``vox.pth.tar`` layout) on ``device`` (see :func:`signanon.device.resolve_device`).
    A missing file raises a one-line InputError naming it; torch missing, the install hint."""
    if face_model is None:
        return LandmarkFaceAnimator(mode, warp)
    path = check_face_model(face_model)
    from ..device import resolve_device

    torch_device = resolve_device(device)
    from .tpsmm import TPSMMAnimator, load_tpsmm  # needs torch: SignanonError with the install hint

    return ModelFaceAnimator(TPSMMAnimator(load_tpsmm(path, torch_device), torch_device), mode)
