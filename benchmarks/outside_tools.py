"""Loading the scripts the benchmarks use that are not part of the package (run by hand).

The independent read-back (``../shared/tools/readback.py``: MediaPipe + dlib, none of signanon's
code) and the repository's ``tools/`` scripts are plain files, not importable modules; the
benchmarks and diagnostics in this folder load them through :func:`load_module`.
"""

from __future__ import annotations

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
