"""The ``signanon evaluate`` sub-command (wired into :mod:`signanon.cli.main` by
:func:`add_evaluate_parser` and :func:`run_evaluate`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli.options import add_command, add_settings, config_from_args
from ..errors import InputError
from ..video.region import Region

EPILOG_EVALUATE = """examples:
  signanon evaluate --original clip.mp4 --anonymized anon.mp4 -o eval/
  signanon evaluate --original clip.mp4 --anonymized anon.mp4 --original-extra other1.mp4 other2.mp4 -o eval/
  signanon evaluate --benchmark pairs/ -o bench/ --every 3 --no-video

--benchmark folder: one sub-folder per clip holding original.<ext>, anonymized.<ext> and
optionally extra*.<ext> (more clips of the same signer). A sub-folder with a partner missing or two
candidates for one (original.mp4 and original.mov) is left out and named, with why.
"""


HELP = 'measure identity removal, signing preservation and temporal consistency'
DESCRIPTION = """\
Compare an original video with its anonymized version: face-recogniser similarity and re-
identification rate (identity), handshapes, hand recall, trajectories and facial-grammar correlation
(signing), flow-warp error (temporal). Writes DIR/report.json, DIR/report.html and
DIR/side_by_side.mp4.
"""


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``evaluate`` to the sub-command parsers of the ``signanon`` command."""
    ev = add_command(subparsers, "evaluate", HELP, DESCRIPTION, EPILOG_EVALUATE)
    ev.add_argument("--original", type=Path, metavar="IN", help="the original video")
    ev.add_argument("--anonymized", type=Path, metavar="OUT", help="its anonymized version")
    ev.add_argument("--original-extra", type=Path, nargs="+", action="extend", default=[], metavar="CLIP",
                    help="more clips of the same signer (for the same-signer similarity)")
    ev.add_argument("--benchmark", type=Path, metavar="DIR_OF_PAIRS", help="evaluate every pair in this folder, one table")
    ev.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="report folder (created if missing)")
    ev.add_argument("--region", metavar="X,Y,W,H",
                    help="compare this box of the original (as given to 'anonymize --region') with the anonymized video")
    from .evaluate import EvaluationConfig

    add_settings(ev, EvaluationConfig)
    return ev


def _check_mode(args: argparse.Namespace) -> None:
    if args.benchmark is not None:
        if args.original or args.anonymized or args.original_extra or args.region:
            raise InputError("--benchmark cannot be combined with --original/--anonymized/--original-extra/--region")
        return
    if args.original is None or args.anonymized is None:
        raise InputError("give --original and --anonymized (or --benchmark DIR_OF_PAIRS)")


# the facial-grammar flags of report.json's signing section, as the terminal names them
GRAMMAR_FLAGS = (("damped", "damped_series"), ("exaggerated", "exaggerated_series"),
                 ("LOST (no face in the anonymized video to follow them on)", "lost_series"))


def _grammar_line(sig: dict) -> str:
    """The facial-grammar series out of the goal (as flagged in report.json), one line."""
    flagged = [f"{label}: {', '.join(sig[key])}" for label, key in GRAMMAR_FLAGS if sig.get(key)]
    moving = len(sig.get("moving_series", []))
    return f"facial grammar: {moving} series moving; {'; '.join(flagged) or 'none damped, exaggerated or lost'}\n"


def _print_pair(report: dict) -> None:
    ident, sig, tmp = report["identity"], report["signing"], report["temporal"]

    def f(v, d=3):
        return "n/a" if v is None else f"{v:.{d}f}"

    print(
        f"identity: same-signer cosine {f(ident['original_mean'])}, original-vs-anonymized cosine "
        f"{f(ident['anonymized_mean'])} (max {f(ident['anonymized_max'])}), re-identified "
        f"{f(ident['reid_rate'])}, anonymized frames without face {ident['anonymized_frames_without_face']}"
        f"/{ident['frames_judged']}\n"
        f"signing: hand recall {f(sig['hand_recall'])}, handshape error {f(sig['handshape_angle_error_deg'], 1)} deg "
        f"(chance {f(sig['handshape_angle_error_chance_deg'], 1)}; steady hands {f(sig.get('handshape_angle_error_steady_deg'), 1)}, "
        f"fast {f(sig.get('handshape_angle_error_fast_deg'), 1)})\n"
        + (f"reader vs itself (the original re-read): hand recall {f(sig['reader_hand_recall'])}, handshape error "
           f"{f(sig['reader_handshape_angle_error_deg'], 1)} deg; out of the goal at the reader's limit: "
           f"{', '.join(sig['out_of_goal_at_reader_limit']) or 'none'}\n" if "reader_hand_recall" in sig else "")
        + _grammar_line(sig)
        + f"temporal: warp error {f(tmp['warp_error'], 2)} (input {f(tmp['warp_error_input'], 2)})\n"
        + "".join(f"warning: {w}\n" for w in report["warnings"])  # also in report.json and the page
        + f"wrote {report['outputs'].get('html') or report['outputs']['json']}",
        file=sys.stderr,
    )


def run_evaluate(args: argparse.Namespace) -> int:
    """Run ``signanon evaluate``; user errors are raised as SignanonError subclasses. Returns the
    exit status: 1 when a pair of ``--benchmark`` failed (the others are still reported), else 0."""
    from .evaluate import EvaluationConfig, Evaluator

    _check_mode(args)
    evaluator = Evaluator(config_from_args(EvaluationConfig, args))
    if args.benchmark is not None:
        result = evaluator.benchmark(args.benchmark, args.output, progress=not args.quiet)
        failed = [row for row in result["clips"] if "error" in row]
        if not args.quiet:
            for row in failed:
                print(f"failed: {row['clip']}: {row['error']}", file=sys.stderr)
            for left in result["skipped"]:  # also in benchmark.json and on the page
                print(f"skipped: {left['folder']}: {left['reason']}", file=sys.stderr)
            left_out = f", {len(result['skipped'])} skipped" if result["skipped"] else ""
            print(f"evaluated {len(result['clips']) - len(failed)} pairs ({len(failed)} failed{left_out}); "
                  f"wrote {Path(args.output) / 'benchmark.html'}", file=sys.stderr)
        return 1 if failed else 0
    region = Region.parse(args.region) if args.region else None
    report = evaluator.evaluate(args.original, args.anonymized, args.original_extra, args.output, progress=not args.quiet,
                                region=region)
    if not args.quiet:
        _print_pair(report)
    return 0
