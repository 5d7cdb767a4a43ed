"""Where the avatar's facial-grammar gain is lost (run by hand).

    python benchmarks/diag_face_gain.py CLIP [--frames 80] [--palette NAME] [--shape NAME] [--style 'lips=(100,46,44)'] [--dump OUT.npz]

Splits the chain original -> drawn face -> read-back face: for each series prints the gain (std
ratio) and r of (a) the face mesh the avatar draws against the original's read-back, and (b) the
read-back of the drawn avatar against the drawn mesh. (a) is what expression transfer and smoothing
keep, (b) what drawing and MediaPipe's re-detection keep. The identity guard is off here (its look
choice and calmed faces draw extra frames, which would not line up with the video's), so the look is
named: ``--palette``/``--shape`` (default: the default palette on the average face).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
from outside_tools import literal_fields, load_readback


def main() -> None:
    from signanon.avatar import anonymizer as an
    from signanon.avatar import worker
    from signanon.avatar.identity_guard import IdentityGuardConfig

    ap = argparse.ArgumentParser()
    ap.add_argument("clip", type=Path)
    ap.add_argument("--frames", type=int, default=80)
    ap.add_argument("--palette", default="default")
    ap.add_argument("--shape", default="average")
    ap.add_argument("--style", default="", help="FIELD=VALUE;... of AvatarStyle replaced in the palette (Python literals)")
    ap.add_argument("--proportions", default="", help="FIELD=VALUE;... of BodyProportions replaced (Python literals)")
    ap.add_argument("--dump", type=Path, help="save the per-frame series (original, drawn, read-back) and the drawn video here (.npz; the video beside it)")
    args = ap.parse_args()
    rb = load_readback()
    tmp = Path(tempfile.mkdtemp())
    src = tmp / "src.mp4"
    frames = rb.frames(str(args.clip), args.frames)
    import av

    from signanon.video import probe_video

    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(probe_video(args.clip).fps).limit_denominator(1001))  # the clip's own rate: smoothing depends on it
        s.width, s.height, s.pix_fmt = frames[0].shape[1] // 2 * 2, frames[0].shape[0] // 2 * 2, "yuv420p"
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: s.height, : s.width]), format="rgb24")))
        c.mux(s.encode())
    drawn = []
    submit = worker.RenderWorker.submit

    def recording_submit(self, pose):  # the video's frames, in order (hand_choice's probes are not submitted)
        drawn.append(None if pose.face is None else np.asarray(pose.face, np.float64))
        return submit(self, pose)

    worker.RenderWorker.submit = recording_submit
    out = tmp / "out.mp4"
    style = None
    if args.style:
        from signanon.avatar.style import PALETTES

        style = replace(PALETTES[args.palette], **literal_fields(args.style))
    animator = an.AvatarConfig().animator
    if args.proportions:
        animator = replace(animator, proportions=replace(animator.proportions, **literal_fields(args.proportions)))
    config = an.AvatarConfig(palette=args.palette, face_shape=args.shape, custom_style=style, animator=animator,
                             guard=IdentityGuardConfig(enabled=False))
    try:
        an.AvatarAnonymizer(config)(src, out, progress=False)
    finally:
        worker.RenderWorker.submit = submit
    if len(drawn) != len(frames):
        raise SystemExit(f"drew {len(drawn)} frames for {len(frames)}: the drawn faces do not line up")
    fo, fa = rb.frames(str(src)), rb.frames(str(out))
    ro, ra = rb.holistic(fo), rb.holistic(fa)
    keys = ("brow_raise", "brow_furrow", "eye_open", "mouth_open", "mouth_width")
    series = {k: ([], [], []) for k in keys}
    for o, a, d in zip(ro, ra, drawn):
        if o["face"] is None or a["face"] is None or d is None:
            continue
        so, sa, sd = rb.face_series(o["face"]), rb.face_series(a["face"]), rb.face_series(d)
        for k in keys:
            series[k][0].append(so[k])
            series[k][1].append(sd[k])
            series[k][2].append(sa[k])
    if args.dump:
        np.savez(args.dump, **{f"{k}_{w}": np.asarray(v) for k in keys for w, v in zip(("orig", "drawn", "read"), series[k])})
        shutil.copy(out, args.dump.with_suffix(".mp4"))
    print(f"{'series':<12} {'orig std':>8}  drawn/orig g r   readback/drawn g r   total g r")
    for k in keys:
        o, d, a = (np.asarray(v) for v in series[k])
        print(f"{k:<12} {o.std():8.4f}  {d.std() / o.std():6.2f} {rb.corr(o, d):5.2f}   "
              f"{a.std() / d.std():6.2f} {rb.corr(d, a):5.2f}   {a.std() / o.std():6.2f} {rb.corr(o, a):5.2f}")


if __name__ == "__main__":
    main()
