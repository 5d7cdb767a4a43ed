"""Face track: one square face box per frame, from the MediaPipe face mesh, and 256x256 crops.

A box is ``(x0, y0, x1, y1)`` in frame pixels (float32), square, centred on the mesh's bounding box
and ``margin`` times its larger side. Over a whole clip the boxes are smoothed with a short centred
median followed by a 3-tap mean (no lag: the whole track is known), and frames where no face was
detected get a box interpolated linearly from the nearest frames that have one (held at the ends).

Crops are affine resamplings (:func:`crop_matrix`), so a box may reach past the frame border: the
part outside is filled by repeating the border pixels. :func:`uncrop_matrix` is the inverse
mapping used to paste a crop back (:mod:`.paste`).

The face mesh of one frame is ``(478, 3)`` float32 in the convention of the shared landmark layout
(:mod:`signanon.landmarks.layout`, rows 33:511): x, y in pixels, z = MediaPipe's normalised z.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import NoPersonError
from ..landmarks import geometry, layout
from ..landmarks.facemesh import FaceMeshEstimator

N_FACE = layout.N_FACE
CROP_SIZE = 256


@dataclass(frozen=True)
class FaceTrackConfig:
    """How boxes are made from meshes.

    margin: box side = margin x the larger side of the mesh's bounding box (1.6 keeps the brows,
    chin and some hair; TPSMM's vox-256 crops are about this loose). median_window: odd number of
    frames of the centred median over (centre x, centre y, side); 1 = no smoothing.
    """

    margin: float = 1.6
    median_window: int = 5
    min_side: float = 16.0


@dataclass(frozen=True)
class FaceTrack:
    """The face boxes of one clip.

    boxes: float32 ``(T, 4)`` x0, y0, x1, y1 in frame pixels, square, smoothed; found: bool ``(T,)``
    a face mesh was detected in the frame (False = box interpolated); interpolated: frames whose
    box was interpolated (``(~found).sum()``); frame_size: (width, height) of the frames.
    """

    boxes: np.ndarray
    found: np.ndarray
    interpolated: int
    frame_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.boxes)


# --------------------------------------------------------------------------------------------
# Face mesh detection (FaceMeshEstimator lives in signanon.landmarks.facemesh)


def detect_faces(frames, static: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Face meshes of a frame stream: float32 ``(T, 478, 3)`` (zeros where none) and bool ``(T,)``."""
    meshes, found = [], []
    with FaceMeshEstimator(static=static) as estimator:
        for frame in frames:
            mesh = estimator(frame)
            found.append(mesh is not None)
            meshes.append(np.zeros((N_FACE, 3), np.float32) if mesh is None else mesh)
    if not meshes:
        return np.zeros((0, N_FACE, 3), np.float32), np.zeros(0, bool)
    return np.stack(meshes), np.array(found, bool)


def faces_from_landmarks(data: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The face meshes in landmark-layout arrays.

    data: float ``(T, 586, 3)`` or ``(586, 3)``; confidence: ``(T, 586)`` or ``(586,)``. Returns
    float32 ``(T, 478, 3)`` (or ``(478, 3)``) and bool ``(T,)`` (or scalar): the face is present
    (:func:`~signanon.landmarks.geometry.face_present`) with its irises, which the warp follows.
    """
    data = np.asarray(data, np.float32)
    conf = np.asarray(confidence, np.float32)
    faces = data[..., layout.FACE, :]
    found = geometry.face_present(conf, data) & geometry.irises_present(conf, data)
    return faces, found


# --------------------------------------------------------------------------------------------
# Boxes


def face_box(mesh: np.ndarray, margin: float = 1.6, min_side: float = 16.0) -> np.ndarray:
    """Square box around one face mesh: float32 ``(4,)`` x0, y0, x1, y1 (may exceed the frame)."""
    xy = np.asarray(mesh, np.float64)[:, :2]
    lo, hi = xy.min(0), xy.max(0)
    centre = (lo + hi) / 2
    side = max(float((hi - lo).max()) * margin, min_side)
    return _box_from(centre[0], centre[1], side)


def _box_from(cx, cy, side) -> np.ndarray:
    half = np.asarray(side, np.float64) / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=-1).astype(np.float32)


def _centred_median(values: np.ndarray, window: int) -> np.ndarray:
    """Centred running median over axis 0 (window shrinks at the ends). values: (T, K)."""
    if window <= 1 or len(values) < 3:
        return values.copy()
    half = window // 2
    out = np.empty_like(values)
    for t in range(len(values)):
        out[t] = np.median(values[max(0, t - half) : t + half + 1], axis=0)
    return out


def _three_tap(values: np.ndarray) -> np.ndarray:
    if len(values) < 3:
        return values.copy()
    padded = np.concatenate([values[:1], values, values[-1:]])
    return (padded[:-2] + 2 * padded[1:-1] + padded[2:]) / 4


def interpolate_gaps(values: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Fill rows where ``found`` is False linearly from the nearest found rows (held at the ends).

    values: float ``(T, ...)``; found: bool ``(T,)`` with at least one True. Returns a float64 copy.
    """
    values = np.asarray(values, np.float64)
    flat = values.reshape(len(values), -1).copy()
    have = np.nonzero(found)[0]
    if len(have) == 0:
        raise ValueError("nothing to interpolate from: no row is found")
    t = np.arange(len(values))
    for k in range(flat.shape[1]):
        flat[:, k] = np.interp(t, have, flat[have, k])
    return flat.reshape(values.shape)


def track_from_meshes(
    meshes: np.ndarray,
    found: np.ndarray,
    frame_size: tuple[int, int],
    config: FaceTrackConfig = FaceTrackConfig(),
) -> FaceTrack:
    """Smoothed, gap-filled boxes from per-frame meshes.

    meshes: float ``(T, 478, 2 or 3)`` in pixels (rows where ``found`` is False are ignored);
    found: bool ``(T,)``; frame_size: (width, height). Raises NoPersonError when no frame has a face.
    """
    found = np.asarray(found, bool)
    if not found.any():
        raise NoPersonError("no face found in any frame")
    params = np.zeros((len(found), 3))
    for t in np.nonzero(found)[0]:
        box = face_box(meshes[t], config.margin, config.min_side).astype(np.float64)
        params[t] = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0])
    params = interpolate_gaps(params, found)
    params = _three_tap(_centred_median(params, config.median_window))
    boxes = _box_from(params[:, 0], params[:, 1], params[:, 2])
    return FaceTrack(boxes, found.copy(), int((~found).sum()), (int(frame_size[0]), int(frame_size[1])))


