"""Benchmark of ``signanon batch`` (run by hand: ``python benchmarks/bench_batch.py``).

Builds a corpus of ``--clips`` copies of the sample clip (in two folders) and anonymizes it, side
by side in one run, with ``--workers 1``, ``--workers 2`` and ``--ray local`` (one actor per CPU),
each as its own ``signanon batch`` process into its own empty OUT_DIR. Prints one table: wall
seconds (start-up included: process spawn, model loading, Ray start), clips per hour, the ratio to
``--workers 1`` and the peak RSS of each worker (from the report's per-clip ``worker`` records).

Then one long clip (``--long-frames`` frames: the sample's frames played forward and back, over
and over) with ``signanon anonymize --workers 1`` and ``--workers 2`` (two processes, each running
the whole pipeline on one time chunk), alternating ``--long-repeats`` times (1, 2, 1, 2, ...): wall
seconds, frames per second and the CPU seconds of each run (user + system, its worker processes
included), since on a shared machine the wall ratio is noisy. ``--long-only`` skips the corpus.

Targets (issue 9) on 2 cores: ``batch --workers 2`` >= 1.4x the clips per hour of ``--workers 1``;
``anonymize --workers 2`` >= 1.3x the frame rate of one process.
``--no-ray`` skips the Ray run (Ray not installed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "asl_webcam.mp4"


def make_corpus(folder: Path, clips: int) -> Path:
    """``clips`` copies of the sample clip, alternating between two sub-folders."""
    for i in range(clips):
        target = folder / f"part{i % 2}" / f"clip{i:03d}.mp4"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLE, target)
    return folder


def run_batch(corpus: Path, out: Path, extra: list[str]) -> tuple[float, dict]:
    """Wall seconds of one ``signanon batch`` process and its report."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "signanon.cli.main", "batch", str(corpus), "-o", str(out), "-q", *extra],
        capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"batch {' '.join(extra)} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    return wall, json.loads((out / "batch_report.json").read_text())


def make_long_clip(path: Path, frames: int) -> Path:
    """The sample clip played forward and back until ``frames`` frames (a long, continuous clip)."""
    import itertools

    from signanon.video import VideoWriter, iter_frames, probe_video

    info = probe_video(SAMPLE)
    clip = list(iter_frames(info))
    loop = itertools.cycle(clip + clip[-2:0:-1])
    with VideoWriter(path, info.width, info.height, info.fps) as writer:
        for frame in itertools.islice(loop, frames):
            writer.write(frame)
    return path


def stolen_seconds() -> float:
    """CPU seconds the hypervisor gave to other machines so far, all CPUs (``/proc/stat`` steal;
    0 where there is none): on a shared virtual machine a run's own CPU seconds vary with it."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def run_anonymize(clip: Path, out: Path, workers: int) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, with the worker processes it waited for) and
    stolen CPU seconds (:func:`stolen_seconds`) of one ``signanon anonymize --workers N`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    stolen = stolen_seconds()
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "signanon.cli.main", "anonymize", str(clip), "-o", str(out), "-q",
         "--workers", str(workers)], capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - start
    stolen = stolen_seconds() - stolen
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"anonymize --workers {workers} failed: {proc.stderr.strip()[-400:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), stolen


def worker_rss(report: dict) -> list[float]:
    """Peak RSS (MiB) of each worker process of a run."""
    peaks: dict[int, float] = {}
    for clip in report["clips"]:
        w = clip.get("worker") or {}
        if "pid" in w:
            peaks[w["pid"]] = max(peaks.get(w["pid"], 0.0), w["peak_rss_mib"])
    return sorted(peaks.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="clips in the corpus (default 8)")
    parser.add_argument("--no-ray", action="store_true", help="skip the --ray local run")
    parser.add_argument("--long-frames", type=int, default=900, help="frames of the long clip (default 900)")
    parser.add_argument("--long-repeats", type=int, default=1, help="runs of each long-clip setting, alternating (default 1)")
    parser.add_argument("--long-only", action="store_true", help="only the long clip")
    args = parser.parse_args()
    runs = [("--workers 1", []), ("--workers 2", ["--workers", "2"])]
    if not args.no_ray:
        runs.append(("--ray local", ["--ray", "local"]))
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        if not args.long_only:
            corpus = make_corpus(Path(tmp) / "corpus", args.clips)
            for name, extra in runs:
                wall, report = run_batch(corpus, Path(tmp) / f"out{len(rows)}", extra)
                done = report["totals"]["done"]
                rows.append((name, wall, done * 3600 / wall, worker_rss(report)))
        long_clip = make_long_clip(Path(tmp) / "long.mp4", args.long_frames)
        long_rows = []
        for _ in range(args.long_repeats):
            for workers in (1, 2):
                wall, cpu, stolen = run_anonymize(long_clip, Path(tmp) / f"long{workers}.mp4", workers)
                long_rows.append((workers, wall, cpu, stolen))
                print(f"anonymize --workers {workers}: {wall:.1f} s wall, {cpu:.1f} s CPU, {stolen:.1f} s stolen", file=sys.stderr)
    print(f"{os.cpu_count()} CPUs")
    if rows:
        base = rows[0][2]
        print(f"corpus: {args.clips} copies of {SAMPLE.name}")
        print("| run | wall s | clips/hour | x --workers 1 | peak RSS per worker (MiB) |")
        print("|---|---|---|---|---|")
        for name, wall, rate, rss in rows:
            print(f"| {name} | {wall:.1f} | {rate:.0f} | {rate / base:.2f} | {', '.join(f'{r:.0f}' for r in rss)} |")
    print(f"\none clip of {args.long_frames} frames, runs in the order made")
    print("| run | wall s | frames/s | x the --workers 1 run before | CPU s | stolen CPU s |")
    print("|---|---|---|---|---|---|")
    ratios = []
    for i, (workers, wall, cpu, stolen) in enumerate(long_rows):
        base_wall = long_rows[i - 1][1] if workers == 2 else wall
        ratios += [base_wall / wall] if workers == 2 else []
        print(f"| anonymize --workers {workers} | {wall:.1f} | {args.long_frames / wall:.1f} | {base_wall / wall:.2f} | {cpu:.1f} | {stolen:.1f} |")
    if len(ratios) > 1:
        print(f"\nwall ratio of the {len(ratios)} pairs: median {np.median(ratios):.2f}, range {min(ratios):.2f}-{max(ratios):.2f}")


if __name__ == "__main__":
    main()
