"""Ctrl-C (SIGINT), SIGTERM and a full disk, for every command, as a user meets them.

Each command runs as a real subprocess on a real clip; the signal is sent once its work has
started (its progress bar, or a first file of its own, appeared). Then: a non-zero exit, exactly
one ``signanon:`` line and no traceback, no output and no temporary file left (in the output
folder nor in $TMPDIR), and the input untouched. ``serve`` stops on either signal by design (exit
0) and must delete its private workspace. A write that fails (``ulimit -f``: the file-size limit
stands in for a full disk) gives one line and no partial file.
"""

from __future__ import annotations

import hashlib
import fcntl
import os
import pty
import re
import resource
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "asl_webcam.mp4"
DATA = REPO / "tests" / "data"
FACE = DATA / "faces" / "obama" / "1.jpg"
# Progress bars (tqdm) and our own first lines: the command is past its checks and working.
STARTED = re.compile(r"\d+%\||\d+/\d+ \[|serving on")


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", TMPDIR=str(tmp), HF_HUB_OFFLINE="1")
    env.pop("SIGNANON_DEBUG", None)
    return env


def _all_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_interrupted(
    args: list[str], sig: int, tmp: Path, *, start_timeout: float = 90, settle: float = 0.5
) -> tuple[int, str, float]:
    """Start ``signanon ARGS``, wait for its progress output, send ``sig`` once; return (exit
    status, stderr, seconds from the signal to the exit). Fails if work never started."""
    # stderr is a terminal, as for a user: the progress bar shows, and tells that work started
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a sized terminal
    proc = subprocess.Popen(
        [sys.executable, "-m", "signanon.cli.main", *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, env=_env(tmp), cwd=tmp.parent,
    )  # fmt: skip
    os.close(slave)
    chunks: list[bytes] = []
    seen = threading.Event()

    def pump() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)
            if STARTED.search(b"".join(chunks).decode("utf-8", "replace")):
                seen.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    started = seen.wait(start_timeout)
    if not started or proc.poll() is not None:
        proc.kill()
        proc.wait()
        reader.join(5)
        os.close(master)
        pytest.fail(f"{args[0]} did not start working (or finished first):\n" + b"".join(chunks).decode(errors="replace"))
    time.sleep(settle)  # well inside the work, past the first frame
    sent = time.perf_counter()
    proc.send_signal(sig)
    try:
        status = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"{args[0]} still running 60 s after signal {sig}")
    reader.join(10)
    os.close(master)
    return status, b"".join(chunks).decode("utf-8", "replace"), time.perf_counter() - sent


def final_lines(stderr: str) -> list[str]:
    """Lines the command printed itself (progress bar redraws, split on \\r, are left out)."""
    plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", stderr)  # cursor moves of the erased bars
    return [line.strip() for line in re.split(r"[\r\n]+", plain) if line.strip().startswith("signanon:")]


def _toy_train_files(root: Path) -> dict[str, Path]:
    """A tiny TPSMM checkpoint, a toy VGG19 in torchvision's layout and two face-clip folders of
    real face pictures, so train-face trains for real (on CPU, for many seconds)."""
    import cv2
    import numpy as np
    import torch

    from signanon.reenactment import training as tr
    from signanon.reenactment.tpsmm import TINY, TPSMM, checkpoint_dict

    torch.manual_seed(0)
    init = root / "init.pth.tar"
    torch.save(checkpoint_dict(TPSMM(TINY), epoch=0), init)
    vgg = tr.Vgg19Features((4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8))
    vgg_path = root / "vgg19-toy.pth"
    torch.save({f"features.{k}": v for k, v in vgg.features.state_dict().items()}, vgg_path)
    sources = {}
    for name in ("obama", "biden"):
        clip = root / "faces" / name / "clip"
        clip.mkdir(parents=True)
        pictures = sorted((DATA / "faces" / name).glob("*.jpg"))
        for i in range(8):
            img = cv2.imread(str(pictures[i % len(pictures)]))
            cv2.imwrite(str(clip / f"{i:05d}.png"), cv2.resize(np.roll(img, i, axis=1), (64, 64)))
        sources[name] = clip.parent
    return {"init": init, "vgg": vgg_path, **sources}


