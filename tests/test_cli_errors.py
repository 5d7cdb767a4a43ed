"""Bad input never gets a traceback: one line naming the problem, a non-zero exit, no output file,
and the input left exactly as it was."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("SIGNANON_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "signanon.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode != 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{proc.stderr}"
    assert lines[0].startswith("signanon: error: "), lines[0]
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])


def fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def make_no_person_video(path: Path, frames: int = 20) -> None:
    """A real-looking but empty scene: a smooth gradient with noise, no person in it."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        ramp = np.linspace(40, 200, 160, dtype=np.float32)[None, :, None]
        for i in range(frames):
            img = np.broadcast_to(ramp, (120, 160, 3)) + rng.normal(0, 4, (120, 160, 3))
            frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def make_audio_only(path: Path) -> None:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = (np.sin(np.linspace(0, 200, 16000)) * 0.2).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.fixture()
def out_dir(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


def test_missing_input(out_dir: Path) -> None:
    proc = run_cli("anonymize", str(out_dir / "nope.mp4"), "-o", str(out_dir / "a.mp4"))
    assert_one_line_error(proc, "nope.mp4")
    assert list(out_dir.iterdir()) == []


def test_not_a_video(tmp_path: Path, out_dir: Path) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n" * 50)
    before = fingerprint(bad)
    proc = run_cli("anonymize", str(bad), "-o", str(out_dir / "a.mp4"))
    assert_one_line_error(proc, "notes.mp4")
    assert list(out_dir.iterdir()) == []
    assert fingerprint(bad) == before


def test_empty_file(tmp_path: Path, out_dir: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    proc = run_cli("anonymize", str(empty), "-o", str(out_dir / "a.mp4"))
    assert_one_line_error(proc, "empty")
    assert list(out_dir.iterdir()) == []


def test_truncated_file(tmp_path: Path, out_dir: Path, sample_clip: Path) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(sample_clip.read_bytes()[: sample_clip.stat().st_size // 2])
    before = fingerprint(cut)
    proc = run_cli("anonymize", str(cut), "-o", str(out_dir / "a.mp4"))
    assert_one_line_error(proc, "cut.mp4")
    assert list(out_dir.iterdir()) == []
    assert fingerprint(cut) == before


def test_zero_video_frames(tmp_path: Path, out_dir: Path) -> None:
    audio = tmp_path / "voice.mp4"
    make_audio_only(audio)
    proc = run_cli("anonymize", str(audio), "-o", str(out_dir / "a.mp4"))
    assert_one_line_error(proc, "voice.mp4")
    assert list(out_dir.iterdir()) == []


def test_output_equals_input(tmp_path: Path, sample_clip: Path) -> None:
    copy = tmp_path / "clip.mp4"
    copy.write_bytes(sample_clip.read_bytes())
    before = fingerprint(copy)
    proc = run_cli("anonymize", str(copy), "-o", str(tmp_path / "." / "clip.mp4"))
    assert_one_line_error(proc, "clip.mp4")
    assert fingerprint(copy) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_output_folder_missing(tmp_path: Path, sample_clip: Path) -> None:
    proc = run_cli("anonymize", str(sample_clip), "-o", str(tmp_path / "no" / "such" / "a.mp4"))
    assert_one_line_error(proc, "no/such")
    assert not (tmp_path / "no").exists()


def test_output_folder_not_writable(tmp_path: Path, sample_clip: Path) -> None:
    # As root every folder is writable, so use a parent that is a regular file: it can never
    # hold the output, for root or anyone.
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    proc = run_cli("anonymize", str(sample_clip), "-o", str(blocker / "a.mp4"))
    assert_one_line_error(proc, "blocker")
    assert blocker.read_text() == "a file, not a folder"


def test_no_person(tmp_path: Path, out_dir: Path) -> None:
    empty_scene = tmp_path / "scene.mp4"
    make_no_person_video(empty_scene)
    proc = run_cli("anonymize", str(empty_scene), "-o", str(out_dir / "a.mp4"))
    assert_one_line_error(proc, "no person")
    assert list(out_dir.iterdir()) == []


def test_wrong_output_suffix(out_dir: Path, sample_clip: Path) -> None:
    proc = run_cli("anonymize", str(sample_clip), "-o", str(out_dir / "a.avi"))
    assert_one_line_error(proc, ".mp4")
    assert list(out_dir.iterdir()) == []


def test_pose_command_bad_input(tmp_path: Path, out_dir: Path) -> None:
    bad = tmp_path / "x.webm"
    bad.write_bytes(os.urandom(4096))
    proc = run_cli("pose", str(bad), "-o", str(out_dir / "x.pose"))
    assert_one_line_error(proc, "x.webm")
    assert list(out_dir.iterdir()) == []


def test_help_lists_examples() -> None:
    proc = run_cli("anonymize", "--help")
    assert proc.returncode == 0
    assert "examples:" in proc.stdout and "--keep-audio" in proc.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        # nan passes every range check (each comparison with it is false): the privacy gate would
        # never refuse, and the run said "privacy check passed"
        (("--verify", "--verify-margin", "nan"), ("--verify-margin", "finite", "nan")),
        (("--verify", "--verify-margin", "inf"), ("--verify-margin", "finite")),
        # a thousand worker processes asked for by mistake hung the run until memory ran out
        (("--workers", "100000"), ("--workers", "100000", "at most")),
        (("--region=-10,0,100,100",), ("negative", "-10,0,100,100")),
        # the configs' checks name their field (min_output_side, verify.every): said as the flag typed
        (("--min-output-side", "5"), ("--min-output-side must", "got 5")),
        (("--verify", "--verify-every", "0"), ("--verify-every must", "got 0")),
    ],
    ids=["verify-margin-nan", "verify-margin-inf", "workers-too-many", "region-negative", "min-output-side",
         "verify-every"],
)
def test_bad_flag_values_are_refused_before_any_work(tmp_path: Path, out_dir: Path, sample_clip: Path, args, words) -> None:
    copy = tmp_path / "clip.mp4"
    copy.write_bytes(sample_clip.read_bytes())
    before = fingerprint(copy)
    proc = run_cli("anonymize", str(copy), "-o", str(out_dir / "a.mp4"), *args)
    assert_one_line_error(proc, *words)
    assert fingerprint(copy) == before
    assert list(out_dir.iterdir()) == []


def test_summary_path_that_is_a_folder_is_refused_before_the_video_is_written(out_dir: Path, sample_clip: Path) -> None:
    # it used to fail at the very end, after the video had been written, with an internal error
    proc = run_cli("anonymize", str(sample_clip), "-o", str(out_dir / "a.mp4"), "--summary", str(out_dir))
    assert_one_line_error(proc, "summary", "folder")
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize(
    "args, words",
    [
        (("anonymize", "clip.mp4"), ("-o/--output", "signanon anonymize --help")),
        (("anonymize", "clip.mp4", "-o", "a.mp4", "--workers", "two"), ("--workers", "'two'")),
        (("anonymize", "clip.mp4", "-o", "a.mp4", "--palette", "nope"), ("--palette", "nope", "dark-skin")),
        (("bogus",), ("bogus", "signanon --help")),
    ],
    ids=["missing-output", "not-an-int", "unknown-palette", "unknown-command"],
)
def test_usage_errors_are_one_line_too(tmp_path: Path, args, words) -> None:
    # argparse printed its whole usage block (23 lines for anonymize) before the error
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert_one_line_error(proc, *words)
    assert list(tmp_path.iterdir()) == []
