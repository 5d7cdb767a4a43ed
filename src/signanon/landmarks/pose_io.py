"""Landmark sequences to and from pose-format ``.pose`` files.

Our per-frame layout (:mod:`.layout`) is pose-format's standard MediaPipe Holistic layout, so a
sequence becomes a ``Pose`` whose header is ``holistic_components("XYZC", 10)`` and whose body is
a :class:`~pose_format.numpy.NumPyPoseBody` of shape ``(T, 1, 586, 3)``: one person, missing
points masked (confidence 0), never zero-filled and left unmasked.

Reading goes the other way for *any* holistic-like file: components and points are matched by
name, so reduced files (8 body points, 128 face points named ``'0'``, ``'7'``, ...) land on the
right rows and everything the file lacks stays missing.

pose-format (and, through its holistic helpers, MediaPipe) is imported lazily.
"""

from __future__ import annotations

import math
import os
import struct
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError
from . import layout

POSE_FORMAT_VERSIONS = (0.0, 0.1, 0.2)  # body versions pose-format 0.15 reads


@dataclass(frozen=True)
class PoseInfo:
    """What a ``Pose`` says about its video: frame rate, frame size in pixels, frame count."""

    fps: float
    width: int
    height: int
    frames: int


@lru_cache(maxsize=1)
def _standard_components() -> tuple:
    """pose-format's holistic header components, checked against :mod:`.layout` (cached)."""
    from pose_format.utils.holistic import holistic_components

    components = tuple(holistic_components("XYZC", 10))
    got = [(c.name, len(c.points)) for c in components]
    want = [(name, rows.stop - rows.start) for name, rows in layout.COMPONENTS]
    if got != want:  # pragma: no cover - only if pose-format changes its layout
        raise RuntimeError(f"pose-format's holistic layout {got} differs from ours {want}")
    return components


@lru_cache(maxsize=1)
def _row_of_point() -> dict[str, dict[str, int]]:
    """``{component name: {point name: row in our (586,) layout}}``."""
    rows = dict(layout.COMPONENTS)
    return {
        c.name: {point: rows[c.name].start + i for i, point in enumerate(c.points)}
        for c in _standard_components()
    }


def frames_to_pose(
    data: np.ndarray, confidence: np.ndarray, fps: float, width: int, height: int
):
    """Build a one-person holistic ``Pose``.

    data: float ``(T, 586, 3)``; confidence: float ``(T, 586)`` in [0, 1], 0 = missing;
    fps: frames per second; width, height: frame size in pixels (the header's dimensions).
    Returns a ``pose_format.Pose`` with a masked float32 body ``(T, 1, 586, 3)``.
    """
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderDimensions

    data = np.asarray(data, np.float32)
    confidence = np.asarray(confidence, np.float32)
    n = layout.NUM_POINTS
    if data.ndim != 3 or data.shape[1:] != (n, 3) or confidence.shape != data.shape[:2]:
        raise ValueError(
            f"expected data (T, {n}, 3) and confidence (T, {n}), "
            f"got {data.shape} and {confidence.shape}"
        )
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps!r}")
    missing = (confidence <= 0) | ~np.isfinite(data).all(axis=2)
    conf = np.where(missing, 0.0, confidence).astype(np.float32)
    values = np.where(missing[..., None], 0.0, data).astype(np.float32)
    mask = np.broadcast_to(missing[:, None, :, None], (len(data), 1, n, 3))
    body = NumPyPoseBody(
        fps=float(fps),
        data=np.ma.masked_array(values[:, None], mask=mask.copy()),
        confidence=conf[:, None],
    )
    header = PoseHeader(
        version=0.2,
        dimensions=PoseHeaderDimensions(width=int(width), height=int(height), depth=0),
        components=list(_standard_components()),
    )
    return Pose(header, body)