def _long_clip(path: Path, frames: int) -> Path:
    """The sample clip played forward and back to ``frames`` frames (long enough for --workers 2)."""
    import itertools

    from signanon.video import VideoWriter, iter_frames, probe_video

    info = probe_video(SAMPLE)
    clip = list(iter_frames(info))
    with VideoWriter(path, info.width, info.height, info.fps) as writer:
        for frame in itertools.islice(itertools.cycle(clip + clip[-2:0:-1]), frames):
            writer.write(frame)
    return path


def command_cases(root: Path) -> dict[str, list[str]]:
    """Every long-running command, reading real inputs, writing under ``root/out``."""
    out = root / "out"
    videos = root / "videos"
    videos.mkdir(exist_ok=True)
    (videos / "clip.mp4").write_bytes(SAMPLE.read_bytes())
    train = _toy_train_files(root)
    long_clip = _long_clip(root / "long.mp4", 300)
    return {
        "anonymize": ["anonymize", str(SAMPLE), "-o", str(out / "anon.mp4"), "--summary", str(out / "run.json")],
        "anonymize-workers": ["anonymize", str(long_clip), "-o", str(out / "anon.mp4"), "--workers", "2"],
        "pose": ["pose", str(SAMPLE), "-o", str(out / "clip.pose")],
        "evaluate": ["evaluate", "--original", str(SAMPLE), "--anonymized", str(SAMPLE), "-o", str(out / "report")],
        "reenact": ["reenact", "--source", str(FACE), "--driving", str(SAMPLE), "-o", str(out / "re.mp4")],
        "extract-faces": ["extract-faces", str(videos), "-o", str(out / "faces"), "--min-frames", "4"],
        "train-face": ["train-face", "--data", f"a={train['obama']}", "--data", f"b={train['biden']}",
                       "--init", str(train["init"]), "--vgg19-weights", str(train["vgg"]), "--model-size", "tiny",
                       "--batch-size", "2", "--steps-per-epoch", "400", "--epochs", "1", "--workers", "0",
                       "--device", "cpu", "-o", str(out / "run")],  # fmt: skip
        "batch": ["batch", str(videos), "-o", str(out / "release")],
        "serve": ["serve", "--port", str(20000 + os.getpid() % 20000)],
    }


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    root = tmp_path_factory.mktemp("signals")
    return root, command_cases(root)


COMMANDS = ["anonymize", "anonymize-workers", "pose", "evaluate", "reenact", "extract-faces", "train-face", "batch", "serve"]


@pytest.mark.parametrize("command", COMMANDS)
def test_sigint_and_sigterm_leave_nothing(cases, command: str, tmp_path: Path) -> None:
    root, table = cases
    before = _digest(SAMPLE)
    results = {}

    def one(sig: int):
        work = tmp_path / signal.Signals(sig).name
        tmp = work / "tmp"
        tmp.mkdir(parents=True)
        args = [a.replace(str(root / "out"), str(work / "out")) for a in table[command]]
        if command == "serve":  # two servers at once need two ports
            args[-1] = str(int(args[-1]) + (1 if sig == signal.SIGTERM else 0))
        (work / "out").mkdir()
        # batch shows its bar before its worker imports the models: 0.5 s lands inside those
        # imports (test_an_interrupt_anywhere_in_batch_start_up_is_one_line samples the rest);
        # anonymize --workers 2 is interrupted once its worker processes are at work
        settle = 3.0 if command == "anonymize-workers" else 0.5
        return run_interrupted(args, sig, tmp, settle=settle), work

    with ThreadPoolExecutor(2) as pool:  # both signals at once: the two cores are used
        for sig, future in [(s, pool.submit(one, s)) for s in (signal.SIGINT, signal.SIGTERM)]:
            results[sig] = future.result()
    for sig, ((status, stderr, seconds), work) in results.items():
        name = signal.Signals(sig).name
        assert "Traceback" not in stderr, (name, stderr)
        lines = final_lines(stderr)
        if command == "serve":
            assert status == 0, (name, stderr)
            assert lines[-1] == "signanon: stopped; all session files deleted", (name, stderr)
        else:
            assert status == 128 + sig, (name, status, stderr)
            word = "interrupted" if sig == signal.SIGINT else "terminated"
            assert lines == [f"signanon: {word}; no output written"], (name, stderr)
        assert _all_files(work / "out") == [], (name, _all_files(work / "out"))
        assert _all_files(work / "tmp") == [], (name, _all_files(work / "tmp"))
        assert seconds < 30, (name, seconds)
    assert _digest(SAMPLE) == before


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize(
    "command, output",
    [
        (["anonymize", str(SAMPLE), "-q"], "anon.mp4"),
        (["pose", str(SAMPLE), "-q"], "clip.pose"),
    ],
)
def test_a_full_disk_gives_one_line_and_no_partial_file(command: list[str], output: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "signanon.cli.main", *command, "-o", str(out / output)],
        capture_output=True, text=True, env=_env(tmp_path), timeout=300,
        preexec_fn=_limit_file_size(20_000),  # far below the output's size, above the probe files
    )  # fmt: skip
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("signanon: error: "), proc.stderr
    assert "File too large" in lines[0] or "too large" in lines[0].lower() or "cannot write" in lines[0], lines[0]
    assert str(out) in lines[0], lines[0]
    assert _all_files(out) == []



