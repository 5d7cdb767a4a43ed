"""Loading the scripts the benchmarks use that are not part of the package (run by hand), and the
one parser of their ``FIELD=VALUE`` options.

The independent read-back (``../shared/tools/readback.py``: MediaPipe + dlib, none of signanon's
code) and the repository's ``tools/`` scripts are plain files, not importable modules; the
benchmarks and diagnostics in this folder load them through :func:`load_module`.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
READBACK = SHARED / "tools" / "readback.py"


def load_module(path: Path, name: str):
    """Execute the Python file ``path`` as module ``name`` (registered in ``sys.modules``, which
    dataclasses need to look their module up) and return it."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_readback():
    """The independent read-back module (``../shared/tools/readback.py``)."""
    return load_module(READBACK, "readback")


def literal_fields(text: str, sep: str = ";") -> dict:
    """``FIELD=VALUE<sep>...`` (each VALUE a Python literal) as a dict: the dataclass fields a
    diagnostic replaces (``sep`` ";" lets a value be a tuple such as ``lips=(100,46,44)``)."""
    return {k.strip(): ast.literal_eval(v) for k, v in (item.split("=", 1) for item in text.split(sep) if item.strip())}
