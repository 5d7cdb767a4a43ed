"""``signanon reenact``: animate the face of a SOURCE image with the facial motion of a DRIVING video.

Contract (other tools rely on it):

* The output has exactly the driving video's frame count and frame rate.
* It shows the SOURCE person: by default the whole source image (a video source: its first frame)
  at the source's size, its face animated, the rest of the picture still, as LivePortrait outputs
  it. ``output="crop"`` writes the 256x256 animated face crops instead, as the TPSMM demo does.
* The face moves like the driver's: expression and head motion, relative to a reference driving
  frame ("relative", the default; the reference is the most neutral, frontal driving frame unless
  given, and for the landmark warp the clip's median face in that frame's pose, its mouth matched
  to the photo's) or the driver's absolute mesh/keypoints placed on the source face ("absolute").
  The landmark warp calibrates its expression gains for each job (some frames rendered and read
  back by MediaPipe Holistic, :func:`~.landmark_warp.calibrate_gains`); the summary keeps them.
* With a TPSMM checkpoint (``face_model``) the Thin-Plate Spline Motion Model animates the crop;
  without one the landmark warp of :mod:`.landmark_warp` does (CPU, nothing downloaded); both
  behind :class:`~.animator.FaceAnimator`, loaded by :func:`~.animator.load_face_animator`.
* The driver is never recognised in the output (:mod:`.driver_guard`): a frame whose face dlib
  puts within 0.6 + margin of the driver's is animated again with weaker motion, or shows the
  still source face; a source face recognised as the driver is refused before any work.
* Bad input raises one-line :class:`~signanon.errors.SignanonError` subclasses; the output file is
  written atomically (never half-written) and the inputs are never modified.

The driving video is read twice (meshes first, then frames): only landmarks are kept in memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import InputError, NoPersonError
from ..progress import progress_bar
from ..landmarks.facemesh import FaceMeshEstimator
from .face_track import (
    CROP_SIZE, FaceTrack, FaceTrackConfig, crop, detect_faces, face_box, interpolate_gaps,
    mesh_in_crop, track_from_meshes,
)  # fmt: skip
from .driver_guard import DriverGuard, DriverGuardConfig, sample_indices
from .animator import CROP_BOX, FaceFrame, LandmarkFaceAnimator, as_face_animator, check_face_model, load_face_animator
from .landmark_warp import (
    LandmarkWarpConfig, calibrate_gains, inner_mouth_opening, median_face, neutral_frame_index, weaken_expression,
)  # fmt: skip
from .paste import blend, uncrop

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class ReenactConfig:
    """Settings of one re-enactment job.

    mode: "relative" or "absolute"; reference: "auto" (most neutral, frontal driving frame) or a
    driving frame index; output: "source" (the animated source image at its size) or "crop"
    (256x256 face crops); paste_feather: width of the soft edge, as a fraction of the crop, where
    the animated crop meets the still source image; device: torch device for TPSMM ("auto" = CUDA
    when present); guard: the driver-identity guard (:mod:`.driver_guard`).
    """

    mode: str = "relative"
    reference: str | int = "auto"
    output: str = "source"
    track: FaceTrackConfig = field(default_factory=FaceTrackConfig)
    warp: LandmarkWarpConfig = field(default_factory=LandmarkWarpConfig)
    paste_feather: float = 0.12
    device: str = "auto"
    guard: DriverGuardConfig = field(default_factory=DriverGuardConfig)


@dataclass(frozen=True)
class ReenactSummary:
    """What a job did: frames written, rate, output size, the reference frame, driving frames with
    a detected face and frames whose face box was interpolated, the animator used, seconds,
    the landmark warp's expression gains per series when they were calibrated (empty otherwise),
    and what the driver guard did (:attr:`.driver_guard.DriverGuard.stats`; empty when off)."""

    output: str
    frames: int
    fps: float
    width: int
    height: int
    reference_index: int
    driving_faces_found: int
    driving_interpolated: int
    method: str
    seconds: float
    gains: dict = field(default_factory=dict)
    guard: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Inputs


_PICTURE_MAX_BYTES = 256 << 20  # a file this large is not tried as a picture


def _read_picture(path: Path) -> np.ndarray:
    import cv2

    if path.stat().st_size > _PICTURE_MAX_BYTES:
        raise InputError(f"source {path} is too large for a picture")
    data = np.fromfile(path, np.uint8)
    if not data.size:
        raise InputError(f"source image is empty (0 bytes): {path}")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"source image cannot be decoded: {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _read_first_frame(path: Path) -> np.ndarray:
    from ..video import iter_frames, probe_video

    frame = next(iter_frames(probe_video(path)), None)
    if frame is None:  # pragma: no cover - probe_video refuses empty videos
        raise InputError(f"source video has no frames: {path}")
    return frame


def read_source_image(path: str | Path) -> np.ndarray:
    """The source picture as RGB uint8 ``(H, W, 3)``: an image file, or a video's first frame.

    The file is read by its content: a video named ``.png`` or a picture named ``.mp4`` works. When
    neither reader accepts it, the error is the one of the kind its suffix names."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"source not found: {path}")
    readers = (_read_picture, _read_first_frame)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        readers = readers[::-1]
    try:
        return readers[0](path)
    except InputError as err:
        try:
            return readers[1](path)
        except InputError:
            raise err from None