@pytest.mark.parametrize("command", ["evaluate", "reenact", "extract-faces"])
def test_a_full_disk_gives_one_line_and_no_partial_file_for_other_commands(command: str, tmp_path: Path) -> None:
    """The same file-size limit for the other commands that write video or pictures (12 frames of
    the sample clip): one line naming the output, no report folder, video or crop folder left."""
    from conftest import first_frames_clip

    videos = tmp_path / "videos"
    videos.mkdir()
    clip = first_frames_clip(SAMPLE, 12, videos / "clip.mp4")
    out = tmp_path / "out"
    out.mkdir()
    args = {
        "evaluate": ["evaluate", "--original", str(clip), "--anonymized", str(clip), "-o", str(out / "report")],
        "reenact": ["reenact", "--source", str(FACE), "--driving", str(clip), "-o", str(out / "re.mp4")],
        "extract-faces": ["extract-faces", str(videos), "-o", str(out / "faces"), "--min-frames", "4"],
    }[command]
    proc = subprocess.run(
        [sys.executable, "-m", "signanon.cli.main", *args, "-q"],
        capture_output=True, text=True, env=_env(tmp_path), timeout=300,
        preexec_fn=_limit_file_size(8_000),  # below the side-by-side video, the video, a 256x256 crop
    )  # fmt: skip
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("signanon: error: "), proc.stderr
    assert "too large" in lines[0].lower() or "cannot write" in lines[0], lines[0]
    assert str(out) in lines[0], lines[0]
    assert _all_files(out) == []

# Runs `python -m signanon.cli.main ARGS` as -m does, after telling the parent (on the pipe whose
# descriptor is the first argument) that the interpreter is up: the delays below count from the
# first moment signanon's code can run.
_LAUNCHER = (
    "import os, runpy, sys; fd = int(sys.argv.pop(1)); os.write(fd, b'up'); os.close(fd); "
    "sys.argv[0] = 'signanon'; runpy.run_module('signanon.cli.main', run_name='__main__', alter_sys=True)"
)


def _interrupt_at(args: list[str], sig: int, delay: float, tmp: Path) -> tuple[int, str]:
    """Start the command, send ``sig`` ``delay`` seconds after the interpreter is up; (status, stderr)."""
    up_read, up_write = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-c", _LAUNCHER, str(up_write), *args], stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(tmp), pass_fds=(up_write,),
    )  # fmt: skip
    os.close(up_write)
    assert os.read(up_read, 2) == b"up"
    os.close(up_read)
    time.sleep(delay)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    return proc.returncode, stderr.decode("utf-8", "replace")


