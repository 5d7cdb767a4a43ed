"""Writing an evaluation's results: ``report.json`` (for other tools) and ``report.html`` (for people).

``report.json`` is plain JSON: NaN written as null, every array a list (:func:`jsonable`). The other
outputs live beside this module, one job each: :mod:`.plots` (matplotlib figures as PNG data URLs),
:mod:`.html_page` (the page), :mod:`.landmark_video` (original | anonymized with landmarks drawn)
and :mod:`.benchmark` (the table over many pairs).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..files import StagedFiles


def jsonable(value):
    """Plain-JSON copy of ``value``: numpy arrays/scalars -> lists/numbers, NaN/inf -> None,
    Paths -> str, tuples -> lists, dict keys -> str."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, Path):
        return str(value)
    return value


def write_report(report: dict, folder: Path, video: Path | None, staged: StagedFiles | None = None) -> dict:
    """Write ``report.json`` and ``report.html`` into ``folder``; returns the ``outputs`` section.

    ``video``: the side-by-side video's path when one was written (staged or in place), else None.
    ``staged``: stage the two files there, under temporary names, for the caller to commit with
    the video; None: write both now, together.
    """
    from .html_page import render_html

    files = StagedFiles() if staged is None else staged
    has_video = video is not None
    outputs = {"json": str(folder / "report.json")}
    if has_video:
        outputs["side_by_side"] = str(video)
    if report.get("config", {}).get("html", True):
        outputs["html"] = str(folder / "report.html")
    report["outputs"] = outputs
    files.write_text(folder / "report.json", json.dumps(report, indent=1, allow_nan=False) + "\n")
    if "html" in outputs:
        files.write_text(folder / "report.html", render_html(report, video.name if has_video else None))
    if staged is None:
        files.commit()
    return outputs
