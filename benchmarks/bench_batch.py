"""Benchmark of ``signanon batch`` (run by hand: ``python benchmarks/bench_batch.py``).

Builds a corpus of ``--clips`` copies of the sample clip (in two folders) and anonymizes it, side
by side in one run, with ``--workers 1``, ``--workers 2`` and ``--ray local`` (one actor per CPU),
each as its own ``signanon batch`` process into its own empty OUT_DIR. Prints one table: wall
seconds (start-up included: process spawn, model loading, Ray start), clips per hour, the ratio to
``--workers 1`` and the peak RSS of each worker (from the report's per-clip ``worker`` records).

Target (issue 9): ``--workers 2`` >= 1.4x the clips per hour of ``--workers 1`` on 2 cores.
``--no-ray`` skips the Ray run (Ray not installed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    args = parser.parse_args()
    runs = [("--workers 1", []), ("--workers 2", ["--workers", "2"])]
    if not args.no_ray:
        runs.append(("--ray local", ["--ray", "local"]))
    with tempfile.TemporaryDirectory() as tmp:
        corpus = make_corpus(Path(tmp) / "corpus", args.clips)
        rows = []
        for name, extra in runs:
            wall, report = run_batch(corpus, Path(tmp) / f"out{len(rows)}", extra)
            done = report["totals"]["done"]
            rows.append((name, wall, done * 3600 / wall, worker_rss(report)))
    base = rows[0][2]
    print(f"corpus: {args.clips} copies of {SAMPLE.name}; {os.cpu_count()} CPUs")
    print("| run | wall s | clips/hour | x --workers 1 | peak RSS per worker (MiB) |")
    print("|---|---|---|---|---|")
    for name, wall, rate, rss in rows:
        print(f"| {name} | {wall:.1f} | {rate:.0f} | {rate / base:.2f} | {', '.join(f'{r:.0f}' for r in rss)} |")


if __name__ == "__main__":
    main()
