"""Streaming video I/O (signanon.video) on the real clips, plus small clips made here with PyAV.

Clips made at test time are built from real frames of examples/asl_webcam.mp4 (rotation, metadata,
audio, variable rate), so nothing binary is added to the repository.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from signanon.errors import InputError, OutputError
from signanon.video import VideoInfo, VideoWriter, check_output_path, iter_frames, probe_video
from signanon.video.reader import iter_selected_frames, orientation_from_matrix

ROOT = Path(__file__).resolve().parents[1]
WEBCAM = ROOT / "examples" / "asl_webcam.mp4"
HOUSE = ROOT / "tests" / "data" / "asl_house.gif"

SECRETS = {
    "title": "SecretTitleQZX",
    "comment": "PrivateCommentQZX",
    "artist": "Jane Signer QZX",
    "creation_time": "2019-03-04T05:06:07.000000Z",
    "location": "+48.8577+002.2950/",
    "make": "AcmePhoneMakerQZX",
    "model": "ModelQ7QZX",
}


# -- helpers ---------------------------------------------------------------------------------------


def _encode(path, frames, fps=Fraction(25), *, rotation=None, hflip=False, vflip=False, pts=None,
            metadata=None, tone_hz=None, pixel_aspect=None):
    """Write RGB frames to an H.264 mp4 with PyAV, optionally rotated/tagged/with a 16 kHz tone/
    with non-square pixels (``pixel_aspect``: the sample aspect ratio, pixel width over height)."""
    options = {"movflags": "use_metadata_tags"} if metadata else {}
    out = av.open(str(path), "w", options=options)
    if metadata:
        out.metadata.update(metadata)
    height, width = frames[0].shape[:2]
    video = out.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    if metadata:
        video.metadata.update({"title": metadata["title"], "creation_time": metadata["creation_time"]})
    if rotation is not None:
        video.set_display_rotation(rotation, hflip=hflip, vflip=vflip)
    if pixel_aspect is not None:
        video.codec_context.sample_aspect_ratio = Fraction(pixel_aspect)
    if pts is not None:
        video.codec_context.time_base = Fraction(1, 1000)
    audio = out.add_stream("aac", rate=16000, layout="mono") if tone_hz else None
    for index, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if pts is not None:
            frame.pts, frame.time_base = pts[index], Fraction(1, 1000)
        for packet in video.encode(frame):
            out.mux(packet)
    for packet in video.encode():
        out.mux(packet)
    if audio is not None:
        seconds = len(frames) / float(fps)
        samples = np.sin(2 * np.pi * tone_hz * np.arange(int(seconds * 16000)) / 16000)
        samples = (0.5 * samples).astype(np.float32)[None]
        for start in range(0, samples.shape[1] - 1023, 1024):
            chunk = np.ascontiguousarray(samples[:, start : start + 1024])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, start
            for packet in audio.encode(frame):
                out.mux(packet)
        for packet in audio.encode():
            out.mux(packet)
    out.close()
    return Path(path)


def _anonymize_like(src, dst, **writer_kwargs):
    """What the pipeline does with the I/O layer: probe, check output, stream frames through."""
    info = probe_video(src)
    out = check_output_path(dst, src)
    with VideoWriter(out, info.width, info.height, info.fps, **writer_kwargs) as writer:
        for frame in iter_frames(info):
            writer.write(frame)
    return info, out


def _mean_abs_diff(a, b):
    return float(np.mean([np.abs(x.astype(np.int16) - y).mean() for x, y in zip(a, b)]))


def _pool2(frame):
    """2x2 mean pooling (compares content without the chroma subsampling of yuv420p)."""
    h, w = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
    f = frame[:h, :w].astype(np.float32)
    return (f[0::2, 0::2] + f[1::2, 0::2] + f[0::2, 1::2] + f[1::2, 1::2]) / 4


def _fingerprint(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest(), os.stat(path).st_mtime_ns


def _markers(height=48, width=64):
    """Red top-left, green top-right, blue bottom-left blocks on black."""
    img = np.zeros((height, width, 3), np.uint8)
    img[:12, :16] = (255, 0, 0)
    img[:12, -16:] = (0, 255, 0)
    img[-12:, :16] = (0, 0, 255)
    return img


def _corner_of(rgb, channel):
    """Which corner ('tl', 'tr', 'bl', 'br') holds the block of pure ``channel``."""
    mask = (rgb[..., channel] > 180) & (np.delete(rgb, channel, axis=2).max(axis=2) < 80)
    ys, xs = np.nonzero(mask)
    return ("t" if ys.mean() < rgb.shape[0] / 2 else "b") + ("l" if xs.mean() < rgb.shape[1] / 2 else "r")


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def webcam_info() -> VideoInfo:
    return probe_video(WEBCAM)


@pytest.fixture(scope="module")
def webcam_frames(webcam_info):
    return list(iter_frames(webcam_info))


@pytest.fixture(scope="module")
def webcam_round_trip(tmp_path_factory, webcam_info, webcam_frames):
    out = tmp_path_factory.mktemp("rt") / "webcam_anon.mp4"
    with VideoWriter(out, webcam_info.width, webcam_info.height, webcam_info.fps) as writer:
        for frame in webcam_frames:
            writer.write(frame)
    return out, writer


@pytest.fixture(scope="module")
def tagged_clip(tmp_path_factory, webcam_frames):
    """25 real frames (downscaled) with source metadata and a 440 Hz audio track."""
    frames = [cv2.resize(f, (136, 180), interpolation=cv2.INTER_AREA) for f in webcam_frames[:25]]
    path = tmp_path_factory.mktemp("tagged") / "tagged.mp4"
    return _encode(path, frames, Fraction(25), metadata=SECRETS, tone_hz=440)


# -- reading ---------------------------------------------------------------------------------------


def test_probe_real_webcam_clip(webcam_info):
    assert (webcam_info.width, webcam_info.height) == (540, 720)
    assert webcam_info.frame_count == 58
    assert webcam_info.fps == Fraction(359, 12)  # 11488 / 384 ticks, exactly the container's rate
    assert webcam_info.duration_s == pytest.approx(58 * 12 / 359)
    assert (webcam_info.rotation, webcam_info.mirrored, webcam_info.variable_rate) == (0, False, False)
    assert webcam_info.codec == "h264" and not webcam_info.has_audio
    assert webcam_info.path.is_absolute()


def test_iter_frames_yields_upright_rgb_uint8(webcam_info, webcam_frames):
    assert len(webcam_frames) == webcam_info.frame_count
    first = webcam_frames[0]
    assert first.shape == (720, 540, 3) and first.dtype == np.uint8 and first.flags.c_contiguous
    # Independent decoder (OpenCV's own FFmpeg): same picture, RGB order.
    cap = cv2.VideoCapture(str(WEBCAM))
    ok, bgr = cap.read()
    cap.release()
    assert ok
    assert np.abs(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.int16) - first).mean() < 3


def test_probe_gif():
    info = probe_video(HOUSE)
    assert (info.width, info.height, info.frame_count) == (320, 240, 73)
    assert info.fps == 25 and not info.variable_rate and info.codec == "gif"
    assert info.duration_s == pytest.approx(2.92)
    # GIF delays are whole centiseconds: 3,4,3,4... cs is 30 fps as well as a GIF can say it. The
    # declared 30 fps is kept because over the clip it drifts less than half a frame.
    uneven = probe_video(ROOT / "tests" / "data" / "asl_different.gif")
    assert (uneven.frame_count, uneven.fps, uneven.variable_rate) == (64, Fraction(30), False)
    assert abs(uneven.frame_count / uneven.fps - uneven.duration_s) < 0.5 / 30


def test_variable_rate_gets_average_rate_and_keeps_every_frame(tmp_path, webcam_frames):
    frames = [cv2.resize(f, (136, 180)) for f in webcam_frames[:10]]
    pts_ms = [0, 33, 67, 100, 200, 233, 267, 300, 400, 433]  # two 100 ms gaps
    src = _encode(tmp_path / "vfr.mp4", frames, Fraction(30), pts=pts_ms)
    info = probe_video(src)
    assert info.variable_rate
    assert info.frame_count == 10
    assert float(info.fps) == pytest.approx(info.frame_count / info.duration_s, rel=1e-3)
    assert 0.45 < info.duration_s < 0.48  # 433 ms + the last frame's duration
    _, out = _anonymize_like(src, tmp_path / "out.mp4")
    back = probe_video(out)
    assert back.frame_count == 10 and back.fps == info.fps and not back.variable_rate
    assert back.duration_s == pytest.approx(info.duration_s, abs=0.01)


@pytest.mark.parametrize(
    "suffix, codec, fps",
    [(".mov", "libx264", Fraction(30000, 1001)), (".mkv", "libx264", Fraction(25)),
     (".webm", "libvpx-vp9", Fraction(30)), (".avi", "mpeg4", Fraction(24))],
)
def test_other_containers(tmp_path, webcam_frames, suffix, codec, fps):
    frames = [cv2.resize(f, (136, 180), interpolation=cv2.INTER_AREA) for f in webcam_frames[:12]]
    path = tmp_path / f"clip{suffix}"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 136, 180, "yuv420p"
        if codec == "mpeg4":
            stream.bit_rate = 4_000_000
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    info = probe_video(path)
    assert (info.width, info.height, info.frame_count) == (136, 180, 12)
    assert info.fps == fps and not info.variable_rate  # mkv/webm store 1 ms timestamps
    assert _mean_abs_diff(list(iter_frames(info)), frames) < 6


@pytest.mark.parametrize(
    "ccw, hflip, vflip, corners",
    [
        # (counter-clockwise display rotation as stored, flips) -> where red/green/blue end up
        (0, False, False, ("tl", "tr", "bl")),
        (90, False, False, ("bl", "tl", "br")),
        (-90, False, False, ("tr", "br", "tl")),
        (180, False, False, ("br", "bl", "tr")),
        (0, True, False, ("tr", "tl", "br")),
        (0, False, True, ("bl", "br", "tl")),
    ],
)
def test_rotation_and_mirror_metadata_are_applied(tmp_path, ccw, hflip, vflip, corners):
    src = _encode(tmp_path / "rot.mp4", [_markers()] * 3, rotation=ccw, hflip=hflip, vflip=vflip)
    info = probe_video(src)
    frame = next(iter_frames(info))
    quarter = ccw % 180 == 90
    assert (info.width, info.height) == ((48, 64) if quarter else (64, 48))
    assert frame.shape == (info.height, info.width, 3)
    assert tuple(_corner_of(frame, c) for c in range(3)) == corners
    assert info.rotation == (-ccw) % 360 or info.mirrored
    if not (hflip or vflip):
        # OpenCV applies pure rotations itself: an independent reference.
        cap = cv2.VideoCapture(str(src), cv2.CAP_FFMPEG)
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        ok, bgr = cap.read()
        cap.release()
        assert ok and int(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0) in (0, info.rotation)
        assert np.abs(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.int16) - frame).mean() < 6


def test_rotated_real_clip_comes_out_upright(tmp_path, webcam_frames):
    # A phone-style portrait recording: landscape pixels + "rotate 90 clockwise" display matrix.
    upright = [cv2.resize(f, (180, 240), interpolation=cv2.INTER_AREA) for f in webcam_frames[:8]]
    stored = [np.ascontiguousarray(np.rot90(f, k=1)) for f in upright]  # 240 wide, 180 tall
    src = _encode(tmp_path / "portrait.mp4", stored, rotation=-90)
    info = probe_video(src)
    assert (info.width, info.height, info.rotation) == (180, 240, 90)
    back = list(iter_frames(info))
    assert len(back) == 8 and back[0].shape == (240, 180, 3)
    assert _mean_abs_diff(back, upright) < 4
    _, out = _anonymize_like(src, tmp_path / "out.mp4")
    written = probe_video(out)
    assert (written.width, written.height, written.rotation) == (180, 240, 0)  # no matrix written


@pytest.mark.parametrize("sar, rotation", [(Fraction(2), None), (Fraction(16, 15), None), (Fraction(2), -90)])
def test_anamorphic_clip_is_read_in_square_pixels_at_the_size_a_player_shows(tmp_path, webcam_frames, sar, rotation):
    # Stored squeezed with a sample aspect ratio (DV and broadcast archives): a player shows it
    # sar times wider. Read at the stored width, the signer was squeezed and the output (square
    # pixels) played at the wrong shape.
    if rotation is None:  # stored 120 wide, shown 120 * sar
        shown = (int(120 * sar), 240)
        upright = [cv2.resize(f, shown, interpolation=cv2.INTER_AREA) for f in webcam_frames[:6]]
        stored = [cv2.resize(f, (120, 240), interpolation=cv2.INTER_AREA) for f in upright]
    else:  # a portrait phone clip stored on its side, its pixels 2:1 along the stored width (its height)
        shown = (120, 240)
        upright = [cv2.resize(f, shown, interpolation=cv2.INTER_AREA) for f in webcam_frames[:6]]
        stored = [np.ascontiguousarray(np.rot90(cv2.resize(f, (120, 120), interpolation=cv2.INTER_AREA), k=1))
                  for f in upright]
    src = _encode(tmp_path / "anamorphic.mp4", stored, rotation=rotation, pixel_aspect=sar)
    info = probe_video(src)
    assert (info.width, info.height, info.pixel_aspect) == (*shown, sar)
    back = list(iter_frames(info))
    assert back[0].shape == (shown[1], shown[0], 3)
    assert _mean_abs_diff(back, upright) < 6  # the same picture, not squeezed
    _, out = _anonymize_like(src, tmp_path / "out.mp4")
    written = probe_video(out)
    assert (written.width, written.height, written.pixel_aspect) == (*shown, 1)


def test_orientation_from_matrix_snaps_to_quarter_turns():
    one = 1 << 16
    assert orientation_from_matrix(None) == (0, False)
    assert orientation_from_matrix(np.array([one, 0, 0, 0, one, 0, 0, 0, 1 << 30])) == (0, False)
    assert orientation_from_matrix(np.array([0, -one, 0, one, 0, 0, 0, 0, 1 << 30])) == (270, False)
    assert orientation_from_matrix(np.array([-one, 0, 0, 0, one, 0, 0, 0, 1 << 30])) == (0, True)
    # 80 degrees counter-clockwise rounds to 90 (displayed with a 270 degree clockwise turn)
    c, s = np.cos(np.radians(80)), np.sin(np.radians(80))
    m = np.array([c * one, -s * one, 0, s * one, c * one, 0, 0, 0, 1 << 30]).astype(np.int32)
    assert orientation_from_matrix(m) == (270, False)


# -- writing ---------------------------------------------------------------------------------------


def test_round_trip_real_webcam_clip(webcam_round_trip, webcam_info, webcam_frames):
    out, writer = webcam_round_trip
    assert writer.frames_written == 58
    back = probe_video(out)
    assert back.frame_count == webcam_info.frame_count
    assert back.fps == webcam_info.fps
    assert (back.width, back.height, back.codec) == (540, 720, "h264")
    assert _mean_abs_diff(list(iter_frames(back)), webcam_frames) < 3.5
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.frames == 58
        assert not container.streams.audio


def test_round_trip_real_gif(tmp_path):
    info, out = _anonymize_like(HOUSE, tmp_path / "house.mp4")
    back = probe_video(out)
    assert (back.frame_count, back.fps, back.width, back.height) == (73, Fraction(25), 320, 240)
    src, dst = list(iter_frames(info)), list(iter_frames(back))
    # The GIF's palette dithering is per-pixel colour noise that 4:2:0 chroma cannot keep, so
    # compare at half resolution (what chroma subsampling keeps).
    pooled = np.mean([np.abs(_pool2(a) - _pool2(b)).mean() for a, b in zip(src, dst)])
    assert pooled < 6
    assert _mean_abs_diff(src, dst) < 16


def test_odd_size_is_padded_by_repeating_the_edge(tmp_path, webcam_frames):
    frames = [np.ascontiguousarray(f[:241, :161]) for f in webcam_frames[:6]]
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, 161, 241, Fraction(25)) as writer:
        assert (writer.encoded_width, writer.encoded_height) == (162, 242)
        for frame in frames:
            writer.write(frame)
    back_info = probe_video(out)
    assert (back_info.width, back_info.height, back_info.frame_count) == (162, 242, 6)
    back = list(iter_frames(back_info))
    assert _mean_abs_diff([b[:241, :161] for b in back], frames) < 4
    last_col = back[0][:241, 161].astype(np.int16)
    assert np.abs(last_col - back[0][:241, 160]).mean() < 4  # replicated, not black
    assert np.abs(last_col - frames[0][:, 160]).mean() < 6


def test_no_source_metadata_reaches_the_output(tmp_path, tagged_clip):
    raw_in = tagged_clip.read_bytes()
    assert all(v.encode() in raw_in for v in SECRETS.values())  # the test input really has them
    _, out = _anonymize_like(tagged_clip, tmp_path / "out.mp4", audio_source=probe_video(tagged_clip))
    raw_out = out.read_bytes()
    leaked = [k for k, v in SECRETS.items() if v.encode() in raw_out]
    assert leaked == [] and b"QZX" not in raw_out and b"2019" not in raw_out
    with av.open(str(out)) as container:
        tags = dict(container.metadata)
        for stream in container.streams:
            tags.update({f"{stream.type}:{k}": v for k, v in stream.metadata.items()})
    assert not {"title", "comment", "artist", "creation_time", "location", "make", "model"} & set(tags)
    assert all("QZX" not in v and "2019" not in v for v in tags.values())


def test_audio_dropped_by_default(tmp_path, tagged_clip):
    assert probe_video(tagged_clip).has_audio
    _, out = _anonymize_like(tagged_clip, tmp_path / "out.mp4")
    assert not probe_video(out).has_audio
    with av.open(str(out)) as container:
        assert len(container.streams) == 1


def test_audio_copied_when_asked(tmp_path, tagged_clip):
    info, out = _anonymize_like(tagged_clip, tmp_path / "out.mp4", audio_source=probe_video(tagged_clip))
    back = probe_video(out)
    assert back.has_audio and back.frame_count == info.frame_count and back.fps == info.fps
    with av.open(str(out)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac"
        samples = np.concatenate([f.to_ndarray().mean(axis=0) for f in container.decode(stream)])
        rate = stream.rate
    assert len(samples) / rate == pytest.approx(info.duration_s, abs=0.1)
    spectrum = np.abs(np.fft.rfft(samples[rate // 10 :]))
    peak_hz = np.argmax(spectrum) * rate / (2 * (len(spectrum) - 1))
    assert peak_hz == pytest.approx(440, abs=5)


def test_input_file_is_never_modified(tmp_path, tagged_clip):
    src = tmp_path / "in.mp4"
    shutil.copy2(tagged_clip, src)
    before = _fingerprint(src)
    _anonymize_like(src, tmp_path / "out.mp4", audio_source=probe_video(src))
    assert _fingerprint(src) == before
    with pytest.raises(OutputError):
        _anonymize_like(src, src)
    assert _fingerprint(src) == before


def test_exception_inside_writer_leaves_no_file_and_keeps_old_output(tmp_path, webcam_frames):
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(out, 540, 720, Fraction(30)) as writer:
            for frame in webcam_frames[:5]:
                writer.write(frame)
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    out.write_bytes(b"previous result")
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(out, 540, 720, Fraction(30)) as writer:
            writer.write(webcam_frames[0])
            raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
    assert out.read_bytes() == b"previous result"


def test_writer_refuses_wrong_frames_and_empty_output(tmp_path, webcam_frames):
    with pytest.raises(ValueError):
        with VideoWriter(tmp_path / "a.mp4", 540, 720, Fraction(30)) as writer:
            writer.write(webcam_frames[0][:, :, 0])
    with pytest.raises(OutputError, match="no frames"):
        with VideoWriter(tmp_path / "b.mp4", 540, 720, Fraction(30)):
            pass
    assert list(tmp_path.iterdir()) == []


# -- bad input -------------------------------------------------------------------------------------


def _bad_inputs(folder: Path, webcam_frames) -> dict[str, Path]:
    data = WEBCAM.read_bytes()
    cases = {"missing": folder / "nope.mp4", "folder": folder / "a_folder"}
    cases["folder"].mkdir()
    cases["empty"] = folder / "empty.mp4"
    cases["empty"].write_bytes(b"")
    cases["text"] = folder / "notes.mp4"
    cases["text"].write_text("this is not a video\n" * 50)
    cases["jpeg"] = folder / "photo.jpg"
    cv2.imwrite(str(cases["jpeg"]), cv2.cvtColor(webcam_frames[0], cv2.COLOR_RGB2BGR))
    cases["jpeg_named_mp4"] = folder / "photo.mp4"
    shutil.copy(cases["jpeg"], cases["jpeg_named_mp4"])
    cases["truncated"] = folder / "half.mp4"
    cases["truncated"].write_bytes(data[: len(data) // 2])
    garbage = bytearray(data)
    middle = len(data) // 2
    garbage[middle : middle + 20000] = np.random.default_rng(0).integers(0, 256, 20000, np.uint8).tobytes()
    cases["garbage_middle"] = folder / "garbage.mp4"
    cases["garbage_middle"].write_bytes(bytes(garbage))
    cases["audio_only"] = folder / "audio.m4a"
    with av.open(str(cases["audio_only"]), "w", format="mp4") as out:
        audio = out.add_stream("aac", rate=16000, layout="mono")
        for start in range(0, 16000, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, start
            for packet in audio.encode(frame):
                out.mux(packet)
        for packet in audio.encode():
            out.mux(packet)
    return cases


BAD_INPUT_WORDS = {
    "missing": "not found",
    "folder": "folder",
    "empty": "empty",
    "text": "not a video",
    "jpeg": "still image",
    "jpeg_named_mp4": "still image",
    "truncated": "truncated or corrupt",
    "garbage_middle": "truncated or corrupt",
    "audio_only": "no video",
}


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, webcam_frames):
    return _bad_inputs(tmp_path_factory.mktemp("bad_in"), webcam_frames)


@pytest.mark.parametrize("case", sorted(BAD_INPUT_WORDS))
def test_bad_input_raises_input_error_and_writes_nothing(tmp_path, bad_inputs, case):
    path = bad_inputs[case]
    before = _fingerprint(path) if path.is_file() else None
    with pytest.raises(InputError) as caught:
        _anonymize_like(path, tmp_path / "out.mp4")
    message = str(caught.value)
    assert BAD_INPUT_WORDS[case] in message and str(path) in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []
    if before is not None:
        assert _fingerprint(path) == before


def test_decode_error_after_probe_is_input_error_and_removes_temp_file(tmp_path, bad_inputs):
    src = tmp_path / "in" / "clip.mp4"
    src.parent.mkdir()
    shutil.copy(WEBCAM, src)
    info = probe_video(src)
    shutil.copy(bad_inputs["garbage_middle"], src)  # the file is damaged after probing
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(InputError, match="truncated or corrupt"):
        with VideoWriter(out_dir / "out.mp4", info.width, info.height, info.fps) as writer:
            for frame in iter_frames(info):
                writer.write(frame)
    assert writer.frames_written > 0  # it failed mid-way, after output had started
    assert list(out_dir.iterdir()) == []


# -- bad output ------------------------------------------------------------------------------------


def _bad_outputs(folder: Path) -> dict[str, tuple[Path, str]]:
    src = folder / "in.mp4"
    shutil.copy(WEBCAM, src)
    (folder / "sub").mkdir()
    (folder / "link.mp4").symlink_to(src)
    os.link(src, folder / "hardlink.mp4")
    (folder / "a_file").write_text("x")
    (folder / "existing_dir.mp4").mkdir()
    return {
        "same_as_input": (src, "must not be the input"),
        "other_spelling": (folder / "sub" / ".." / "in.mp4", "must not be the input"),
        "symlink_to_input": (folder / "link.mp4", "must not be the input"),
        "hardlink_to_input": (folder / "hardlink.mp4", "must not be the input"),
        "missing_folder": (folder / "no_such_dir" / "out.mp4", "does not exist"),
        "parent_is_a_file": (folder / "a_file" / "out.mp4", "not a folder"),
        "existing_dir": (folder / "existing_dir.mp4", "is a folder"),
        "not_mp4": (folder / "out.avi", ".mp4"),
    }


BAD_OUTPUT_CASES = [
    "same_as_input", "other_spelling", "symlink_to_input", "hardlink_to_input",
    "missing_folder", "parent_is_a_file", "existing_dir", "not_mp4",
]


@pytest.mark.parametrize("case", BAD_OUTPUT_CASES)
def test_bad_output_raises_output_error_and_writes_nothing(tmp_path, case):
    out, words = _bad_outputs(tmp_path)[case]
    src = tmp_path / "in.mp4"
    listing = sorted(p.name for p in tmp_path.rglob("*"))
    before = _fingerprint(src)
    with pytest.raises(OutputError) as caught:
        check_output_path(out, src, suffixes=(".mp4",))
    assert words in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(OutputError):
        VideoWriter(out, 540, 720, Fraction(30), input_path=src)
    with pytest.raises(OutputError):
        _anonymize_like(src, out)
    assert sorted(p.name for p in tmp_path.rglob("*")) == listing
    assert _fingerprint(src) == before


def test_unwritable_output_folder(tmp_path):
    # Root ignores permission bits, so use folders that nobody can create files in: /proc always,
    # and a chmod-ed folder when not root.
    if Path("/proc").is_dir():
        with pytest.raises(OutputError, match="cannot be written"):
            check_output_path("/proc/signanon_out.mp4")
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(OutputError, match="cannot be written"):
                check_output_path(locked / "out.mp4")
        finally:
            locked.chmod(0o700)


def test_check_output_path_accepts_a_good_path(tmp_path):
    (tmp_path / "sub").mkdir()
    out = check_output_path(tmp_path / "sub" / ".." / "ok.mp4", WEBCAM)
    assert out == tmp_path.resolve() / "ok.mp4"
    assert check_output_path(tmp_path / "x.pose", WEBCAM) == tmp_path.resolve() / "x.pose"
    assert check_output_path(tmp_path / "x.MP4", suffixes=(".mp4",)).name == "x.MP4"
    assert [p.name for p in tmp_path.iterdir()] == ["sub"]  # the writability probe left nothing


def test_selected_frames_equal_the_full_pass_and_stop_early(sample_clip):
    """``iter_selected_frames`` gives exactly the chosen frames of ``iter_frames``, in order, ignores
    indices out of range, and stops decoding after the last chosen one: told the file is longer
    than it is, a full pass fails but a selection ending early does not reach the missing frames."""
    import dataclasses

    from signanon.video import iter_selected_frames

    info = probe_video(sample_clip)
    every = list(iter_frames(info))
    chosen = [7, 2, 2, 9, info.frame_count + 5, -1]
    got = list(iter_selected_frames(info, chosen))
    assert [i for i, _ in got] == [2, 7, 9]
    for i, frame in got:
        np.testing.assert_array_equal(frame, every[i])
    assert list(iter_selected_frames(info, [])) == []
    longer = dataclasses.replace(info, frame_count=info.frame_count + 10)
    with pytest.raises(InputError, match="fewer frames"):
        list(iter_frames(longer))
    assert [i for i, _ in iter_selected_frames(longer, [1, 3])] == [1, 3]


# -- joining segments (anonymize --workers) ---------------------------------------------------------


def _segments(folder: Path, frames: list[np.ndarray], sizes: tuple[int, ...], fps: Fraction) -> list[Path]:
    """``frames`` cut into consecutive VideoWriter files of ``sizes`` frames."""
    paths, start = [], 0
    for i, size in enumerate(sizes):
        path = folder / f"segment{i}.mp4"
        with VideoWriter(path, frames[0].shape[1], frames[0].shape[0], fps) as writer:
            for frame in frames[start : start + size]:
                writer.write(frame)
        paths.append(path)
        start += size
    return paths


def test_joined_segments_decode_to_exactly_their_frames(tmp_path, webcam_info, webcam_frames):
    from signanon.video.concat import concat_videos

    frames = [cv2.resize(f, (136, 180), interpolation=cv2.INTER_AREA) for f in webcam_frames]  # 58
    segments = _segments(tmp_path, frames, (20, 1, 37), webcam_info.fps)  # an odd rate (359/12 fps)
    out = tmp_path / "joined.mp4"
    assert concat_videos(segments, out, webcam_info.fps) == 58
    info = probe_video(out)
    assert (info.frame_count, info.fps, info.width, info.height) == (58, webcam_info.fps, 136, 180)
    assert not info.has_audio and not info.variable_rate
    expected = [f for s in segments for f in iter_frames(probe_video(s))]
    joined = list(iter_frames(info))
    assert len(joined) == len(expected) == 58
    for a, b in zip(joined, expected):  # the packets are copied: the very same pictures
        np.testing.assert_array_equal(a, b)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file


def test_joined_segments_carry_the_audio_exactly_as_the_writer_does(tmp_path, tagged_clip):
    from signanon.video.concat import concat_videos

    source = probe_video(tagged_clip)  # 25 frames at 25 fps with a 440 Hz tone and tags
    frames = list(iter_frames(source))
    segments = _segments(tmp_path, frames, (12, 13), source.fps)
    joined, written = tmp_path / "joined.mp4", tmp_path / "written.mp4"
    concat_videos(segments, joined, source.fps, audio_source=source)
    _anonymize_like(tagged_clip, written, audio_source=source)

    def audio(path: Path) -> np.ndarray:
        with av.open(str(path)) as container:
            assert not any(key in container.metadata for key in ("title", "comment", "artist", "location"))
            return np.concatenate([f.to_ndarray() for f in container.decode(container.streams.audio[0])], axis=1)

    np.testing.assert_array_equal(audio(joined), audio(written))  # same samples, same length
    assert probe_video(joined).frame_count == 25
    raw = joined.read_bytes()
    assert not [k for k, v in SECRETS.items() if v.encode() in raw]


def test_join_refuses_segments_of_another_encoding_and_writes_nothing(tmp_path, webcam_info, webcam_frames):
    from signanon.video.concat import concat_videos

    small = [cv2.resize(f, (136, 180)) for f in webcam_frames[:4]]
    other = [cv2.resize(f, (68, 90)) for f in webcam_frames[:4]]
    first = _segments(tmp_path, small, (4,), webcam_info.fps)[0]
    second = tmp_path / "other.mp4"
    with VideoWriter(second, 68, 90, webcam_info.fps) as writer:
        for frame in other:
            writer.write(frame)
    out = tmp_path / "joined.mp4"
    with pytest.raises(InputError, match="other codec parameters"):
        concat_videos([first, second], out, webcam_info.fps)
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_as_encoded_gives_back_the_frame_a_viewer_of_the_output_sees():
    from signanon.video.writer import as_encoded

    rng = np.random.default_rng(0)
    frame = np.full((145, 193, 3), 120, np.uint8)  # odd sizes: padded for yuv420p, cropped back
    frame[40:100, 50:150] = (200, 40, 30)
    odd = np.indices((20, 20)).sum(axis=0) % 2 == 1  # a 1-px red/blue checkerboard
    frame[110:130, 10:30] = np.where(odd[..., None], (220, 0, 0), (0, 0, 220)).astype(np.uint8)
    frame[10:30, 160:180] = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)
    before = frame.copy()
    seen = as_encoded(frame)
    assert seen.shape == frame.shape and seen.dtype == np.uint8
    np.testing.assert_array_equal(frame, before)  # the input is not touched
    flat = np.abs(seen[50:90, 60:140].astype(int) - frame[50:90, 60:140]).mean()
    assert flat < 4  # large flat areas come back nearly as drawn
    # the checkerboard's colour contrast is mostly gone (yuv420p keeps one colour per 2x2 pixels)
    def red_minus_blue(img):
        return img[110:130, 10:30, 0].astype(int) - img[110:130, 10:30, 2]

    assert red_minus_blue(seen).std() < 0.5 * red_minus_blue(frame).std()


def test_the_same_frames_give_the_same_file_while_mediapipe_runs(tmp_path, webcam_info, webcam_frames):
    """Outputs are repeatable. On a CPU with AVX-512, x264's AVX-512 code wrote different bytes for
    the same 540x720 frames when they were encoded while MediaPipe ran, as the avatar pipeline
    does (here: the 3rd and 4th of 4 encodes differed in 4 of 4 runs); the writer holds x264 to
    its AVX2 code there. On other CPUs this holds either way."""
    import threading

    from signanon.landmarks.holistic import HolisticEstimator
    from signanon.video.writer import as_encoded

    frames = webcam_frames[:20]
    digests: list[tuple[str, str]] = []

    def encode() -> None:
        out = tmp_path / f"run{len(digests)}.mp4"
        with VideoWriter(out, webcam_info.width, webcam_info.height, webcam_info.fps) as writer:
            for frame in frames:
                writer.write(frame)
        single = hashlib.sha256(as_encoded(frames[5]).tobytes()).hexdigest()
        digests.append((hashlib.sha256(out.read_bytes()).hexdigest(), single))

    encode()
    for _ in range(3):
        thread = threading.Thread(target=encode)
        thread.start()
        with HolisticEstimator() as estimator:
            for frame in frames[:8]:
                estimator(frame)
        thread.join()
    assert len(digests) == 4 and len(set(digests)) == 1, "the same frames were written differently"


def test_x264_is_held_to_avx2_only_where_the_cpu_has_avx512(monkeypatch):
    """Named code paths are not to be trusted to a CPU that lacks them (x264 uses the paths it is
    told to use), so the option appears only where AVX-512, and with it AVX2, is there."""
    from signanon.video import writer

    monkeypatch.setattr(writer, "_cpu_has_avx512", lambda: False)
    assert writer.x264_options(18, "veryfast") == {"crf": "18", "preset": "veryfast"}
    monkeypatch.setattr(writer, "_cpu_has_avx512", lambda: True)
    options = writer.x264_options(20, "medium", threads=1)
    assert options == {"crf": "20", "preset": "medium", "threads": "1", "x264-params": "asm=AVX2,Cache64"}


# -- interlaced video ------------------------------------------------------------------------------


def _comb(frame: np.ndarray) -> float:
    """How combed a frame is: the mean |odd line - the mean of the even lines above and below it|
    (grey levels). Two fields filmed apart make the odd lines jump where anything moves."""
    f = frame.astype(np.float32)
    return float(np.abs(f[1:-1:2] - (f[0:-2:2] + f[2::2]) / 2).mean())


@pytest.fixture(scope="module")
def interlaced_dgs(tmp_path_factory):
    """DGS ZUG's first 100 frames (tests/data/dgs_zug_100.mp4, 640x480, 25 fps) woven into fields as
    a camera filming 50i records them and coded interlaced (``tools/make_framings.py``
    'interlaced'): (the interlaced file, the progressive frames, the interlaced file's frames as
    decoded, not deinterlaced)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_framings", ROOT / "tools" / "make_framings.py")
    framings = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = framings  # its dataclasses look their module up
    spec.loader.exec_module(framings)
    progressive = list(iter_frames(probe_video(ROOT / "tests" / "data" / "dgs_zug_100.mp4")))
    path = tmp_path_factory.mktemp("interlaced") / "dgs_50i.mp4"
    framings.write_frames(path, framings.weave_fields(progressive), 25, crf=16, interlaced=True)
    with av.open(str(path)) as container:
        combed = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return path, progressive, combed


