"""Benchmark of the checkpoint-free re-enactment (run by hand: ``python benchmarks/bench_reenact.py``).

Every talking-head driver in ``../shared/data/talking_face`` drives several face photos of
``../shared/data/faces`` (other people than the driver) with ``signanon reenact`` (landmark warp,
relative mode). Each output is read back by the independent ``../shared/tools/readback.py reenact``
(MediaPipe Holistic + dlib, none of signanon's code): per facial-grammar series the Pearson r and
the gain (std of the output's series / std of the driver's, inter-ocular units), and the share of
sampled output frames that dlib matches to the source photo and to the driver (distance < 0.6).

Prints one table, one row per (driver, photo) pair; a series the driver hardly moves (std < 0.01
inter-ocular distances) is shown in brackets: it does not count toward the goal.

Goal (issue 11): for every series the driver moves, r >= 0.7 and gain 0.7-1.4; source matched on
>= 0.8 of frames, driver never.

Options: ``--drivers NAME ...`` / ``--photos PERSON/FILE ...`` limit the pairs; ``--frames N`` cuts
each driver to its first N frames (a quicker, rougher run); ``--json FILE`` writes the raw results.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
READBACK = SHARED / "tools" / "readback.py"
DRIVERS = ("expressive_man", "talking_woman", "open_mouth", "smile_glasses")
PHOTOS = ("obama/train_obama.jpg", "biden/train_biden2.jpg", "kit_harington/train_john2.jpeg", "rose_leslie/train_img2.jpg")
SERIES = ("brow_raise", "brow_furrow", "eye_open", "mouth_open", "mouth_width")
SHORT = {"brow_raise": "brow", "brow_furrow": "furrow", "eye_open": "eyes", "mouth_open": "mouth", "mouth_width": "width"}
MOVES = 0.01  # a series "moves" when the driver's std reaches this (inter-ocular distances)


def cut(driving: Path, frames: int, out_dir: Path) -> Path:
    """The first ``frames`` frames of ``driving`` as a new mp4 (or the file itself when 0)."""
    if frames <= 0:
        return driving
    from signanon.video import VideoWriter, iter_frames, probe_video

    info = probe_video(driving)
    out = out_dir / f"{driving.stem}_{frames}.mp4"
    with VideoWriter(out, info.width, info.height, info.fps) as writer:
        for t, frame in enumerate(iter_frames(info)):
            if t >= frames:
                break
            writer.write(frame)
    return out


def run_pair(photo: Path, driving: Path, out: Path) -> dict:
    """Re-enact ``photo`` with ``driving`` into ``out``, read it back; the readback's dict plus seconds."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "signanon.cli.main", "reenact", "--source", str(photo), "--driving", str(driving),
         "-o", str(out), "--quiet"], check=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    done = subprocess.run(
        [sys.executable, str(READBACK), "reenact", str(photo), str(driving), str(out)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["reenact_seconds"] = seconds
    return result


def cell(result: dict, key: str) -> str:
    """``r/gain`` of one series; bracketed when the driver does not move it; '!' when off goal."""
    r, g = result["face_series_r"].get(key), result["face_series_gain"].get(key)
    std = result["face_series_gain"]["original_std"].get(key) or 0.0
    if r is None or g is None:
        return "-"
    text = f"{r:.2f}/{g:.2f}"
    if std < MOVES:
        return f"({text})"
    return text + ("" if r >= 0.7 and 0.7 <= g <= 1.4 else "!")


def table(rows: list[tuple[str, str, dict]]) -> str:
    """One line per pair: r/gain per series, source and driver match rates, seconds."""
    head = f"{'driver':15s} {'photo':28s} " + " ".join(f"{SHORT[k]:>12s}" for k in SERIES) + "   src   drv    s"
    lines = [head, "-" * len(head)]
    for driver, photo, res in rows:
        cells = " ".join(f"{cell(res, k):>12s}" for k in SERIES)
        lines.append(f"{driver:15s} {photo:28s} {cells}  {res['same_as_source_rate']:.2f}  "
                     f"{res['same_as_driving_rate']:.2f} {res['reenact_seconds']:4.0f}")  # fmt: skip
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drivers", nargs="+", default=list(DRIVERS))
    parser.add_argument("--photos", nargs="+", default=list(PHOTOS))
    parser.add_argument("--frames", type=int, default=0, help="first N driving frames only (0 = all)")
    parser.add_argument("--json", type=Path, help="write the raw readback results here")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in args.drivers:
            driving = cut(SHARED / "data" / "talking_face" / f"{name}.mp4", args.frames, tmp)
            for photo in args.photos:
                out = tmp / f"{name}_{photo.replace('/', '_')}.mp4"
                rows.append((name, photo, run_pair(SHARED / "data" / "faces" / photo, driving, out)))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    print()
    print("r/gain per series (driver std < 0.01 in brackets, off goal marked !); src/drv: dlib match rates")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps([{"driver": d, "photo": p, **r} for d, p, r in rows], indent=1))


if __name__ == "__main__":
    main()
