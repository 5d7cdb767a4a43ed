"""``signanon batch``: anonymize a whole corpus, resumably, in parallel or on Ray.

The method flags are exactly those of ``signanon anonymize`` (the same generated arguments); the
batch flags come from :class:`~.runner.BatchConfig`. Exit status 1 when a clip failed in this run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli.options import add_command

EPILOG = """examples:
  signanon batch corpus/ -o release/
  signanon batch corpus/ -o release/ --workers 2 --evaluate --pose
  signanon batch manifest.csv -o release/ --method diffusion --ray local
  signanon batch manifest.csv -o release/ --method diffusion --ray 10.0.0.5:6379

INPUT is a folder (searched recursively for mp4, mov, mkv, webm, avi, gif) or a CSV manifest with a
'path' column and optional 'signer', 'prompt', 'seed' columns. OUT_DIR mirrors the input tree
(a/b/clip.mov -> OUT_DIR/a/b/clip.mp4 and clip.summary.json) and holds batch_report.json, .csv and
.html. A re-run skips clips done with the same content and settings and retries failed ones.
OUT_DIR/.signanon_batch/ holds the resume state and the corpus secret: do not publish it.
"""


HELP = 'anonymize a whole corpus (folder or CSV manifest): resumable, parallel, Ray'
DESCRIPTION = """\
Anonymize every video of a folder or CSV manifest into a mirrored output tree, with a report of
every clip. Re-run the same command to resume; a bad clip never stops the others. With --evaluate,
re-identified outputs go to OUT_DIR/_quarantine/.
"""


def add_batch_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``batch`` on the ``signanon`` sub-command parsers."""
    from ..cli.anonymize import add_method_arguments
    from ..cli.options import add_settings
    from .runner import BatchConfig

    p = add_command(subparsers, "batch", HELP, DESCRIPTION, EPILOG)
    p.add_argument("input", type=Path, help="folder of videos, or a CSV manifest")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT_DIR", help="output folder")
    batch = p.add_argument_group("batch")
    p.set_defaults(_batch_settings=add_settings(batch, BatchConfig), run_batch=run_batch)
    add_method_arguments(p, exclude=("landmark_workers",))  # batch --workers runs clips in parallel
    return p


def _prompt_given(args: argparse.Namespace) -> bool:
    return getattr(args, "setting__prompt", None) is not None


def describe(result) -> str:
    """The final line of a run."""
    totals = ", ".join(f"{n} {status}" for status, n in result.totals.items())
    text = f"batch: {totals}; report {result.report}"
    if result.gallery and result.gallery.get("probes"):
        g = result.gallery
        text += f"; gallery attack top-1 {g['top1']}/{g['probes']} (chance {g['chance_top1_rate']:.2f})"
    return text


def run_batch(args: argparse.Namespace) -> int:
    """Run ``signanon batch``; 1 when any clip failed in this run, else 0."""
    from ..cli.anonymize import method_config_from_args
    from ..cli.options import config_from_args
    from ..progress import tqdm_callback
    from .runner import BatchConfig, run_corpus

    config = method_config_from_args(args)
    batch = config_from_args(BatchConfig, args, args._batch_settings)
    with tqdm_callback(not args.quiet) as progress:
        result = run_corpus(args.input, args.output, config, batch, progress=progress, prompt_given=_prompt_given(args))
    if not args.quiet:
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
        for entry in result.entries:
            if entry["status"] in ("failed", "quarantined"):
                print(f"{entry['status']}: {entry['input']}: {entry['reason']}", file=sys.stderr)
        print(describe(result), file=sys.stderr)
    return 1 if result.failed else 0
