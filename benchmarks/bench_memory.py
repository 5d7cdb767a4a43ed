"""Memory of ``signanon anonymize`` (avatar, the default), run by hand:
``python benchmarks/bench_memory.py [--seconds 4] [--minutes 60]``.

Two measurements, side by side in one run, each through the real command in its own process:

1. **Frame size**: the same real clip (``dgs_zug.mp4`` of the shared data, its first ``--seconds``
   seconds) scaled to 1280x720 and to 3840x2160 (height fitted, sides padded, so the signer keeps
   their proportions). Peak RSS of the command (the kernel's ``ru_maxrss``, exact) and the peak of
   its process tree sampled every 0.2 s, with the 4K/720p ratio.
2. **Length (streaming)**: a real 320x240, 25 fps clip (``asl_house.gif``, 73 frames) looped to
   ``--minutes`` minutes (60: 90000 frames). The process tree's RSS is sampled every second; the
   table gives RSS at 10%, 50% and 90% of the run and the least-squares slope over the run after
   its first 10% (warm-up), in MB per 10 minutes of run time and per 10 minutes of video.

Inputs are written to a temporary folder (``--work`` to keep them). Other programs on the machine
change timings, not memory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "video"
SIZE_CLIP = SHARED / "dgs_zug.mp4"
LONG_CLIP = SHARED / "asl_house.gif"
MIB = 1024 * 1024


def tree_rss(pid: int) -> int | None:
    """Resident bytes of a process and all its descendants (psutil, else /proc); None once gone."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return None
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total
    return _proc_tree_rss(pid)


def _proc_tree_rss(pid: int) -> int | None:
    """/proc fallback of :func:`tree_rss`."""
    page = os.sysconf("SC_PAGE_SIZE")
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo, seen = 0, [pid], False
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * page
            seen = True
        except (OSError, IndexError, ValueError):
            pass
        todo.extend(children.get(p, []))
    return total if seen else None


