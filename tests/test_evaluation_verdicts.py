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
FAST = ["--max-frames", "16", "--every", "4", "--no-video", "--flow", "ultrafast"]


def derived_clip(source: Path, path: Path, change=lambda rgb: rgb, *, frames: int = 16, fps=None) -> Path:
    """The first ``frames`` frames of ``source``, each passed through ``change`` (RGB uint8 (H, W, 3)
    -> RGB uint8 (H', W', 3), one size for all), written to ``path`` at ``fps`` (default: the
    source's rate)."""
    info = probe_video(source)
    changed = [np.ascontiguousarray(change(rgb)) for rgb in itertools.islice(iter_frames(info), frames)]
    with VideoWriter(path, changed[0].shape[1], changed[0].shape[0], Fraction(fps or info.fps)) as writer:
        for rgb in changed:
            writer.write(rgb)
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
    """The first 16 frames of ASL HOUSE (one signer, face always visible, mouth and head moving), as an mp4."""
    return first_frames_clip(HOUSE, 16, tmp_path_factory.mktemp("verdicts") / "house.mp4")


# -- 1. identity kept ----------------------------------------------------------------------------


@pytest.mark.parametrize("copy", ["itself", "blurred"])
def test_an_output_that_keeps_the_identity_is_called_so(house, tmp_path, capsys, copy):
    import cv2

    blur = (lambda rgb: cv2.blur(rgb, (5, 5))) if copy == "blurred" else (lambda rgb: rgb)
    anonymized = derived_clip(house, tmp_path / "anonymized.mp4", blur)
    report, page, err = evaluate(house, anonymized, tmp_path / "r", capsys)
    ident = report["identity"]
    assert ident["reid_rate"] == 1.0 and ident["frames_judged"] == 4  # 16 frames, every 4th
    expected = "identity NOT removed: 4 of 4 anonymized frames re-identified as the original signer (dlib-resnet distance <= 0.6)"
    assert report["warnings"][0] == expected
    assert f"warning: {expected}" in err
    assert f"<li class=warn>{html.escape(expected)}</li>" in page
    assert not any("frame rates differ" in w for w in report["warnings"])  # both 25 fps


def test_another_signer_is_not_called_the_original(house, tmp_path, capsys):
    other = first_frames_clip(DIFFERENT, 16, tmp_path / "other.mp4")
    report, _, err = evaluate(house, other, tmp_path / "r", capsys)
    assert report["identity"]["reid_rate"] == 0.0
    assert not any("identity NOT removed" in w for w in report["warnings"])
    assert "NOT removed" not in err
    assert report["identity"]["original_frames_with_several_faces"] == 0  # one signer: not a word of two
    assert not any("the original shows" in w for w in report["warnings"])
    assert any(w.startswith("frame rates differ (original 25 fps, anonymized 30 fps)") for w in report["warnings"])


# -- 2. no face in the output ------------------------------------------------------------------


def test_a_series_the_output_cannot_be_read_on_is_lost_not_still():
    from signanon.evaluation.signing import MIN_SERIES_FRAMES, grammar_entry

    moving = 1.0 + 0.05 * np.sin(np.arange(20))  # std 0.035 inter-ocular distances: moving
    none, few = np.full(20, np.nan), np.where(np.arange(20) < MIN_SERIES_FRAMES - 1, moving, np.nan)
    for output in (none, few):
        entry = grammar_entry("mouth_opening", moving, output)
        assert entry["moving"] and entry["lost"] and entry["status"] == "lost" and not entry["damped"]
        assert entry["original_frames"] == 20 and entry["original_std_own"] == pytest.approx(np.std(moving))
    still = grammar_entry("mouth_opening", np.full(20, 1.0) + 0.001 * np.sin(np.arange(20)), none)
    assert not still["moving"] and not still["lost"] and still["status"] == "still"
    kept = grammar_entry("mouth_opening", moving, moving)
    assert kept["status"] == "ok" and not kept["lost"]


def test_an_output_without_a_face_is_called_unmeasured_and_its_grammar_lost(house, tmp_path, capsys):
    grey = derived_clip(house, tmp_path / "grey.mp4", lambda rgb: np.full_like(rgb, 128))
    report, page, err = evaluate(house, grey, tmp_path / "r", capsys)
    expected = "identity could not be measured on 4 of 4 frames: no face found in the anonymized video"
    assert expected in report["warnings"] and f"warning: {expected}" in err
    assert f"<li class=warn>{html.escape(expected)}</li>" in page
    grammar, lost = report["face_grammar"], report["signing"]["lost_series"]
    assert lost and lost == [k for k, v in grammar.items() if v["original_std_own"] >= (1.0 if "head" in k else 0.01)]
    for name, entry in grammar.items():  # the original moves it: lost; it does not: still, as before
        assert entry["status"] == ("lost" if name in lost else "still"), name
        assert entry["frames"] == 0 and entry["original_frames"] == 16
    assert f"LOST (no face in the anonymized video to follow them on): {', '.join(lost)}" in err
    assert "Lost facial grammar:" in page and page.count('<tr class="lost">') == len(lost)


