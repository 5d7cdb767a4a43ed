"""`evaluate`'s signing figures agree with the independent read-back (../shared/tools/readback.py).

The read-back runs MediaPipe Holistic afresh with none of signanon's code; the issues' figures come
from it. Here both measure one real pair: the repository's sample clip and its avatar output made
in the test (its first 40 frames: a hand passes the chin at frames 17-33). The read-back runs in a
second process while signanon measures, so the two cores share the work. The damped flag is
checked on the same clip's real series.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import first_frames_clip
from signanon.evaluation.evaluate import EvaluationConfig, Evaluator
from signanon.evaluation.signing import compare_signing, grammar_entry

REPO = Path(__file__).resolve().parents[1]
READBACK = REPO.parent / "shared" / "tools" / "readback.py"
SAMPLE = REPO / "examples" / "asl_webcam.mp4"
# signanon's series name -> the read-back's
SERIES = {"brow_raise": "brow_raise", "brow_furrow": "brow_furrow", "eye_openness": "eye_open",
          "mouth_opening": "mouth_open", "mouth_width": "mouth_width"}  # fmt: skip

pytestmark = pytest.mark.skipif(not READBACK.is_file(), reason=f"the independent read-back {READBACK} is missing (../shared beside the checkout)")


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    from signanon.avatar.anonymizer import AvatarAnonymizer

    folder = tmp_path_factory.mktemp("readback")
    original = first_frames_clip(SAMPLE, 40, folder / "asl_webcam_40.mp4")
    out = folder / "asl_webcam_40_avatar.mp4"
    AvatarAnonymizer()(original, out, progress=False)
    return original, out


def _signanon_figures(pair: tuple[Path, Path]) -> dict:
    evaluator = Evaluator(EvaluationConfig(identity_every=10**6))  # landmarks only; one face embedding
    original, anonymized = (evaluator.analyse(p) for p in pair)
    return compare_signing((original.data, original.conf, original.info.width),
                           (anonymized.data, anonymized.conf, anonymized.info.width))


@pytest.fixture(scope="module")
def measured(pair) -> tuple[dict, dict]:
    """(signanon's compare_signing, the read-back's JSON) on the same pair."""
    run = subprocess.Popen([sys.executable, str(READBACK), "signing", *map(str, pair)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ours = _signanon_figures(pair)
        stdout, stderr = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, stderr[-2000:]
    return ours, json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def ours(measured) -> dict:
    return measured[0]


@pytest.fixture(scope="module")
def readback(measured) -> dict:
    return measured[1]


def test_face_series_r_gain_and_std_agree_with_the_readback(ours, readback):
    assert ours["face_grammar"]["brow_raise"]["frames"] == readback["face_frames_both"]
    for name, theirs in SERIES.items():
        entry = ours["face_grammar"][name]
        assert entry["r"] == pytest.approx(readback["face_series_r"][theirs], abs=0.02), name
        assert entry["gain"] == pytest.approx(readback["face_series_gain"][theirs], abs=0.02), name
        std = readback["face_series_gain"]["original_std"][theirs]
        assert entry["original_std"] == pytest.approx(std, abs=0.001), name
        assert entry["moving"] == (std >= 0.01), name


def test_hands_and_contact_agree_with_the_readback(ours, readback):
    sig = ours["signing"]
    assert sig["hand_recall"] == pytest.approx(readback["hand_recall"], abs=0.02)
    assert sig["handshape_angle_error_deg"] == pytest.approx(readback["handshape_angle_error_deg"], abs=0.5)
    assert readback["contact_frames"] > 0  # the clip has a hand at the face: the check means something
    assert sig["contact_frames"] == readback["contact_frames"]
    assert sig["contact_error_face_widths"] == pytest.approx(readback["contact_error_face_widths"], abs=0.01)


def test_damped_flag_on_real_series(ours):
    """The original's most moving face series against a copy at full and at half strength, and
    against a time-shifted copy: only the weak or out-of-step ones are damped."""
    name = max(SERIES, key=lambda k: ours["face_grammar"][k]["original_std"])
    series = np.asarray(ours["series"]["face_original"][name], np.float64)
    centre = np.nanmean(series)
    full = grammar_entry(name, series, series)
    half = grammar_entry(name, series, centre + 0.5 * (series - centre))
    shifted = grammar_entry(name, series, np.roll(series, len(series) // 2))
    assert full["moving"] and full["status"] == "ok" and not full["damped"]
    assert half["gain"] == pytest.approx(0.5) and half["damped"] and half["r"] == pytest.approx(1.0)
    assert shifted["gain"] == pytest.approx(1.0) and shifted["r"] < 0.6 and shifted["damped"]
    still = grammar_entry("mouth_width", np.full(20, 1.1) + 0.001 * np.sin(np.arange(20)), np.full(20, 1.1))
    assert not still["moving"] and not still["damped"] and still["status"] == "still"


def test_evaluates_face_embedding_is_the_readbacks():
    """evaluate (and --verify) embed with the read-back's alignment (dlib's 68 points): on the same
    frames and face, the same 128 numbers. (With the 5-point alignment they lay up to 0.038 apart.)"""
    import importlib.util

    from signanon.evaluation.identity import make_embedder
    from signanon.recognition import DlibConfig, DlibEmbedder

    spec = importlib.util.spec_from_file_location("readback_module", READBACK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    images = module.frames(str(SAMPLE), 30)[::10] + module.frames(str(REPO / "tests" / "data" / "dgs_zug_100.mp4"), 1)
    theirs = module.embeddings(images, module.dlib_models())
    ours = make_embedder("dlib", upsample=1)  # the read-back detects at upsample 1
    five = DlibEmbedder(DlibConfig(upsample=1))
    gaps = []
    for rgb, their in zip(images, theirs):
        assert their is not None
        mine = ours.faces(rgb)[0].embedding
        assert np.abs(mine - their).max() < 1e-6
        gaps.append(np.linalg.norm(five.faces(rgb)[0].embedding - their))
    assert max(gaps) > 0.005  # the alignment matters: the 5-point embedding is another one


def test_evaluates_signer_mean_measure_is_the_readbacks_identity(pair):
    """The read-back's identity figure compares each output frame's largest face with the mean of
    the original's largest faces, detected upsampled once at any frame size. evaluate reports the
    same measure (reid_rate_signer_mean, signer_mean_distance_min), by default with the same
    detection: on the sample pair (540x720) the same numbers."""
    from signanon.evaluation.identity import identity_report

    run = subprocess.Popen([sys.executable, str(READBACK), "identity", *map(str, pair)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        evaluator = Evaluator(EvaluationConfig())
        original, anonymized = (evaluator.analyse(p, landmarks=False).faces for p in pair)
        ours = identity_report(original, anonymized, evaluator.embedder)
        stdout, stderr = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, stderr[-2000:]
    theirs = json.loads(stdout.strip().splitlines()[-1])
    assert theirs["original_faces"] == int(original.found.sum()) and theirs["output_faces"] == int(anonymized.found.sum())
    assert ours["signer_mean_distance_min"] == pytest.approx(theirs["min_distance_to_original"], abs=1e-6)
    assert ours["reid_rate_signer_mean"] == pytest.approx(theirs["reid_rate"], abs=1e-9)
    assert ours["signer_mean_distance_min"] > 0.6  # and nobody is recognised (0.71 when written)


@pytest.fixture(scope="module")
def reader_checked(pair, tmp_path_factory) -> dict:
    """evaluate's report with the reader check on the sample pair, and the independent read-back
    of the original against the same copy (written here the way evaluate writes it)."""
    from signanon.evaluation.evaluate import write_reader_copy
    from signanon.video import probe_video

    folder = tmp_path_factory.mktemp("reader")
    copy = write_reader_copy(probe_video(pair[0]), folder / "copy.mp4")
    run = subprocess.Popen([sys.executable, str(READBACK), "signing", str(pair[0]), str(copy)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        config = EvaluationConfig(identity_every=10**6, side_by_side=False, reader_check=True)
        report = Evaluator(config).evaluate(*pair, out_dir=folder / "report")
        stdout, stderr = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, stderr[-2000:]
    return {"report": report, "readback": json.loads(stdout.strip().splitlines()[-1]), "folder": folder}


def test_the_reader_check_is_the_readback_of_the_original_against_its_copy(reader_checked):
    """--reader-check reads the original again as a copy nobody could tell from it, encoded as an
    output is: its figures are the independent read-back's on the same copy, and on this clip the
    reader follows itself far closer than it follows the avatar."""
    report, theirs = reader_checked["report"], reader_checked["readback"]
    sig, grammar = report["signing"], report["face_grammar"]
    assert sig["reader_hand_recall"] == pytest.approx(theirs["hand_recall"], abs=0.02)
    assert sig["reader_handshape_angle_error_deg"] == pytest.approx(theirs["handshape_angle_error_deg"], abs=0.5)
    for name, their in SERIES.items():
        assert grammar[name]["reader_r"] == pytest.approx(theirs["face_series_r"][their], abs=0.02), name
        assert grammar[name]["reader_gain"] == pytest.approx(theirs["face_series_gain"][their], abs=0.02), name
    assert sig["reader_handshape_angle_error_deg"] < 0.75 * sig["handshape_angle_error_deg"]
    moving = [k for k, v in grammar.items() if v["moving"] and k in SERIES]
    assert moving and all(grammar[k]["reader_r"] >= 0.85 for k in moving)
    assert sig["out_of_goal_at_reader_limit"] == [k for k, v in grammar.items() if v["at_reader_limit"]]
    page = (reader_checked["folder"] / "report" / "report.html").read_text()
    assert "<th>reader r</th>" in page and "reader_handshape_angle_error_deg" in page
    assert not list(reader_checked["folder"].glob("report/*.mp4"))  # the copy is not left behind


def test_a_series_is_at_the_readers_limit_only_where_the_reader_misses_it_too(ours):
    """at_reader_limit: out of the goal against the avatar (damped or exaggerated) AND in the
    reader's own re-read."""
    from signanon.evaluation.signing import add_reader_check

    name = max(SERIES, key=lambda k: ours["face_grammar"][k]["original_std"])
    series = np.asarray(ours["series"]["face_original"][name], np.float64)
    centre = np.nanmean(series)
    half = grammar_entry(name, series, centre + 0.5 * (series - centre))
    full = grammar_entry(name, series, series)
    double = grammar_entry(name, series, centre + 2.0 * (series - centre))
    assert double["status"] == "exaggerated" and not double["damped"]
    cases = ((half, half, True), (half, full, False), (full, half, False), (double, half, True), (double, full, False))
    for main, reader, expected in cases:
        compared = {"signing": {}, "face_grammar": {name: dict(main)}}
        add_reader_check(compared, {"signing": {}, "face_grammar": {name: reader}})
        assert compared["face_grammar"][name]["at_reader_limit"] is expected
        assert compared["signing"]["out_of_goal_at_reader_limit"] == ([name] if expected else [])


