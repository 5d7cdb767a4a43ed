"""Does ``anonymize --workers 2`` keep the signing as one process does? (run by hand)

    python benchmarks/bench_workers_quality.py OUT_DIR

Each shared clip is played forward then backward (so that it is long enough to be split: 150
frames per worker at least), anonymized by one process and by two (time chunks joined at a
cross-faded seam), and both outputs are read back against the played clip with the independent
``../shared/tools/readback.py``. One row per clip and run: hand recall, finger-angle error (deg)
and ``r/gain`` of every facial-grammar series. The two rows of a clip should agree within the
read-back's noise (measured when x264 was not yet bit-repeatable here: about 0.05 recall and 1 degree
between runs of the same code; see signanon.video.writer.x264_options).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from outside_tools import REPO, SHARED, load_module, load_readback

CLIPS = (
    SHARED / "data" / "talking_face" / "talking_woman.mp4",
    SHARED / "data" / "video" / "ngt_numbers_small.mp4",
    SHARED / "data" / "video" / "dgs_zug.mp4",
)


def forward_and_back(src: Path, out: Path, framings) -> int:
    """Write ``src`` played forward then backward to ``out``; return its frame count."""
    frames, fps = framings.read_frames(src, 10**9)
    played = frames + frames[::-1][1:]
    framings.write_frames(out, played, fps)
    return len(played)


def anonymize(clip: Path, out: Path, workers: int) -> bool:
    """Run the command; return whether it split the clip (its summary has a ``workers`` stage)."""
    summary = out.with_suffix(".json")
    command = [sys.executable, "-m", "signanon.cli.main", "anonymize", str(clip), "-o", str(out), "-q",
               "--workers", str(workers), "--summary", str(summary)]  # fmt: skip
    subprocess.run(command, check=True)
    return "workers" in json.loads(summary.read_text())["seconds_per_stage"]


def row(name: str, frames: int, workers: int, split: bool, signing: dict) -> str:
    r, g = signing["face_series_r"], signing["face_series_gain"]
    angle = signing["handshape_angle_error_deg"]
    hands = f"{signing['hand_recall']:.2f} / {angle:.1f}" if angle is not None else "-"
    series = " ".join(f"{k} {r[k]:.2f}/{g[k]:.2f}" for k in r if r[k] is not None and g[k] is not None)
    return f"| {name} | {frames} | {workers} ({'split' if split else 'one process'}) | {hands} | {series} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    framings = load_module(REPO / "tools" / "make_framings.py", "make_framings")
    readback = load_readback()
    print("| clip (forward and back) | frames | workers | hand recall / angle deg | series r/gain |")
    print("|---|---|---|---|---|")
    for src in CLIPS:
        clip = args.out_dir / f"{src.stem}_fb.mp4"
        frames = forward_and_back(src, clip, framings)
        for workers in (1, 2):
            out = args.out_dir / f"{src.stem}_w{workers}.mp4"
            split = anonymize(clip, out, workers)
            print(row(src.stem, frames, workers, split, readback.signing(str(clip), str(out))), flush=True)


if __name__ == "__main__":
    sys.exit(main())
