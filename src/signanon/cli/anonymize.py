"""``signanon anonymize``: build an :class:`~signanon.job.AnonymizeJob` from the command line and
run it with :func:`~signanon.job.run_job`, exactly as the Python API, batch and the web page do.

The method flags are generated from :class:`~signanon.avatar.anonymizer.AvatarConfig` and
:class:`~signanon.diffusion.runner.DiffusionConfig` (:mod:`.options`). A flag of the other method is
refused in one line (``--prompt applies to --method diffusion``). Importing this imports no torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import Setting
from ..errors import InputError
from ..evaluation.verify import VerifyConfig
from ..job import METHODS, AnonymizeJob, config_class, run_job
from ..outcome import describe
from ..progress import tqdm_callback
from ..video.region import HELP as REGION_HELP
from .options import add_command, add_settings, config_from_args, given_settings

EPILOG = """examples:
  signanon anonymize examples/asl_webcam.mp4 -o anon.mp4
  signanon anonymize talk.mov -o anon.mp4 --palette dark-skin --background "#f0f0f0"
  signanon anonymize clip.mp4 -o anon.mp4 --summary run.json --quiet
  signanon anonymize clip.mp4 -o anon.mp4 --method diffusion \\
      --prompt "a woman in CG style, short red hair, is making gestures" --seed 7
"""

GROUP_TITLES = {
    "avatar": "avatar method (default: a synthetic signer, CPU, no downloads)",
    "diffusion": "diffusion method (--method diffusion: Stable Diffusion 1.5 + ControlNet, needs the "
    "weights, see 'signanon doctor')",
}


HELP = 'write an anonymized copy of a signing video'
DESCRIPTION = """\
Replace the signer with a synthetic signer driven by their landmarks (method 'avatar': CPU only, no
downloads) or with a text-described person (method 'diffusion'). The output has the input's size
(the box's with --region; the avatar of a video under 480 px on its shorter side is drawn at 480, see
--min-output-side), frame count and frame rate, carries no
metadata of the input, and has no audio unless --keep-audio.
"""


class UsageError(InputError):
    """A command line that mixes options that do not go together (exit status 2)."""


def add_method_arguments(parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ()) -> None:
    """``--method`` and the settings of every method, one argument group each (also used by batch,
    which ``exclude``s the settings it drives itself, by dotted name)."""
    parser.add_argument(
        "--method", choices=METHODS, default="avatar",
        help="avatar: synthetic signer, CPU, no downloads (default); diffusion: DiffSLVA, Stable "
        "Diffusion 1.5 + ControlNet, needs the weights listed by 'signanon doctor' and a GPU",
    )  # fmt: skip
    groups = {}
    for method in METHODS:
        group = parser.add_argument_group(GROUP_TITLES[method])
        groups[method] = add_settings(group, config_class(method), exclude=exclude)
    parser.set_defaults(_method_settings=groups)


def method_config_from_args(args: argparse.Namespace):
    """The config of ``--method`` with the given flags applied; a flag of another method is refused."""
    groups: dict[str, list[Setting]] = args._method_settings
    for method, settings in groups.items():
        if method == args.method:
            continue
        for s in given_settings(args, settings):
            raise UsageError(f"{s.flag} applies to --method {method}")
    return config_from_args(config_class(args.method), args, groups[args.method])


def add_anonymize_parser(subparsers) -> argparse.ArgumentParser:
    p = add_command(subparsers, "anonymize", HELP, DESCRIPTION, EPILOG)
    p.add_argument("input", type=Path, help="video to anonymize (mp4, mov, webm, mkv, avi, gif, ...)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output .mp4 (H.264)")
    p.add_argument("--keep-audio", action="store_true", help="copy the audio track (dropped by default: voices identify people)")
    p.add_argument("--summary", type=Path, metavar="JSON", help="write a run summary (frames, rates, seconds per stage) here")
    p.add_argument("--region", metavar="X,Y,W,H", help=REGION_HELP)
    p.add_argument("--ablation", type=Path, metavar="OUT.mp4",
                   help="diffusion only: also write original | without | with face enhancement side by "
                   "side (it shows the original signer: for review, not for publication)")  # fmt: skip
    gate = p.add_argument_group("privacy check (after the run, before the output is written)")
    p.set_defaults(_verify_settings=add_settings(gate, VerifyConfig))
    add_method_arguments(p)
    return p


def job_from_args(args: argparse.Namespace) -> AnonymizeJob:
    config = method_config_from_args(args)
    if args.ablation is not None and args.method != "diffusion":
        raise UsageError("--ablation applies to --method diffusion")
    return AnonymizeJob(
        input=args.input, output=args.output, config=config, keep_audio=args.keep_audio,
        summary=args.summary, ablation=args.ablation,
        verify=config_from_args(VerifyConfig, args, args._verify_settings), region=args.region,
    )  # fmt: skip


def run_anonymize(args: argparse.Namespace) -> None:
    job = job_from_args(args)
    with tqdm_callback(not args.quiet) as progress:
        summary = run_job(job, progress)
    if not args.quiet:
        print(describe(summary), file=sys.stderr)
