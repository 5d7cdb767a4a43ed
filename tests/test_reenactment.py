"""Face re-enactment on real faces: face track, landmark warp (the offline fallback), the
stand-alone ``reenact`` job, paste-back under hands and the diffusion pipeline's face enhancer.

Driver: tests/data/talking_face_open_mouth.mp4 (90 frames, 320x320, 30 fps; the mouth opens wide in
the last third). Source: tests/data/faces/obama/2.jpg (another person, frontal, mouth closed).
Measured when written (landmark warp, relative mode): the output's mouth-opening series vs the
driver's r = 0.997, brow raise r = 0.91; dlib distance of output faces to the source photo
0.17-0.27, to the driver's face 0.88-0.92.
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from signanon.errors import InputError, NoPersonError, OutputError, SignanonError
from signanon.evaluation.signing import brow_raise, mouth_opening, pearson
from signanon.landmarks import layout
from signanon.diffusion.ablation import write_ablation
from signanon.diffusion.face_enhance import FaceEnhanceConfig, FaceEnhancer, most_neutral_index
from signanon.reenactment.driver_guard import DriverGuardConfig
from signanon.reenactment.face_track import (
    FaceTrackConfig, apply_affine, crop, crop_matrix, detect_faces, face_box, mesh_in_crop, track_faces,
    track_from_meshes, uncrop_matrix,
)  # fmt: skip
from signanon.reenactment.landmark_warp import ThinPlateSpline, transfer_motion, warp_face
from signanon.reenactment.paste import PasteConfig, face_oval_mask, hand_mask, paste_face
from signanon.reenactment.reenact import ReenactConfig, reenact
from signanon.video import VideoWriter, iter_frames, probe_video

DATA = Path(__file__).resolve().parent / "data"
DRIVER = DATA / "talking_face_open_mouth.mp4"
SOURCE = DATA / "faces" / "obama" / "2.jpg"


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _write_video(path: Path, frames, fps=Fraction(30)) -> Path:
    frames = list(frames)
    with VideoWriter(path, frames[0].shape[1], frames[0].shape[0], fps) as writer:
        for frame in frames:
            writer.write(frame)
    return path


def _landmarks(mesh: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """A (586, 3) landmark frame holding only a face mesh (or nothing)."""
    data = np.zeros((layout.NUM_POINTS, 3), np.float32)
    conf = np.zeros(layout.NUM_POINTS, np.float32)
    if mesh is not None:
        data[layout.FACE] = mesh
        conf[layout.FACE] = 1.0
    return data, conf


@pytest.fixture(scope="module")
def driver():
    frames = list(iter_frames(probe_video(DRIVER)))
    meshes, found = detect_faces(frames)
    assert found.all()
    return frames, meshes


@pytest.fixture(scope="module")
def reenacted(tmp_path_factory, driver):
    out = tmp_path_factory.mktemp("reenact") / "out.mp4"
    summary = reenact(SOURCE, DRIVER, out)
    frames = list(iter_frames(probe_video(out)))
    meshes, found = detect_faces(frames)
    return summary, out, frames, meshes, found


# --------------------------------------------------------------------------------------------
# the stand-alone job


def test_reenact_has_driver_frame_count_rate_and_source_size(reenacted):
    summary, out, frames, _, _ = reenacted
    drv, got = probe_video(DRIVER), probe_video(out)
    assert got.frame_count == drv.frame_count == summary.frames == 90
    assert got.fps == drv.fps
    source = _rgb(SOURCE)
    height, width = source.shape[:2]
    assert (summary.height, summary.width) == (height, width)
    assert (got.height, got.width) == (height + height % 2, width + width % 2)  # yuv420p: even sizes
    assert summary.method == "landmark-warp" and summary.driving_faces_found == 90


def test_reenact_output_moves_like_the_driver(reenacted, driver):
    _, _, _, out_meshes, found = reenacted
    _, drv_meshes = driver
    assert found.mean() > 0.95
    r = {}
    for name, fn in (("mouth", mouth_opening), ("brow", brow_raise)):
        a = [fn(m) for m in drv_meshes]
        b = [fn(m) if ok else np.nan for m, ok in zip(out_meshes, found)]
        r[name] = pearson(a, b)
    assert r["mouth"] >= 0.9, r  # measured 0.997
    assert r["brow"] >= 0.6, r  # measured 0.91


def test_reenact_keeps_the_source_identity_not_the_driver(reenacted, driver):
    from signanon.evaluation.identity import DlibEmbedder

    _, _, frames, _, _ = reenacted
    drv_frames, _ = driver
    embedder = DlibEmbedder()
    source = embedder.faces(_rgb(SOURCE))[0].embedding
    for t in (0, 45, 80):  # 80: mouth wide open
        faces = embedder.faces(frames[t])
        assert len(faces) == 1
        assert embedder.distance(faces[0].embedding, source) < 0.6
        assert embedder.distance(faces[0].embedding, embedder.faces(drv_frames[t])[0].embedding) > 0.6


def test_reference_is_a_neutral_driving_frame(reenacted, driver):
    summary, *_ = reenacted
    _, meshes = driver
    openings = np.array([mouth_opening(m) for m in meshes])
    assert openings[summary.reference_index] < 0.05 * openings.max()  # a closed mouth


def test_crop_output_and_absolute_mode(tmp_path, driver):
    frames, _ = driver
    short = _write_video(tmp_path / "short.mp4", frames[70:82], Fraction(25))
    summary = reenact(SOURCE, short, tmp_path / "crops.mp4", ReenactConfig(output="crop", mode="absolute", reference=0))
    info = probe_video(tmp_path / "crops.mp4")
    assert (info.width, info.height, info.frame_count, info.fps) == (256, 256, 12, 25)
    assert summary.reference_index == 0


def _parse(argv):
    from signanon.reenactment.cli import add_reenact_parser

    parser = argparse.ArgumentParser(prog="signanon")
    add_reenact_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_bad_inputs_give_one_line_errors_and_no_output(tmp_path, driver):
    from signanon.reenactment.cli import run_reenact

    frames, _ = driver
    blank_png = tmp_path / "blank.png"
    cv2.imwrite(str(blank_png), np.full((200, 200, 3), 128, np.uint8))
    no_face = _write_video(tmp_path / "noface.mp4", [np.full((64, 64, 3), 90, np.uint8)] * 5)
    short = _write_video(tmp_path / "short.mp4", frames[:6])
    out = tmp_path / "out.mp4"
    cases = [
        (["--source", str(blank_png), "--driving", str(short)], NoPersonError, "source"),
        (["--source", str(SOURCE), "--driving", str(no_face)], NoPersonError, "driving"),
        (["--source", str(tmp_path / "nope.jpg"), "--driving", str(short)], InputError, "not found"),
        (["--source", str(SOURCE), "--driving", str(tmp_path / "nope.mp4")], InputError, "not found"),
        (["--source", str(SOURCE), "--driving", str(short), "--reference", "99"], InputError, "reference"),
        (["--source", str(SOURCE), "--driving", str(short), "--reference", "x"], InputError, "reference"),
        (["--source", str(SOURCE), "--driving", str(short), "--face-model", str(tmp_path / "v.pth.tar")], InputError, "face model"),
    ]
    for argv, kind, word in cases:
        args = _parse(["reenact", *argv, "-o", str(out), "-q"])
        with pytest.raises(kind) as err:
            run_reenact(args)
        message = str(err.value)
        assert "\n" not in message and word in message.lower(), message
        assert not out.exists() and not list(tmp_path.glob(".out.mp4*"))
    with pytest.raises(OutputError):
        run_reenact(_parse(["reenact", "--source", str(SOURCE), "--driving", str(short), "-o", str(tmp_path / "o.avi")]))
    with pytest.raises(SignanonError):  # output = input
        run_reenact(_parse(["reenact", "--source", str(SOURCE), "--driving", str(short), "-o", str(short), "-q"]))


# --------------------------------------------------------------------------------------------
# face track


def test_face_track_interpolates_a_gap_and_counts_it(driver):
    _, meshes = driver
    found = np.ones(len(meshes), bool)
    found[30:40] = False
    full = track_from_meshes(meshes, np.ones(len(meshes), bool), (320, 320))
    gap = track_from_meshes(np.where(found[:, None, None], meshes, 0), found, (320, 320))
    assert gap.interpolated == 10 and full.interpolated == 0 and not gap.found[35]
    sides = gap.boxes[:, 2] - gap.boxes[:, 0]
    assert np.allclose(sides, gap.boxes[:, 3] - gap.boxes[:, 1], atol=1e-3)  # square
    # the gap's boxes lie between their neighbours' and near the boxes of the real faces
    assert np.abs(gap.boxes[30:40] - full.boxes[30:40]).max() < 0.05 * sides.mean()
    # margin: the box is 1.6x the mesh extent
    extent = np.ptp(meshes[0][:, :2], axis=0).max()
    assert abs(sides[0] / extent - 1.6) < 0.1


def test_face_track_from_landmarks_and_no_face():
    t = np.arange(20, dtype=np.float32)
    base = np.random.default_rng(0).uniform(100, 160, (478, 3)).astype(np.float32)
    data = np.zeros((20, 586, 3), np.float32)
    conf = np.zeros((20, 586), np.float32)
    data[:, layout.FACE] = base + np.stack([t, 0 * t, 0 * t], 1)[:, None, :]
    conf[:, layout.FACE] = 1
    conf[5:9] = 0
    track = track_faces((data, conf, (320, 240)), FaceTrackConfig(median_window=1))
    assert track.interpolated == 4 and len(track) == 20
    centre_x = (track.boxes[:, 0] + track.boxes[:, 2]) / 2
    assert np.all(np.diff(centre_x[3:11]) > 0)  # linear motion stays linear through the gap
    with pytest.raises(NoPersonError):
        track_faces((data, np.zeros_like(conf), (320, 240)))


def test_crop_and_its_inverse(driver):
    frames, meshes = driver
    box = face_box(meshes[0])
    face = crop(frames[0], box)
    assert face.shape == (256, 256, 3) and face.dtype == np.uint8
    points = meshes[0][:, :2]
    back = apply_affine(uncrop_matrix(box), apply_affine(crop_matrix(box), points))
    assert np.allclose(back, points, atol=1e-6)
    in_crop = mesh_in_crop(meshes[0], box, 320)
    u, v = np.round(in_crop[1, :2]).astype(int)  # nose tip: the crop shows the frame's pixel there
    x, y = np.round(points[1]).astype(int)
    assert np.abs(face[v, u].astype(int) - frames[0][y, x].astype(int)).max() < 40
    corner = crop(frames[0], np.array([-100, -100, 60, 60], np.float32))  # outside: border repeated
    assert corner.shape == (256, 256, 3)


# --------------------------------------------------------------------------------------------
# landmark warp


def test_thin_plate_spline_interpolates_and_keeps_affine_maps():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 256, (40, 2))
    q = p + rng.normal(0, 5, p.shape)
    tps = ThinPlateSpline(p, q, scale=256.0)
    assert np.allclose(tps(p), q, atol=1e-6)
    affine = p @ np.array([[1.1, 0.2], [-0.1, 0.9]]).T + [3.0, -4.0]
    grid = rng.uniform(0, 256, (100, 2))
    assert np.allclose(ThinPlateSpline(p, affine, 256.0)(grid), grid @ np.array([[1.1, 0.2], [-0.1, 0.9]]).T + [3, -4], atol=1e-6)


def test_warp_is_identity_without_motion_and_transfer_is_relative(driver):
    frames, meshes = driver
    box = face_box(meshes[0])
    face = crop(frames[0], box)
    mesh = mesh_in_crop(meshes[0], box, 320)
    target, _ = transfer_motion(mesh, meshes[10], meshes[10])  # driver at its reference: no motion
    assert np.allclose(target, mesh, atol=1e-6)
    same = warp_face(face, mesh, target, 256, np.eye(3)[:2])
    assert np.abs(same.astype(int) - face.astype(int)).mean() < 1.5
    wide = int(np.argmax([mouth_opening(m) for m in meshes]))
    target, _ = transfer_motion(mesh, meshes[wide], meshes[0])
    assert mouth_opening(target) > mouth_opening(mesh) + 0.2  # the source's mouth opens


# --------------------------------------------------------------------------------------------
# paste-back and the diffusion pipeline's enhancer


def _hand_over_mouth(mesh: np.ndarray, data: np.ndarray, conf: np.ndarray) -> None:
    """Put a right hand (21 points, a flat palm) over the mouth of ``mesh``."""
    centre = mesh[14, :2]
    rng = np.random.default_rng(2)
    pts = centre + rng.uniform(-25, 25, (21, 2))
    data[layout.RIGHT_HAND, :2] = pts
    conf[layout.RIGHT_HAND] = 1.0


def test_paste_never_changes_pixels_under_a_hand(driver):
    frames, meshes = driver
    frame = frames[0]
    data, conf = _landmarks(meshes[0])
    _hand_over_mouth(meshes[0], data, conf)
    protect = hand_mask(data, conf, frame.shape[:2])
    assert 500 < protect.sum() < 0.3 * protect.size
    box = face_box(meshes[40])
    other = _rgb(SOURCE)
    face = crop(other, face_box(detect_faces([other], static=True)[0][0]))  # another person's face
    mask = face_oval_mask(meshes[0], frame.shape[:2])
    inside = (mask > 0.9) & ~protect
    for config in (PasteConfig(colour_match=False), PasteConfig(), PasteConfig(blend="poisson")):
        out = paste_face(frame, face, box, mask, protect, config)
        assert np.array_equal(out[protect], frame[protect])  # the hand stays on top
        assert np.array_equal(out[mask == 0], frame[mask == 0])
        changed = np.abs(out.astype(int) - frame.astype(int)).sum(2)[inside] > 30
        assert changed.mean() > 0.3, (config, changed.mean())
        if config.colour_match:
            assert np.abs(out[inside].mean(0) - frame[inside].mean(0)).max() < 15  # colours matched


def test_enhancer_restores_the_original_mouth_motion_on_a_flat_face(driver, tmp_path):
    frames, meshes = driver
    pairs = [_landmarks(m) for m in meshes]
    key = most_neutral_index(np.stack([d for d, _ in pairs]), np.stack([c for _, c in pairs]), width=320)
    enhancer = FaceEnhancer()
    data_k, conf_k = _landmarks(meshes[key])
    enhancer.prepare(frames[key], data_k, conf_k)
    # a "flattened" anonymized clip: the key frame repeated (one expression everywhere)
    picks = list(range(0, 90, 6))
    enhanced = []
    for t in picks:
        data, conf = _landmarks(meshes[t])
        _hand_over_mouth(meshes[t], data, conf) if t == 84 else None
        out = enhancer(frames[key], data, conf)
        if t == 84:
            protect = hand_mask(data, conf, (320, 320))
            assert np.array_equal(out[protect], frames[key][protect])
        enhanced.append(out)
    assert enhancer.stats.enhanced == len(picks) and enhancer.stats.failed == 0
    got, found = detect_faces(enhanced, static=True)
    a = [mouth_opening(meshes[t]) for t in picks if t != 84]
    b = [mouth_opening(m) if ok else np.nan for t, m, ok in zip(picks, got, found) if t != 84]
    assert pearson(a, b) >= 0.8, (a, b)
    # no face in the original landmarks: the anonymized frame comes back unchanged
    empty = _landmarks(None)
    assert np.array_equal(enhancer(frames[key], *empty), frames[key]) and enhancer.stats.no_face == 1
    n = write_ablation(frames[:5], [frames[key]] * 5, enhanced[:5], tmp_path / "ablation.mp4", fps=30)
    info = probe_video(tmp_path / "ablation.mp4")
    assert n == info.frame_count == 5 and info.width == 960 and info.height == 320


class _BrokenAnimator:
    def animate(self, source, driving, mode, reference):
        raise RuntimeError("model exploded")


class _EchoAnimator:
    def animate(self, source, driving, mode, reference):
        for _ in driving:
            yield source


def test_enhancer_with_an_animator_fails_closed(driver):
    frames, meshes = driver
    data, conf = _landmarks(meshes[0])
    broken = FaceEnhancer(animator=_BrokenAnimator())
    broken.prepare(frames[0], data, conf, reference_frame=frames[0])
    out = broken(frames[0], data, conf, original_frame=frames[50])
    assert np.array_equal(out, frames[0]) and broken.stats.failed == 1
    d50, c50 = _landmarks(meshes[50])
    # the source here is the signer's own frame, so the driver guard refuses its echo (a model's
    # frame cannot be weakened): the frame stays as it was; with the guard off it is pasted
    guarded = FaceEnhancer(animator=_EchoAnimator())
    guarded.prepare(frames[0], data, conf, reference_frame=frames[0])
    out = guarded(frames[0], d50, c50, original_frame=frames[50])
    assert guarded.stats.guarded == 1 and guarded.stats.enhanced == 0 and np.array_equal(out, frames[0])
    echo = FaceEnhancer(FaceEnhanceConfig(guard=DriverGuardConfig(enabled=False)), animator=_EchoAnimator())
    echo.prepare(frames[0], data, conf, reference_frame=frames[0])
    out = echo(frames[0], d50, c50, original_frame=frames[50])
    assert echo.stats.enhanced == 1 and out.shape == frames[0].shape


def test_reenact_and_enhance_with_a_tiny_tpsmm(tmp_path, driver):
    torch = pytest.importorskip("torch")
    from signanon.reenactment.tpsmm import TINY, TPSMM, TPSMMAnimator

    frames, meshes = driver
    torch.manual_seed(0)
    animator = TPSMMAnimator(TPSMM(TINY).eval(), "cpu")
    short = _write_video(tmp_path / "short.mp4", frames[60:63])  # the tiny model is slow on CPU
    out = tmp_path / "model.mp4"
    summary = reenact(SOURCE, short, out, ReenactConfig(output="crop"), animator=animator)
    info = probe_video(out)
    assert summary.method == "tpsmm" and (info.frame_count, info.width, info.height) == (3, 256, 256)
    enhancer = FaceEnhancer(animator=animator)
    data, conf = _landmarks(meshes[0])
    enhancer.prepare(frames[0], data, conf, reference_frame=frames[0])
    result = enhancer(frames[0], *_landmarks(meshes[50]), original_frame=frames[50])
    assert enhancer.stats.enhanced == 1 and enhancer.stats.failed == 0
    assert not np.array_equal(result, frames[0])


def _picture(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(DATA / name)), cv2.COLOR_BGR2RGB)


def test_the_source_face_is_found_small_in_a_large_picture_and_refused_when_ambiguous_or_tiny():
    """MediaPipe's face mesh finds only faces that fill much of the picture: a portrait placed
    small on a large canvas was refused as "no face found" though dlib finds it. A picture of
    several people had one of them animated without a word, and a 32x32 picture gave a video in
    which no detector finds a face. Now: the mesh is read around dlib's face, several faces and
    a face under 40 px are refused in one line."""
    from signanon.reenactment.face_track import FaceTrackConfig
    from signanon.reenactment.reenact import source_face

    portrait = _picture("faces/obama/1.jpg")
    scale = 420 / portrait.shape[0]
    small = cv2.resize(portrait, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((1428, 2000, 3), 200, np.uint8)
    y0, x0 = 700, 1300
    canvas[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    mesh, box = source_face(canvas, FaceTrackConfig())
    cx, cy = mesh[:, 0].mean(), mesh[:, 1].mean()
    assert x0 < cx < x0 + small.shape[1] and y0 < cy < y0 + small.shape[0]
    # the same face as the mesh reads it on the portrait itself, moved and scaled onto the canvas
    alone, _ = source_face(portrait, FaceTrackConfig())
    expected = alone[:, :2] * scale + (x0, y0)
    assert np.abs(mesh[:, :2] - expected).mean() < 0.05 * np.ptp(expected[:, 0])
    with pytest.raises(InputError, match=r"shows \d faces: give a picture with one face"):
        source_face(_picture("two_people/obama_and_biden.jpg"), FaceTrackConfig())
    with pytest.raises(InputError, match="px wide: give a picture whose face is at least 40 px wide"):
        source_face(cv2.resize(portrait, (32, 32), interpolation=cv2.INTER_AREA), FaceTrackConfig())
