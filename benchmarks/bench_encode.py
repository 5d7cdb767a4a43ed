"""Is x264 repeatable, and what does holding it to AVX2 cost? Run by hand:
``python benchmarks/bench_encode.py [--frames 40] [--rounds 3]``.

The avatar output of the sample clip (``examples/asl_webcam.mp4``, drawn once by the product) is
scaled to several frame sizes and encoded with the writer's settings (CRF 18, "veryfast"), side by
side in one process, with x264 choosing its code paths itself (``auto``: AVX-512 where the CPU has
it) and with the options the writer uses (:func:`signanon.video.writer.x264_options`: AVX2 on such
CPUs). Each size is encoded ``--rounds`` times, each time while MediaPipe Holistic runs on the main
thread, as in the avatar pipeline. One row per size: seconds per encode (median) for both, their
ratio, and how many distinct files each wrote (1 = repeatable).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import statistics
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIZES = [(540, 720), (576, 720), (192, 144), (640, 480), (1080, 1440), (1920, 1080)]


def avatar_frames(n: int) -> list[np.ndarray]:
    """The first ``n`` frames of the avatar output of the sample clip, RGB uint8 (H, W, 3)."""
    from signanon.avatar.anonymizer import AvatarAnonymizer
    from signanon.video import iter_frames, probe_video

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "avatar.mp4"
        AvatarAnonymizer()(REPO / "examples" / "asl_webcam.mp4", out, progress=False)
        return [f for _, f in zip(range(n), iter_frames(probe_video(out)))]


def encode(frames: list[np.ndarray], options: dict[str, str]) -> tuple[str, float]:
    """(sha256 of the mp4, seconds) for ``frames`` encoded with libx264 ``options``."""
    import av

    height, width = frames[0].shape[:2]
    buf = io.BytesIO()
    t0 = time.perf_counter()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i, frame in enumerate(frames):
            yuv = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p")
            yuv.pts = i
            container.mux(stream.encode(yuv))
        container.mux(stream.encode(None))
    return hashlib.sha256(buf.getvalue()).hexdigest(), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from signanon.landmarks.holistic import HolisticEstimator
    from signanon.video.writer import OUTPUT_CRF, OUTPUT_PRESET, _cpu_has_avx512, x264_options

    base = avatar_frames(args.frames)
    plain = {"crf": str(OUTPUT_CRF), "preset": OUTPUT_PRESET}
    variants = {"auto": plain, "writer": x264_options()}
    print(f"CPU has AVX-512 (x264 would use it): {_cpu_has_avx512()}; writer options: {variants['writer']}")
    print(f"{args.frames} frames per encode, {args.rounds} rounds, each while MediaPipe runs on the main thread\n")
    print(f"{'size':>10} {'auto s':>8} {'writer s':>9} {'ratio':>6} {'auto files':>11} {'writer files':>13}")
    with HolisticEstimator() as estimator:
        for width, height in SIZES:
            frames = [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in base]
            seen = {name: [] for name in variants}
            for _ in range(args.rounds):
                for name, options in variants.items():
                    result: list = []
                    thread = threading.Thread(target=lambda out, opts: out.append(encode(frames, opts)), args=(result, options))
                    thread.start()
                    for frame in base[:8]:
                        estimator(frame)
                    thread.join()
                    seen[name].append(result[0])
            secs = {name: statistics.median(s for _, s in runs) for name, runs in seen.items()}
            files = {name: len({h for h, _ in runs}) for name, runs in seen.items()}
            print(f"{width:>5}x{height:<4} {secs['auto']:8.2f} {secs['writer']:9.2f} "
                  f"{secs['writer'] / secs['auto']:6.2f} {files['auto']:>11} {files['writer']:>13}", flush=True)


if __name__ == "__main__":
    main()
