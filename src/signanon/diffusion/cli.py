"""Command-line glue of the diffusion method: the ``anonymize --method diffusion`` options and the
``signanon doctor`` sub-command. Wired into :mod:`signanon.cli.main` by the functions below.

Defaults live in :class:`~signanon.diffusion.runner.DiffusionConfig` only: every option here
defaults to None ("not given") and the help text shows the dataclass's value.
Importing this module does not import torch or diffusers.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from ..errors import InputError, OutputError


def _defaults():
    from .runner import DiffusionConfig

    return DiffusionConfig()


def add_diffusion_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Add the diffusion options to the ``anonymize`` parser (used with ``--method diffusion``)."""
    d = _defaults()
    s = d.sampling
    g = parser.add_argument_group(
        "diffusion method (--method diffusion: Stable Diffusion 1.5 + ControlNet, needs the weights, "
        "see 'signanon doctor')"
    )
    g.add_argument("--model", metavar="PATH|ID", help=f"SD-1.5 diffusers folder, cached Hub id or single .safetensors/.ckpt file (default: {d.model})")
    g.add_argument("--controlnet", metavar="PATH|ID", help="ControlNet folder, cached Hub id or single file (default: lllyasviel/sd-controlnet-hed or -canny, after --control)")
    g.add_argument("--control", choices=["hed", "canny"], help=f"control map: soft HED edges or Canny edges (default: {d.control})")
    g.add_argument("--hed-weights", metavar="FILE", help="lllyasviel/Annotators ControlNetHED.pth (default: the copy in the Hugging Face cache)")
    g.add_argument("--vae", metavar="PATH|ID", help="VAE override, e.g. stabilityai/sd-vae-ft-mse or vae-ft-mse-840000-ema-pruned.safetensors")
    g.add_argument("--prompt", metavar="TEXT", help=f"who the new signer is (default: {d.prompt!r}); ', best quality, extremely detailed' is appended")
    g.add_argument("--negative-prompt", metavar="TEXT", help="what to avoid (default: Rerender-A-Video's list of artefacts)")
    g.add_argument("--steps", type=int, metavar="N", help=f"DDIM steps of the full schedule; strength x steps are run (default: {s.steps})")
    g.add_argument("--guidance", type=float, metavar="G", help=f"classifier-free guidance scale (default: {s.guidance})")
    g.add_argument("--strength", type=float, metavar="S", help=f"SDEdit strength in (0, 1]: how much of each frame is redrawn (default: {s.strength})")
    g.add_argument("--resolution", type=int, metavar="PX", help=f"short side of the working size, rounded to a multiple of 64 (default: {d.resolution})")
    g.add_argument("--keyframe-interval", type=int, metavar="K", help=f"diffuse every K-th frame, propagate the others along optical flow (default: {d.keyframe_interval})")
    g.add_argument("--seed", type=int, metavar="N", help=f"noise seed, the same for every frame (default: {s.seed})")
    g.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], help=f"where the models run; fp16 on GPU (default: {d.device})")
    g.add_argument(
        "--face-enhance", action=argparse.BooleanOptionalAction, default=None,
        help=f"re-enact each face with the original signer's facial motion (default: {'on' if d.face_enhance else 'off'})",
    )  # fmt: skip
    g.add_argument("--face-model", metavar="FILE", help="TPSMM checkpoint (vox.pth.tar) for --face-enhance (default: landmark warp, no download)")
    g.add_argument("--ablation", metavar="OUT.mp4", help="also write original | without | with face enhancement side by side (it shows the original signer: for review, not for publication)")
    return g


def config_from_args(args: argparse.Namespace):
    """The :class:`DiffusionConfig` a command line asks for (options not given keep the defaults)."""
    config = _defaults()
    fields = {
        "model": "model", "controlnet": "controlnet", "control": "control", "hed_weights": "hed_weights",
        "vae": "vae", "prompt": "prompt", "negative_prompt": "negative_prompt", "resolution": "resolution",
        "keyframe_interval": "keyframe_interval", "device": "device",
        "face_enhance": "face_enhance", "face_model": "face_model",
    }
    top = {f: getattr(args, a) for f, a in fields.items() if getattr(args, a, None) is not None}
    for key in ("model", "controlnet", "hed_weights", "vae"):
        if key in top:
            top[key] = str(top[key])
    sampling = {
        f: getattr(args, a)
        for f, a in {"steps": "steps", "guidance": "guidance", "strength": "strength",
                     "seed": "seed"}.items()
        if getattr(args, a, None) is not None
    }
    try:
        return replace(config, sampling=replace(config.sampling, **sampling), **top)
    except ValueError as err:
        raise InputError(str(err)) from None


def run_diffusion(args: argparse.Namespace):
    """Run ``anonymize --method diffusion``: returns the run summary (written to ``--summary``)."""
    from .runner import DiffusionAnonymizer

    if args.output.suffix.lower() != ".mp4":
        raise OutputError(f"output {args.output} must end in .mp4 (the output is H.264 in MP4)")
    summary_path = getattr(args, "summary", None)
    if summary_path is not None and not Path(summary_path).parent.resolve().is_dir():
        raise OutputError(f"summary folder {Path(summary_path).parent} does not exist")
    config = config_from_args(args)
    quiet = getattr(args, "quiet", False)
    summary = DiffusionAnonymizer(config)(
        args.input, args.output, keep_audio=getattr(args, "keep_audio", False), progress=not quiet,
        ablation=getattr(args, "ablation", None),
    )  # fmt: skip
    if summary_path is not None:
        summary.write(summary_path)
    if not quiet:
        print(
            f"wrote {summary.output}: {summary.frames_out} frames at {summary.fps_out:.3f} fps in "
            f"{summary.seconds_total:.1f} s; {summary.key_frames} frames diffused "
            f"({summary.key_frames_resumed} resumed), {summary.unet_evaluations} UNet evaluations",
            file=sys.stderr,
        )
    return summary


def add_doctor_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``doctor`` to the sub-command parsers of the ``signanon`` command."""
    return subparsers.add_parser(
        "doctor",
        help="list which model weights are installed and how to get the missing ones",
        description="Look for the diffusion method's weights in the local Hugging Face cache "
        "(never on the network) and print, for each, where it is or the command that fetches it "
        "on a connected machine. Also says whether PyTorch sees a GPU.",
    )


def run_doctor(args: argparse.Namespace) -> int:
    """Print the weights table; returns the number of required weights missing (0 = ready)."""
    from .weights import doctor_report, resolve_device

    try:
        device = resolve_device("auto")
        print(f"PyTorch device: {device.type}")
    except InputError as err:
        print(f"PyTorch: {err}")
    missing = 0
    for name, found, where in doctor_report():
        status = "found  " if found else "missing"
        print(f"{status}  {name:24s} {where if found else 'get it with: ' + where}")
        if not found and "optional" not in name and "Canny" not in name:
            missing += 1
    if missing:
        print("Copy the Hugging Face cache (~/.cache/huggingface/hub) to this machine, or pass the "
              "downloaded folders/files with --model, --controlnet, --hed-weights.")
    return missing