def test_a_pixelated_face_is_not_counted_as_hidden_without_a_word(house, tmp_path, capsys):
    import cv2

    def pixelate(rgb):
        h, w = rgb.shape[:2]
        return cv2.resize(cv2.resize(rgb, (w // 16, h // 16), interpolation=cv2.INTER_AREA), (w, h),
                          interpolation=cv2.INTER_NEAREST)

    report, _, err = evaluate(house, derived_clip(house, tmp_path / "pix.mp4", pixelate), tmp_path / "r", capsys)
    assert report["identity"]["reid_rate"] == 0.0  # no face found: "not re-identified", which proves little
    missing = report["identity"]["anonymized_frames_without_face"]
    assert missing >= 3
    assert f"warning: identity could not be measured on {missing} of 4 frames: no face found in the anonymized video" in err


# -- 3. two people in the original -------------------------------------------------------------


def two_people_clip(house: Path, path: Path) -> Path:
    """The signer of ``house`` with a second real person beside them (the talking-woman clip scaled
    to the same height), 16 frames."""
    import cv2

    woman = list(itertools.islice(iter_frames(probe_video(DATA / "talking_woman_90.mp4")), 16))
    frames = iter(woman)
    return derived_clip(house, path, lambda rgb: np.hstack([rgb, cv2.resize(next(frames), (rgb.shape[0],) * 2)]))


def test_a_second_person_in_the_original_is_named(house, tmp_path, capsys):
    two = two_people_clip(house, tmp_path / "two.mp4")
    report, page, err = evaluate(two, house, tmp_path / "r", capsys)
    assert report["identity"]["original_frames_with_several_faces"] == 4
    expected = ("the original shows 2 faces in 4 of 4 sampled frames; identity was measured on the largest face, "
                "the signing on the one person the landmark reader follows")
    assert expected in report["warnings"] and f"warning: {expected}" in err
    assert f"<li class=warn>{html.escape(expected)}</li>" in page


# -- 4. frame rates ------------------------------------------------------------------------------


def test_frame_rates_that_differ_are_named(house, tmp_path, capsys):
    faster = derived_clip(house, tmp_path / "faster.mp4", fps=30)  # the same frames, re-timed
    report, page, err = evaluate(house, faster, tmp_path / "r", capsys)
    expected = ("frame rates differ (original 25 fps, anonymized 30 fps); frames are compared by number, so the "
                "two videos are compared out of step")
    assert expected in report["warnings"] and f"warning: {expected}" in err
    assert f"<li class=warn>{html.escape(expected)}</li>" in page


def test_frame_rates_within_one_percent_are_the_same_rate():
    from signanon.evaluation.evaluate import frame_rate_warning

    assert frame_rate_warning(Fraction(25), Fraction(25)) is None
    assert frame_rate_warning(Fraction(30000, 1001), Fraction(30)) is None  # 29.97 vs 30: 0.1%
    assert frame_rate_warning(Fraction(25), Fraction(25, 2)).startswith("frame rates differ (original 25 fps, anonymized 12.5 fps)")


# -- 5. an interrupt leaves the report folder as it was -----------------------------------------


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden temporary files too): relative path -> content."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def interrupt_at(monkeypatch, module, name: str) -> None:
    """Make ``module.name`` raise KeyboardInterrupt, as Ctrl-C arriving while it runs would."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, name, interrupted)


def test_an_interrupted_run_leaves_an_existing_report_folder_as_it_was(house, tmp_path, capsys, monkeypatch):
    import signanon.evaluation.html_page as html_page

    out = tmp_path / "r"
    video = ["--video"]
    evaluate(house, derived_clip(house, tmp_path / "grey.mp4", lambda rgb: np.full_like(rgb, 128)), out, capsys, *video)
    before = snapshot(out)
    assert set(before) == {"report.json", "report.html", "side_by_side.mp4"}
    # the page is made last, once report.json and the video were written: Ctrl-C there
    interrupt_at(monkeypatch, html_page, "render_html")
    status = main(["evaluate", "--original", str(house), "--anonymized", str(house), "-o", str(out), *FAST, *video])
    assert status == 130 and "interrupted; no output written" in capsys.readouterr().err
    assert snapshot(out) == before
    monkeypatch.undo()
    # run again without the video: the earlier pair's side_by_side.mp4 goes with the new report
    assert main(["evaluate", "--original", str(house), "--anonymized", str(house), "-o", str(out), *FAST]) == 0
    after = snapshot(out)
    assert set(after) == {"report.json", "report.html"} and after["report.json"] != before["report.json"]


def test_outputs_committed_together_are_put_back_when_a_signal_arrives_half_way(tmp_path, monkeypatch):
    import os
    import signal

    import signanon.files as files

    (tmp_path / "report.json").write_text("old json")
    (tmp_path / "report.html").write_text("old page")
    (tmp_path / "old.mp4").write_text("old video")
    staged = files.StagedFiles()
    staged.remove(tmp_path / "old.mp4")  # removed in the commit: put back with the others
    for name in ("report.json", "report.html", "side_by_side.mp4"):
        staged.write_text(tmp_path / name, f"new {name}")
    replace, renamed = os.replace, []

    def replace_then_ctrl_c(src, dst):  # Ctrl-C right after the first new file is in place
        replace(src, dst)
        renamed.append(dst)
        if len(renamed) == 3:  # old.mp4 aside, old report.json aside, new one in
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(files.os, "replace", replace_then_ctrl_c)
    # Python's own Ctrl-C handler, as in a command: a pytest-xdist worker ignores SIGINT
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            staged.commit()
    finally:
        signal.signal(signal.SIGINT, previous)
    monkeypatch.undo()
    assert snapshot(tmp_path) == {"report.html": b"old page", "report.json": b"old json", "old.mp4": b"old video"}
    staged.remove(tmp_path / "old.mp4")
    for name in ("report.json", "side_by_side.mp4"):  # and without a signal: all new at once
        staged.write_text(tmp_path / name, f"new {name}")
    staged.commit()
    assert snapshot(tmp_path) == {"report.html": b"old page", "report.json": b"new report.json",
                                  "side_by_side.mp4": b"new side_by_side.mp4"}


def test_an_interrupted_benchmark_writes_nothing(house, tmp_path, capsys, monkeypatch):
    import signanon.evaluation.benchmark as benchmark

    pair = tmp_path / "pairs" / "house"
    pair.mkdir(parents=True)
    (pair / "original.mp4").symlink_to(house)
    (pair / "anonymized.mp4").symlink_to(house)
    interrupt_at(monkeypatch, benchmark, "_mean_row")  # the table, made once every pair is evaluated
    status = main(["evaluate", "--benchmark", str(tmp_path / "pairs"), "-o", str(tmp_path / "bench"), *FAST])
    assert status == 130 and "interrupted; no output written" in capsys.readouterr().err
    assert not (tmp_path / "bench").exists()


# -- 6. a benchmark folder it cannot read --------------------------------------------------------


def test_benchmark_names_every_folder_it_leaves_out_and_refuses_ambiguous_ones(house, tmp_path, capsys):
    pairs = tmp_path / "pairs"
    layout = {
        "a_pair": ("original.mp4", "anonymized.mp4"),
        "b_partner_missing": ("original.mp4",),
        "c_two_originals": ("original.mp4", "original.mov", "anonymized.mp4"),
        "d_upper_case": ("Original.MP4", "Anonymized.MP4"),  # a suffix's case never mattered: nor does the name's
        "e_names_differing_in_case": ("original.mp4", "ORIGINAL.mp4", "anonymized.mp4"),
        "f_no_videos": (),
    }
    for folder, names in layout.items():
        (pairs / folder).mkdir(parents=True)
        for name in names:
            (pairs / folder / name).symlink_to(house)
    (pairs / "loose_original.mp4").symlink_to(house)
    status = main(["evaluate", "--benchmark", str(pairs), "-o", str(tmp_path / "bench"), *FAST])
    err = capsys.readouterr().err
    assert status == 0, err
    result = json.loads((tmp_path / "bench" / "benchmark.json").read_text())
    assert [row["clip"] for row in result["clips"]] == ["a_pair", "d_upper_case"]
    expected = [
        ("b_partner_missing", "anonymized.<ext> is missing (original.mp4 alone)"),
        ("c_two_originals", "2 original videos (original.mov, original.mp4): keep one"),
        ("e_names_differing_in_case", "2 original videos (ORIGINAL.mp4, original.mp4): keep one"),
        ("f_no_videos", "no original.<ext> or anonymized.<ext>"),
        ("loose_original.mp4", "a video beside the pair sub-folders, in none of them"),
    ]
    assert [(s["folder"], s["reason"]) for s in result["skipped"]] == expected
    page = (tmp_path / "bench" / "benchmark.html").read_text()
    for folder, reason in expected:
        assert f"skipped: {folder}: {reason}" in err
        assert f"<li>{html.escape(folder)}: {html.escape(reason)}</li>" in page
    assert "evaluated 2 pairs (0 failed, 5 skipped)" in err
    assert not (tmp_path / "bench" / "c_two_originals").exists()


def test_a_benchmark_folder_without_a_pair_says_why(tmp_path):
    from signanon.errors import InputError
    from signanon.evaluation.evaluate import scan_pairs

    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "anonymized.mp4").write_bytes(b"")
    with pytest.raises(InputError, match=r"no clip pairs .*; left out: clip: original.<ext> is missing \(anonymized.mp4 alone\)$"):
        scan_pairs(tmp_path)


def test_frame_shapes_are_warned_about_not_a_size_the_avatar_chose():
    """The avatar draws a clip under 480 px larger (192x144 -> 640x480): 'frame sizes differ' was
    warned about on every such pair, though every measure is in face or frame units."""
    from signanon.evaluation.evaluate import frame_shape_warning

    assert frame_shape_warning((192, 144), (640, 480)) is None
    assert frame_shape_warning((640, 480), (640, 480)) is None
    warning = frame_shape_warning((640, 480), (720, 1280))
    assert warning is not None and "original 640x480, anonymized 720x1280" in warning