# From 50 ms on: before that the signal can land while Python itself starts (its site module) or
# finds the signanon package, before any signanon code runs (a traceback no program can prevent).
# Up to 3 s: the worker imports MediaPipe (and protobuf, whose C extension printed an interrupted
# import's traceback and went on, losing the interrupt) after the progress bar shows.
START_UP_DELAYS = [0.05, 0.08, 0.12, 0.16, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0,
                   2.2, 2.4, 2.6, 2.8, 3.0]  # fmt: skip


def test_an_interrupt_anywhere_in_batch_start_up_is_one_line(tmp_path: Path) -> None:
    """Ctrl-C (and SIGTERM) sent to ``signanon batch`` at moments spread over its start-up (module
    imports, building the parser, importing the worker's pipeline and models): exit 130 (143), one
    line, never a traceback from inside an import nor an interrupt lost in one, nothing left in the
    output folder."""
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "clip.mp4").write_bytes(SAMPLE.read_bytes())
    runs = [(signal.SIGINT, d) for d in START_UP_DELAYS] + [(signal.SIGTERM, d) for d in START_UP_DELAYS[::3]]

    def one(index: int):
        sig, delay = runs[index]
        work = tmp_path / f"run{index}"
        (work / "tmp").mkdir(parents=True)
        args = ["batch", str(videos), "-o", str(work / "release")]
        return _interrupt_at(args, sig, delay, work / "tmp"), work

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(one, range(len(runs))))
    for (sig, delay), ((status, stderr), work) in zip(runs, outcomes):
        where = (signal.Signals(sig).name, delay, status, stderr)
        word = "interrupted" if sig == signal.SIGINT else "terminated"
        assert "Traceback" not in stderr, where
        if delay == START_UP_DELAYS[0] and status == -sig and not stderr:
            # the signal's own default action before signanon's first line ran: on a loaded machine
            # the child can wait past 50 ms to run again (SIGTERM at 0.05 s, once in a full suite)
            assert not (work / "release").exists() and _all_files(work / "tmp") == [], where
            continue
        assert status == 128 + sig, where
        assert [line for line in stderr.splitlines() if line.strip()] == [f"signanon: {word}; no output written"], where
        assert not (work / "release").exists(), (where, _all_files(work / "release"))
        assert _all_files(work / "tmp") == [], where


def test_an_interrupt_inside_an_import_is_raised_after_it(tmp_path: Path, monkeypatch, capsys) -> None:
    """A module that catches what its import raises and prints it (protobuf's C extension does so
    while MediaPipe loads) never sees the interrupt: it is raised once the import is done."""
    from signanon.cli.main import _signals_as_interrupts

    (tmp_path / "signanon_test_swallower.py").write_text(
        "import os, signal, time, traceback\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    for _ in range(20):\n"
        "        time.sleep(0.01)\n"
        "except BaseException:\n"
        "    traceback.print_exc()\n"
        "    LOST = True\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    imported = False
    with pytest.raises(KeyboardInterrupt), _signals_as_interrupts():
        import signanon_test_swallower  # noqa: F401

        imported = True
        time.sleep(5)  # the interrupt arrives here
    assert imported and not hasattr(sys.modules["signanon_test_swallower"], "LOST")
    assert "Traceback" not in capsys.readouterr().err
    sys.modules.pop("signanon_test_swallower", None)


def test_an_interrupt_inside_a_finalizer_is_raised_after_it() -> None:
    """Python prints and drops an exception raised in ``__del__`` ("Exception ignored"): an
    interrupt that lands while the garbage collector runs one is raised once it returns. (Found
    as ``serve`` running on after a Ctrl-C 0.05-0.2 s after its address showed, 3 times in 3: the
    KeyboardInterrupt was raised, and dropped, in an asyncio event loop's ``__del__``.)"""
    from signanon.cli.main import _signals_as_interrupts

    class Finalized:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(20):
                time.sleep(0.01)  # the handler runs here, inside __del__

    freed = False
    with pytest.raises(KeyboardInterrupt), _signals_as_interrupts():
        Finalized()  # no reference kept: __del__ runs at once
        freed = True
        time.sleep(5)  # the interrupt arrives here
    assert freed