def test_an_interlaced_clip_is_read_deinterlaced_frame_for_frame(interlaced_dgs):
    """The decoder flags the frames as interlaced; the reader deinterlaces them (yadif), one frame
    out per frame in: the moving hands' comb is gone (measured: 0.66 grey levels against the
    progressive clip's 0.62 and 1.02 as decoded), and a selection of frames is the full pass's."""
    path, progressive, combed = interlaced_dgs
    info = probe_video(path)
    assert info.interlaced and not probe_video(ROOT / "tests" / "data" / "dgs_zug_100.mp4").interlaced
    assert (info.frame_count, info.fps, info.width, info.height) == (100, 25, 640, 480)
    frames = list(iter_frames(info))
    assert len(frames) == 100 and frames[0].shape == (480, 640, 3) and frames[0].dtype == np.uint8
    read, source, decoded = (np.mean([_comb(f) for f in fs]) for fs in (frames, progressive, combed))
    assert decoded > 1.4 * source  # what this tests: combed as decoded
    assert read < 1.15 * source
    selected = dict(iter_selected_frames(info, [0, 37, 98]))
    assert all(np.array_equal(frame, frames[i]) for i, frame in selected.items()) and len(selected) == 3


def test_an_interlaced_signers_hands_are_read_as_in_the_progressive_clip(interlaced_dgs):
    """MediaPipe Holistic on the 100 frames: the progressive clip shows 81 hands. As decoded, the
    combed hands were found 64 times, their finger angles 11.7 deg from the progressive read;
    deinterlaced as the reader reads them, 77 times, 6.9 deg."""
    from signanon.landmarks import geometry, layout
    from signanon.landmarks.holistic import HolisticEstimator

    path, progressive, combed = interlaced_dgs
    with HolisticEstimator() as estimator:
        reads = {name: [estimator(f) for f in frames] for name, frames in
                 (("progressive", progressive), ("read", list(iter_frames(probe_video(path)))), ("combed", combed))}  # fmt: skip
    sides = (layout.LEFT_HAND, layout.RIGHT_HAND)
    hands = {name: {(t, side) for t, (_, conf) in enumerate(marks) for side in (0, 1) if (conf[sides[side]] > 0).all()}
             for name, marks in reads.items()}  # fmt: skip

    def angle_error(name: str) -> float:
        def angles(marks, t, side):
            return geometry.flexion_angles(marks[t][0][sides[side]])

        both = hands[name] & hands["progressive"]
        return float(np.mean([np.abs(angles(reads[name], *h) - angles(reads["progressive"], *h)).mean() for h in both]))

    found = {name: len(h) for name, h in hands.items()}
    assert found["combed"] < 0.85 * found["progressive"]  # what this tests (64 of 81)
    assert found["read"] >= 0.9 * found["progressive"]
    assert angle_error("read") < 0.75 * angle_error("combed")


