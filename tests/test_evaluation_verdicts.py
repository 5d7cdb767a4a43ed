"""`signanon evaluate` says what its figures mean: identity kept, a face lost, two people, out-of-step
rates, a benchmark folder it cannot read, and an interrupted run that leaves the old report alone.

Each test runs the command on a few frames of a real clip (``--max-frames``, ``--every``,
``--no-video``) against a copy derived from it in ``tmp_path``: the clip itself, blurred, grey, two
people side by side, re-timed.
"""

from __future__ import annotations

import html
import itertools
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from conftest import first_frames_clip
from signanon.cli.main import main
from signanon.video import VideoWriter, iter_frames, probe_video

DATA = Path(__file__).resolve().parent / "data"
HOUSE = DATA / "asl_house.gif"
DIFFERENT = DATA / "asl_different.gif"
FAST = ["--max-frames", "8", "--every", "2", "--no-video", "--flow", "ultrafast"]


def derived_clip(source: Path, path: Path, change=lambda rgb: rgb, *, frames: int = 8, fps=None) -> Path:
    """The first ``frames`` frames of ``source``, each passed through ``change`` (RGB uint8 (H, W, 3)
    -> same), written to ``path`` at ``fps`` (default: the source's rate)."""
    info = probe_video(source)
    with VideoWriter(path, info.width, info.height, Fraction(fps or info.fps)) as writer:
        for rgb in itertools.islice(iter_frames(info), frames):
            writer.write(np.ascontiguousarray(change(rgb)))
    return path


def evaluate(original: Path, anonymized: Path, out: Path, capsys, *extra: str) -> tuple[dict, str, str]:
    """Run ``signanon evaluate`` (exit status 0 asserted); (report.json, the page, the terminal)."""
    status = main(["evaluate", "--original", str(original), "--anonymized", str(anonymized), "-o", str(out),
                   *FAST, *extra])
    err = capsys.readouterr().err
    assert status == 0, err
    return json.loads((out / "report.json").read_text()), (out / "report.html").read_text(), err


@pytest.fixture(scope="module")
def house(tmp_path_factory) -> Path:
    """The first 8 frames of ASL HOUSE (one signer, face always visible), as an mp4."""
    return first_frames_clip(HOUSE, 8, tmp_path_factory.mktemp("verdicts") / "house.mp4")


# -- 1. identity kept ----------------------------------------------------------------------------


@pytest.mark.parametrize("copy", ["itself", "blurred"])
def test_an_output_that_keeps_the_identity_is_called_so(house, tmp_path, capsys, copy):
    import cv2

    blur = (lambda rgb: cv2.blur(rgb, (5, 5))) if copy == "blurred" else (lambda rgb: rgb)
    anonymized = derived_clip(house, tmp_path / "anonymized.mp4", blur)
    report, page, err = evaluate(house, anonymized, tmp_path / "r", capsys)
    ident = report["identity"]
    assert ident["reid_rate"] == 1.0 and ident["frames_judged"] == 4  # 8 frames, every 2nd
    expected = "identity NOT removed: 4 of 4 anonymized frames re-identified as the original signer (dlib-resnet distance <= 0.6)"
    assert report["warnings"][0] == expected
    assert f"warning: {expected}" in err
    assert f"<li class=warn>{html.escape(expected)}</li>" in page


def test_another_signer_is_not_called_the_original(house, tmp_path, capsys):
    other = first_frames_clip(DIFFERENT, 8, tmp_path / "other.mp4")
    report, _, err = evaluate(house, other, tmp_path / "r", capsys)
    assert report["identity"]["reid_rate"] == 0.0
    assert not any("identity NOT removed" in w for w in report["warnings"])
    assert "NOT removed" not in err
