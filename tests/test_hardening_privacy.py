"""What the avatar output must never carry, checked on inputs that do carry it.

* A clip with title, artist, GPS location and creation-time tags, a cover picture (a real face)
  and an audio track: through the real command, with and without ``--keep-audio``, none of the tag
  bytes nor the picture's bytes reach the output, and audio is there exactly when asked.
* Two inputs whose pixels differ everywhere (background, clothes, skin: colours inverted, noise
  background) but whose landmarks are identical give identical outputs: the avatar is drawn from
  the landmarks alone; and different landmarks do change it (the check can fail).
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from signanon.video import iter_frames, probe_video

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "asl_webcam.mp4"
COVER = REPO / "tests" / "data" / "faces" / "obama" / "1.jpg"
TAGS = {
    "title": "TitleMarkerQ7 signer name",
    "artist": "ArtistMarkerZ3",
    "location": "+12.3456+098.7654/",
    "creation_time": "2011-03-04T05:06:07Z",
    "comment": "CommentMarkerK9",
}


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    clip = itertools.islice(iter_frames(probe_video(SAMPLE)), 12)
    return [cv2.resize(f, (270, 360), interpolation=cv2.INTER_AREA) for f in clip]


def tagged_clip(path: Path, frames: list[np.ndarray]) -> Path:
    """An mkv of real frames with TAGS (container and stream), a JPEG cover picture and AAC audio."""
    with av.open(str(path), "w") as out:
        out.metadata.update(TAGS)
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 270, 360, "yuv420p"
        video.metadata.update({"title": TAGS["title"], "creation_time": TAGS["creation_time"]})
        sound = out.add_stream("aac", rate=48000, layout="mono")
        sound.metadata.update({"title": TAGS["artist"]})
        cover = out.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 250, 250, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        for rgb in frames:
            out.mux(video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(video.encode(None))
        tone = (0.3 * np.sin(2 * np.pi * 330 * np.arange(int(48000 * len(frames) / 25)) / 48000)).astype(np.float32)
        for start in range(0, len(tone) - 1023, 1024):
            chunk = av.AudioFrame.from_ndarray(tone[None, start : start + 1024].copy(), format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 48000, start
            out.mux(sound.encode(chunk))
        out.mux(sound.encode(None))
        picture = av.Packet(COVER.read_bytes())
        picture.stream, picture.pts, picture.dts, picture.time_base = cover, 0, 0, Fraction(1, 1)
        out.mux(picture)
    return path


@pytest.mark.parametrize("keep_audio", [False, True])
def test_no_tag_or_cover_bytes_and_audio_exactly_when_asked(keep_audio: bool, frames, tmp_path: Path) -> None:
    src = tagged_clip(tmp_path / "tagged.mkv", frames)
    raw = src.read_bytes()
    cover = COVER.read_bytes()
    # (Matroska stores creation_time as a binary date: its text is checked in the output below)
    markers = [value.encode() for key, value in TAGS.items() if key != "creation_time"] + [cover[200:264]]
    assert all(m in raw for m in markers)  # the input really carries every one of them
    with av.open(str(src)) as c:
        assert len(c.streams.audio) == 1 and len(c.streams.video) == 2  # the clip and its cover
    out = tmp_path / "anon.mp4"
    args = ["anonymize", str(src), "-o", str(out), "-q"] + (["--keep-audio"] if keep_audio else [])
    proc = subprocess.run([sys.executable, "-m", "signanon.cli.main", *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    written = out.read_bytes()
    for marker in markers:
        assert marker not in written, marker
    for piece in (b"TitleMarker", b"ArtistMarker", b"CommentMarker", b"2011-03-04", b"+12.3456"):
        assert piece not in written, piece
    with av.open(str(out)) as c:
        assert len(c.streams.video) == 1  # no cover picture
        assert len(c.streams.audio) == (1 if keep_audio else 0)
        assert not any(key in c.metadata for key in ("title", "artist", "location", "comment", "creation_time"))
        if keep_audio:
            samples = np.concatenate([f.to_ndarray()[0] for f in c.decode(c.streams.audio[0])])
            assert np.sqrt(np.mean(samples**2)) > 0.1  # the tone, not silence
    assert probe_video(out).frame_count == 12


def _disguised(frames: list[np.ndarray]) -> list[np.ndarray]:
    """The same scene with different pixels everywhere: inverted colours (clothes, skin, hair)
    and a noisy background."""
    rng = np.random.default_rng(3)
    out = []
    for rgb in frames:
        img = 255 - rgb
        noise = rng.integers(0, 255, rgb.shape, dtype=np.uint8)
        mask = (np.abs(rgb.astype(int) - rgb[:20, :20].reshape(-1, 3).mean(0)).sum(2) < 60)[..., None]
        out.append(np.where(mask, noise, img).astype(np.uint8))
    return out


def _write(path: Path, frames: list[np.ndarray]) -> Path:
    from signanon.video import VideoWriter

    with VideoWriter(path, 270, 360, Fraction(25)) as writer:
        for rgb in frames:
            writer.write(rgb)
    return path


class _ReplayedLandmarks:
    """Stands in for HolisticEstimator: ignores the pixels, returns recorded landmarks in order."""

    def __init__(self, recorded):
        self._recorded = iter(recorded)

    def __call__(self, frame):
        return next(self._recorded)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def close(self):
        return None


def test_the_avatar_depends_on_the_landmarks_only(frames, tmp_path: Path, monkeypatch) -> None:
    from signanon.avatar import anonymizer as avatar_module
    from signanon.avatar import chunk as chunk_module
    from signanon.avatar.anonymizer import AvatarAnonymizer, AvatarConfig
    from signanon.landmarks.holistic import HolisticEstimator

    with HolisticEstimator() as estimator:
        recorded = [estimator(f) for f in frames]  # the signer's real landmarks
    plain = _write(tmp_path / "plain.mp4", frames)
    other = _write(tmp_path / "other.mp4", _disguised(frames))
    assert np.abs(np.stack(list(iter_frames(probe_video(plain)))).astype(int)
                  - np.stack(list(iter_frames(probe_video(other))))).mean() > 60  # fmt: skip

    written: list[np.ndarray] = []
    encode = avatar_module.VideoWriter.write

    def record(writer, frame):  # the frames exactly as drawn, before the (lossy) encoder
        written.append(frame.copy())
        return encode(writer, frame)

    monkeypatch.setattr(avatar_module.VideoWriter, "write", record)

    def run(src: Path, name: str, order: list | None = None) -> np.ndarray:
        replay = recorded if order is None else order
        monkeypatch.setattr(chunk_module, "HolisticEstimator", lambda config=None: _ReplayedLandmarks(replay))
        written.clear()
        AvatarAnonymizer(AvatarConfig())(src, tmp_path / name, progress=False)
        assert probe_video(tmp_path / name).frame_count == len(written)
        return np.stack(written).astype(int)

    a, b = run(plain, "a.mp4"), run(other, "b.mp4")
    assert a.shape == (12, 640, 480, 3)  # 270x360 drawn at 480 on the shorter side
    assert np.array_equal(a, b)  # not one pixel of the input reached the output
    backwards = run(plain, "backwards.mp4", recorded[::-1])  # same landmarks, played backwards
    assert not np.array_equal(backwards, a)  # the check can fail: the avatar follows the landmarks
    assert np.abs(backwards - a).mean() > 1
