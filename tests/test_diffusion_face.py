"""DiffSLVA's facial-expression enhancement inside the diffusion anonymizer (toy models, real clip)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import diffusion_toy as toy
from conftest import first_frames_clip  # noqa: E402

from signanon.diffusion.pipeline import SamplingConfig  # noqa: E402
from signanon.diffusion.runner import DiffusionAnonymizer, DiffusionConfig  # noqa: E402
from signanon.landmarks import layout  # noqa: E402
from signanon.landmarks.holistic import HolisticEstimator  # noqa: E402
from signanon.video import iter_frames, probe_video  # noqa: E402

CONFIG = DiffusionConfig(control="canny", resolution=64, sampling=SamplingConfig(steps=2, strength=1.0))


@pytest.fixture(scope="module")
def clip(tmp_path_factory, data_dir) -> Path:
    """The first 6 frames of tests/data/asl_house.gif (a real signer, face in every frame)."""
    return first_frames_clip(data_dir / "asl_house.gif", 6, tmp_path_factory.mktemp("clip") / "house6.mp4")


@pytest.fixture(scope="module")
def runs(clip, tmp_path_factory) -> dict:
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("runs")
    plain = DiffusionAnonymizer(replace(CONFIG, face=replace(CONFIG.face, enabled=False)), toy.toy_components())
    enhanced = DiffusionAnonymizer(CONFIG, toy.toy_components())
    without, with_ = tmp / "without.mp4", tmp / "with.mp4"
    s_without = plain(clip, without, progress=False)
    s_with = enhanced(clip, with_, progress=False, ablation=tmp / "ablation.mp4")
    return {"tmp": tmp, "without": without, "with": with_, "s_without": s_without, "s_with": s_with}


def frames(path: Path) -> np.ndarray:
    return np.stack([f.astype(np.int16) for f in iter_frames(probe_video(path))])


def test_every_frame_is_enhanced_and_counted(runs, clip):
    s = runs["s_with"]
    assert s.frames_out == probe_video(runs["with"]).frame_count == probe_video(clip).frame_count == 6
    stats = s.extra["face_enhance"]
    assert stats["enhanced"] == 6 and stats["failed"] == 0
    assert 0 <= stats["source_frame"] < 6
    assert "face_enhance" not in runs["s_without"].extra
    assert s.unet_evaluations == runs["s_without"].unet_evaluations  # no extra diffusion


def test_enhancement_changes_only_the_face(runs, clip):
    """Same seed, same diffusion: the two outputs differ inside the original's face and nowhere
    far from it (the paste never touches the body, hands or background)."""
    a, b = frames(runs["without"]), frames(runs["with"])
    changed = np.abs(a - b).max(axis=3) > 24  # beyond H.264 noise
    assert changed.any()
    with HolisticEstimator() as estimator:
        for t, original in enumerate(iter_frames(probe_video(clip))):
            data, conf = estimator(original)
            face = data[layout.FACE][:, :2]
            x0, y0 = face.min(axis=0)
            x1, y1 = face.max(axis=0)
            pad = 0.25 * max(x1 - x0, y1 - y0)
            inside = np.zeros(changed.shape[1:], bool)
            inside[int(max(0, y0 - pad)) : int(y1 + pad) + 1, int(max(0, x0 - pad)) : int(x1 + pad) + 1] = True
            assert changed[t][~inside].mean() < 0.002, f"frame {t}: pixels changed outside the face"


def test_ablation_video_shows_the_three_versions_side_by_side(runs, clip):
    info, abl = probe_video(clip), probe_video(runs["tmp"] / "ablation.mp4")
    assert abl.frame_count == info.frame_count
    assert abl.width == 3 * info.width and abl.height == info.height
    panels = frames(runs["tmp"] / "ablation.mp4")[:, 40:]  # below the labels
    w = info.width
    assert np.abs(panels[:, :, w : 2 * w] - frames(runs["without"])[:, 40:]).mean() < 4
    assert np.abs(panels[:, :, 2 * w :] - frames(runs["with"])[:, 40:]).mean() < 4
    # no working file is left beside the ablation video
    assert not list(runs["tmp"].glob(".*"))