def test_the_benchmark_table_carries_the_reader_check(reader_checked, tmp_path):
    """A benchmark of reader-checked reports gets the reader's columns; one without them does not."""
    from signanon.evaluation.benchmark import summary_row, write_benchmark

    report = reader_checked["report"]
    row = summary_row("sample", report)
    assert row["signing.reader_hand_recall"] == report["signing"]["reader_hand_recall"]
    assert row["face_grammar.at_reader_limit"] == " ".join(report["signing"]["out_of_goal_at_reader_limit"])
    for name in ("checked", "plain"):
        (tmp_path / name).mkdir()
    write_benchmark([row], tmp_path / "checked")
    header = (tmp_path / "checked" / "benchmark.csv").read_text().splitlines()[0].split(",")
    assert {"signing.reader_hand_recall", "face_grammar.at_reader_limit"} <= set(header)
    plain = {k: v for k, v in row.items() if "reader" not in k}
    write_benchmark([plain], tmp_path / "plain")
    assert "reader" not in (tmp_path / "plain" / "benchmark.csv").read_text().splitlines()[0]


def test_an_exaggerated_series_is_shown_apart_from_a_damped_one(ours):
    """The page highlights a series moved past gain 1.4 (out of the goal too) in its own colour and
    names it, as it does a damped one."""
    from signanon.evaluation.html_page import _grammar_html

    name = max(SERIES, key=lambda k: ours["face_grammar"][k]["original_std"])
    series = np.asarray(ours["series"]["face_original"][name], np.float64)
    centre = np.nanmean(series)
    rows = {"doubled": grammar_entry(name, series, centre + 2.0 * (series - centre)),
            "halved": grammar_entry(name, series, centre + 0.5 * (series - centre)),
            "kept": grammar_entry(name, series, series)}
    page = _grammar_html(rows)
    assert page.count('<tr class="exaggerated">') == 1 and page.count('<tr class="damped">') == 1
    assert "<b>Exaggerated:</b> doubled" in page and "<b>Damped facial grammar:</b> halved" in page