MIN_SOURCE_FACE_PX = 40.0  # narrower source faces come out as blur no face detector finds


def source_face(image: np.ndarray, config: FaceTrackConfig, where: str = "the source") -> tuple[np.ndarray, np.ndarray]:
    """The face mesh ``(478, 3)`` (x, y px, z normalised by the image width) and square box
    ``(4,)`` of a still image (RGB uint8 ``(H, W, 3)``).

    MediaPipe's face mesh finds only faces that fill a good part of the picture; where it finds
    none, dlib's detector looks for one and the mesh is read on the square around it (a 500-px
    portrait on a 2000x1428 canvas was refused as showing no face). A picture of two or more
    people (the second face at least a quarter of the largest's area) is refused: which one would
    be animated is not the user's choice. A face under :data:`MIN_SOURCE_FACE_PX` wide is
    refused (a 32x32 picture gave a video in which no detector finds a face)."""
    faces = _dlib_faces(image)
    if len(faces) > 1 and faces[1][2] * faces[1][3] >= 0.25 * faces[0][2] * faces[0][3]:
        raise InputError(f"{where} shows {len(faces)} faces: give a picture with one face (crop it to the face to animate)")
    with FaceMeshEstimator(static=True) as estimator:
        mesh = estimator(image)
        if mesh is None and faces:
            mesh = _mesh_around(estimator, image, faces[0])
    if mesh is None:
        raise NoPersonError(f"no face found in {where}: give a picture with one clearly visible face")
    width = float(np.ptp(mesh[:, 0]))
    if width < MIN_SOURCE_FACE_PX:
        raise InputError(f"the face in {where} is {width:.0f} px wide: give a picture whose face is at least {MIN_SOURCE_FACE_PX:.0f} px wide")
    return mesh, face_box(mesh, config.margin, config.min_side)


def _dlib_faces(image: np.ndarray) -> list[tuple[int, int, int, int]]:
    """dlib's faces in ``image`` as ``(x, y, w, h)`` px, largest first (none when dlib is missing)."""
    from ..errors import SignanonError
    from ..recognition import DlibFaceFinder

    try:
        finder = DlibFaceFinder(upsample=None, model_dir=None)
    except (SignanonError, ImportError, RuntimeError):  # no dlib here: the mesh alone decides
        return []
    return [(r.left(), r.top(), r.width(), r.height()) for r, _ in finder.find(image)]


