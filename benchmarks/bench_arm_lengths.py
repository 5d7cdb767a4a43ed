"""Where the avatar holds its hands, on canonical arms and on the signer's own (run by hand, issue 11).

    python benchmarks/bench_arm_lengths.py OUT_DIR [--only SUBSTR ...]

For each clip of ``bench_signing.py`` with hands (the shared signing clips and the framings of
``tools/make_framings.py``, whole): ``anonymize`` twice in one process, side by side, with
:attr:`signanon.avatar.retarget.BodyProportions.signer_arms` False (the bones at the canonical
ratios of the shoulder width) and True (the signer's own arm lengths, the default), then both
outputs and the original read back by the independent ``../shared/tools/readback.py``.

Printed per clip and arms: hand recall and finger-angle error (deg), hand-to-face contact error
(face widths), as ``readback.signing`` reports them; and where the hands are: each hand's centre (the
mean of its 21 points) minus the shoulders' centre, in shoulder widths, output minus original over
the hands read in both, as the mean vertical offset ``dy`` (< 0: drawn higher than the signer's) and
the mean distance. Then the means over the clips, and the ratio signer's / canonical of the mean
distance. A location (chest, stomach, chin) is one of the parameters a sign is made of.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from bench_signing import clips
from outside_tools import load_readback

ARMS = (("canonical", False), ("signer's", True))


def hand_offsets(original: list[dict], output: list[dict]) -> np.ndarray:
    """(n, 2) float64, output minus original: each hand's centre minus the shoulders' centre, in
    each video's own shoulder widths, over the hands (frame, side) read in both. ``original``,
    ``output``: ``readback.holistic`` reads (per frame: ``body`` (33, 3), ``left``/``right``
    (21, 3) px or None)."""
    out = []
    for o, a in zip(original, output):
        for side in ("left", "right"):
            if any(r["body"] is None or r[side] is None for r in (o, a)):
                continue
            rel = []
            for r in (o, a):
                body = r["body"]
                width = float(np.linalg.norm(body[11, :2] - body[12, :2]))
                rel.append((r[side][:, :2].mean(axis=0) - (body[11, :2] + body[12, :2]) / 2) / max(width, 1e-6))
            out.append(rel[1] - rel[0])
    return np.array(out, np.float64).reshape(-1, 2)


def anonymize(src: Path, out: Path, signer_arms: bool) -> None:
    from signanon.avatar.anonymizer import AvatarAnonymizer, AvatarConfig

    config = AvatarConfig()
    body = replace(config.animator.proportions, signer_arms=signer_arms)
    config = replace(config, animator=replace(config.animator, proportions=body))
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists():
        AvatarAnonymizer(config)(src, out, progress=False)


def measure(name: str, src: Path, work: Path, readback) -> list[dict]:
    original = readback.holistic(readback.frames(str(src)))
    rows = []
    for label, signer_arms in ARMS:
        out = work / "anon" / f"{name}__{'signer' if signer_arms else 'canonical'}.mp4"
        anonymize(src, out, signer_arms)
        offsets = hand_offsets(original, readback.holistic(readback.frames(str(out))))
        signing = readback.signing(str(src), str(out))
        rows.append({
            "clip": name, "arms": label, "hands": signing["hands_in_original"],
            "recall": signing["hand_recall"], "angle": signing["handshape_angle_error_deg"],
            "contact": signing["contact_error_face_widths"],
            "dy": float(offsets[:, 1].mean()) if len(offsets) else None,
            "distance": float(np.linalg.norm(offsets, axis=1).mean()) if len(offsets) else None,
        })
    return rows


def fmt(row: dict) -> str:
    def num(value, spec):
        return "-" if value is None else format(value, spec)

    return (f"{row['clip']:26s} {row['arms']:10s} {row['hands']:5d}  {num(row['recall'], '.3f'):>6s}  "
            f"{num(row['angle'], '.2f'):>6s}  {num(row['contact'], '.3f'):>7s}  {num(row['dy'], '+.3f'):>7s}  "
            f"{num(row['distance'], '.3f'):>7s}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--only", nargs="+", help="clips whose name contains one of these")
    args = ap.parse_args()
    readback = load_readback()
    print(f"{'clip':26s} {'arms':10s} {'hands':>5s}  {'recall':>6s}  {'angle':>6s}  {'contact':>7s}  {'dy sw':>7s}  {'dist sw':>7s}",
          flush=True)
    rows = []
    for name, src in clips(args.out_dir, None):
        if args.only and not any(s in name for s in args.only):
            continue
        pair = measure(name, src, args.out_dir, readback)
        if not pair[0]["hands"]:
            continue  # the talking faces: no hands to place
        rows += pair
        for row in pair:
            print(fmt(row), flush=True)
    (args.out_dir / "arm_lengths.json").write_text(json.dumps(rows, indent=1))
    print()
    for label, _ in ARMS:
        mine = [r for r in rows if r["arms"] == label and r["distance"] is not None]
        print(f"mean over {len(mine)} clips, {label:10s}: recall {np.mean([r['recall'] for r in mine]):.3f}  angle "
              f"{np.mean([r['angle'] for r in mine]):.2f}  dy {np.mean([r['dy'] for r in mine]):+.3f}  distance "
              f"{np.mean([r['distance'] for r in mine]):.3f}")
    by_clip = {}
    for r in rows:
        by_clip.setdefault(r["clip"], {})[r["arms"]] = r["distance"]
    ratios = [d["signer's"] / d["canonical"] for d in by_clip.values() if d.get("canonical") and d.get("signer's") is not None]
    if ratios:
        print(f"distance, signer's / canonical: median {np.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
