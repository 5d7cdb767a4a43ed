"""What reading the signer as a viewer's recogniser does on threads saves (run by hand):
``python benchmarks/bench_find_signer.py [CLIP ...] [--rounds 2] [--ways none 0 1 2]``.

The identity guard reads the signer's face twice before anything is drawn
(:func:`signanon.avatar.identity_guard.find_signer`): its own reading (dlib not upsampled at 480 px
and over, 5-point alignment, up to 30 frames) and a viewer's (dlib's defaults: upsampled once at
any size, 68 points, 30 frames). The second costs ~0.2 s a frame at 540x720 and ~0.6 s at 1440x1080.
Here each clip's signer is found side by side in one process: without the viewer's reading
(``none``, the cost before session 45), with it read in line on the caller's thread (``0``, as in
session 45), on one thread beside the own reading (``1``) or on two (``2``, the default),
``--rounds`` times each. One row per clip: the median seconds of each, the ratios to the in-line
reading, and whether every way found the same viewer's faces (they must: each thread has its own
detector, the faces come back in frame order). Default clips: the sample clip (540x720), DGS ZUG
(640x480) and DGS ZUG scaled to 1440x1080 (written to a temporary folder).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "video"


def hd_copy(source: Path, folder: Path) -> Path:
    """``source`` scaled so its shorter side is 1080 px (``tools/make_framings.py``'s ``hd``
    framing: 1440x1080 for a 4:3 clip), written once into ``folder``."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from outside_tools import load_module

    framings = load_module(REPO / "tools" / "make_framings.py", "make_framings")
    return framings.make(source, "hd", folder / f"{source.stem}__hd.mp4", 10**9)


def time_find(info, threads: int | None, rounds: int):
    """Median seconds of :func:`find_signer` (the viewer's reading on ``threads`` threads, 0 in
    line, None: none), and the signer found in the last round."""
    from signanon.avatar.identity_guard import IdentityGuardConfig, find_signer
    from signanon.recognition import DlibConfig, DlibEmbedder

    config = IdentityGuardConfig()
    own = DlibEmbedder(DlibConfig(threshold=config.threshold))
    seconds, signer = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        if threads is not None:
            viewer = DlibEmbedder(config.viewer)  # timed: a run builds it too
            signer = find_signer(info, config, own, viewer=viewer, viewer_threads=threads)
        else:
            signer = find_signer(info, config, own)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), signer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*", type=Path)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--ways", nargs="+", default=["none", "0", "1", "2"], help="none, or the viewer's threads (0: in line)")
    args = ap.parse_args()

    from signanon.video import probe_video

    with tempfile.TemporaryDirectory() as tmp:
        clips = args.clips or [REPO / "examples" / "asl_webcam.mp4", SHARED / "dgs_zug.mp4", hd_copy(SHARED / "dgs_zug.mp4", Path(tmp))]
        ways = [None if w == "none" else int(w) for w in args.ways]
        base = 0 if 0 in ways else ways[0]
        label = {None: "none", 0: "in line"} | {t: f"{t} thr" for t in ways if t}
        print(f"{'clip':28s} {'size':>10s} " + " ".join(f"{label[t] + ' s':>10s}" for t in ways)
              + " " + " ".join(f"{label[t] + '/' + label[base]:>14s}" for t in ways if t != base) + "  same faces")
        for clip in clips:
            info = probe_video(clip)
            found = {t: time_find(info, t, args.rounds) for t in ways}
            viewed = [found[t][1].viewed for t in ways if t is not None]
            same = all(v.shape == viewed[0].shape and np.array_equal(v, viewed[0]) for v in viewed)
            print(f"{clip.name:28s} {f'{info.width}x{info.height}':>10s} "
                  + " ".join(f"{found[t][0]:10.2f}" for t in ways)
                  + " " + " ".join(f"{found[t][0] / found[base][0]:14.2f}" for t in ways if t != base)
                  + f"  {'yes' if same else 'NO'} ({len(viewed[0]) if viewed else 0} faces)", flush=True)


if __name__ == "__main__":
    main()