@pytest.mark.parametrize("suffix, codec, size", [(".ts", "mpeg2video", (640, 480)), (".avi", "dvvideo", (720, 576))])
def test_broadcast_and_dv_interlaced_files_are_deinterlaced_too(tmp_path, interlaced_dgs, suffix, codec, size):
    """Interlaced MPEG-2 in a transport stream (broadcast, DVD) and PAL DV (camcorders, tape; 720x576
    stored, 768x576 shown): flagged, read frame for frame, the comb gone (30 frames as her hands
    move; measured 0.56 and 0.51 grey levels as read, 0.96 and 0.89 as decoded)."""
    _, progressive, combed = interlaced_dgs
    path = tmp_path / f"fields{suffix}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.options = {"flags": "+ilme+ildct", "top": "1"}
        for frame in combed[40:70]:  # the woven fields, padded by an even number of lines (fields kept apart)
            top, left = (size[1] - 480) // 2, (size[0] - 640) // 2
            rgb = cv2.copyMakeBorder(frame, top, size[1] - 480 - top, left, size[0] - 640 - left, cv2.BORDER_REPLICATE)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    info = probe_video(path)
    assert info.interlaced and info.frame_count == 30
    frames = list(iter_frames(info))
    assert len(frames) == 30 and frames[0].shape == (info.height, info.width, 3)
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    read, as_decoded = np.mean([_comb(f) for f in frames]), np.mean([_comb(f) for f in decoded])
    assert read < 0.8 * as_decoded
