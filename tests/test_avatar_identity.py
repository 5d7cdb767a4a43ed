"""The synthetic signer is nobody: dlib never takes its face for a real person (issue 11).

The avatar's face is drawn from a canonical mesh averaged from several people, and an average face
sits near the middle of face space, where a recogniser may find it close to many people. If dlib
put it under its 0.6 same-person distance to a real face, a face search on an anonymized corpus
would "find" that person. Every look's avatar that ``auto`` may draw (each palette on each face
shape but the ``UNOFFERED_LOOKS``, the identity guard off: the look itself is under test), animated
by a real signer, is compared with every
real face the repository ships (photos of five people, the signing clips' and the talking head's
faces) and, when the shared data folder is there, with its photos, talking faces and signing clips.
Measured when written (issue 11): nearest 0.62 (dark-skin palette vs expressive_man), 0.64-0.66
for the other palettes.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import probes_off
from signanon.avatar.anonymizer import AvatarAnonymizer, AvatarConfig
from signanon.avatar.canonical import FACE_SHAPES
from signanon.avatar.identity_guard import IdentityGuardConfig
from signanon.avatar.style import PALETTES, UNOFFERED_LOOKS
from signanon.evaluation.identity import DlibEmbedder
from signanon.video import iter_frames, probe_video

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
SHARED = REPO.parent / "shared" / "data"
SAME_PERSON = 0.6  # dlib's documented threshold, as used by evaluate and the privacy gate


def _every(path: Path, step: int, limit: int) -> list[np.ndarray]:
    """Every ``step``-th RGB frame of a video, at most ``limit`` of them."""
    out = []
    for t, frame in enumerate(iter_frames(probe_video(path))):
        if t % step == 0:
            out.append(frame)
        if len(out) == limit:
            break
    return out


def _largest(embedder: DlibEmbedder, rgb: np.ndarray) -> np.ndarray | None:
    faces = embedder.faces(rgb)
    return max(faces, key=lambda f: f.area).embedding if faces else None


@pytest.fixture(scope="module")
def embedder() -> DlibEmbedder:
    return DlibEmbedder()


@pytest.fixture(scope="module")
def real_faces(embedder) -> dict[str, np.ndarray]:
    """name -> 128-d dlib embedding of every real face at hand."""
    photos = sorted((DATA / "faces").glob("*/*.jpg"))
    videos = sorted(DATA.glob("*.gif")) + [DATA / "talking_face_open_mouth.mp4", REPO / "examples" / "asl_webcam.mp4"]
    if SHARED.is_dir():
        photos += sorted(p for p in (SHARED / "faces").glob("*/*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        videos += sorted((SHARED / "talking_face").glob("*.mp4")) + sorted((SHARED / "video").glob("*"))
    found: dict[str, np.ndarray] = {}
    for path in photos:
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        for k, face in enumerate(embedder.faces(rgb)):
            found[f"{path.parent.name}/{path.name}#{k}"] = face.embedding
    for path in videos:
        for t, frame in enumerate(_every(path, 30, 3)):
            embedding = _largest(embedder, frame)
            if embedding is not None:
                found[f"{path.name}@{30 * t}"] = embedding
    assert len(found) >= 12, sorted(found)  # the repository's own data alone gives 14
    return found


LOOKS = [(p, s) for s in FACE_SHAPES for p in sorted(PALETTES) if (p, s) not in UNOFFERED_LOOKS]


@pytest.mark.parametrize(("palette", "shape"), LOOKS)
def test_no_real_face_is_within_dlibs_same_person_distance_of_the_avatar(palette, shape, real_faces, embedder, tmp_path):
    out = tmp_path / "avatar.mp4"
    # the per-signer choices off: the hands' draws no face (2-3 s a look on this clip); the lips' rest
    # parting and the brow furrow's gain (3 and 4 s a look) move the face less than its expressions
    # do, and the guard, off here so that the look itself is judged, checks the faces they draw
    config = AvatarConfig(palette=palette, face_shape=shape, guard=IdentityGuardConfig(enabled=False), **probes_off())
    AvatarAnonymizer(config)(DATA / "asl_house.gif", out, progress=False)
    avatar = [e for e in (_largest(embedder, f) for f in _every(out, 6, 13)) if e is not None]
    assert len(avatar) >= 8  # dlib sees the avatar's face: the check below is not vacuous
    nearest = min(
        ((embedder.distance(a, r), name) for name, r in real_faces.items() for a in avatar),
        key=lambda pair: pair[0],
    )
    assert nearest[0] > SAME_PERSON, f"the {palette}/{shape} avatar reads as {nearest[1]} (distance {nearest[0]:.3f})"
