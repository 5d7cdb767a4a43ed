"""TPSMM: the published checkpoint layout, loading, inference plumbing and fine-tuning.

No real weights exist here: the layout test compares against tests/data/tpsmm_vox_keys.json (the
names and shapes of vox.pth.tar, taken from the authors' module definitions), and everything else
runs on randomly initialised models, tiny ones (TINY: 64x64, narrow networks) where speed matters.
The perceptual loss uses a toy VGG19 (narrow layers) saved in torchvision's vgg19 file layout and
loaded through the same loader as the real vgg19-dcbb9e9d.pth.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from signanon.errors import InputError, OutputError  # noqa: E402
from signanon.reenactment.tpsmm import (  # noqa: E402
    PARTS,
    TINY,
    TPSMM,
    VOX_256,
    KeypointTPS,
    RandomTPS,
    TPSMMAnimator,
    checkpoint_dict,
    load_tpsmm,
)
from signanon.reenactment import training as tr  # noqa: E402
from signanon.reenactment import train_cli  # noqa: E402

DATA = Path(__file__).parent / "data"
FIXTURE = DATA / "tpsmm_vox_keys.json"
TOY_VGG_WIDTHS = (4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8)
TOY_256 = replace(TINY, image_size=256)


def _layout(model: TPSMM) -> dict:
    return {part: {k: list(v.shape) for k, v in sd.items()} for part, sd in model.part_state_dicts().items()}


def _frames(path: Path, box, size: int, every: int = 1) -> list[np.ndarray]:
    """Real frames of a test clip, cropped to ``box`` (x0, y0, x1, y1) and resized to ``size``."""
    import cv2

    from signanon.video import iter_frames, probe_video

    x0, y0, x1, y1 = box
    out = []
    for i, frame in enumerate(iter_frames(probe_video(path))):
        if i % every == 0:
            out.append(cv2.resize(np.ascontiguousarray(frame[y0:y1, x0:x1]), (size, size), interpolation=cv2.INTER_AREA))
    return out


def _write_clip(folder: Path, frames) -> None:
    import cv2

    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="module")
def face_data(tmp_path_factory) -> dict[str, Path]:
    """Two sources of 64x64 face clips from real frames: 3 talking-head clips, 1 signing clip."""
    root = tmp_path_factory.mktemp("faces")
    talking = _frames(DATA / "talking_face_open_mouth.mp4", (16, 40, 308, 332), 64, every=3)
    for k in range(3):
        _write_clip(root / "talking" / f"clip{k}", talking[10 * k : 10 * k + 10])
    _write_clip(root / "sign" / "house", _frames(DATA / "asl_house.gif", (102, 11, 202, 111), 64, every=4))
    return {"talking_heads": root / "talking", "sign_faces": root / "sign"}


@pytest.fixture(scope="module")
def toy_vgg_file(tmp_path_factory) -> Path:
    """A random toy VGG19 saved like torchvision's vgg19-dcbb9e9d.pth (``features.N.*`` + classifier)."""
    torch.manual_seed(0)
    net = tr.Vgg19Features(TOY_VGG_WIDTHS)
    state = {f"features.{k}": v for k, v in net.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path_factory.mktemp("vgg") / "vgg19-toy.pth"
    torch.save(state, path)
    return path


def _tiny_model(seed: int = 0) -> TPSMM:
    torch.manual_seed(seed)
    return TPSMM(TINY)


# ------------------------------------------------------------------------------------------------
# layout and loading
# ------------------------------------------------------------------------------------------------
def test_vox256_state_dict_equals_fixture():
    fixture = json.loads(FIXTURE.read_text())
    fixture.pop("_about")
    assert set(fixture) == set(PARTS)
    assert _layout(TPSMM(VOX_256)) == fixture


def test_published_layout_loads_strictly(tmp_path):
    """A file shaped like vox.pth.tar (random tensors of the fixture's shapes, optimizer states,
    epoch) loads with load_tpsmm and every tensor arrives unchanged."""
    fixture = json.loads(FIXTURE.read_text())
    fixture.pop("_about")
    gen = torch.Generator().manual_seed(1)
    state = {part: {k: torch.randn(shape, generator=gen) if shape else torch.tensor(7) for k, shape in keys.items()}
             for part, keys in fixture.items()}
    state.update(epoch=99, optimizer={"state": {}, "param_groups": [{"lr": 2e-4, "params": [0, 1]}]},
                 optimizer_bg_predictor={"state": {}, "param_groups": []})
    path = tmp_path / "vox.pth.tar"
    torch.save(state, path)
    model = load_tpsmm(path, "cpu")
    assert not model.training
    loaded = model.part_state_dicts()
    for part in PARTS:
        for key, value in state[part].items():
            assert torch.equal(loaded[part][key], value), (part, key)


def test_missing_or_wrong_checkpoint_is_one_line_error(tmp_path):
    with pytest.raises(InputError) as err:
        load_tpsmm(tmp_path / "vox.pth.tar")
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "vox.pth.tar") in message
    assert "not found" in message and "vox.pth.tar" in message and "--face-model" in message
    assert "github.com/yoyo-nb/Thin-Plate-Spline-Motion-Model" in message

    text = tmp_path / "notes.pth.tar"
    text.write_text("not a checkpoint")
    with pytest.raises(InputError, match="cannot be read"):
        load_tpsmm(text)

    partial = tmp_path / "partial.pth.tar"
    torch.save({"kp_detector": {}}, partial)
    with pytest.raises(InputError, match="is not a TPSMM checkpoint"):
        load_tpsmm(partial)

    wrong = tmp_path / "tiny.pth.tar"  # a valid checkpoint of another size does not fit vox-256
    torch.save(checkpoint_dict(_tiny_model(), epoch=0), wrong)
    with pytest.raises(InputError, match="does not match the TPSMM") as err:
        load_tpsmm(wrong)
    assert "\n" not in str(err.value)
    assert isinstance(load_tpsmm(wrong, config=TINY), TPSMM)


