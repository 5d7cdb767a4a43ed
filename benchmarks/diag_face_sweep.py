"""How much of a drawn facial expression MediaPipe reads back, by face size (run by hand).

    python benchmarks/diag_face_sweep.py [--driver CLIP] [--frames 120] [--heights 144 288 576]

A real talking face (default ``../shared/data/talking_face/expressive_man.mp4``, hands never near
the face), scaled to several frame heights, is anonymized by the avatar; the face mesh the avatar
draws is recorded and the output is read back by the independent ``../shared/tools/readback.py``
Holistic. Per series and size it prints the gain (std of the read-back series / std of the drawn
mesh's series) and r: what drawing and re-detection keep, free of occlusion by hands and of the
signer's own tracking noise (those are in both series).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from outside_tools import load_readback

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
KEYS = ("brow_raise", "brow_furrow", "eye_open", "mouth_open", "mouth_width")


def resized_copy(driver: Path, frames: int, height: int, out: Path) -> Path:
    """The first ``frames`` frames of ``driver`` scaled to ``height`` px tall (H.264 mp4)."""
    import cv2

    from signanon.video import VideoWriter, iter_frames, probe_video

    info = probe_video(driver)
    width = round(info.width * height / info.height / 2) * 2
    with VideoWriter(out, width, height, info.fps) as writer:
        for t, frame in enumerate(iter_frames(info)):
            if t >= frames:
                break
            writer.write(cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA))
    return out


def drawn_and_output(clip: Path, out: Path) -> tuple[list[np.ndarray | None], Path]:
    """Run the avatar on ``clip`` into ``out``; the (478, 3) output-px face mesh drawn per frame."""
    from signanon.avatar.anonymizer import AvatarAnonymizer
    from signanon.avatar.renderer import AvatarRenderer

    drawn: list[np.ndarray | None] = []
    original = AvatarRenderer.render

    def render(self, pose):
        drawn.append(None if pose.face is None else np.asarray(pose.face, np.float64))
        return original(self, pose)

    AvatarRenderer.render = render
    try:
        AvatarAnonymizer()(clip, out, progress=False)
    finally:
        AvatarRenderer.render = original
    return drawn, out


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--driver", type=Path, default=SHARED / "data" / "talking_face" / "expressive_man.mp4")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--heights", type=int, nargs="+", default=[144, 288, 576])
    args = ap.parse_args()
    rb = load_readback()
    tmp = Path(tempfile.mkdtemp())
    print(f"{args.driver.name}, {args.frames} frames: gain/r of the read-back vs the drawn mesh")
    print(f"{'height':>6} {'eye px':>6} {'found':>6} " + " ".join(f"{k:>13}" for k in KEYS))
    for height in args.heights:
        clip = resized_copy(args.driver, args.frames, height, tmp / f"in{height}.mp4")
        drawn, out = drawn_and_output(clip, tmp / f"out{height}.mp4")
        back = rb.holistic(rb.frames(str(out)))
        pairs = [(rb.face_series(d), rb.face_series(b["face"])) for d, b in zip(drawn, back)
                 if d is not None and b["face"] is not None]  # fmt: skip
        eye = np.median([np.linalg.norm(d[33, :2] - d[263, :2]) for d in drawn if d is not None])
        cells = []
        for k in KEYS:
            a = np.array([p[0][k] for p in pairs])
            b = np.array([p[1][k] for p in pairs])
            cells.append(f"{b.std() / max(a.std(), 1e-9):6.2f}/{rb.corr(a, b):5.2f}" if len(pairs) > 2 else "-")
        print(f"{height:6d} {eye:6.0f} {len(pairs) / len(drawn):6.2f} " + " ".join(f"{c:>13}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
