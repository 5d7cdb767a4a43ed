"""What drawing the probe frames ahead saves (run by hand):
``python benchmarks/bench_probes.py [CLIP ...] [--rounds 2]``.

The hand and mouth choices draw probe frames (renderer and x264) and read each back with
MediaPipe Holistic. ``renderer.drawn_ahead`` draws the next frames on a thread while the last one
is read. Here each clip is anonymized by the product side by side in one process, alternately with
the shipped drawing ahead and with the frames drawn in line (``drawn_ahead`` replaced by a plain
loop), ``--rounds`` times each. One row per clip: the median seconds of the two choice stages and
of the whole run both ways, their ratio, and whether the two ways wrote the same file (they must:
the frames and their order are the same). Default clips: the shared ASL DIFFERENT (its mouth choice
draws all four partings) and DGS ZUG (its look's own parting settles).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "video"
STAGES = ("choose hand drawing", "choose mouth parting")


def in_line(poses, draw, depth: int = 2):
    """``drawn_ahead`` without the thread: each frame drawn when it is asked for."""
    for pose in poses:
        yield pose, draw(pose)


@contextmanager
def drawing_in_line():
    from signanon.avatar import hand_choice, mouth_choice

    saved = hand_choice.drawn_ahead, mouth_choice.drawn_ahead
    hand_choice.drawn_ahead = mouth_choice.drawn_ahead = in_line
    try:
        yield
    finally:
        hand_choice.drawn_ahead, mouth_choice.drawn_ahead = saved


def run(clip: Path, out: Path) -> tuple[dict[str, float], float, str]:
    """(seconds per choice stage, total seconds, sha256 of the output) of one default run."""
    from signanon.avatar.anonymizer import AvatarAnonymizer

    summary = AvatarAnonymizer()(clip, out, progress=False)
    stages = {s: summary.seconds_per_stage.get(s, 0.0) for s in STAGES}
    return stages, summary.seconds_total, hashlib.sha256(out.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="*", type=Path, default=[SHARED / "asl_different.gif", SHARED / "dgs_zug.mp4"])
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    print(f"{'clip':<22} {'stage':<22} {'in line s':>10} {'ahead s':>9} {'ratio':>6}  same file")
    with tempfile.TemporaryDirectory() as tmp:
        for clip in args.clips:
            times: dict[str, dict[str, list[float]]] = {"line": {}, "ahead": {}}
            digests: dict[str, set[str]] = {"line": set(), "ahead": set()}
            for k in range(args.rounds):
                for way in ("line", "ahead"):
                    out = Path(tmp) / f"{clip.stem}_{way}_{k}.mp4"
                    if way == "line":
                        with drawing_in_line():
                            stages, total, digest = run(clip, out)
                    else:
                        stages, total, digest = run(clip, out)
                    for name, seconds in {**stages, "whole run": total}.items():
                        times[way].setdefault(name, []).append(seconds)
                    digests[way].add(digest)
            same = "yes" if len(digests["line"] | digests["ahead"]) == 1 else "NO"
            for name in (*STAGES, "whole run"):
                line, ahead = statistics.median(times["line"][name]), statistics.median(times["ahead"][name])
                ratio = f"{line / ahead:6.2f}" if ahead > 0.05 else "     -"
                print(f"{clip.name:<22} {name:<22} {line:10.1f} {ahead:9.1f} {ratio}  {same}")


if __name__ == "__main__":
    main()
