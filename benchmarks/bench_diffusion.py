"""Benchmark of the diffusion anonymizer (run by hand: ``python benchmarks/bench_diffusion.py``).

Side by side in one run, on the same frames (4 frames of tests/data/asl_house.gif, centre-cropped
and resized to the working size), with the same components:

  * ``plain``: diffusers' ``StableDiffusionControlNetImg2ImgPipeline`` called once per frame
    (the per-frame baseline, no temporal consistency), control maps from the same
    :class:`~signanon.diffusion.control.ControlMapper`, frames decoded and encoded like ours;
  * ``K=1``: :class:`~signanon.diffusion.runner.DiffusionAnonymizer`, every frame diffused, with
    cross-frame attention and flow-guided fusion;
  * ``K=4``: the same with a key frame every 4 frames (the rest propagated along flow).

It reports UNet evaluations per output frame and seconds per stage: control maps, flow, text
encoding, UNet+ControlNet, VAE, I/O (measured with forward hooks on the models, so the plain
pipeline and ours are timed the same way), plus fusion/other and the total, and the ratios to the
plain pipeline. Targets (issue #3): K=1 total <= 1.25x plain; K=4 at least 3x faster than plain.

CPU default: full-size SD-1.5 UNet and ControlNet (and VAE, CLIP text encoder, HED) with random
weights built from the published configs in code (nothing is downloaded), 256x256, 2 steps.
``--gpu``: the same on CUDA at 512x512, 20 steps, fp16, 8 frames, reported as seconds per frame.
``--toy``: the tiny test components (seconds; checks that the script works).
``--no-face``: our runs without the face stage (on a machine without MediaPipe; the face stage
runs on the CPU, so its cost is the CPU figure either way). ``--json FILE`` keeps the rows.
On CUDA each row also gets the peak GPU memory of its run (``torch.cuda.max_memory_allocated``).
The privacy check is skipped, with a line saying so, where dlib is not installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's native log lines (face stage)
REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "tests" / "data" / "asl_house.gif"
FIRST_FRAME = 14  # frames 14.. hold fast hand motion
PROMPT = "a man in CG style, blond hair, is making gestures"


# ---- components ------------------------------------------------------------------------------

def full_size_components(device, dtype, seed: int = 0):
    """SD-1.5-sized UNet, ControlNet, VAE and CLIP text encoder with random weights."""
    import torch
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from signanon.diffusion.tokenizer import sd15_tokenizer
    from signanon.diffusion.weights import DiffusionComponents

    blocks = (320, 640, 1280, 1280)
    down = ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, down_block_types=down,
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, block_out_channels=blocks,
        layers_per_block=2, cross_attention_dim=768, attention_head_dim=8,
    )
    controlnet = ControlNetModel(
        in_channels=4, down_block_types=down, block_out_channels=blocks, layers_per_block=2,
        cross_attention_dim=768, attention_head_dim=8, conditioning_embedding_out_channels=(16, 32, 96, 256),
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512),
        layers_per_block=2, sample_size=512, scaling_factor=0.18215,
    )
    tokenizer = sd15_tokenizer()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, projection_dim=768,
        num_hidden_layers=12, num_attention_heads=12, max_position_embeddings=77,
        hidden_act="quick_gelu", bos_token_id=0, eos_token_id=2, pad_token_id=1,
    ))
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
        set_alpha_to_one=False, steps_offset=1,
    )
    models = [m.to(device=device).eval() for m in (unet, controlnet, vae, text_encoder)]
    if dtype != torch.float32:  # fp16 on the GPU (the text encoder too, as diffusers loads it)
        models = [m.to(dtype=dtype) for m in models]
    return DiffusionComponents(*models, tokenizer, scheduler)


def toy_components():
    """The tiny test components (tests/diffusion_toy.py, loaded by file path)."""
    spec = importlib.util.spec_from_file_location("diffusion_toy", REPO / "tests" / "diffusion_toy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.toy_components(seed=0)


def random_hed_weights(folder: Path) -> Path:
    """A ControlNetHED.pth with random weights (the real network's cost, no download)."""
    import torch

    from signanon.diffusion.control import build_hed_network

    torch.manual_seed(0)
    path = folder / "ControlNetHED.pth"
    torch.save(build_hed_network().state_dict(), path)
    return path


# ---- timing by forward hooks -----------------------------------------------------------------

class ModelProbe:
    """Seconds per model (forward hooks), UNet evaluations (samples per UNet forward) and, on CUDA,
    the peak GPU memory since :meth:`reset`."""

    def __init__(self, components, sync) -> None:
        self._cuda = components.unet.device.type == "cuda"
        self.seconds: dict[str, float] = defaultdict(float)
        self.unet_evaluations = 0
        self._sync = sync
        self._handles = []
        watched = {
            "unet": components.unet, "controlnet": components.controlnet,
            "vae": components.vae.encoder, "vae_decoder": components.vae.decoder,
            "text": components.text_encoder,
        }
        for name, module in watched.items():
            self._handles.append(module.register_forward_pre_hook(self._start(name), with_kwargs=True))
            self._handles.append(module.register_forward_hook(self._stop(name)))
        self._t0: dict[str, float] = {}

    def _start(self, name):
        def hook(module, args, kwargs):
            self._sync()
            self._t0[name] = time.perf_counter()
            if name == "unet":
                sample = args[0] if args else kwargs["sample"]
                self.unet_evaluations += int(sample.shape[0])
        return hook

    def _stop(self, name):
        def hook(module, args, output):
            self._sync()
            self.seconds[name] += time.perf_counter() - self._t0.pop(name)
        return hook

    def reset(self) -> None:
        self.seconds.clear()
        self.unet_evaluations = 0
        if self._cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()

    def peak_gib(self) -> float:
        """Peak GPU memory allocated since :meth:`reset`, GiB (0.0 on the CPU)."""
        if not self._cuda:
            return 0.0
        import torch

        return torch.cuda.max_memory_allocated() / 2**30

    def close(self) -> None:
        for h in self._handles:
            h.remove()


# ---- the clip --------------------------------------------------------------------------------

def make_clip(folder: Path, size: int, frames: int) -> Path:
    """``frames`` frames of the sample clip, centre-cropped square and resized to ``size``."""
    from signanon.video import VideoWriter, iter_frames, probe_video

    info = probe_video(CLIP)
    out = folder / f"clip_{size}.mp4"
    with VideoWriter(out, size, size, Fraction(info.fps)) as writer:
        for i, frame in enumerate(iter_frames(info)):
            if i < FIRST_FRAME:
                continue
            if i >= FIRST_FRAME + frames:
                break
            h, w = frame.shape[:2]
            side = min(h, w)
            y, x = (h - side) // 2, (w - side) // 2
            writer.write(cv2.resize(frame[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_CUBIC))
    return out


# ---- runs ------------------------------------------------------------------------------------

def run_plain(components, clip: Path, out: Path, hed: Path | None, args, probe) -> dict:
    """diffusers' ControlNet img2img pipeline, once per frame."""
    import torch
    from diffusers import StableDiffusionControlNetImg2ImgPipeline
    from PIL import Image

    from signanon.diffusion.control import ControlMapper
    from signanon.diffusion.pipeline import NEGATIVE_PROMPT, QUALITY_SUFFIX
    from signanon.video import VideoWriter, iter_frames, probe_video

    c = components
    pipe = StableDiffusionControlNetImg2ImgPipeline(
        vae=c.vae, text_encoder=c.text_encoder, tokenizer=c.tokenizer, unet=c.unet, controlnet=c.controlnet,
        scheduler=c.scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    device = c.unet.device
    stages: dict[str, float] = defaultdict(float)
    probe.reset()
    start = time.perf_counter()
    mapper = ControlMapper("hed" if hed else "canny", hed, device=str(device))  # timed, as ours loads its own
    t = time.perf_counter()
    info = probe_video(clip)
    frames = list(iter_frames(info))
    stages["io"] += time.perf_counter() - t
    outputs = []
    for frame in frames:
        t = time.perf_counter()
        control = mapper(frame)
        stages["control"] += time.perf_counter() - t
        result = pipe(
            prompt=PROMPT + QUALITY_SUFFIX, negative_prompt=NEGATIVE_PROMPT,
            image=Image.fromarray(frame), control_image=Image.fromarray(control),
            height=frame.shape[0], width=frame.shape[1], strength=0.75, num_inference_steps=args.steps,
            guidance_scale=7.5, controlnet_conditioning_scale=0.9,
            generator=torch.Generator("cpu").manual_seed(0), output_type="np",
        ).images[0]
        outputs.append(np.clip(result * 255.0 + 0.5, 0, 255).astype(np.uint8))
    t = time.perf_counter()
    with VideoWriter(out, frames[0].shape[1], frames[0].shape[0], Fraction(info.fps)) as writer:
        for image in outputs:
            writer.write(image)
    stages["io"] += time.perf_counter() - t
    total = time.perf_counter() - start
    return _row("plain diffusers", len(frames), total, stages, probe)


def run_ours(components, clip: Path, out: Path, hed: Path | None, args, probe, interval: int,
             flow_ahead: bool = False) -> dict:
    """Our runner (cross-frame attention + fusion), key frame every ``interval`` frames;
    ``flow_ahead``: :attr:`DiffusionConfig.flow_ahead` (the in-between flows on a CPU thread while
    the next key frame diffuses)."""
    from signanon.diffusion.face_enhance import FaceEnhanceConfig
    from signanon.diffusion.pipeline import SamplingConfig
    from signanon.diffusion.runner import DiffusionAnonymizer, DiffusionConfig

    config = DiffusionConfig(
        face=FaceEnhanceConfig(enabled=not args.no_face),
        prompt=PROMPT, control="hed" if hed else "canny", hed_weights=str(hed) if hed else None,
        resolution=args.resolution, keyframe_interval=interval, device=args.device_name, flow_ahead=flow_ahead,
        sampling=SamplingConfig(steps=args.steps, guidance=7.5, strength=0.75, controlnet_scale=0.9, seed=0),
    )
    probe.reset()
    start = time.perf_counter()
    summary = DiffusionAnonymizer(config, components=components)(clip, out, progress=False)
    total = time.perf_counter() - start
    reported = summary.seconds_per_stage
    stages = {
        "control": reported.get("control_maps", 0.0), "flow": reported.get("flow", 0.0),
        "io": reported.get("io", 0.0) + reported.get("probe", 0.0),
    }
    name = f"ours K={interval}" + (" no face" if args.no_face else "") + (" flow thread" if flow_ahead else "")
    row = _row(name, summary.frames_out, total, stages, probe)
    row["reported_unet_evaluations"] = summary.unet_evaluations
    row["key_frames"] = summary.key_frames
    row["flow_pairs_ahead"] = summary.flow_pairs_ahead
    return row


def run_privacy_check(original: Path, output: Path) -> float | None:
    """Seconds per frame of the privacy gate (:func:`signanon.evaluation.verify.verify_video`),
    as ``run_job`` runs it after a diffusion run; None where dlib is not installed."""
    if importlib.util.find_spec("dlib") is None:
        return None
    from signanon.evaluation.verify import verify_video

    return verify_video(original, output)["seconds_per_frame"]


def _row(name: str, frames: int, total: float, stages: dict, probe: ModelProbe) -> dict:
    s = probe.seconds
    row = {
        "name": name, "frames": frames, "unet_evals_per_frame": probe.unet_evaluations / max(frames, 1),
        "control": stages.get("control", 0.0), "flow": stages.get("flow", 0.0), "text": s["text"],
        "unet+cn": s["unet"] + s["controlnet"], "vae": s["vae"] + s["vae_decoder"], "io": stages.get("io", 0.0),
        "total": total,
    }
    row["other"] = total - sum(row[k] for k in ("control", "flow", "text", "unet+cn", "vae", "io"))
    row["peak_gib"] = probe.peak_gib()
    return row


def print_table(rows: list[dict], gpu: bool) -> None:
    base = rows[0]["total"]
    cols = ["unet_evals_per_frame", "control", "flow", "text", "unet+cn", "vae", "io", "other", "total"]
    head = (f"{'run':26s} {'UNet/frame':>10s} " + " ".join(f"{c:>8s}" for c in cols[1:])
            + f" {'s/frame':>8s} {'x plain':>8s}" + (f" {'peak GiB':>8s}" if gpu else ""))
    print(head)
    print("-" * len(head))
    for r in rows:
        cells = " ".join(f"{r[c]:8.2f}" for c in cols[1:])
        print(f"{r['name']:26s} {r['unet_evals_per_frame']:10.1f} {cells} {r['total'] / r['frames']:8.2f} "
              f"{r['total'] / base:8.2f}" + (f" {r['peak_gib']:8.2f}" if gpu else ""))
    k1 = next((r for r in rows if "K=1" in r["name"]), None)
    # K=4 as run by default: with the flow thread on a GPU (DiffusionConfig.flow_ahead), inline on the CPU
    k4 = next((r for r in rows if "K=4" in r["name"] and ("flow thread" in r["name"]) == gpu), None)
    if k1 and k4:
        print(f"\ntarget K=1 <= 1.25x plain: {k1['total'] / base:.2f}x "
              f"({'met' if k1['total'] <= 1.25 * base else 'NOT met'})")
        print(f"target K=4 >= 3x faster than plain: {base / k4['total']:.2f}x "
              f"({'met' if base >= 3 * k4['total'] else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--gpu", action="store_true", help="CUDA, 512x512, 20 steps, fp16, 8 frames")
    mode.add_argument("--toy", action="store_true", help="tiny test components (a quick check of the script)")
    parser.add_argument("--frames", type=int, default=None, help="frames (default 4; 8 with --gpu)")
    parser.add_argument("--steps", type=int, default=None, help="DDIM steps (default 2; 20 with --gpu)")
    parser.add_argument("--control", choices=["hed", "canny"], default="hed")
    parser.add_argument("--no-face", action="store_true", help="our runs without the face stage")
    parser.add_argument("--json", type=Path, default=None, help="write the rows to this JSON file")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds of (plain, K=1, K=4); each keeps its fastest round (default 1)")
    args = parser.parse_args()

    import torch

    if args.gpu:
        device, dtype, size = torch.device("cuda"), torch.float16, 512
        args.frames, args.steps = args.frames or 8, args.steps or 20
        sync = torch.cuda.synchronize
    else:
        device, dtype, size = torch.device("cpu"), torch.float32, 64 if args.toy else 256
        args.frames, args.steps = args.frames or 4, args.steps or 2
        sync = lambda: None  # noqa: E731
    args.resolution, args.device_name = size, device.type
    print(f"building {'toy' if args.toy else 'full-size SD-1.5'} components (random weights) on {device} ...")
    components = toy_components() if args.toy else full_size_components(device, dtype)
    probe = ModelProbe(components, sync)
    with tempfile.TemporaryDirectory(prefix="bench_diffusion_") as tmp:
        folder = Path(tmp)
        hed = random_hed_weights(folder) if args.control == "hed" else None
        clip = make_clip(folder, size, args.frames)
        print(f"{args.frames} frames at {size}x{size}, {args.steps} steps (strength 0.75, CFG 7.5), "
              f"control {args.control}; seconds per stage:\n")
        best: dict[str, dict] = {}
        for _ in range(max(1, args.repeats)):  # interleaved rounds: load drifts hit all runs alike
            runs = [
                lambda: run_plain(components, clip, folder / "plain.mp4", hed, args, probe),
                lambda: run_ours(components, clip, folder / "k1.mp4", hed, args, probe, 1),
                lambda: run_ours(components, clip, folder / "k4.mp4", hed, args, probe, 4),
            ]
            if device.type != "cpu":  # the flow thread (off by default), beside the same run without it
                runs.append(lambda: run_ours(components, clip, folder / "k4.mp4", hed, args, probe, 4, True))
            for run in runs:
                row = run()
                if row["name"] not in best or row["total"] < best[row["name"]]["total"]:
                    best[row["name"]] = row
        rows = list(best.values())
        gate = run_privacy_check(clip, folder / "k1.mp4")
    probe.close()
    print_table(rows, args.gpu)
    k1 = next(r for r in rows if "K=1" in r["name"])
    per_frame = k1["total"] / k1["frames"]
    if gate is None:
        print("\nprivacy check skipped: dlib is not installed here")
    else:
        print(f"\nprivacy check (dlib on the CPU, every frame, default on for diffusion): {gate:.3f} s/frame = "
              f"{gate / per_frame:.1%} of ours K=1 ({per_frame:.2f} s/frame)")
    if args.json:
        setup = {"device": str(device), "size": size, "frames": args.frames, "steps": args.steps,
                 "control": args.control, "face": not args.no_face, "repeats": args.repeats}
        if device.type == "cuda":
            setup["gpu"] = torch.cuda.get_device_name()
        args.json.write_text(json.dumps({"setup": setup, "rows": rows, "privacy_s_per_frame": gate}, indent=1))


if __name__ == "__main__":
    main()
