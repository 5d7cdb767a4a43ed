"""Hand-drawing candidates on the product's own poses, read back three times (run by hand).

    python benchmarks/diag_hand_variants.py OUT_DIR --clips asl_webcam dgs_zug__down \\
        --variants base look:rim=0.03,min_rim_px=1 curl:0.5:0:12

Clip names are those of ``bench_signing.py`` (the shared clips and their framings, whole). For each
clip, once (kept in ``OUT_DIR/record``): ``signanon anonymize``'s own run (the look it chooses, the
face gains, the identity guard), with the poses handed to the drawing recorded, and the independent
read-back (``../shared/tools/readback.py``) of the original. Then per variant: the recorded poses
drawn again with only the hand drawing changed, encoded like ``anonymize`` does, and read back as
is, shifted 0.5 px and scaled 0.97 (the jitters of ``bench_signing.py --jitter``). A variant moves
only the hands, so a figure that moves between variants is the hands' doing, up to the read-back's
sub-pixel sensitivity that the three reads show.

Variants:

* ``base``: the shipped drawing, in the hand look the run chose (``hand_choice``), the recorded
  frames re-drawn without the guard's face checks.
* ``look:FIELD=VALUE,...``: :class:`signanon.avatar.hands.HandLook` (the default one) with these
  fields replaced; ``look:tuck_deg=90`` is the folded drawing.
* ``curl:K:F0[:JOINTS]``: the drawn fingers bent further: at each joint of ``JOINTS`` (1 = middle,
  2 = last; default ``1``) of the four fingers, a bend ``b`` over ``F0`` degrees becomes
  ``b + K * (b - F0)`` (the bones beyond turned about the joint's own axis, at most to 20 deg of
  the joint's inner angle). Tests whether the read-back's straightening of curled fingers is
  undone by drawing them more curled.
* ``style:FIELD=VALUE;...``: the run's :class:`signanon.avatar.style.AvatarStyle` with these fields
  replaced (e.g. ``style:supersample=4`` or ``"style:background=(60,70,90)"``; ``;`` between fields,
  so a value may be a tuple), the hands drawn as shipped.
* ``solid[:FIELD=VALUE,...]``: the hand rendered as a solid instead (``solid_hand.py``: spheres
  along the bones, a slab palm, z-buffered per pixel, Lambert-shaded, dark lines where one part
  covers another), with ``draw_solid_hand``'s keyword arguments replaced. Tests whether a shaded
  3-D hand, nearer MediaPipe's synthetic training renders, reads better than the 2-D drawing.
* ``shutter:S:N``: motion blur, the shipped drawing averaged over ``N`` renders of the pose blended
  towards the previous and next frame's across an exposure of ``S`` frame intervals centred on the
  frame (S = 0.5: a 180-degree shutter). Tests whether the read-back, which reads fast hands of a
  blurred original one way, reads a blurred avatar hand the same way.

* ``photo[:FIELD=VALUE,...]``: the drawn hand's silhouette filled with the original's own hand,
  its luminance tinted to the avatar's skin: the original frame warped by the 2-D similarity that
  maps our Holistic's hand points (video mode, per frame, no smoothing) onto the drawn ones (where
  that fit is off by over ``max_res`` palm lengths, or our read has no such hand, the drawing stays
  as shipped). Fields: ``alpha`` (the photo's share, 1), ``erode`` (canvas pixels the silhouette is
  shrunk by, 1), ``feather`` (its edge blur, px, 1), ``skin`` (> 0: the photo's share also falls
  with each pixel's colour distance to the hand's median colour, luminance tolerance x ``skin``),
  ``hp`` (> 0: only the photo's detail above a blur of ``hp`` palm lengths, times ``k``, shades the
  drawn fill). Tests whether the signer's own hand, pasted where the avatar's is drawn, reads
  as the original does. Not a drawing the product could ship as is: it carries the signer's skin
  detail (and any ring or tattoo), and would need the original frames in the render workers.

* ``repair:T[:NAME,...]``: each frame drawn as shipped and read once by the product's own
  still-image Holistic; a hand that read reads more than ``T`` degrees off the drawn points (mean
  absolute flexion error) or not at all is drawn again in each of the other hand looks of
  ``REPAIR_LOOKS`` (or the names given), read again, and drawn in the look read nearest. Tests
  whether choosing the drawing per hand and frame by a self read carries to the read-back.

Printed per clip and variant: hand recall and the mean finger-angle error (degrees, as
``bench_signing.py``), the mean over the three reads and each read; then, over the finger joints
the original's read-back bends to an inner angle under 90 deg (strongly curled), the mean signed
error (output minus original: > 0 = read straighter) and the mean absolute error.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
from outside_tools import literal_fields, load_module, load_readback

REPO = Path(__file__).resolve().parents[1]
CURLED_INNER_DEG = 90.0  # original's inner joint angle under this = a strongly curled joint
MIN_INNER_DEG = 20.0  # curl: never fold a joint tighter than this inner angle


def record(name: str, src: Path, out_dir: Path, readback) -> dict:
    """The poses ``AvatarAnonymizer`` draws for ``src`` (in frame order), its look, and the
    read-back of the original; cached in ``out_dir/record/NAME.pkl``."""
    cache = out_dir / "record" / f"{name}.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    from signanon.avatar import chunk, worker
    from signanon.avatar.anonymizer import AvatarAnonymizer
    from signanon.video import probe_video

    seen: dict = {"poses": []}
    look_renderer, submit = chunk.look_renderer, worker.RenderWorker.submit

    def recording_renderer(look, width, height, scale=1.0):
        r = look_renderer(look, width, height, scale)
        # the last renderer built is the run's (the look and hand choices' probes come first)
        seen.update(style=r.style, canonical=r.canonical, size=(width, height), scale=scale)
        return r

    def recording_submit(self, pose):
        seen["poses"].append(pose)  # submitted in frame order (drawing itself may run out of order)
        return submit(self, pose)

    chunk.look_renderer, worker.RenderWorker.submit = recording_renderer, recording_submit
    try:
        AvatarAnonymizer()(src, out_dir / "record" / f"{name}.mp4", progress=False)
    finally:
        chunk.look_renderer, worker.RenderWorker.submit = look_renderer, submit
    seen.update(fps=float(probe_video(src).fps), original=readback.holistic(readback.frames(str(src))))
    cache.write_bytes(pickle.dumps(seen))
    return seen


def _turn(v: np.ndarray, axis: np.ndarray, deg: float) -> np.ndarray:
    """``v`` (3,) turned by ``deg`` degrees about ``axis`` (3,), right-handed (Rodrigues)."""
    a = axis / (np.linalg.norm(axis) + 1e-12)
    t = np.radians(deg)
    return v * np.cos(t) + np.cross(a, v) * np.sin(t) + a * (a @ v) * (1 - np.cos(t))


def curled_further(hand: np.ndarray, k: float, from_deg: float, joints: tuple[int, ...]) -> np.ndarray:
    """(21, 3) ``hand`` with each listed joint of the four fingers bent ``k * (bend - from_deg)``
    degrees further where its bend exceeds ``from_deg`` (see the module docstring)."""
    from signanon.landmarks import layout

    h = np.array(hand, np.float64)
    for finger in range(1, 5):
        chain = list(layout.FINGERS[finger])
        for j in joints:
            p = h[chain[j]]
            u, v = h[chain[j - 1]] - p, h[chain[j + 1]] - p
            inner = np.degrees(np.arccos(np.clip(u @ v / (np.linalg.norm(u) * np.linalg.norm(v) + 1e-12), -1, 1)))
            extra = min(k * ((180.0 - inner) - from_deg), inner - MIN_INNER_DEG)
            axis = np.cross(v, u)
            if extra <= 0 or np.linalg.norm(axis) < 1e-9:
                continue
            for q in chain[j + 1:]:
                h[q] = p + _turn(h[q] - p, axis, extra)
    return h.astype(np.asarray(hand).dtype)


def hand_drawer(spec: str):
    """``draw_hand`` for the variant ``spec`` (see the module docstring)."""
    from signanon.avatar import hands

    kind, _, rest = spec.partition(":")
    if kind in ("base", "shutter", "style", "repair"):
        return hands.draw_hand
    if kind == "look":
        fields = literal_fields(rest, ",")
        look = replace(hands.LOOK, **{k: float(v) if isinstance(getattr(hands.LOOK, k), float) else v for k, v in fields.items()})
        return lambda img, hand, side, skin, ss, _chosen=None: hands.draw_hand(img, hand, side, skin, ss, look)
    if kind == "curl":
        args = rest.split(":")
        joints = tuple(int(c) for c in (args[2] if len(args) > 2 else "1"))
        k, from_deg = float(args[0]), float(args[1])
        return lambda img, hand, side, skin, ss, look=hands.LOOK: hands.draw_hand(
            img, curled_further(hand, k, from_deg, joints), side, skin, ss, look
        )
    if kind == "solid":
        import solid_hand

        fields = literal_fields(rest, ",") if rest else {}
        return lambda img, hand, side, skin, ss, look=hands.LOOK: solid_hand.draw_solid_hand(
            img, hand, side, skin, ss, look, **fields
        )
    raise SystemExit(f"unknown variant {spec!r}")


def our_hands(src: Path, out_dir: Path, name: str) -> tuple[list[np.ndarray], list[dict]]:
    """The original's frames (H, W, 3) uint8 and our Holistic's hands per frame ({side: (21, 2)
    float64 pixels or None}), video mode as the product reads, no smoothing; cached."""
    cache = out_dir / "record" / f"{name}.ours.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    from signanon.landmarks import geometry, layout
    from signanon.landmarks.holistic import HolisticConfig, HolisticEstimator
    from signanon.video import iter_frames, probe_video

    frames, hands = [], []
    with HolisticEstimator(HolisticConfig()) as est:
        for f in iter_frames(probe_video(src)):
            data, conf = est(f)
            frames.append(f)
            hands.append({s: data[r][:, :2].astype(np.float64) if geometry.hand_present(conf, s) else None
                          for s, r in ((0, layout.LEFT_HAND), (1, layout.RIGHT_HAND))})
    cache.write_bytes(pickle.dumps((frames, hands)))
    return frames, hands


def similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, float]:
    """The least-squares 2-D similarity (2x3) taking ``src`` (N, 2) onto ``dst`` (N, 2), and its rms
    residual in ``dst``'s units: the shared fit (:func:`~signanon.landmarks.geometry.similarity_fit`)
    on the points set at z = 0."""
    from signanon.landmarks.geometry import similarity_fit

    flat = [np.hstack([np.asarray(q, np.float64), np.zeros((len(q), 1))]) for q in (src, dst)]
    scale, rot, shift = similarity_fit(*flat)
    m = np.hstack([scale * rot[:2, :2], shift[:2, None]])
    return m, float(np.sqrt((((flat[0][:, :2] @ m[:, :2].T + m[:, 2]) - dst) ** 2).sum(1).mean()))


def photo_drawer(rec: dict, frame_side: dict, spec: str, counts: dict):
    """``draw_hand`` for the ``photo`` variant (see the module docstring)."""
    import cv2
    from signanon.avatar import hands as drawing

    p = {"alpha": 1.0, "erode": 1, "feather": 1.0, "skin": 0.0, "hp": 0.0, "k": 1.0, "max_res": 0.25}
    p.update(literal_fields(spec.partition(":")[2], ",") if ":" in spec else {})
    frames, ours = rec["ours"]

    def drawer(img, hand, side, skin, ss, look=drawing.LOOK):
        drawing.draw_hand(img, hand, side, skin, ss, look)
        i = frame_side.get("i")
        src = ours[i][side] if i is not None and i < len(ours) else None
        h = np.asarray(hand, np.float64) * ss
        m, res = similarity(src, h[:, :2]) if src is not None else (None, np.inf)
        if res > p["max_res"] * drawing.hand_size(h):
            counts["kept"] += 1
            return
        canvas = np.zeros_like(img)
        drawing.draw_hand(canvas, hand, side, (255, 255, 255), ss, look)
        ys, xs = np.nonzero(canvas.max(2))
        if len(ys) == 0:
            return
        y0, y1, x0, x1 = max(0, ys.min() - 4), ys.max() + 5, max(0, xs.min() - 4), xs.max() + 5
        mask = (canvas[y0:y1, x0:x1].max(2) > 0).astype(np.uint8)
        if p["erode"] > 0:
            mask = cv2.erode(mask, np.ones((2 * int(p["erode"]) + 1,) * 2, np.uint8))
        if mask.sum() < 10:
            return
        m[:, 2] -= (x0, y0)
        patch = cv2.warpAffine(frames[i], m, (mask.shape[1], mask.shape[0]), borderMode=cv2.BORDER_REPLICATE)
        lum = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY).astype(np.float32)
        ref = max(float(np.median(lum[mask > 0])), 1.0)
        region = img[y0:y1, x0:x1].astype(np.float32)
        if p["hp"] > 0:
            detail = (lum - cv2.GaussianBlur(lum, (0, 0), p["hp"] * drawing.hand_size(h))) / ref
            photo = region * (1.0 + p["k"] * detail[..., None])
        else:
            photo = np.asarray(skin, np.float32) * (lum / ref)[..., None]
        alpha = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), p["feather"]) if p["feather"] > 0 else mask.astype(np.float32)
        alpha = alpha * p["alpha"]
        if p["skin"] > 0:
            ycc = cv2.cvtColor(patch, cv2.COLOR_RGB2YCrCb).astype(np.float32)
            core = cv2.erode(mask, np.ones((7, 7), np.uint8)) > 0
            c0 = np.median(ycc[core if core.sum() >= 10 else mask > 0], axis=0)
            dist = np.sqrt(((ycc[..., 1] - c0[1]) / 8.0) ** 2 + ((ycc[..., 2] - c0[2]) / 8.0) ** 2
                           + ((ycc[..., 0] - c0[0]) / (40.0 * p["skin"])) ** 2)
            alpha = alpha * cv2.GaussianBlur(np.clip(2.0 - dist, 0, 1), (0, 0), 1.0)
        img[y0:y1, x0:x1] = np.clip(region + (np.clip(photo, 0, 255) - region) * alpha[..., None] + 0.5, 0, 255).astype(np.uint8)
        counts["pasted"] += 1

    return drawer


def exposed(renderer, poses: list, i: int, shutter: float, n: int) -> np.ndarray:
    """Frame ``i`` (H, W, 3) uint8 averaged over ``n`` renders across an exposure of ``shutter``
    frame intervals centred on it (poses blended linearly towards the neighbouring frames)."""
    acc = 0.0
    for t in np.linspace(-shutter / 2, shutter / 2, n):
        j = i + (1 if t > 0 else -1)
        pose = poses[i] if t == 0 or not 0 <= j < len(poses) else poses[i].blend(poses[j], abs(t))
        acc = acc + renderer.render(pose).astype(np.float32)
    return np.clip(acc / n + 0.5, 0, 255).astype(np.uint8)


REPAIR_LOOKS = {  # name: HandLook fields replaced (finger_width scaled by "x")
    "plain": {}, "folded": {"tuck_deg": 90.0}, "x0.85": {"x": 0.85}, "x1.15": {"x": 1.15},
    "folded x0.85": {"tuck_deg": 90.0, "x": 0.85}, "folded x1.15": {"tuck_deg": 90.0, "x": 1.15},
    "x0.72": {"x": 0.72}, "x1.3": {"x": 1.3},
}


def _repair_look(base, fields: dict):
    f = dict(fields)
    x = f.pop("x", 1.0)
    return replace(base, finger_width=tuple(w * x for w in base.finger_width), **f)


def repair_choices(rec: dict, renderer, threshold: float, names: list[str]) -> dict:
    """Per (frame, side): the look the product's own still-image read finds nearest the drawn
    hand, tried only where the run's drawing reads more than ``threshold`` deg off (mean abs
    flexion error) or is not found."""
    from signanon.avatar import body
    from signanon.avatar.hand_choice import _hand_error
    from signanon.landmarks import geometry, layout
    from signanon.landmarks.holistic import HolisticConfig, HolisticEstimator
    from signanon.video.writer import as_encoded

    base = renderer.style.hands
    looks = {n: _repair_look(base, REPAIR_LOOKS[n]) for n in names}
    override: dict = {}
    shipped = body.draw_hand

    def drawer(img, hand, side, skin, ss, look=None):
        shipped(img, hand, side, skin, ss, override.get(side, look))

    body.draw_hand = drawer
    chosen, stats = {}, {"tried": 0, "hands": 0, "changed": 0, "base_err": [], "best_err": []}
    rows = {0: layout.LEFT_HAND, 1: layout.RIGHT_HAND}
    w = renderer.out_width
    try:
        with HolisticEstimator(HolisticConfig(static_image_mode=True)) as holistic:
            def errors(pose):
                data, conf = holistic(as_encoded(renderer.render(pose)))
                out = {}
                for side, hand in ((0, pose.left_hand), (1, pose.right_hand)):
                    if hand is None:
                        continue
                    found = geometry.hand_present(conf, side)
                    out[side] = _hand_error(geometry.to_metric(data[rows[side]], w), np.asarray(hand, np.float64)) if found else 90.0
                return out
            for i, pose in enumerate(rec["poses"]):
                override.clear()
                errs = errors(pose)
                stats["hands"] += len(errs)
                bad = [s for s, e in errs.items() if e > threshold]
                for side in bad:
                    stats["tried"] += 1
                    best, best_err = None, errs[side]
                    for n, look in looks.items():
                        if n == "plain":
                            continue
                        override.clear(); override[side] = look
                        e = errors(pose).get(side, 90.0)
                        if e < best_err:
                            best, best_err = n, e
                    stats["base_err"].append(errs[side]); stats["best_err"].append(best_err)
                    if best is not None:
                        chosen[(i, side)] = looks[best]
                        stats["changed"] += 1
    finally:
        body.draw_hand = shipped
    print(f"   repair: {stats['hands']} hands, {stats['tried']} over {threshold} deg, {stats['changed']} changed; "
          f"self err {np.mean(stats['base_err'] or [0]):.1f} -> {np.mean(stats['best_err'] or [0]):.1f}", flush=True)
    return chosen


def drawn_reads(rec: dict, spec: str, work: Path, readback) -> list[list[dict]]:
    """The read-back of the recorded poses drawn with variant ``spec``: as is, shifted, scaled."""
    import cv2
    from signanon.avatar import body
    from signanon.avatar.renderer import AvatarRenderer
    from signanon.video import VideoWriter

    framings = sys.modules["make_framings"]
    w, h = rec["size"]
    style = rec["style"]
    if spec.startswith("style:"):  # the whole drawing's style fields, e.g. style:supersample=3
        fields = literal_fields(spec[len("style:"):], ";")
        style = replace(style, **fields)
    renderer = AvatarRenderer(w, h, style, rec["canonical"], scale=rec.get("scale", 1.0))
    w, h = renderer.out_width, renderer.out_height  # a small clip is drawn larger
    kind, _, rest = spec.partition(":")
    chosen = {}
    if kind == "repair":  # repair:T[:name,name,...]
        parts = rest.split(":")
        names = ["plain", *(parts[1].split(",") if len(parts) > 1 else [n for n in REPAIR_LOOKS if n != "plain"])]
        chosen = repair_choices(rec, renderer, float(parts[0]), names)
    frame_side: dict = {}
    counts = {"pasted": 0, "kept": 0}
    plain_drawer = photo_drawer(rec, frame_side, spec, counts) if kind == "photo" else hand_drawer(spec)

    def drawer(img, hand, side, skin, ss, look=None):
        pick = chosen.get((frame_side.get("i"), side))
        plain_drawer(img, hand, side, skin, ss, pick if pick is not None else look)

    shipped, body.draw_hand = body.draw_hand, drawer
    out = work / "drawn.mp4"
    try:
        with VideoWriter(out, w, h, Fraction(rec["fps"]).limit_denominator(100000)) as writer:
            shutter = [float(rest.split(":")[0]), int(rest.split(":")[1])] if kind == "shutter" else None
            for i, pose in enumerate(rec["poses"]):
                frame_side["i"] = i
                writer.write(renderer.render(pose) if shutter is None else exposed(renderer, rec["poses"], i, *shutter))
    finally:
        body.draw_hand = shipped
    frames = readback.frames(str(out))
    reads = [readback.holistic(frames)]
    for m in (np.float32([[1, 0, 0.5], [0, 1, 0.5]]), np.float32([[0.97, 0, 0.015 * w], [0, 0.97, 0.015 * h]])):
        moved = framings.write_frames(work / "moved.mp4", [cv2.warpAffine(f, m, (w, h), borderMode=cv2.BORDER_REPLICATE) for f in frames], rec["fps"])
        reads.append(readback.holistic(readback.frames(str(moved))))
    for p in (out, work / "moved.mp4"):
        os.remove(p)
    if kind == "photo":
        print(f"   photo: {counts['pasted']} hands drawn from the original, {counts['kept']} as shipped", flush=True)
    return reads


def score(original: list[dict], read: list[dict], readback) -> tuple[float, float, float, float]:
    """(recall, mean angle error, signed and absolute error on strongly curled joints), degrees."""
    found = lost = 0
    errs, curled = [], []
    for o, a in zip(original, read):
        for side in ("left", "right"):
            if o[side] is None:
                continue
            if a[side] is None:
                lost += 1
                continue
            found += 1
            ao, aa = readback.hand_angles(o[side]), readback.hand_angles(a[side])
            errs.append(np.mean(np.abs(aa - ao)))
            curled += list((aa - ao)[3:][ao[3:] < CURLED_INNER_DEG])
    c = np.array(curled)
    return (found / max(1, found + lost), float(np.mean(errs)) if errs else np.nan,
            float(c.mean()) if len(c) else np.nan, float(np.abs(c).mean()) if len(c) else np.nan)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--clips", nargs="+", required=True)
    ap.add_argument("--variants", nargs="+", default=["base"])
    args = ap.parse_args()
    bench = load_module(REPO / "benchmarks" / "bench_signing.py", "bench_signing")
    readback = load_readback()
    (args.out_dir / "record").mkdir(parents=True, exist_ok=True)
    sources = dict(bench.clips(args.out_dir, None))
    print(f"{'variant':<28} {'clip':<24} recall  angle | curled signed   abs | reads (recall/angle)")
    for name in args.clips:
        rec = record(name, sources[name], args.out_dir, readback)
        if any(v.startswith("photo") for v in args.variants):
            rec = {**rec, "ours": our_hands(sources[name], args.out_dir, name)}
        for spec in args.variants:
            rows = [score(rec["original"], read, readback) for read in drawn_reads(rec, spec, args.out_dir, readback)]
            m = np.nanmean(np.array(rows), axis=0)
            print(f"{spec:<28} {name:<24} {m[0]:6.3f} {m[1]:6.2f} | {m[2]:+13.1f} {m[3]:5.1f} | "
                  + " ".join(f"{r[0]:.2f}/{r[1]:.1f}" for r in rows), flush=True)


if __name__ == "__main__":
    main()