def _mesh_around(estimator, image: np.ndarray, face: tuple[int, int, int, int]) -> np.ndarray | None:
    """The face mesh read on the square three face widths wide around dlib's ``face`` (x, y, w, h),
    in the whole image's pixels (z rescaled to its width); None when none is read there."""
    h, w = image.shape[:2]
    x, y, fw, fh = face
    side = 3 * max(fw, fh)
    x0, y0 = int(max(0, x + fw / 2 - side / 2)), int(max(0, y + fh / 2 - side / 2))
    x1, y1 = int(min(w, x0 + side)), int(min(h, y0 + side))
    mesh = estimator(np.ascontiguousarray(image[y0:y1, x0:x1]))
    if mesh is None:
        return None
    mesh = mesh.astype(np.float32).copy()
    mesh[:, 0] += x0
    mesh[:, 1] += y0
    mesh[:, 2] *= (x1 - x0) / w
    return mesh


def resolve_reference(reference: str | int, meshes: np.ndarray, found: np.ndarray, width: int) -> int:
    """The driving reference index: ``"auto"`` = most neutral, frontal frame; else validated int."""
    count = len(found)
    if reference == "auto":
        metric = np.asarray(meshes, np.float64).copy()
        metric[..., 2] *= width
        return neutral_frame_index(metric, found)
    try:
        index = int(reference)
    except (TypeError, ValueError):
        raise InputError(f"reference must be 'auto' or a frame number, got {reference!r}") from None
    if not 0 <= index < count:
        raise InputError(f"reference {index} is outside the driving video (frames 0 to {count - 1})")
    if not found[index]:
        raise InputError(f"reference {index}: no face was found in that driving frame")
    return index


def _square_alpha(size: int, feather: float) -> np.ndarray:
    """float32 ``(size, size)``: 1 inside, a smooth ramp to 0 over ``feather * size`` at the edges."""
    ramp = max(1.0, feather * size)
    pos = np.arange(size, dtype=np.float32)
    edge = np.minimum(pos, size - 1 - pos) / ramp
    one_d = np.clip(edge, 0.0, 1.0)
    one_d = one_d * one_d * (3 - 2 * one_d)  # smoothstep
    return np.minimum(one_d[:, None], one_d[None, :])


# --------------------------------------------------------------------------------------------
# The job


