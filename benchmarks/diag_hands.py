"""Where the avatar's finger-angle error comes from, per finger and joint (run by hand).

    python benchmarks/diag_hands.py CLIP.mp4 [CLIP2 ...] [--max-frames 60] [--save OUT.npz]

For each clip: runs the avatar pipeline in memory (our Holistic, smoothing, retargeting,
drawing; encoded to H.264 and decoded like ``anonymize`` does), and reads the original and the
output back with the independent ``../shared/tools/readback.py`` (MediaPipe Holistic). Then
splits the read-back angle error (15 flexion angles, degrees, as ``readback.hand_angles``) into
stages, each the mean absolute angle difference over the hands the original read-back finds:

* ``ours``:    read-back original vs our own raw landmarks (estimator differences);
* ``smooth``:  read-back original vs our smoothed landmarks (adds the One-Euro filter);
* ``retarg``:  read-back original vs the avatar's hand points before drawing (adds retargeting);
* ``draw``:    the avatar's hand points vs the read-back of the drawn output (the drawing alone);
* ``total``:   read-back original vs read-back output (what ``bench_signing.py`` reports).

Also per finger (thumb..pinky) and per joint (base, middle, tip) rows of ``draw`` and ``total``,
``draw2d`` (the same with z dropped: what a drawing can show at all), and the drawn palm length in
input pixels (the output of a clip under ``min_output_side`` is drawn larger, as ``anonymize`` draws
it; the look is the default one, not the identity guard's choice, and there is no hand choice). ``--save`` writes every per-hand record to an npz for further analysis.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from outside_tools import load_readback

FINGER_NAMES = ("thumb", "index", "middle", "ring", "pinky")


def angles2d(h: np.ndarray, rb) -> np.ndarray:
    """(15,) flexion angles (degrees) of (21, 3) points with z set to 0."""
    h = np.array(h, np.float64)
    h[:, 2] = 0
    return rb.hand_angles(h)


def run_avatar(path: Path, max_frames: int):
    """(raw landmark frames, smoothed LandmarkFrames, poses, decoded output frames (H, W, 3) uint8)."""
    from signanon.avatar.animator import AvatarAnimator, PresenceFader, has_body
    from signanon.avatar.anonymizer import AvatarConfig
    from signanon.avatar.renderer import AvatarRenderer
    from signanon.landmarks.holistic import HolisticEstimator
    from signanon.landmarks.smoothing import LandmarkProcessor
    from signanon.video import VideoWriter, iter_frames, probe_video

    cfg = AvatarConfig()
    info = probe_video(path)
    raw = []
    with HolisticEstimator(cfg.holistic) as est:
        for i, frame in enumerate(iter_frames(info)):
            if i >= max_frames:
                break
            d, c = est(frame)
            raw.append((d.copy(), c.copy()))
    smoothed = list(LandmarkProcessor(float(info.fps), cfg.smoothing).process(iter(raw)))
    with_body = [(f.data, f.confidence) for f in smoothed if has_body(f.confidence, f.data)][: cfg.calibration_window(info.fps)]
    animator = AvatarAnimator.calibrate(with_body, info.width, info.height, cfg.animator.at_rate(info.fps))
    fader = PresenceFader(animator.neutral(), max(1, round(cfg.fade_seconds * float(info.fps))))
    poses = []
    for f in smoothed:
        pose = animator(f.data, f.confidence) if has_body(f.confidence, f.data) else None
        poses.append(fader(pose))
    # drawn at the product's output size: a clip under min_output_side is drawn larger
    renderer = AvatarRenderer(info.width, info.height, cfg.style, scale=cfg.draw_scale(info.width, info.height))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.mp4"
        with VideoWriter(out, renderer.out_width, renderer.out_height, info.fps) as w:
            for p in poses:
                w.write(renderer.render(p))
        rb = load_readback()
        frames = rb.frames(str(out))
    return raw, smoothed, poses, frames, info


def diagnose(path: Path, max_frames: int, rb) -> dict:
    from signanon.landmarks import geometry, layout

    raw, smoothed, poses, out_frames, info = run_avatar(path, max_frames)
    src_frames = rb.frames(str(path), max_frames)
    n = min(len(src_frames), len(out_frames), len(poses))
    ro, ra = rb.holistic(src_frames[:n]), rb.holistic(out_frames[:n])
    rec = {k: [] for k in ("frame", "side", "ours", "smooth", "retarg", "draw", "total", "draw2d", "palm_px", "found")}
    for t in range(n):
        for side, (name, rows) in enumerate((("left", layout.LEFT_HAND), ("right", layout.RIGHT_HAND))):
            o = ro[t][name]
            if o is None:
                continue
            a_o = rb.hand_angles(o)
            nan = np.full(15, np.nan)
            d, c = raw[t]
            ours = rb.hand_angles(geometry.to_metric(d[rows], info.width)) if geometry.hand_present(c, side) else nan
            sf = smoothed[t]
            sm = (rb.hand_angles(geometry.to_metric(sf.data[rows], info.width))
                  if geometry.hand_present(sf.confidence, side) else nan)  # fmt: skip
            hand = (poses[t].left_hand, poses[t].right_hand)[side]
            ret = rb.hand_angles(np.asarray(hand, np.float64)) if hand is not None else nan
            r = ra[t][name]
            rec["frame"].append(t)
            rec["side"].append(side)
            rec["ours"].append(np.abs(ours - a_o))
            rec["smooth"].append(np.abs(sm - a_o))
            rec["retarg"].append(np.abs(ret - a_o))
            rec["found"].append(r is not None)
            rec["palm_px"].append(float(np.linalg.norm(hand[9, :2] - hand[0, :2])) if hand is not None else np.nan)
            if r is None:
                rec["draw"].append(nan)
                rec["total"].append(nan)
                rec["draw2d"].append(nan)
                continue
            a_r = rb.hand_angles(r)
            rec["draw"].append(np.abs(a_r - ret))
            rec["total"].append(np.abs(a_r - a_o))
            rec["draw2d"].append(np.abs(angles2d(r, rb) - angles2d(hand, rb)) if hand is not None else nan)
    return {k: np.array(v) for k, v in rec.items()}


def report(name: str, rec: dict) -> None:
    found = rec["found"].astype(bool) if len(rec["found"]) else np.zeros(0, bool)
    print(f"\n== {name}: {len(found)} hands in the original, {found.sum()} read back "
          f"(recall {found.mean() if len(found) else float('nan'):.2f}); drawn palm (wrist->middle knuckle) "
          f"median {np.nanmedian(rec['palm_px']) if len(found) else float('nan'):.1f} px")
    if not found.any():
        return
    print("stage     all    " + "  ".join(f"{f:>6}" for f in FINGER_NAMES) + "   base   mid    tip")
    for stage in ("ours", "smooth", "retarg", "draw", "draw2d", "total"):
        e = rec[stage][found]
        per_f = [np.nanmean(e[:, 3 * f: 3 * f + 3]) for f in range(5)]
        per_j = [np.nanmean(e[:, j::3]) for j in range(3)]
        print(f"{stage:<8} {np.nanmean(e):5.1f}   " + "  ".join(f"{v:6.1f}" for v in per_f)
              + "  " + " ".join(f"{v:6.1f}" for v in per_j))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="+", type=Path)
    ap.add_argument("--max-frames", type=int, default=60)
    ap.add_argument("--save", type=Path, default=None)
    args = ap.parse_args()
    rb = load_readback()
    saved = {}
    for clip in args.clips:
        rec = diagnose(clip, args.max_frames, rb)
        report(clip.stem, rec)
        for k, v in rec.items():
            saved[f"{clip.stem}/{k}"] = v
    if args.save:
        np.savez(args.save, **saved)


if __name__ == "__main__":
    main()
