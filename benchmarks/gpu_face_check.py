"""The face stage's model (TPSMM) on a GPU: inference and fine-tuning at full size (run by hand).

    python benchmarks/gpu_face_check.py --make FACES.npz          # here: real face crops, once
    python benchmarks/gpu_face_check.py FACES.npz [--json OUT]    # on the GPU machine

The diffusion benchmark (bench_diffusion.py) runs with ``--no-face`` on a lent GPU, because
MediaPipe and dlib do not travel there; this covers the part of the face stage that is PyTorch:
TPSMM at the published vox-256 size (random weights: speed does not depend on their values)
and its fine-tuning (``signanon train-face``) with the real VGG19 layout. One run prints:

* inference: ms per driving frame on the CPU and on CUDA, batch 1 (a frame at a time, as the face
  stage streams) and batch 4, the same frames; and how far CUDA's frames are from the CPU's
  (uint8 levels; with TF32 off, and with PyTorch's defaults);
* fine-tuning: seconds per step (batch 8) on CUDA, and on the CPU for two steps; peak GPU memory;
  whether every loss stayed finite; and the epoch's checkpoint loaded back on CUDA and run.

FACES.npz holds ``talking`` and ``sign``: ``(N, 256, 256, 3)`` uint8 RGB face crops of the repo's
talking-head clip and DGS clip (``--make`` cuts them with dlib's face box; needs the install).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
VGG19_WIDTHS = (64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512)


def make_faces(out: Path) -> None:
    """Write FACES.npz from tests/data: 48 talking-head crops and 48 signing crops, 256x256."""
    import cv2

    from signanon.evaluation.identity import EVALUATE_ALIGNMENT, DlibEmbedder
    from signanon.recognition import DlibConfig
    from signanon.video import iter_frames, probe_video

    finder = DlibEmbedder(DlibConfig(alignment=EVALUATE_ALIGNMENT))
    crops = {}
    for key, clip in (("talking", "talking_woman_90.mp4"), ("sign", "dgs_zug_100.mp4")):
        frames = [f for i, f in enumerate(iter_frames(probe_video(REPO / "tests" / "data" / clip))) if i % 2 == 0][:48]
        x0, y0, x1, y1 = finder.faces(frames[0])[0].box
        cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.8 * max(x1 - x0, y1 - y0)
        h, w = frames[0].shape[:2]
        a, b = int(max(0, cy - half)), int(min(h, cy + half))
        c, d = int(max(0, cx - half)), int(min(w, cx + half))
        crops[key] = np.stack([cv2.resize(f[a:b, c:d], (256, 256), interpolation=cv2.INTER_AREA) for f in frames])
    np.savez_compressed(out, **crops)
    print(f"wrote {out}: " + ", ".join(f"{k} {v.shape}" for k, v in crops.items()))


def _sync(torch, device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_animation(torch, path: Path, device, faces: np.ndarray, batch: int) -> tuple[float, list[np.ndarray]]:
    """ms per driving frame (after one warm-up pass) and the frames, for TPSMM loaded from ``path``."""
    from signanon.reenactment.tpsmm import TPSMMAnimator, load_tpsmm

    animator = TPSMMAnimator(load_tpsmm(path, device), device, batch_size=batch)
    with torch.inference_mode():
        list(animator.animate(faces[0], list(faces[1:1 + 2 * batch]), mode="relative"))  # warm-up
        _sync(torch, device)
        started = time.perf_counter()
        frames = list(animator.animate(faces[0], list(faces[1:]), mode="relative"))
        _sync(torch, device)
    return 1000 * (time.perf_counter() - started) / len(frames), frames


def inference(torch, faces: np.ndarray, work: Path, accel) -> dict:
    from signanon.reenactment.tpsmm import TPSMM, VOX_256, checkpoint_dict

    torch.manual_seed(0)
    path = work / "vox_random.pth.tar"
    torch.save(checkpoint_dict(TPSMM(VOX_256)), path)
    flags = torch.backends.cuda.matmul, torch.backends.cudnn
    defaults = tuple(f.allow_tf32 for f in flags)
    result: dict = {"frames": len(faces) - 1, "tf32_defaults": {"matmul": defaults[0], "cudnn": defaults[1]}}
    for batch in (1, 4):
        ms_cpu, ref = time_animation(torch, path, torch.device("cpu"), faces, batch)
        for f in flags:
            f.allow_tf32 = False
        ms_exact, exact = time_animation(torch, path, accel, faces, batch)
        for f, value in zip(flags, defaults):
            f.allow_tf32 = value
        ms_cuda, default = time_animation(torch, path, accel, faces, batch)
        diff = {name: np.abs(np.stack(got).astype(int) - np.stack(ref).astype(int))
                for name, got in (("tf32_off", exact), ("defaults", default))}
        result[f"batch{batch}"] = {
            "ms_per_frame_cpu": round(ms_cpu, 2), "ms_per_frame_cuda_tf32_off": round(ms_exact, 2),
            "ms_per_frame_cuda": round(ms_cuda, 2), "cpu_over_cuda": round(ms_cpu / ms_cuda, 1),
            **{f"levels_{k}": {"max": int(v.max()), "mean": round(float(v.mean()), 4),
                               "share_over_2": round(float((v > 2).mean()), 6)} for k, v in diff.items()},
        }  # fmt: skip
    return result


def _clip_folders(root: Path, faces: np.ndarray, clips: int) -> Path:
    import cv2

    per = len(faces) // clips
    for k in range(clips):
        folder = root / f"clip{k}"
        folder.mkdir(parents=True)
        for i, face in enumerate(faces[k * per : (k + 1) * per]):
            cv2.imwrite(str(folder / f"{i:05d}.png"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    return root


def fine_tune(torch, data: dict, work: Path, device, steps: int, accelerated: bool) -> dict:
    """One epoch of ``steps`` steps (batch 8) on ``device``: seconds per step after the first, losses;
    where ``accelerated``, also the peak memory and the checkpoint's round trip."""
    from signanon.reenactment.tpsmm import TPSMM, VOX_256, TPSMMAnimator, load_tpsmm
    from signanon.reenactment.training import FaceClipFolder, Trainer, TrainConfig, Vgg19Features

    torch.manual_seed(0)
    sources = [FaceClipFolder(work / "talking", "talking_heads"), FaceClipFolder(work / "sign", "sign_faces")]
    run = work / ("run_accelerated" if accelerated else "run_cpu")
    trainer = Trainer(TPSMM(VOX_256), sources, Vgg19Features(VGG19_WIDTHS), run,
                      TrainConfig(epochs=1, batch_size=8, steps_per_epoch=steps), device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    (checkpoint,) = trainer.fit(1)
    records = [json.loads(line) for line in trainer.metrics_path.read_text().splitlines()]
    step_records = [r for r in records if r["type"] == "step"]
    seconds = [r["seconds"] for r in step_records[1:]] or [step_records[0]["seconds"]]
    result = {
        "steps": len(step_records), "first_step_s": step_records[0]["seconds"],
        "s_per_step": round(float(np.median(seconds)), 3),
        "losses_finite": all(np.isfinite(r["loss"]) for r in step_records),
        "loss_first_last": [round(step_records[0]["loss"], 3), round(step_records[-1]["loss"], 3)],
        "per_source_first_step": step_records[0]["per_source"],
    }
    if accelerated:
        result["peak_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None
        animator = TPSMMAnimator(load_tpsmm(checkpoint, device), device)  # the epoch's file loads and runs
        with torch.inference_mode():
            (frame,) = animator.animate(data["sign"][0], [data["sign"][1]], mode="relative")
        result["checkpoint_round_trip"] = bool(frame.shape == (256, 256, 3) and frame.max() > frame.min())
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("faces", type=Path)
    ap.add_argument("--make", action="store_true", help="write FACES.npz from tests/data (here, not on the GPU)")
    ap.add_argument("--steps", type=int, default=12, help="fine-tuning steps on CUDA (default 12; the CPU does 2)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--device", default="cuda", help="the accelerator (default cuda; 'cpu' is a dry run of this script)")
    ap.add_argument("--frames", type=int, default=0, help="use only the first N face crops of each clip (0: all)")
    args = ap.parse_args()
    if args.make:
        return make_faces(args.faces)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run this on the GPU machine (or --device cpu for a dry run)")
    accel = torch.device(args.device)
    data = {k: v[: args.frames or None] for k, v in np.load(args.faces).items()}
    report: dict = {"device": torch.cuda.get_device_name(accel) if accel.type == "cuda" else str(accel),
                    "torch": torch.__version__, "cpu_threads": torch.get_num_threads()}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        report["inference"] = inference(torch, data["talking"], work, accel)
        print(json.dumps(report, indent=1), flush=True)
        _clip_folders(work / "talking", data["talking"], 3)
        _clip_folders(work / "sign", data["sign"], 2)
        report["train_cuda"] = fine_tune(torch, data, work, accel, args.steps, accelerated=True)
        print(json.dumps(report["train_cuda"], indent=1), flush=True)
        report["train_cpu"] = fine_tune(torch, data, work, torch.device("cpu"), 2, accelerated=False)
    inf = report["inference"]
    print(f"\n{'TPSMM vox-256, random weights':34s} {'CPU':>9s} {'CUDA':>9s} {'CPU/CUDA':>9s}  CUDA vs CPU frames (uint8 levels)")
    for batch in (1, 4):
        r = inf[f"batch{batch}"]
        print(f"{f'inference, batch {batch} (ms/frame)':34s} {r['ms_per_frame_cpu']:9.1f} {r['ms_per_frame_cuda']:9.1f} "
              f"{r['cpu_over_cuda']:9.1f}  TF32 off: max {r['levels_tf32_off']['max']}, mean {r['levels_tf32_off']['mean']}; "
              f"defaults: max {r['levels_defaults']['max']}, mean {r['levels_defaults']['mean']}")
    cpu, gpu = report["train_cpu"], report["train_cuda"]
    print(f"{'fine-tuning, batch 8 (s/step)':34s} {cpu['s_per_step']:9.2f} {gpu['s_per_step']:9.2f} "
          f"{cpu['s_per_step'] / gpu['s_per_step']:9.1f}  peak {gpu['peak_gib']} GiB; losses finite: "
          f"{cpu['losses_finite'] and gpu['losses_finite']}; checkpoint round trip: {gpu['checkpoint_round_trip']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