def run_sampled(args: list[str], every_s: float) -> dict:
    """Run ``signanon ARGS``; sample its process tree's RSS every ``every_s`` seconds. Returns the
    samples ``[(seconds, bytes)]``, the kernel's peak RSS of the command process and the wall time."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "signanon.cli.main", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss = tree_rss(proc.pid)
            if rss is not None:
                samples.append((time.perf_counter() - start, rss))
            done.wait(every_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"signanon {' '.join(args)} failed ({proc.returncode}):\n{stderr.decode(errors='replace')}")
    return {"samples": samples, "maxrss": usage.ru_maxrss * 1024, "wall": time.perf_counter() - start}


# -- inputs ----------------------------------------------------------------------------------------


def fit_frame(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """``rgb`` scaled to ``height`` and padded (edge colour) to ``width``, or cropped if wider."""
    import cv2

    h, w = rgb.shape[:2]
    new_w = round(w * height / h)
    scaled = cv2.resize(rgb, (new_w, height), interpolation=cv2.INTER_CUBIC)
    if new_w >= width:
        left = (new_w - width) // 2
        return np.ascontiguousarray(scaled[:, left : left + width])
    left = (width - new_w) // 2
    return np.pad(scaled, ((0, 0), (left, width - new_w - left), (0, 0)), mode="edge")


def write_video(path: Path, frames, width: int, height: int, fps: Fraction) -> int:
    """Encode RGB frames to H.264 (x264 ultrafast, yuv420p); returns the frame count."""
    import av

    count = 0
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "20"}
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
            count += 1
        container.mux(stream.encode(None))
    return count


def sized_inputs(folder: Path, seconds: float) -> dict[str, tuple[Path, int, int, int]]:
    """The first ``seconds`` of the real clip at 720p and at 4K: {label: (path, width, height, frames)}."""
    import itertools

    from signanon.video import iter_frames, probe_video

    info = probe_video(SIZE_CLIP)
    frames = list(itertools.islice(iter_frames(info), round(seconds * float(info.fps))))
    out = {}
    for label, (w, h) in {"720p": (1280, 720), "4K": (3840, 2160)}.items():
        path = folder / f"zug_{label}.mp4"
        n = write_video(path, (fit_frame(f, w, h) for f in frames), w, h, info.fps)
        out[label] = (path, w, h, n)
    return out


def long_input(folder: Path, minutes: float) -> tuple[Path, int, Fraction]:
    """The real 320x240 clip looped to ``minutes`` minutes at its own rate (25 fps)."""
    from signanon.video import iter_frames, probe_video

    info = probe_video(LONG_CLIP)
    loop = list(iter_frames(info))
    total = round(minutes * 60 * float(info.fps))
    path = folder / f"house_{minutes:g}min.mp4"
    write_video(path, (loop[i % len(loop)] for i in range(total)), info.width, info.height, info.fps)
    return path, total, info.fps


# -- report ----------------------------------------------------------------------------------------


def at_fraction(samples: list[tuple[float, int]], fraction: float, wall: float) -> int:
    """The sample nearest to ``fraction`` of the run."""
    return min(samples, key=lambda s: abs(s[0] - fraction * wall))[1]


def slope_mb_per_10min(samples: list[tuple[float, int]], wall: float) -> float:
    """Least-squares slope of RSS over run time, after the first 10% of the run, in MB / 10 min."""
    kept = [(t, r) for t, r in samples if t >= 0.1 * wall]
    t = np.array([s[0] for s in kept])
    r = np.array([s[1] for s in kept], dtype=np.float64) / 1e6
    return float(np.polyfit(t, r, 1)[0] * 600) if len(kept) >= 3 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the 720p/4K clips (default 4)")
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the long input (default 60)")
    parser.add_argument("--work", type=Path, help="keep the generated inputs and outputs here")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_memory_"))
    work.mkdir(parents=True, exist_ok=True)

    rows = []
    sized = sized_inputs(work, args.seconds)
    peaks = {}
    for label, (path, w, h, n) in sized.items():
        run = run_sampled(["anonymize", str(path), "-o", str(work / f"{path.stem}_anon.mp4"), "-q"], 0.2)
        peaks[label] = run
        tree_peak = max(r for _, r in run["samples"]) if run["samples"] else float("nan")
        rows.append((f"peak RSS, {label} ({w}x{h}, {n} frames)", f"{run['maxrss'] / MIB:.0f} MiB",
                     f"{tree_peak / MIB:.0f} MiB", f"{n / run['wall']:.1f} frames/s"))  # fmt: skip
    ratio = peaks["4K"]["maxrss"] / peaks["720p"]["maxrss"]
    tree_ratio = max(r for _, r in peaks["4K"]["samples"]) / max(r for _, r in peaks["720p"]["samples"])
    rows.append(("ratio 4K / 720p (4K has 9.0x the pixels)", f"{ratio:.2f}", f"{tree_ratio:.2f}", ""))

    path, total, fps = long_input(work, args.minutes)
    run = run_sampled(["anonymize", str(path), "-o", str(work / f"{path.stem}_anon.mp4"), "-q"], 1.0)
    samples, wall = run["samples"], run["wall"]
    video_min = total / float(fps) / 60
    slope = slope_mb_per_10min(samples, wall)
    label = f"{args.minutes:g} min input, 320x240 at {float(fps):g} fps ({total} frames), run {wall / 60:.1f} min"
    for fraction in (0.1, 0.5, 0.9):
        rows.append((f"RSS at {fraction:.0%} of the run, {label}", "", f"{at_fraction(samples, fraction, wall) / MIB:.0f} MiB", ""))
    rows.append(("peak RSS, same run", f"{run['maxrss'] / MIB:.0f} MiB", f"{max(r for _, r in samples) / MIB:.0f} MiB",
                 f"{total / wall:.1f} frames/s"))  # fmt: skip
    rows.append(("slope after the first 10% (MB per 10 min of run)", "", f"{slope:+.1f}", ""))
    rows.append(("slope (MB per 10 min of video)", "", f"{slope * wall / 60 / video_min:+.1f}", ""))

    print("| measure | kernel peak RSS (command) | process tree RSS (sampled) | speed |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if args.work:
        print(f"\ninputs and outputs in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
