"""Build ``src/signanon/avatar/assets/canonical_face.npz``: a face that is nobody in particular.

The canonical face is the Procrustes-aligned average of the MediaPipe face meshes (478 points,
refined irises) of ten different people, each weighted once:

* the 5 people photographed in ``<data>/faces/<person>/`` (every photo of a person is aligned and
  averaged first);
* the 2 talking heads in ``<data>/talking_face/*.mp4`` (the median of their most neutral frames:
  the frames with the smallest mouth opening);
* the 3 signers in ``<data>/video/`` (likewise).

It is then made left-right symmetric, normalised to face units (outer eye corners 1 apart, origin at
point 168, x right, y down, z away from the viewer) and turned frontal: the eye line along x, pitch
the average over all the photos and frames (people look at the camera). Triangles come from
mediapipe's ``FACEMESH_TESSELATION`` (see :func:`signanon.avatar.canonical.triangles_from_edges`).

Runs offline: ``python tools/build_canonical_face.py [--data ../shared/data] [--out PATH]`` (the
project's shared test data, beside the checkout).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")

import numpy as np  # noqa: E402

from signanon.avatar import canonical as C  # noqa: E402
from signanon.landmarks import geometry as G  # noqa: E402
from signanon.landmarks import regions as R  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "src" / "signanon" / "avatar" / "assets" / "canonical_face.npz"
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
NEUTRAL_FRACTION = 0.3  # of a clip's frames, those with the smallest mouth opening


def _face_mesh(static: bool):
    from mediapipe.python.solutions import face_mesh

    return face_mesh.FaceMesh(
        static_image_mode=static, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.5
    )


def _landmarks(graph, rgb: np.ndarray) -> np.ndarray | None:
    """(478, 3) float64 with x, y, z all in pixels of the image, or None without a face."""
    res = graph.process(np.ascontiguousarray(rgb))
    if not res.multi_face_landmarks:
        return None
    h, w = rgb.shape[:2]
    p = np.array([(q.x, q.y, q.z) for q in res.multi_face_landmarks[0].landmark], np.float64)
    return p * np.array([w, h, w])


def _read_photo(path: Path) -> np.ndarray:
    from PIL import Image

    img = Image.open(path).convert("RGB")
    scale = 1280 / max(img.size)
    if scale < 1:
        img = img.resize((round(img.width * scale), round(img.height * scale)))
    return np.asarray(img)


def _read_frames(path: Path, limit: int = 240, min_side: int = 480):
    import av

    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= limit:
                break
            img = frame.to_ndarray(format="rgb24")
            k = int(np.ceil(min_side / min(img.shape[:2])))
            if k > 1:  # small GIFs: upscale so the face mesh has enough pixels
                img = np.repeat(np.repeat(img, k, 0), k, 1)
            yield img


def _procrustes_mean(meshes: list[np.ndarray], iterations: int = 5) -> np.ndarray:
    """Generalised Procrustes (similarity) mean of (478, 3) meshes, on the stable points."""
    ref = meshes[0]
    rows = np.asarray(R.STABLE)
    for _ in range(iterations):
        aligned = []
        for m in meshes:
            s, rot, t = G.similarity_fit(m[rows], ref[rows])
            aligned.append(s * m @ rot.T + t)
        ref = np.mean(aligned, axis=0)
        ref = (ref - ref.mean(0)) / np.linalg.norm(ref[R.EYE_OUTER_L] - ref[R.EYE_OUTER_R])
    return ref


def _person_from_photos(folder: Path, graph) -> np.ndarray | None:
    meshes = [m for p in sorted(folder.iterdir()) if p.suffix.lower() in PHOTO_SUFFIXES
              if (m := _landmarks(graph, _read_photo(p))) is not None]  # fmt: skip
    print(f"  {folder.name}: {len(meshes)} photo(s) with a face")
    return _procrustes_mean(meshes) if meshes else None


def _person_from_clip(path: Path) -> np.ndarray | None:
    with _face_mesh(static=False) as graph:
        meshes = [m for img in _read_frames(path) if (m := _landmarks(graph, img)) is not None]
    if not meshes:
        return None
    eye = np.array([np.linalg.norm(m[R.EYE_OUTER_L] - m[R.EYE_OUTER_R]) for m in meshes])
    mouth = np.array([np.linalg.norm(m[13] - m[14]) for m in meshes]) / eye
    keep = np.argsort(mouth)[: max(1, int(len(meshes) * NEUTRAL_FRACTION))]
    chosen = [meshes[i] for i in keep]
    print(f"  {path.name}: {len(meshes)} frames with a face, {len(chosen)} most neutral kept")
    mean = _procrustes_mean(chosen)
    return np.median([_align(m, mean) for m in chosen], axis=0)


def _align(mesh: np.ndarray, ref: np.ndarray) -> np.ndarray:
    rows = np.asarray(R.STABLE)
    s, rot, t = G.similarity_fit(mesh[rows], ref[rows])
    return s * mesh @ rot.T + t


def _mirror_pairs(mesh: np.ndarray) -> np.ndarray:
    """(478,) index of each point's left-right mirror partner (nearest point after mirroring x)."""
    centre = mesh[R.NOSE_BRIDGE, 0]
    mirrored = mesh.copy()
    mirrored[:, 0] = 2 * centre - mirrored[:, 0]
    d = np.linalg.norm(mirrored[:, None, :] - mesh[None, :, :], axis=2)
    pairs = d.argmin(1)
    if sorted(pairs) != list(range(len(mesh))):
        raise RuntimeError("mirror partners are not one-to-one; the mean face is too asymmetric")
    return pairs


