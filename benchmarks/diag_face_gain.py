"""Where the avatar's facial-grammar gain is lost (run by hand).

    python benchmarks/diag_face_gain.py CLIP [--frames 80] [--palette NAME] [--shape NAME] [--style 'lips=(100,46,44)'] [--face 'mouth_width_gain=1.0']
        [--dump OUT.npz]

Splits the chain original -> landmarks -> drawn face -> read-back face: for each series prints the
gain (std ratio) and r of (a) the smoothed landmarks the avatar is given against the original's
read-back (what the landmark smoothing keeps: with it off the two are the same Holistic run, 1.00
and 1.00), (b) the face mesh the avatar draws against those landmarks (what expression transfer
keeps), (c) the read-back of the drawn avatar against the drawn mesh (what drawing and MediaPipe's
re-detection keep), and the whole chain. The identity guard is off here (its look
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
    from signanon.landmarks import layout
    from signanon.landmarks.geometry import face_present
    from signanon.landmarks.smoothing import LandmarkProcessor

    ap = argparse.ArgumentParser()
    ap.add_argument("clip", type=Path)
    ap.add_argument("--frames", type=int, default=80)
    ap.add_argument("--palette", default="default")
    ap.add_argument("--shape", default="average")
    ap.add_argument("--style", default="", help="FIELD=VALUE;... of AvatarStyle replaced in the palette (Python literals)")
    ap.add_argument("--proportions", default="", help="FIELD=VALUE;... of BodyProportions replaced (Python literals)")
    ap.add_argument("--face", default="", help="FIELD=VALUE;... of FaceConfig (the expression gains) replaced (Python literals)")
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
    given: dict[int, np.ndarray] = {}  # frame index -> the smoothed face the avatar is given
    submit = worker.RenderWorker.submit
    process = LandmarkProcessor.process

    def recording_process(self, stream):
        for frame in process(self, stream):
            given.setdefault(frame.index, frame.data[layout.FACE].astype(np.float64) if face_present(frame.confidence) else None)
            yield frame

    def recording_submit(self, pose):  # the video's frames, in order (hand_choice's probes are not submitted)
        drawn.append(None if pose.face is None else np.asarray(pose.face, np.float64))
        return submit(self, pose)

    worker.RenderWorker.submit = recording_submit
    LandmarkProcessor.process = recording_process
    out = tmp / "out.mp4"
    style = None
    if args.style:
        from signanon.avatar.style import PALETTES

        style = replace(PALETTES[args.palette], **literal_fields(args.style))
    animator = an.AvatarConfig().animator
    if args.proportions:
        animator = replace(animator, proportions=replace(animator.proportions, **literal_fields(args.proportions)))
    if args.face:
        animator = replace(animator, face=replace(animator.face, **literal_fields(args.face)))
    config = an.AvatarConfig(palette=args.palette, face_shape=args.shape, custom_style=style, animator=animator,
                             guard=IdentityGuardConfig(enabled=False))
    try:
        an.AvatarAnonymizer(config)(src, out, progress=False)
    finally:
        worker.RenderWorker.submit = submit
        LandmarkProcessor.process = process
    if len(drawn) != len(frames):
        raise SystemExit(f"drew {len(drawn)} frames for {len(frames)}: the drawn faces do not line up")
    fo, fa = rb.frames(str(src)), rb.frames(str(out))
    ro, ra = rb.holistic(fo), rb.holistic(fa)
    keys = ("brow_raise", "brow_furrow", "eye_open", "mouth_open", "mouth_width")
    series = {k: ([], [], [], []) for k in keys}
    for i, (o, a, d) in enumerate(zip(ro, ra, drawn)):
        g = given.get(i)
        if o["face"] is None or a["face"] is None or d is None or g is None:
            continue
        so, sg, sd, sa = (rb.face_series(f) for f in (o["face"], g, d, a["face"]))
        for k in keys:
            for column, value in zip(series[k], (so[k], sg[k], sd[k], sa[k])):
                column.append(value)
    if args.dump:
        np.savez(args.dump, **{f"{k}_{w}": np.asarray(v) for k in keys for w, v in zip(("orig", "given", "drawn", "read"), series[k])})
        shutil.copy(out, args.dump.with_suffix(".mp4"))
    print(f"{'series':<12} {'orig std':>8}  landmarks/orig g r  drawn/landmarks g r  readback/drawn g r  total g r")
    for k in keys:
        o, g, d, a = (np.asarray(v) for v in series[k])
        print(f"{k:<12} {o.std():8.4f}  {g.std() / o.std():9.2f} {rb.corr(o, g):5.2f}  {d.std() / g.std():10.2f} {rb.corr(g, d):5.2f}  "
              f"{a.std() / d.std():9.2f} {rb.corr(d, a):5.2f}  {a.std() / o.std():5.2f} {rb.corr(o, a):5.2f}")


if __name__ == "__main__":
    main()
