"""The ``signanon doctor`` sub-command: which diffusion weights are installed, and how to get the
missing ones. (The ``anonymize --method diffusion`` flags are generated from
:class:`~signanon.diffusion.runner.DiffusionConfig` by :mod:`signanon.cli.anonymize`.)
Importing this module does not import torch or diffusers.
"""

from __future__ import annotations

import argparse

from ..cli.options import add_command
from ..errors import InputError

HELP = 'list which model weights are installed and how to get the missing ones'
DESCRIPTION = """\
Look for the diffusion method's weights in the local Hugging Face cache (never on the network) and
print, for each, where it is or the command that fetches it on a connected machine. Also says
whether PyTorch sees a GPU.
"""


def add_doctor_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``doctor`` to the sub-command parsers of the ``signanon`` command."""
    return add_command(subparsers, "doctor", HELP, DESCRIPTION, None, quiet=False)


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