# ------------------------------------------------------------------------------------------------
# thin-plate splines
# ------------------------------------------------------------------------------------------------
def test_keypoint_tps_maps_driving_points_to_source_points():
    gen = torch.Generator().manual_seed(0)
    driving = torch.rand(2, 3, 5, 2, generator=gen) * 1.6 - 0.8
    source = driving + 0.1 * torch.randn(2, 3, 5, 2, generator=gen)
    tps = KeypointTPS(driving, source)
    mapped = torch.stack([tps.warp(driving[:, g])[:, g] for g in range(3)], dim=1)
    # the 0.01 regularisation of TPSMM makes the fit close, not exact
    assert (mapped - source).abs().max() < 0.05
    assert (driving - source).abs().max() > 0.15
    assert tps.grid(8, 8).shape == (2, 3, 8, 8, 2)


def test_random_tps_without_noise_is_identity():
    warp = RandomTPS(2, sigma_affine=0.0, sigma_tps=0.0)
    points = torch.rand(2, 10, 2) * 2 - 1
    assert torch.allclose(warp.warp(points), points, atol=1e-6)
    noisy = RandomTPS(2, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(noisy.warp(points), points, atol=1e-3)


# ------------------------------------------------------------------------------------------------
# inference
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def faces256() -> list[np.ndarray]:
    return _frames(DATA / "talking_face_open_mouth.mp4", (16, 40, 308, 332), 256, every=20)


@pytest.fixture(scope="module")
def faces64(faces256) -> list[np.ndarray]:
    import cv2

    return [cv2.resize(f, (64, 64), interpolation=cv2.INTER_AREA) for f in faces256]


@pytest.fixture(scope="module")
def toy_animator() -> TPSMMAnimator:
    torch.manual_seed(3)
    return TPSMMAnimator(TPSMM(TINY), "cpu", batch_size=2)


def test_animate_256_shapes_and_laziness(faces256):
    torch.manual_seed(3)
    animator = TPSMMAnimator(TPSMM(TOY_256), "cpu", batch_size=2)
    source, driving = faces256[0], faces256[1:3]
    consumed = []

    def stream():
        for frame in driving:
            consumed.append(1)
            yield frame

    frames = animator.animate(source, stream(), mode="relative")
    assert consumed == []  # nothing runs before the first frame is asked for
    out = list(frames)
    assert len(out) == 2 and consumed == [1, 1]
    for frame in out:
        assert frame.shape == (256, 256, 3) and frame.dtype == np.uint8
    assert max(int(f.max()) for f in out) > min(int(f.min()) for f in out)
    with pytest.raises(InputError, match=r"\(256, 256, 3\) uint8"):
        animator.animate(np.zeros((128, 128, 3), np.uint8), driving)


def test_animate_modes(toy_animator, faces64):
    for mode in ("relative", "absolute", "avd"):
        out = list(toy_animator.animate(faces64[0], faces64[1:4], mode=mode))
        assert len(out) == 3 and all(f.shape == (64, 64, 3) and f.dtype == np.uint8 for f in out)


def test_relative_motion_plumbing(toy_animator, faces64):
    """Relative mode with the driving frame equal to the reference gives the source's own keypoints,
    so it renders exactly what absolute mode renders with the source as its own driver; and batching
    and the cached source encoding give what one full forward pass gives."""
    source, other = faces64[0], faces64[2]
    relative = list(toy_animator.animate(source, [other], mode="relative", reference=other))[0]
    absolute_self = list(toy_animator.animate(source, [source], mode="absolute"))[0]
    assert np.abs(relative.astype(int) - absolute_self).max() <= 1
    moved = list(toy_animator.animate(source, [faces64[4]], mode="relative", reference=other))[0]
    assert np.abs(moved.astype(int) - absolute_self).max() > 1

    driving = faces64[1:4]
    batched = list(toy_animator.animate(source, driving, mode="absolute"))
    with torch.no_grad():
        to_t = lambda f: torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255  # noqa: E731
        full = [toy_animator.model(to_t(source), to_t(d)).prediction for d in driving]
    for got, want in zip(batched, full):
        want = (want[0].permute(1, 2, 0).numpy() * 255).round()
        assert np.abs(got.astype(float) - want).max() <= 1


def test_identity_model_returns_the_source(faces64):
    """A model at identity: the keypoint detector returns fixed, well-spread keypoints (zero weights,
    chosen bias), so the TPS warps between any two frames are (nearly) the identity, and the occlusion
    masks are all 1, so the output is the source warped by that flow: close to the source."""
    torch.manual_seed(0)
    model = TPSMM(TINY)
    corners_and_centre = torch.tensor([[-0.9, -0.9], [0.9, -0.9], [-0.9, 0.9], [0.9, 0.9], [0.0, 0.0]])
    grid = corners_and_centre.repeat(TINY.num_tps, 1)
    with torch.no_grad():
        model.kp_detector.fg_encoder.fc.weight.zero_()
        model.kp_detector.fg_encoder.fc.bias.copy_(torch.logit((grid.reshape(-1) + 1) / 2))
        for conv in model.dense_motion_network.occlusion:
            conv.weight.zero_()
            conv.bias.fill_(30.0)
    animator = TPSMMAnimator(model)
    source = faces64[0]
    for frame in animator.animate(source, [source, faces64[3]], mode="relative"):
        diff = np.abs(frame.astype(float) - source)
        assert diff.mean() < 1.0 and np.percentile(diff, 99) < 8, (diff.mean(), np.percentile(diff, 99))


def test_animate_rejects_bad_input(toy_animator, faces64):
    with pytest.raises(InputError, match="unknown animation mode"):
        toy_animator.animate(faces64[0], faces64[:1], mode="sideways")
    with pytest.raises(InputError, match="uint8"):
        list(toy_animator.animate(faces64[0], [faces64[1].astype(np.float32)]))


# ------------------------------------------------------------------------------------------------
# fine-tuning
# ------------------------------------------------------------------------------------------------
def test_balanced_sampler_equal_counts_on_unequal_sources():
    sizes = [1, 5, 40]
    sampler = tr.BalancedBatchSampler(sizes, batch_size=6, steps_per_epoch=10, seed=3)
    batches = list(sampler)
    assert len(batches) == 10 and all(len(b) == 6 for b in batches)
    per_batch = [np.bincount([s for s, _, _ in b], minlength=3).tolist() for b in batches]
    assert all(c == [2, 2, 2] for c in per_batch)
    for source, size in enumerate(sizes):
        clips = [c for b in batches for s, c, _ in b if s == source]
        assert all(0 <= c < size for c in clips)
    big = [c for b in batches for s, c, _ in b if s == 2]
    assert len(set(big)) == 20  # drawn without replacement within a pass
    assert batches == list(tr.BalancedBatchSampler(sizes, 6, 10, seed=3))
    sampler.set_epoch(1)
    assert list(sampler) != batches

    odd = tr.BalancedBatchSampler(sizes, batch_size=7, steps_per_epoch=9, seed=0)
    totals = np.bincount([s for b in odd for s, _, _ in b], minlength=3)
    assert totals.max() - totals.min() <= 1 and totals.sum() == 63


def test_vgg19_layout_and_loader(tmp_path, toy_vgg_file):
    from torchvision.models import vgg19

    real_keys = {k: v.shape for k, v in vgg19(weights=None).features[:30].state_dict().items()}
    ours = {k: v.shape for k, v in tr.Vgg19Features((64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512))
            .features.state_dict().items()}
    assert ours == real_keys

    net = tr.load_vgg19(toy_vgg_file)
    feats = net(torch.rand(1, 3, 32, 32))
    assert [f.shape[1] for f in feats] == [4, 8, 8, 8, 8] and feats[-1].shape[-1] == 2
    for missing in (tmp_path / "vgg19-dcbb9e9d.pth", None):
        with pytest.raises(InputError) as err:
            tr.load_vgg19(missing)
        assert "\n" not in str(err.value) and "IMAGENET1K_V1" in str(err.value) and "--vgg19-weights" in str(err.value)
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(InputError, match="layout"):
        tr.load_vgg19(bad)


def _trainer(face_data, vgg_file, run_dir, seed=0, **overrides) -> tr.Trainer:
    config = tr.TrainConfig(epochs=2, batch_size=2, steps_per_epoch=1, seed=0, **overrides)
    sources = [tr.FaceClipFolder(path, name) for name, path in face_data.items()]
    return tr.Trainer(_tiny_model(seed), sources, tr.load_vgg19(vgg_file), run_dir, config)


def test_loss_falls_on_tiny_data(face_data, toy_vgg_file, tmp_path):
    trainer = _trainer(face_data, toy_vgg_file, tmp_path / "run")
    trainer.model.train()
    batch = next(iter(trainer._loader(0)))
    assert batch["source"].shape == (2, 3, 64, 64) and batch["origin"].tolist() == [0, 1]
    losses = [trainer.train_step(batch, epoch=0, step=0)["loss"] for _ in range(6)]
    assert set(trainer.train_step(batch, 0, 0)) == {"perceptual", "equivariance", "warp", "background", "loss"}
    assert losses[-1] < 0.8 * losses[0], losses


def test_checkpoint_resume_continues_identically(face_data, toy_vgg_file, tmp_path):
    straight = _trainer(face_data, toy_vgg_file, tmp_path / "straight")
    straight.fit()

    first = _trainer(face_data, toy_vgg_file, tmp_path / "resumed")
    first.fit(epochs=1)
    again = _trainer(face_data, toy_vgg_file, tmp_path / "resumed", seed=5)  # other init: resume overwrites it
    assert again.resume() == 1
    again.fit()

    for part in PARTS:
        a, b = getattr(straight.model, part).state_dict(), getattr(again.model, part).state_dict()
        for key in a:
            assert torch.equal(a[key], b[key]), (part, key)

    def steps(trainer):
        records = [json.loads(x) for x in trainer.metrics_path.read_text().splitlines()]
        return [(r["epoch"], r["step"], r["loss"]) for r in records if r["type"] == "step"]

    assert steps(straight) == steps(again) and len(steps(again)) == 2
    records = [json.loads(x) for x in again.metrics_path.read_text().splitlines()]
    assert [r["epoch"] for r in records if r["type"] == "epoch"] == [0, 1]
    assert all(r["per_source"] == [1, 1] for r in records if r["type"] == "step")

    last = tr.latest_checkpoint(tmp_path / "resumed")
    assert last.name == "00000001-checkpoint.pth.tar"
    state = torch.load(last, map_location="cpu", weights_only=True)
    assert set(PARTS) <= set(state) and state["epoch"] == 1 and "optimizer" in state
    model = load_tpsmm(last, config=TINY)
    assert torch.equal(model.kp_detector.fg_encoder.fc.weight, again.model.kp_detector.fg_encoder.fc.weight.cpu())


def _train_args(argv):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    train_cli.add_train_face_parser(sub)
    train_cli.add_extract_faces_parser(sub)
    return parser.parse_args(argv)


def test_train_face_command_runs_and_resumes(face_data, toy_vgg_file, tmp_path):
    init = tmp_path / "init.pth.tar"
    torch.save(checkpoint_dict(_tiny_model(1), epoch=0), init)
    run = tmp_path / "run"
    base = ["train-face", "--data", f"talking_heads={face_data['talking_heads']}", "--data",
            f"sign_faces={face_data['sign_faces']}", "--vgg19-weights", str(toy_vgg_file), "--model-size", "tiny",
            "--batch-size", "2", "--steps-per-epoch", "1", "--workers", "0", "--device", "cpu", "-q", "-o", str(run)]
    train_cli.run_train_face(_train_args(base + ["--init", str(init), "--epochs", "1"]))
    assert tr.latest_checkpoint(run).name == "00000000-checkpoint.pth.tar"
    with pytest.raises(OutputError, match="--resume"):
        train_cli.run_train_face(_train_args(base + ["--init", str(init), "--epochs", "2"]))
    train_cli.run_train_face(_train_args(base + ["--resume", "--epochs", "2"]))
    assert tr.latest_checkpoint(run).name == "00000001-checkpoint.pth.tar"

    no_vgg = [a if a != str(toy_vgg_file) else str(tmp_path / "missing.pth") for a in base]
    with pytest.raises(InputError, match="VGG19 weights .* not found"):
        train_cli.run_train_face(_train_args(no_vgg + ["--init", str(init), "-o", str(tmp_path / "r2")]))
    with pytest.raises(InputError, match="NAME=DIR"):
        train_cli.run_train_face(_train_args(["train-face", "--data", "nofolder", "-o", str(tmp_path / "r3")]))
    with pytest.raises(InputError, match="holds no clips"):
        train_cli.run_train_face(_train_args(["train-face", "--data", f"x={tmp_path}", "-o", str(tmp_path / "r4")]))


def test_face_segments():
    found = np.array([0, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0], bool)
    assert train_cli.face_segments(found, min_frames=3, max_gap=1) == [(1, 7), (11, 16)]
    assert train_cli.face_segments(found, min_frames=6, max_gap=1) == [(1, 7)]
    assert train_cli.face_segments(found, min_frames=2, max_gap=5) == [(1, 16)]
    assert train_cli.face_segments(np.zeros(4, bool), 1, 1) == []


def test_extract_faces_command(tmp_path):
    import shutil

    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(DATA / "asl_house.gif", videos / "house.gif")
    (videos / "broken.mp4").write_bytes(b"not a video")
    before = (videos / "house.gif").read_bytes()
    out = tmp_path / "faces"
    train_cli.run_extract_faces(_train_args(["extract-faces", str(videos), "-o", str(out), "--size", "64", "-q"]))
    clips = sorted(p for p in out.iterdir() if p.is_dir())
    assert [c.name for c in clips] == ["house_000"]
    frames = sorted(clips[0].glob("*.jpg"))
    assert len(frames) == 73  # the face is found in every frame of this clip
    summary = json.loads((out / "extract_faces.json").read_text())
    assert summary["clips"] == 1 and [s["video"] for s in summary["skipped"]] == ["broken.mp4"]
    assert (videos / "house.gif").read_bytes() == before
    folder = tr.FaceClipFolder(out, "sign")
    assert len(folder) == 1 and folder.frame(0, 5).shape == (64, 64, 3)
    with pytest.raises(InputError, match="no videos"):
        train_cli.run_extract_faces(_train_args(["extract-faces", str(out / "house_000"), "-o", str(tmp_path / "x")]))


def test_extract_faces_keeps_every_video_and_leaves_no_stale_clip(tmp_path):
    """Two videos sharing a stem (a.gif, a.mp4) were both cut into a_000, the second overwriting
    the first's crops; a video named in Latin-1 (not valid UTF-8) crashed the process inside
    cv2.imwrite; and a re-run into the same folder left the clips the earlier run cut beside the
    new ones (train-face reads every sub-folder)."""
    import os
    import shutil

    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(DATA / "asl_house.gif", videos / "a.gif")
    shutil.copy(DATA / "talking_woman_90.mp4", videos / "a.mp4")
    latin1 = os.fsdecode(b"M\xfcller.gif")  # a surrogate-escaped name, as Python sees it
    shutil.copy(DATA / "asl_house.gif", videos / latin1)
    out = tmp_path / "faces"
    out.mkdir()
    (out / "a_007").mkdir()  # a clip an earlier run cut from a.mp4's stem
    (out / "a_gif_005").mkdir()  # and one from a.gif
    (out / "notes").mkdir()  # a folder of the user's: left alone
    train_cli.run_extract_faces(_train_args(["extract-faces", str(videos), "-o", str(out), "--size", "64", "-q"]))
    clips = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert clips == sorted(["a_gif_000", "a_mp4_000", f"{latin1.rsplit('.', 1)[0]}_000", "a_007", "notes"])
    # a_007 is not a prefix of this run (the stems collide, so a.mp4's clips are a_mp4_NNN): kept
    assert len(list((out / "a_gif_000").glob("*.jpg"))) == 73
    assert len(list((out / "a_mp4_000").glob("*.jpg"))) >= 80
    summary = json.loads((out / "extract_faces.json").read_text())
    assert summary["clips"] == 3 and sorted(c for r in summary["per_video"] for c in r["clips"]) == sorted(
        ["a_gif_000", "a_mp4_000", f"{latin1.rsplit('.', 1)[0]}_000"])
    assert not (out / train_cli.STAGING).exists()
    # the same folder again with only one of the videos: its earlier clip is replaced, not kept beside
    (videos / "a.mp4").unlink()
    (videos / latin1).unlink()
    (out / "a_001").mkdir()
    train_cli.run_extract_faces(_train_args(["extract-faces", str(videos), "-o", str(out), "--size", "64", "-q"]))
    clips = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert "a_000" in clips and "a_001" not in clips and "a_007" not in clips
