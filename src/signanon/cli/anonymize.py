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
from ..progress import tqdm_callback
from ..video.region import HELP as REGION_HELP
from ..video.people import several_faces_note
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


def describe(summary) -> str:
    """The final line of a run."""
    text = (
        f"wrote {summary.output}: {summary.frames_out} frames at {summary.fps_out:.3f} fps "
        f"in {summary.seconds_total:.1f} s"
    )
    if summary.method == "diffusion":
        text += (
            f"; {summary.key_frames} frames diffused ({summary.key_frames_resumed} resumed), "
            f"{summary.unet_evaluations} UNet evaluations"
        )
    else:
        text += f"; frames without a person: {summary.frames_without_person}"
        text += "\n" + guard_line(summary.extra.get("identity_guard"))
    note = several_faces_note(summary.frames_checked_for_faces, summary.frames_with_several_faces, summary.method)
    if note:
        text += "\n" + note
    v = summary.verification
    if v is None or v["skipped"]:
        if summary.method == "diffusion":
            text += "\nprivacy check skipped (--no-verify): nobody checked that the signer is unrecognisable"
        return text
    closest = "no face found" if v["min_distance"] is None else f"closest distance {v['min_distance']:.3f}"
    text += (
        f"\nprivacy check passed: signer recognised in 0 of {v['checked_frames']} frames ({closest}, "
        f"refused at <= {v['threshold']:.2f}); frames where the output shows no face but the original "
        f"does: {v['frames_without_face']}"
    )
    return text


def guard_line(record: dict | None) -> str:
    """What the avatar's identity guard did (signanon.avatar.identity_guard), in one line."""
    if not record:
        return "identity guard off (--no-identity-guard): nobody checked that the drawn face is not the signer's"
    look = record.get("look", {})
    scores = look.get("scores") or {}
    chosen = (
        f"look {look['chosen']} (palette/face shape; its nearest probe face {scores[look['chosen']][1]:.2f} from the signer's by dlib; "
        f"looks tried: {len(scores)}); " if look.get("chosen") in scores else ""
    )
    closest = "" if record["min_distance"] is None else f", closest distance {record['min_distance']:.3f}"
    others = record.get("other_people", 0)
    against = f"the signer and {others} other {'person' if others == 1 else 'people'} the input shows" if others else "the signer"
    text = f"identity guard: {chosen}{record['checked']} drawn faces checked against {against}{closest}"
    if record["calmed"]:
        text += f"; {record['calmed']} recognised as the signer and drawn with a calmer expression (weaker facial grammar)"
    if record["blanked"] or record["blurred"]:
        text += f"; {record['blanked']} drawn with a blank face and {record['blurred']} blurred (their facial grammar is lost)"
    if record["unchecked"]:
        text += f"; dlib found no face of the signer's in the input, so {record['unchecked']} drawn faces were not checked"
    turns = record.get("signers_in_turn", 1)
    if turns > 1 and (record["calmed"] or record["blanked"] or record["blurred"]):
        text += (
            f"; the largest face belongs to {turns} people in turn (a cut between signers?), so faces are kept from the "
            "mean of them, which lies near any face: anonymize each shot on its own to keep their expressions"
        )
    return text


def run_anonymize(args: argparse.Namespace) -> None:
    job = job_from_args(args)
    with tqdm_callback(not args.quiet) as progress:
        summary = run_job(job, progress)
    if not args.quiet:
        print(describe(summary), file=sys.stderr)
