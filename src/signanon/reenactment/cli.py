"""The ``signanon reenact`` sub-command (wired into :mod:`signanon.cli.main` by
:func:`add_reenact_parser` and :func:`run_reenact`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli.options import add_command, add_settings
from ..cli.options import config_from_args as settings_from_args
from ..errors import InputError, OutputError
from .driver_guard import DriverGuardConfig

EPILOG_REENACT = """examples:
  signanon reenact --source face.jpg --driving talk.mp4 -o animated.mp4
  signanon reenact --source face.jpg --driving talk.mp4 -o crops.mp4 --crop
  signanon reenact --source face.jpg --driving talk.mp4 -o out.mp4 --face-model vox.pth.tar
  signanon reenact --source person.mp4 --driving talk.mp4 -o out.mp4 --mode absolute --reference 0

The output has the driving video's frame count and frame rate and shows the source person: the
whole source picture (a video source: its first frame) with its face animated, or with --crop the
256x256 face crops. Without --face-model the face is animated by a landmark-driven thin-plate
spline warp (CPU, nothing downloaded); with it by the Thin-Plate Spline Motion Model.
The driving person is never recognised in the output: a frame whose face dlib puts within
0.6 + --driver-margin of the driver's is animated again with weaker expression (the upper face
first), or shows the still source face; a source face recognised as the driver is refused.
Get the TPSMM checkpoint on a connected machine from the authors' release (vox.pth.tar, see
github.com/yoyo-nb/Thin-Plate-Spline-Motion-Model).
"""


HELP = 'animate the face of a source picture with the facial motion of a driving video'
DESCRIPTION = """\
Animate the source person's face with the driving video's facial expression and head motion
(LivePortrait/TPSMM-style). Writes H.264 mp4 with the driving video's frame count and rate, no
audio, no metadata of the inputs.
"""


def add_reenact_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``reenact`` to the sub-command parsers of the ``signanon`` command."""
    p = add_command(subparsers, "reenact", HELP, DESCRIPTION, EPILOG_REENACT)
    p.add_argument("--source", type=Path, required=True, metavar="IMG_OR_VIDEO",
                   help="picture (jpg, png, ...) or video (its first frame) of the person to animate")
    p.add_argument("--driving", type=Path, required=True, metavar="VIDEO", help="video whose facial motion is copied")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.mp4", help="output .mp4 (H.264)")
    p.add_argument("--face-model", type=Path, metavar="PATH",
                   help="TPSMM checkpoint (vox.pth.tar); default: landmark warp, no model needed")
    p.add_argument("--mode", choices=["relative", "absolute"], default="relative",
                   help="relative: motion relative to the reference driving frame on the source's own "
                   "face (default); absolute: the driver's face geometry as is")
    p.add_argument("--reference", default="auto", metavar="auto|N",
                   help="driving frame used as the neutral reference for relative motion "
                   "(default auto: the most neutral, frontal frame)")
    p.add_argument("--crop", action="store_true", help="write the 256x256 animated face crops instead of the whole source picture")
    p.add_argument("--device", default="auto", help="torch device for --face-model (default auto: cuda if present)")
    guard = p.add_argument_group("driver guard (the driving person must not be recognised in the output)")
    p.set_defaults(_guard_settings=add_settings(guard, DriverGuardConfig))
    return p


def config_from_args(args: argparse.Namespace):
    """The :class:`~.reenact.ReenactConfig` a ``reenact`` command line asks for."""
    from .reenact import ReenactConfig

    reference = args.reference
    if reference != "auto":
        try:
            reference = int(reference)
        except ValueError:
            raise InputError(f"--reference must be 'auto' or a frame number, got {args.reference!r}") from None
        if reference < 0:
            raise InputError(f"--reference must be 0 or more, got {reference}")
    guard = settings_from_args(DriverGuardConfig, args, getattr(args, "_guard_settings", None))
    return ReenactConfig(
        mode=args.mode, reference=reference, output="crop" if args.crop else "source", device=args.device, guard=guard
    )  # fmt: skip


def run_reenact(args: argparse.Namespace) -> None:
    """Run a parsed ``reenact`` command line (errors propagate as SignanonError)."""
    from .reenact import Reenactor

    config = config_from_args(args)
    if args.output.suffix.lower() != ".mp4":
        raise OutputError(f"output {args.output} must end in .mp4 (the output is H.264 in MP4)")
    summary = Reenactor(config, args.face_model)(args.source, args.driving, args.output, progress=not args.quiet)
    if not args.quiet:
        print(
            f"wrote {summary.output}: {summary.frames} frames at {summary.fps:.3f} fps, "
            f"{summary.width}x{summary.height} ({summary.method}, reference frame {summary.reference_index}, "
            f"driving frames without a face: {summary.driving_interpolated})",
            file=sys.stderr,
        )
        print(guard_line(summary.guard), file=sys.stderr)


def guard_line(stats: dict) -> str:
    """One line on what the driver guard did (``ReenactSummary.guard``)."""
    if not stats:
        return "driver guard off (--no-driver-guard): nobody checked that the driver is unrecognisable"
    if not stats.get("driver_faces"):
        return "driver guard: dlib found no face in the driving video, so nothing was checked"
    nearest = stats["nearest_output"]
    return (
        f"driver guard: {stats['weakened']} of {stats['checked']} frames animated with weaker expression and "
        f"{stats['still']} shown still, so that no face is within dlib distance {stats['limit']:.2f} of the driver"
        + (f" (nearest {nearest:.2f})" if nearest is not None else "")
    )