def _frontal(mesh: np.ndarray, camera_meshes: list[np.ndarray]) -> np.ndarray:
    """Face units, origin 168, eye line along x, pitch = mean pitch seen by the cameras."""
    rows = np.asarray(R.STABLE)
    rots = [G.similarity_fit(mesh[rows], m[rows])[1] for m in camera_meshes]
    u, _, vt = np.linalg.svd(np.sum(rots, axis=0))
    mean_rot = u @ np.diag([1, 1, np.linalg.det(u @ vt)]) @ vt
    m = (mesh - mesh[R.NOSE_BRIDGE]) @ mean_rot.T
    x = m[R.EYE_OUTER_L] - m[R.EYE_OUTER_R]
    x /= np.linalg.norm(x)
    y = np.array([0.0, 1.0, 0.0]) - x[1] * x
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    m = m @ np.stack([x, y, z]).T
    return m / np.linalg.norm(m[R.EYE_OUTER_L] - m[R.EYE_OUTER_R])


def _symmetrise(mesh: np.ndarray) -> np.ndarray:
    pairs = _mirror_pairs(mesh)
    mirrored = mesh[pairs].copy()
    mirrored[:, 0] *= -1
    return 0.5 * (mesh + mirrored)


def build(data: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    people: list[np.ndarray] = []
    names: list[str] = []
    print("photos:")
    with _face_mesh(static=True) as graph:
        for folder in sorted((data / "faces").iterdir()):
            if folder.is_dir() and not folder.name.startswith("_"):
                if (m := _person_from_photos(folder, graph)) is not None:
                    people.append(m)
                    names.append(f"faces/{folder.name}")
    print("clips:")
    for path in sorted((data / "talking_face").glob("*.mp4")) + sorted((data / "video").iterdir()):
        if (m := _person_from_clip(path)) is not None:
            people.append(m)
            names.append(f"{path.parent.name}/{path.name}")
    mean = _procrustes_mean(people)
    mean = _frontal(mean, people)
    # mirror about x = 0 (point 168 is the origin), then renormalise
    mean = _symmetrise(mean)
    mean -= mean[R.NOSE_BRIDGE]
    mean /= np.linalg.norm(mean[R.EYE_OUTER_L] - mean[R.EYE_OUTER_R])
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    tris = C.triangles_from_edges(sorted(FACEMESH_TESSELATION), mean)
    return mean.astype(np.float32), tris, names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    points, tris, names = build(args.data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, points=points, triangles=tris.astype(np.int16), sources=np.array(names))
    print(f"{len(names)} people -> {args.out} ({len(tris)} triangles, {args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
