"""Odd videos through the real ``signanon anonymize`` (in-process, the same ``main``): each input is
the shipped webcam clip (12-16 frames of it) transformed the way phones, screen recorders and
editors store video. Each one either works (right frame count, rate and displayed size, the signer
found) or is refused in one line; none crashes.
"""

from __future__ import annotations

import itertools
import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from signanon.cli.main import main
from signanon.video import iter_frames, iter_selected_frames, probe_video
from signanon.video.people import FaceCounter, count_faces

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "asl_webcam.mp4"
HOUSE = REPO / "tests" / "data" / "asl_house.gif"
SIZE = (270, 360)  # half the webcam clip: the signer stays well inside the frame
DRAWN = (480, 640)  # its avatar: drawn at 480 px on the shorter side (AvatarConfig.min_output_side)


@pytest.fixture(scope="module")
def upright() -> list[np.ndarray]:
    """16 real frames of the webcam clip (a signer, upper body), at half size."""
    frames = itertools.islice(iter_frames(probe_video(SAMPLE)), 16)
    return [cv2.resize(f, SIZE, interpolation=cv2.INTER_AREA) for f in frames]


def encode(
    path: Path, frames: list[np.ndarray], *, fps: Fraction = Fraction(25), pix_fmt: str = "yuv420p",
    rotation: int | None = None, pts_ms: list[int] | None = None, audio: str | None = None,
) -> Path:  # fmt: skip
    """Write RGB frames as H.264 (``pix_fmt``) into ``path`` (container from the suffix).

    ``rotation``: a display matrix asking players to turn the stored frames clockwise by that many
    degrees. ``pts_ms``: millisecond timestamps (variable rate). ``audio``: an audio codec for a
    440 Hz tone as long as the video (``libopus``, ``libmp3lame``, ``pcm_s16le``, ...)."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        if rotation is not None:
            video.set_display_rotation(-rotation)  # FFmpeg's angle is counter-clockwise
        if pts_ms is not None:
            video.codec_context.time_base = Fraction(1, 1000)
        sound = out.add_stream(audio, rate=48000, layout="stereo") if audio else None
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format=pix_fmt)
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            rate, chunk = 48000, sound.codec_context.frame_size or 1024
            total = int(len(frames) / float(fps) * rate)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(total) / rate)).astype(np.float32)
            fmt = sound.codec_context.format.name
            for start in range(0, total - chunk + 1, chunk):
                block = np.repeat(tone[None, start : start + chunk], 2, axis=0)
                if fmt.startswith("s16"):
                    block = (block * 32767).astype(np.int16)
                elif fmt.startswith("s32"):
                    block = (block * 2**31 - 1).astype(np.int32)
                if not fmt.endswith("p"):  # packed: one interleaved row
                    block = block.T.reshape(1, -1)
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format=fmt, layout="stereo")
                af.sample_rate, af.pts = rate, start
                out.mux(sound.encode(af))
            out.mux(sound.encode(None))
    return path


def anonymize(src: Path, tmp_path: Path, capsys, *extra: str) -> tuple[int, dict | None, Path, str]:
    """Run ``signanon anonymize SRC -o OUT --summary`` in-process; (status, summary, out, stderr)."""
    out, summary = tmp_path / "anon.mp4", tmp_path / "run.json"
    capsys.readouterr()
    status = main(["anonymize", str(src), "-o", str(out), "--summary", str(summary), *extra])
    err = capsys.readouterr().err
    record = json.loads(summary.read_text()) if summary.exists() else None
    return status, record, out, err


def assert_works(status: int, record: dict | None, out: Path, err: str, frames: int, size: tuple[int, int]) -> None:
    """Written, with every frame, at ``size`` (the displayed size, or larger for a small video;
    padded to even), and the signer found."""
    assert status == 0, err
    info = probe_video(out)
    assert info.frame_count == frames == record["frames_out"]
    assert (info.width, info.height) == (size[0] + size[0] % 2, size[1] + size[1] % 2)
    assert info.rotation == 0 and not info.has_audio
    assert record["frames_with"]["POSE_LANDMARKS"] >= 0.8 * frames, record["frames_with"]


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata(rotation: int, upright, tmp_path: Path, capsys) -> None:
    # stored turned the other way, so only a reader that applies the matrix sees an upright signer
    stored = [np.rot90(f, k=rotation // 90) for f in upright[:12]]
    src = encode(tmp_path / f"rot{rotation}.mp4", stored, rotation=rotation)
    assert probe_video(src).rotation == rotation
    assert_works(*anonymize(src, tmp_path, capsys), 12, DRAWN)


def test_variable_frame_rate(upright, tmp_path: Path, capsys) -> None:
    pts = [0, 40, 80, 200, 240, 280, 320, 480, 520, 560, 600, 640]  # two long pauses
    src = encode(tmp_path / "vfr.mp4", upright[:12], pts_ms=pts)
    info = probe_video(src)
    assert info.variable_rate
    status, record, out, err = anonymize(src, tmp_path, capsys)
    assert_works(status, record, out, err, 12, DRAWN)
    written = probe_video(out)
    assert written.fps == info.fps and not written.variable_rate
    assert written.duration_s == pytest.approx(info.duration_s, abs=0.01)  # total duration kept


@pytest.mark.parametrize("pix_fmt", ["yuv420p10le", "yuv444p"])
def test_ten_bit_and_444_input(pix_fmt: str, upright, tmp_path: Path, capsys) -> None:
    src = encode(tmp_path / f"{pix_fmt}.mp4", upright[:12], pix_fmt=pix_fmt)
    with av.open(str(src)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == pix_fmt
    status, record, out, err = anonymize(src, tmp_path, capsys)
    assert_works(status, record, out, err, 12, DRAWN)
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"  # plays everywhere


def test_odd_size(upright, tmp_path: Path, capsys) -> None:
    odd = [cv2.resize(f, (271, 361), interpolation=cv2.INTER_AREA) for f in upright[:12]]
    src = encode(tmp_path / "odd.mkv", odd, pix_fmt="yuv444p")  # 4:4:4 stores odd sizes as they are
    assert (probe_video(src).width, probe_video(src).height) == (271, 361)
    status, record, out, err = anonymize(src, tmp_path, capsys)
    assert_works(status, record, out, err, 12, (480, 639))  # 271 -> 480: the height 361 -> 639, padded to 640
    assert (record["width"], record["height"]) == (480, 639)  # the drawing's size, before the padding


def test_4k_input(upright, tmp_path: Path, capsys) -> None:
    """The signer scaled up to 2160 rows and padded to 3840x2160 (peak memory beside 720p:
    benchmarks/bench_memory.py)."""
    scaled = [cv2.resize(f, (1620, 2160), interpolation=cv2.INTER_CUBIC) for f in upright[:4]]
    frames = [np.pad(f, ((0, 0), (1110, 1110), (0, 0)), mode="edge") for f in scaled]
    src = encode(tmp_path / "uhd.mp4", frames)
    assert (probe_video(src).width, probe_video(src).height) == (3840, 2160)
    assert_works(*anonymize(src, tmp_path, capsys), 4, (3840, 2160))


def test_one_frame_video(upright, tmp_path: Path, capsys) -> None:
    src = encode(tmp_path / "one.mp4", upright[:1])
    assert probe_video(src).frame_count == 1
    assert_works(*anonymize(src, tmp_path, capsys), 1, DRAWN)


@pytest.mark.parametrize("suffix, codec", [(".mkv", "libopus"), (".mp4", "libmp3lame"), (".mov", "pcm_s16le"),
                                           (".mkv", "flac")])  # fmt: skip
def test_odd_audio_codecs_with_keep_audio(suffix: str, codec: str, upright, tmp_path: Path, capsys) -> None:
    src = encode(tmp_path / f"voice{suffix}", upright[:12], audio=codec)
    with av.open(str(src)) as c:
        decoder = c.streams.audio[0].codec_context.name  # e.g. opus, mp3float, pcm_s16le, flac
        assert decoder.startswith(codec.removeprefix("lib").replace("mp3lame", "mp3")), decoder
    status, record, out, err = anonymize(src, tmp_path, capsys, "--keep-audio", "-q")
    assert status == 0, err
    assert record["audio_kept"] is True
    with av.open(str(out)) as c:
        (stream,) = c.streams.audio
        assert stream.codec_context.name == "aac"
        samples = np.concatenate([f.to_ndarray()[0] for f in c.decode(stream)])  # first channel
    assert len(samples) / stream.rate == pytest.approx(12 / 25, abs=0.1)  # the whole tone, in step
    assert np.sqrt(np.mean(samples**2)) > 0.1  # a real tone, not silence


def test_two_people_are_counted_and_only_one_is_drawn(upright, tmp_path: Path, capsys) -> None:
    # the webcam signer on the left, the signer of asl_house.gif on the right, side by side
    others = itertools.islice(iter_frames(probe_video(HOUSE)), 16)
    two = [np.concatenate([a, cv2.resize(b, (480, 360))], axis=1) for a, b in zip(upright, others)]
    src = encode(tmp_path / "two.mp4", two)
    status, record, out, err = anonymize(src, tmp_path, capsys, "--background", "#00ff00")
    assert status == 0, err
    assert record["frames_checked_for_faces"] == 16
    assert record["frames_with_several_faces"] >= 12, record
    assert f"{record['frames_with_several_faces']} of 16 checked frames show more than one face" in err
    # the avatar counts on the frames it decodes; the counts of time chunks (anonymize --workers)
    # add up to the count of the video decoded for it alone
    info = probe_video(src)
    counters = [FaceCounter(16, frames=range(0, 7)), FaceCounter(16, frames=range(7, 16))]
    for index, frame in iter_selected_frames(info, range(16)):
        for counter in counters:
            counter.offer(index, frame)
    parts = [c.count for c in counters]
    alone = count_faces(info)
    assert (parts[0].checked, parts[1].checked) == (7, 9)
    assert parts[0].several + parts[1].several == alone.several == record["frames_with_several_faces"]
    # fails closed: the output is the avatar on the chosen background; one person's half is empty
    background = np.array([0, 255, 0])
    halves = {"left": [], "right": []}
    for frame in iter_frames(probe_video(out)):
        off = np.abs(frame.astype(int) - background).max(axis=2) > 40
        k = frame.shape[1] / (SIZE[0] + 480)  # the output is drawn larger than the 750x360 input
        seam = round(SIZE[0] * k)  # where the webcam signer's side ends
        halves["left"].append(off[:, :seam].mean())
        halves["right"].append(off[:, seam + round(40 * k) :].mean())
    empty = min(np.mean(halves["left"]), np.mean(halves["right"]))
    assert empty < 0.01, halves  # the other person is nowhere in the output


def test_one_person_is_not_reported_as_several(upright, tmp_path: Path, capsys) -> None:
    src = encode(tmp_path / "one_person.mp4", upright[:12])
    status, record, out, err = anonymize(src, tmp_path, capsys)
    assert status == 0, err
    assert record["frames_checked_for_faces"] == 12 and record["frames_with_several_faces"] == 0
    assert "more than one face" not in err