class Reenactor:
    """Drives one ``signanon reenact`` job (the CLI and the Python API use the same object).

    ``Reenactor(config, face_model=None)(source, driving, output)`` -> :class:`ReenactSummary`.
    ``face_model``: path of a TPSMM checkpoint (``vox.pth.tar`` layout), loaded with
    :func:`~.animator.load_face_animator`; ``animator``: an already built
    :class:`~.animator.FaceAnimator`, or an image-animation model with
    ``animate(source, driving_iter, mode, reference_image)`` and ``size`` (e.g. a
    :class:`~signanon.reenactment.tpsmm.TPSMMAnimator`); neither = the landmark warp.
    """

    def __init__(self, config: ReenactConfig = ReenactConfig(), face_model: str | Path | None = None, animator=None):
        if config.mode not in ("relative", "absolute"):
            raise InputError(f"mode must be relative or absolute, got {config.mode!r}")
        if config.output not in ("source", "crop"):
            raise InputError(f"output must be 'source' or 'crop', got {config.output!r}")
        self.config = config
        self.animator = animator
        self.face_model = None if face_model is None else check_face_model(face_model)
        self.gains: dict = {}

    def __call__(self, source: str | Path, driving: str | Path, output: str | Path, *, progress: bool = True) -> ReenactSummary:
        from ..video import VideoWriter, check_output_path, iter_frames, probe_video

        start = time.perf_counter()
        # 1. inputs and output checked before any work
        info = probe_video(driving)
        out_path = check_output_path(output, info.path, suffixes=(".mp4",))
        check_output_path(out_path, source)
        image = read_source_image(source)
        mesh, box = source_face(image, self.config.track, f"the source {source}")
        # 2. driving face meshes, face track and the reference frame
        with progress_bar(total=info.frame_count, enabled=progress, desc="driving faces") as bar:
            meshes, found = detect_faces(_counted(iter_frames(info), bar))
        if not found.any():
            raise NoPersonError(f"no face found in any frame of the driving video {info.path}")
        track = track_from_meshes(meshes, found, (info.width, info.height), self.config.track)
        reference = resolve_reference(self.config.reference, meshes, found, info.width)
        source_crop = crop(image, box)
        # 3. the driver's identity, and a source the recogniser takes for the driver refused
        guard = self._driver_guard(info, track, source_crop, f"the source {source}")
        # 4. animate and write
        compose = self._composer(image, box)
        frames = self._animate(
            source_crop, mesh_in_crop(mesh, box, image.shape[1]), info, track, meshes, reference, compose, guard
        )  # fmt: skip
        height, width = (CROP_SIZE, CROP_SIZE) if self.config.output == "crop" else image.shape[:2]
        with VideoWriter(out_path, width, height, Fraction(info.fps), input_path=info.path) as writer, progress_bar(
            total=info.frame_count, enabled=progress, desc="reenact"
        ) as bar:
            for face in frames:
                writer.write(compose(face))
                bar.update(1)
        return ReenactSummary(
            output=str(out_path), frames=writer.frames_written, fps=float(info.fps), width=width, height=height,
            reference_index=reference, driving_faces_found=int(found.sum()),
            driving_interpolated=track.interpolated, method="tpsmm" if self._uses_model else "landmark-warp",
            seconds=time.perf_counter() - start, gains=self.gains, guard=dict(guard.stats) if guard else {},
        )  # fmt: skip

    @property
    def _uses_model(self) -> bool:
        return self.animator is not None or self.face_model is not None

    def _composer(self, image: np.ndarray, box: np.ndarray):
        """A function: animated 256x256 crop -> output frame (the crop itself, or the source image
        with the crop pasted back over a square soft-edged mask)."""
        if self.config.output == "crop":
            return lambda face: face
        import cv2

        from .face_track import uncrop_matrix

        height, width = image.shape[:2]
        alpha = cv2.warpAffine(
            _square_alpha(CROP_SIZE, self.config.paste_feather), uncrop_matrix(box, CROP_SIZE), (width, height),
            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0,
        )  # fmt: skip

        def compose(face: np.ndarray) -> np.ndarray:
            placed, _ = uncrop(face, box, image.shape[:2])
            return blend(image, placed, alpha)

        return compose

    def _animator(self):
        if self.animator is not None:
            return as_face_animator(self.animator, self.config.mode, self.config.warp)
        return load_face_animator(self.face_model, self.config.device, mode=self.config.mode, warp=self.config.warp)

    def _driver_guard(self, info, track: FaceTrack, source_crop: np.ndarray, where: str) -> DriverGuard | None:
        """The :class:`~.driver_guard.DriverGuard` of this job, with the driver's reference embedding
        from evenly spaced driving face crops; refuses a source recognised as the driver. None: off."""
        from ..video import iter_selected_frames

        if not self.config.guard.enabled:
            return None
        guard = DriverGuard(self.config.guard)
        picked = sample_indices(track.found, self.config.guard.samples)
        guard.learn_driver(crop(frame, track.boxes[t]) for t, frame in iter_selected_frames(info, picked))
        guard.check_source(source_crop, where)
        return guard

    def _animate(
        self, source_crop: np.ndarray, source_mesh: np.ndarray, info, track: FaceTrack, meshes: np.ndarray, reference: int,
        compose=None, guard: DriverGuard | None = None,
    ) -> Iterator[np.ndarray]:  # fmt: skip
        """Animated 256x256 RGB uint8 crops, one per driving frame, through ``guard`` when given.

        Everything is in crop coordinates: the source crop (a 256x256 image, its mesh in it) and,
        for the landmark warp, the driving meshes in their face-track crops; a model animator gets
        the driving frames with their face-track boxes instead."""
        from itertools import islice

        from ..video import iter_frames

        animator = self._animator()
        source = FaceFrame(image=source_crop, mesh=source_mesh, box=CROP_BOX)
        if animator.needs_images:
            ref_frame = next(islice(iter_frames(info), reference, None))
            animator.prepare(source, FaceFrame(image=ref_frame, box=track.boxes[reference]))
            driving = (FaceFrame(image=frame, box=track.boxes[t]) for t, frame in enumerate(iter_frames(info)))
            faces = animator.animate(driving)
            if guard is None:
                return faces
            # a model's output cannot be weakened: a recognised frame shows the still source face
            return (guard.guard(lambda s, f=face: f if s == 1.0 else None, source_crop) for face in faces)
        in_crop = np.stack([mesh_in_crop(meshes[t], track.boxes[t], info.width) for t in range(len(meshes))])
        in_crop = interpolate_gaps(in_crop, track.found)  # frames without a face: from neighbours
        if self.config.reference == "auto":  # the clip's median expression in the most neutral frame's pose
            mouth = inner_mouth_opening(source_mesh)
            animator.prepare(source, FaceFrame(mesh=median_face(in_crop, track.found, reference, mouth_like=mouth)))
        else:
            animator.prepare(source, FaceFrame(mesh=in_crop[reference]))
        if isinstance(animator, LandmarkFaceAnimator) and animator.mode == "relative" and self.config.warp.calibrate:
            self.gains = self._calibrate(animator, in_crop[track.found], animator._reference, compose)
        if guard is None:
            return animator.animate(FaceFrame(mesh=mesh) for mesh in in_crop)
        return (guard.guard(self._weakened(animator, mesh), source_crop) for mesh in in_crop)

    @staticmethod
    def _weakened(animator, mesh: np.ndarray):
        """render(strength) for the guard: the landmark warp driven with the driver's expression
        weakened, head motion kept (:func:`~.landmark_warp.weaken_expression`); None below full
        strength where that cannot be done (absolute mode keeps the driver's own geometry; other
        animators have no reference mesh)."""
        ref = animator._reference if isinstance(animator, LandmarkFaceAnimator) else None

        def render(strength: float):
            if strength == 1.0:
                return animator(FaceFrame(mesh=mesh))
            if ref is None or animator.mode != "relative":
                return None
            return animator(FaceFrame(mesh=weaken_expression(ref, mesh, strength)))

        return render

    def _calibrate(self, animator, meshes: np.ndarray, reference: np.ndarray, compose) -> dict:
        """Set the landmark warp's expression gains for this photo and driver
        (:func:`~.landmark_warp.calibrate_gains`), read back by MediaPipe Holistic on single
        frames in the output's framing. Returns {"gains": ..., "rounds": ...} for the summary."""
        from ..landmarks import layout
        from ..landmarks.holistic import HolisticConfig, HolisticEstimator

        compose = compose or (lambda face: face)
        with HolisticEstimator(HolisticConfig(static_image_mode=True)) as estimator:

            def read(frame: np.ndarray):
                data, conf = estimator(frame)
                return data[layout.FACE] if conf[layout.FACE].min() > 0 else None

            gains, rounds = calibrate_gains(
                animator.warper, meshes, reference, lambda mesh: compose(animator(FaceFrame(mesh=mesh))), read,
                self.config.warp,
            )  # fmt: skip
        return {"gains": {name: round(value, 3) for name, value in gains.items()}, "rounds": rounds}


def _counted(frames, bar):
    for frame in frames:
        yield frame
        bar.update(1)


def reenact(
    source: str | Path, driving: str | Path, output: str | Path, config: ReenactConfig = ReenactConfig(),
    *, face_model: str | Path | None = None, animator=None, progress: bool = False,
) -> ReenactSummary:  # fmt: skip
    """Function form of :class:`Reenactor`: write ``output`` (mp4) and return the summary."""
    return Reenactor(config, face_model, animator)(source, driving, output, progress=progress)