def track_faces(source, config: FaceTrackConfig = FaceTrackConfig()) -> FaceTrack:
    """The face track of a video path, or of landmark arrays ``(data (T,586,3), conf (T,586), (W, H))``.

    A path is read with :func:`signanon.video.iter_frames` and meshed with :class:`FaceMeshEstimator`.
    Raises NoPersonError when no frame shows a face.
    """
    if isinstance(source, (str, Path)):
        from ..video import iter_frames, probe_video

        info = probe_video(source)
        meshes, found = detect_faces(iter_frames(info))
        size = (info.width, info.height)
    else:
        data, conf, size = source
        meshes, found = faces_from_landmarks(data, conf)
    try:
        return track_from_meshes(meshes, found, size, config)
    except NoPersonError:
        where = source if isinstance(source, (str, Path)) else "the landmarks"
        raise NoPersonError(f"no face found in any frame of {where}") from None


# --------------------------------------------------------------------------------------------
# Crops and their inverse


def crop_matrix(box: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """float64 ``(2, 3)`` affine: frame pixel (x, y) -> crop pixel (u, v) of a ``size`` crop."""
    x0, y0, x1, y1 = (float(v) for v in box)
    scale = size / max(x1 - x0, 1e-6)
    return np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]])


def uncrop_matrix(box: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """float64 ``(2, 3)`` affine: crop pixel (u, v) -> frame pixel (x, y); inverse of crop_matrix."""
    x0, y0, x1, _ = (float(v) for v in box)
    scale = max(x1 - x0, 1e-6) / size
    return np.array([[scale, 0.0, x0], [0.0, scale, y0]])


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map ``(N, 2+)`` points' x, y by a ``(2, 3)`` affine; extra columns (z) are scaled by its
    scale. Returns float64 with the same shape."""
    points = np.asarray(points, np.float64)
    out = points.copy()
    out[..., :2] = points[..., :2] @ matrix[:, :2].T + matrix[:, 2]
    if points.shape[-1] > 2:
        out[..., 2:] *= np.sqrt(abs(np.linalg.det(matrix[:, :2])))
    return out


def crop(frame: np.ndarray, box: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """The ``box`` region of an RGB uint8 ``(H, W, 3)`` frame resampled to ``(size, size, 3)`` uint8.

    Parts of the box outside the frame repeat the border pixels.
    """
    import cv2

    return cv2.warpAffine(
        np.ascontiguousarray(frame), crop_matrix(box, size), (size, size),
        flags=cv2.INTER_AREA if (box[2] - box[0]) > 2 * size else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def mesh_in_crop(mesh: np.ndarray, box: np.ndarray, frame_width: int, size: int = CROP_SIZE) -> np.ndarray:
    """A frame's mesh ``(478, 3)`` (x, y px, z normalised) in crop pixels, z in crop pixels too.

    Returns float64 ``(478, 3)``: the same points as seen in :func:`crop` of ``box``.
    """
    return apply_affine(crop_matrix(box, size), geometry.to_metric(mesh, frame_width))