def pose_to_frames(pose) -> tuple[np.ndarray, np.ndarray]:
    """Map a holistic-like ``Pose`` onto our layout (first person only).

    Returns data float32 ``(T, 586, 3)`` (zeros where missing) and confidence float32
    ``(T, 586)`` (0 where missing: points the file lacks, masked points, non-finite values).
    Components and points are matched by name; a file with 2-D points gets z = 0.
    Raises :class:`InputError` when no component has a MediaPipe Holistic name.
    """
    table = _row_of_point()
    src_index, dst_index = [], []
    offset = 0
    for component in pose.header.components:
        rows = table.get(component.name, {})
        for i, point in enumerate(component.points):
            if point in rows:
                src_index.append(offset + i)
                dst_index.append(rows[point])
        offset += len(component.points)
    if not src_index:
        names = ", ".join(c.name for c in pose.header.components) or "none"
        raise InputError(f"the pose has no MediaPipe Holistic components (it has: {names})")

    raw = pose.body.data
    frames = raw.shape[0]
    values = np.ma.getdata(raw)[:, 0] if raw.shape[1] else np.zeros((frames, offset, 3))
    masked = np.ma.getmaskarray(raw)[:, 0].any(axis=-1) if raw.shape[1] else None
    conf_in = np.asarray(pose.body.confidence)[:, 0] if raw.shape[1] else np.zeros((frames, offset))
    dims = min(values.shape[-1], 3)

    data = np.zeros((frames, layout.NUM_POINTS, 3), np.float32)
    conf = np.zeros((frames, layout.NUM_POINTS), np.float32)
    src, dst = np.array(src_index), np.array(dst_index)
    data[:, dst, :dims] = values[:, src, :dims]
    conf[:, dst] = conf_in[:, src]
    if masked is not None:
        conf[:, dst] = np.where(masked[:, src], 0.0, conf[:, dst])
    missing = (conf <= 0) | ~np.isfinite(conf) | ~np.isfinite(data).all(axis=2)
    conf[missing] = 0.0
    data[missing] = 0.0
    return data, np.clip(conf, 0.0, 1.0)


def pose_info(pose) -> PoseInfo:
    """The ``Pose``'s frame rate, frame size and frame count."""
    dims = pose.header.dimensions
    return PoseInfo(float(pose.body.fps), int(dims.width), int(dims.height), int(pose.body.data.shape[0]))


def read_pose(path: str | os.PathLike):
    """Read a ``.pose`` file into a ``pose_format.Pose`` (NumPy body).

    Raises :class:`InputError` (one line, naming the path) when the file is missing, empty, or
    not a pose-format file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    try:
        buffer = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    if not buffer:
        raise InputError(f"{path}: the file is empty")
    if not _looks_like_pose(buffer):
        raise InputError(f"{path}: not a .pose file (pose-format)")
    from pose_format import Pose

    try:
        ok = _body_size_ok(buffer)
        if ok:
            pose = Pose.read(buffer)
            ok = pose.body.data.ndim == 4 and pose.body.data.shape[2] == pose.header.total_points()
    except Exception:  # pose-format raises many kinds on a damaged file
        ok = False
    if not ok:
        raise InputError(f"{path}: not a readable .pose file (damaged or truncated)")
    return pose


def write_pose(path: str | os.PathLike, pose) -> None:
    """Write ``pose`` to ``path`` atomically (a temporary file in the same folder, then rename).

    Raises :class:`OutputError` when the folder is missing or the file cannot be written.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(f"{path}: the folder {folder} does not exist")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder, not a file")
    tmp_name = None
    try:
        with tempfile.NamedTemporaryFile(
            "wb", dir=folder, prefix=f".{path.name}.", suffix=".tmp", delete=False
        ) as tmp:
            tmp_name = tmp.name
            pose.write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_name, _new_file_mode(path))
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError as err:
        raise OutputError(f"{path}: cannot write ({err.strerror or err})") from None
    finally:
        if tmp_name is not None and os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _new_file_mode(path: Path) -> int:
    """The mode a plain ``open(path, "w")`` would give (temporary files are created 0o600)."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _body_size_ok(buffer: bytes) -> bool:
    """Whether the body fills the file exactly (pose-format itself reads cut files silently)."""
    from pose_format.pose_header import PoseHeader
    from pose_format.utils.reader import BufferReader

    reader = BufferReader(buffer)
    header = PoseHeader.read(reader)
    offset, version = reader.read_offset, round(header.version, 3)
    floats_per_person = header.total_points() * (header.num_dims() + 1)
    if version == 0.2:  # float fps, uint frames, ushort people
        _fps, frames, people = struct.unpack_from("<fIH", buffer, offset)
        return len(buffer) - offset - 10 == 4 * frames * people * floats_per_person
    if version == 0.1:  # ushort fps, ushort frames (unreliable), ushort people
        _fps, _frames, people = struct.unpack_from("<3H", buffer, offset)
        per_frame = 4 * people * floats_per_person
        return per_frame > 0 and (len(buffer) - offset - 6) % per_frame == 0
    return True  # version 0: left to pose-format


def _looks_like_pose(buffer: bytes) -> bool:
    """Cheap check of the header: a known version and a component count that fits the file."""
    if len(buffer) < 12:
        return False
    version, _w, _h, _d, components = struct.unpack_from("<f3HH", buffer)
    known = any(abs(version - v) < 1e-4 for v in POSE_FORMAT_VERSIONS)
    return known and 0 < components < 1000
