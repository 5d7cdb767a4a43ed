"""Seeded fuzzing of the two commands that read any video: fifty truncated or byte-flipped copies
of real clips through ``anonymize`` and ``pose`` (in-process, the real ``main``). Each run either
writes a valid video / ``.pose`` file or fails with exactly one ``signanon: error:`` line; never a
traceback or an internal error, never a hang past a minute, never a partial or temporary file.
And two runs writing the same output path at once never leave a corrupt file.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from signanon.cli.main import main
from signanon.landmarks.pose_io import read_pose
from signanon.video import VideoWriter, iter_frames, probe_video

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "asl_webcam.mp4"
GIF = REPO / "tests" / "data" / "asl_house.gif"
CASES = 50
SEED = 12


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, bytes]:
    """Two short real clips: 10 frames of the webcam clip (H.264 mp4, 180x240) and the first 10
    frames of asl_house.gif re-encoded as an animated GIF."""
    import av

    root = tmp_path_factory.mktemp("fuzz_sources")
    mp4 = root / "webcam.mp4"
    info = probe_video(SAMPLE)
    with VideoWriter(mp4, 180, 240, info.fps) as writer:
        for frame in itertools.islice(iter_frames(info), 10):
            writer.write(cv2.resize(frame, (180, 240), interpolation=cv2.INTER_AREA))
    gif = root / "house.gif"
    with av.open(str(gif), "w") as out:
        stream = out.add_stream("gif", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "rgb8"
        for frame in itertools.islice(iter_frames(probe_video(GIF)), 10):
            small = cv2.resize(frame, (160, 120), interpolation=cv2.INTER_AREA)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(small, format="rgb24").reformat(format="rgb8")))
        out.mux(stream.encode(None))
    return {"mp4": mp4.read_bytes(), "gif": gif.read_bytes()}


def damaged_copies(sources: dict[str, bytes], count: int, seed: int) -> list[tuple[str, str, bytes]]:
    """``count`` (name, suffix, bytes) copies: half cut at a random length, half with random bytes
    flipped (1-40 of them, past the first 16 so the container is still recognised now and then)."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(count):
        kind = list(sources)[i % len(sources)]
        data = bytearray(sources[kind])
        if i % 2 == 0:
            cut = int(rng.integers(1, len(data)))
            name, data = f"cut{i}_{cut}", data[:cut]
        else:
            flips = int(rng.integers(1, 41))
            for pos in rng.integers(16, len(data), flips):
                data[pos] ^= int(rng.integers(1, 256))
            name = f"flip{i}_{flips}"
        cases.append((name, kind, bytes(data)))
    return cases


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


def run_case(args: list[str], capsys) -> tuple[int, str]:
    """``main(args)`` with a one-minute alarm; (status, stderr). A hang fails the test."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(60)
    try:
        capsys.readouterr()
        status = main(args)
    except _Hang:
        pytest.fail(f"hang past a minute: {args}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    err = capsys.readouterr().err
    if "_Hang" in err:
        pytest.fail(f"hang past a minute: {args}")
    return status, err


def test_fifty_damaged_clips_write_a_valid_file_or_fail_in_one_line(sources, tmp_path: Path, capsys) -> None:
    tally: Counter = Counter()
    for i, (name, kind, data) in enumerate(damaged_copies(sources, CASES, SEED)):
        case = tmp_path / name
        case.mkdir()
        src = case / f"in.{kind}"
        src.write_bytes(data)
        command = "anonymize" if i % 4 < 2 else "pose"  # both commands on both kinds of damage
        out = case / ("out.mp4" if command == "anonymize" else "out.pose")
        status, err = run_case([command, str(src), "-o", str(out), "-q"], capsys)
        left = sorted(p.name for p in case.iterdir())
        assert src.read_bytes() == data, name  # the input is never touched
        assert "Traceback" not in err, (name, err)
        if status == 0:
            assert left == sorted([src.name, out.name]), (name, left)
            if command == "anonymize":
                written = probe_video(out)
                assert written.frame_count == probe_video(src).frame_count > 0, name
            else:
                assert read_pose(out).body.data.shape[0] == probe_video(src).frame_count, name
            tally[f"{command} valid"] += 1
        else:
            lines = [line for line in err.splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("signanon: error: "), (name, err)
            assert left == [src.name], (name, left)  # no partial, no temporary file
            tally[f"{command} refused"] += 1
    print(dict(tally))  # shown with -s: how many runs worked, how many were refused
    assert sum(tally.values()) == CASES
    assert tally["anonymize valid"] + tally["pose valid"] >= 5  # some damage is survivable
    assert tally["anonymize refused"] + tally["pose refused"] >= 5


def test_two_runs_writing_the_same_output_at_once(sources, tmp_path: Path) -> None:
    src = tmp_path / "in.mp4"
    src.write_bytes(sources["mp4"])
    out = tmp_path / "out" / "same.mp4"
    out.parent.mkdir()
    env = dict(os.environ)
    env.pop("SIGNANON_DEBUG", None)
    procs = [
        subprocess.Popen([sys.executable, "-m", "signanon.cli.main", "anonymize", str(src), "-o", str(out), "-q",
                          "--palette", palette], stderr=subprocess.PIPE, text=True, env=env)
        for palette in ("light-skin", "dark-skin")
    ]  # fmt: skip
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for status, err in results:
        assert "Traceback" not in err
        assert status == 0 or (len(err.strip().splitlines()) == 1 and err.startswith("signanon: error: ")), err
    assert any(status == 0 for status, _ in results)
    written = probe_video(out)  # whole and readable: one run's file, never a mix
    assert written.frame_count == 10
    assert len(list(iter_frames(written))) == 10
    assert sorted(p.name for p in out.parent.iterdir()) == ["same.mp4"]  # no temporaries left
