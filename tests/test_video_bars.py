"""The picture's box inside black bars (signanon.video.bars), on the sample clip padded as phones
pad videos and encoded by our own writer."""

from __future__ import annotations

import numpy as np
from conftest import SAMPLE, through_x264

from signanon.video import iter_frames, probe_video
from signanon.video.bars import BarFinder


def _sample(limit: int = 12) -> list[np.ndarray]:
    return [f for _, f in zip(range(limit), iter_frames(probe_video(SAMPLE)))]


def _padded(frames: list[np.ndarray], size: tuple[int, int], at: tuple[int, int], value: int = 0) -> list[np.ndarray]:
    out = []
    for f in frames:
        canvas = np.full((size[1], size[0], 3), value, np.uint8)
        canvas[at[1] : at[1] + f.shape[0], at[0] : at[0] + f.shape[1]] = f
        out.append(canvas)
    return out


def _box(frames: list[np.ndarray]) -> tuple[int, int, int, int] | None:
    finder = BarFinder()
    for f in frames:
        finder.offer(f)
    return finder.box()


def test_the_picture_between_bars_is_found_after_encoding(tmp_path):
    frames = _sample()  # 540x720, portrait
    h, w = frames[0].shape[:2]
    pillar = through_x264(_padded(frames, (1280, 720), (370, 0)), tmp_path / "pillar.mp4")
    box = _box(pillar)
    assert box is not None and np.allclose(box, (370, 0, 370 + w, h), atol=2), box
    half = [np.ascontiguousarray(f[::2, ::2]) for f in frames]  # 270x360 posted as 9:16 (270x480)
    letter = through_x264(_padded(half, (270, 480), (0, 60)), tmp_path / "letter.mp4")
    box = _box(letter)
    assert box is not None and np.allclose(box, (0, 60, 270, 420), atol=2), box


def test_no_bars_where_the_frame_is_the_picture_or_the_dark_is_not_padding(tmp_path):
    frames = _sample()
    assert _box(frames) is None  # the sample clip itself
    h, w = frames[0].shape[:2]
    one_side = _padded(frames, (w + 200, h), (200, 0))  # a dark strip on the left only: a backdrop
    assert _box(one_side) is None
    uneven = _padded(frames, (w + 200, h), (150, 0))  # 150 px left, 50 px right: not centred padding
    assert _box(uneven) is None
    grey = _padded(frames, (w + 200, h), (100, 0), value=128)  # grey bars are picture, not padding
    assert _box(grey) is None
    assert BarFinder().box() is None  # nothing offered


def test_a_run_on_a_pillarboxed_clip_reports_the_picture_it_kept_hands_in(tmp_path):
    """The avatar run finds the bars on the frames it calibrates on and reports the picture's box
    in the summary (``picture_inside_bars``); the unpadded clip reports none."""
    from fractions import Fraction

    from signanon.avatar.anonymizer import AvatarAnonymizer, AvatarConfig
    from signanon.video import VideoWriter

    half = [np.ascontiguousarray(f[::2, ::2]) for f in _sample(16)]  # 270x360
    for name, frames in (("boxed", _padded(half, (640, 360), (185, 0))), ("plain", half)):
        clip = tmp_path / f"{name}.mp4"
        with VideoWriter(clip, frames[0].shape[1], frames[0].shape[0], Fraction(12)) as writer:
            for f in frames:
                writer.write(f)
        summary = AvatarAnonymizer(AvatarConfig())(clip, tmp_path / f"{name}_out.mp4", progress=False)
        if name == "boxed":
            assert np.allclose(summary.extra["picture_inside_bars"], [185, 0, 455, 360], atol=2)
        else:
            assert "picture_inside_bars" not in summary.extra
