"""The avatar anonymizer end to end, on real signing clips.

The avatar output is read back by an independent run of MediaPipe Holistic: it must find the hands
where the source has them, read the same handshapes, and follow the signer's face.
"""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from conftest import INSET_BOX, INSET_REGION, broadcast_clip
from signanon.cli.main import main
from signanon.evaluation.signing import FACE_SERIES, flexion_angles, pearson
from signanon.landmarks import layout
from signanon.landmarks.holistic import HolisticEstimator
from signanon.video import iter_frames, probe_video
from signanon.video.region import Region

CLIPS = ["examples/asl_webcam.mp4", "tests/data/asl_house.gif", "tests/data/asl_different.gif"]
REPO = Path(__file__).resolve().parents[1]

# Tolerances measured on the three clips (see the issue notes for the figures).
HAND_RECALL_MIN = 0.90  # all three clips together (over 100 source hands)
# per clip: the webcam clip has 20 source hands (one hand = 0.05), and its output read back
# 0.95/0.90/0.95/0.85 in four runs of the same code (x264 was not bit-repeatable then: see
# test_the_same_clip_gives_the_same_file)
HAND_RECALL_MIN_CLIP = 0.85
FLEXION_ERROR_MAX_DEG = 15.0
# Measured 0.74 when written (0.84 with hands boosted 1.4x), 0.68 after the curled-finger rim, 0.65
# with the per-clip face gains: the hands of frames 28-35 (flat hands, edge-on) flip with any change
# of the drawn face (that change lost three and found two). Palms grown to >= 40 px read 0.87 here
# but cost 2-3 deg of finger angle and hand-to-face contact on four other clips
# (benchmarks/hands_issue11.txt), so they are not the default.
APPROACH_RECALL_MIN = 0.6


def landmarks_of(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(T, 586, 3) data and (T, 586) confidence of every frame, from a fresh estimator."""
    data, conf = [], []
    with HolisticEstimator() as estimator:
        for frame in iter_frames(probe_video(path)):
            d, c = estimator(frame)
            data.append(d)
            conf.append(c)
    return np.stack(data), np.stack(conf)


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict:
    """Anonymize each clip once via the CLI; landmarks of source and output, and the summaries."""
    out_dir = tmp_path_factory.mktemp("anon")
    results = {}
    for rel in CLIPS:
        src = REPO / rel
        out = out_dir / (src.stem + "_anon.mp4")
        summary = out_dir / (src.stem + ".json")
        assert main(["anonymize", str(src), "-o", str(out), "--summary", str(summary), "--quiet"]) == 0
        results[rel] = {
            "src": src,
            "out": out,
            "summary": json.loads(summary.read_text()),
            "src_landmarks": landmarks_of(src),
            "out_landmarks": landmarks_of(out),
        }
    return results


@pytest.mark.parametrize("clip", CLIPS)
def test_frame_count_and_rate_kept(runs, clip):
    src, out = probe_video(runs[clip]["src"]), probe_video(runs[clip]["out"])
    assert out.frame_count == src.frame_count
    assert out.fps == src.fps
    # the input's size (made even), or 480 on the shorter side for a small clip (320x240 -> 640x480)
    want = (src.width, src.height) if min(src.width, src.height) >= 480 else (round(src.width * 480 / min(src.width, src.height)), 480)
    assert (out.width, out.height) == (want[0] + want[0] % 2, want[1] + want[1] % 2)
    s = runs[clip]["summary"]
    assert s["frames_in"] == s["frames_out"] == src.frame_count


def hand_agreement(run) -> tuple[float, float, int]:
    """(recall, mean flexion-angle error in degrees, hands compared) over both hands."""
    (sd, sc), (od, oc) = run["src_landmarks"], run["out_landmarks"]
    width = float(probe_video(run["src"]).width)
    found = total = 0
    errors = []
    for rows in (layout.LEFT_HAND, layout.RIGHT_HAND):
        src_has = sc[:, rows].max(axis=1) > 0
        out_has = oc[:, rows].max(axis=1) > 0
        total += int(src_has.sum())
        found += int((src_has & out_has).sum())
        for t in np.flatnonzero(src_has & out_has):
            # MediaPipe's hand z is in normalised-x units; bring it to pixels like x and y.
            def pts(d, width):
                p = d[t, rows].astype(np.float64).copy()
                p[:, 2] *= width
                return p

            errors.append(np.abs(flexion_angles(pts(sd, width)) - flexion_angles(pts(od, width))).mean())
    return found / max(total, 1), float(np.mean(errors)) if errors else float("nan"), total


def assert_hands_agree(run, recall_min: float = HAND_RECALL_MIN_CLIP, min_hands: int = 1) -> None:
    """At least ``min_hands`` source hands, ``recall_min`` of them found in the output, and their
    flexion angles within FLEXION_ERROR_MAX_DEG on average."""
    recall, error, total = hand_agreement(run)
    assert total >= min_hands
    assert recall >= recall_min, f"hand recall {recall:.2f} over {total} source hands"
    assert error <= FLEXION_ERROR_MAX_DEG, f"mean flexion error {error:.1f} deg"


@pytest.mark.parametrize("clip", CLIPS)
def test_hands_found_and_handshapes_read_the_same(runs, clip):
    assert_hands_agree(runs[clip])


def test_hands_found_over_all_clips(runs):
    found = total = 0
    for clip in CLIPS:
        recall, _, n = hand_agreement(runs[clip])
        found, total = found + recall * n, total + n
    assert total > 100
    assert found / total >= HAND_RECALL_MIN, f"hand recall {found / total:.3f} over {total} source hands"


def test_the_same_clip_gives_the_same_file(runs, tmp_path):
    """Anonymizing a clip again writes the same bytes: a corpus rebuilt from the same videos is
    the same corpus, and a change of the output comes from a change of the code. The webcam clip's
    output differed between runs of the same code before the writer held x264 to its AVX2 code on
    AVX-512 CPUs (signanon.video.writer.x264_options), and its read-back with it."""
    first = runs["examples/asl_webcam.mp4"]
    again = tmp_path / "again.mp4"
    assert main(["anonymize", str(first["src"]), "-o", str(again), "--quiet"]) == 0
    digest = [hashlib.sha256(path.read_bytes()).hexdigest()[:16] for path in (first["out"], again)]
    assert digest[0] == digest[1], "two runs on the same clip wrote different files"


def face_series(data: np.ndarray, conf: np.ndarray, name: str) -> np.ndarray:
    fn = FACE_SERIES[name]
    out = np.full(len(data), np.nan)
    for t in range(len(data)):
        if conf[t, layout.FACE].max() > 0:
            out[t] = fn(data[t, layout.FACE])
    return out


# A mouth opening that moves less than this (std, inter-ocular units) is under the read-back's noise
# on these small faces: ASL DIFFERENT's 0.016 is ~0.5 px, and the read-back of the original itself,
# scaled by 0.97 and shifted by 1.5 %, follows it at r 0.82 and gain 0.30 (benchmarks/signing_issue11.txt).
MOVING_MOUTH = 0.02


@pytest.mark.parametrize("series", ["brow_raise", "mouth_opening"])
def test_face_grammar_series_follow_the_source(runs, series):
    # Pool the clips: each clip's series is standardised on its own, then correlated together.
    # Measured (mouth: ASL HOUSE only, std 0.079): brows r 0.83 / 0.36 / 0.86 per clip; mouth r 0.98,
    # gain 1.00 (ASL DIFFERENT's 0.016 reads r 0.12 at mouth_gain 0.9, 0.53 at the former 1.7).
    src_all, out_all = [], []
    for clip, run in runs.items():
        s = face_series(*run["src_landmarks"], series)
        o = face_series(*run["out_landmarks"], series)
        assert np.isfinite(o).mean() >= 0.9, "the avatar's face must be found in >= 90% of frames"
        keep = np.isfinite(s) & np.isfinite(o)
        s, o = s[keep], o[keep]
        if series == "mouth_opening":
            if s.std() < MOVING_MOUTH:
                continue
            assert 0.7 <= o.std() / s.std() <= 1.4, f"{clip}: mouth drawn at {o.std() / s.std():.2f} of the signer's"
        src_all.append((s - s.mean()) / (s.std() + 1e-9))
        out_all.append((o - o.mean()) / (o.std() + 1e-9))
    assert src_all, "no clip moves this series"
    r = pearson(np.concatenate(src_all), np.concatenate(out_all))
    assert r >= (0.5 if series == "brow_raise" else 0.8), f"{series}: r = {r:.2f}"



def test_summary_reports_landmark_groups(runs):
    s = runs[CLIPS[0]]["summary"]
    src_conf = runs[CLIPS[0]]["src_landmarks"][1]
    assert set(s["frames_with"]) >= {"POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS"}
    # the summary counts what the same estimator finds
    assert s["frames_with"]["FACE_LANDMARKS"] == int((src_conf[:, layout.FACE].max(axis=1) > 0).sum())
    assert s["seconds_per_stage"]["landmarks"] > 0
    assert s["frames_without_person"] == 0


def test_every_signer_becomes_the_same_avatar_and_none_is_recognised(runs):
    """dlib sees one person in the three avatars (the canonical face) and none of the signers:
    an avatar is nearer to another signer's avatar than to its own signer."""
    from signanon.evaluation.identity import DlibEmbedder

    embedder = DlibEmbedder()

    def embeddings(path: Path) -> np.ndarray:
        found = []
        for i, frame in enumerate(iter_frames(probe_video(path))):
            if i % 3 == 0 and (faces := embedder.faces(frame)):
                found.append(faces[0].embedding)
        return np.array(found)

    def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.linalg.norm(a[:, None] - b[None], axis=2)

    avatar = {clip: embeddings(run["out"]) for clip, run in runs.items()}
    signer = {clip: embeddings(run["src"]) for clip, run in runs.items()}
    for clip in runs:
        assert len(avatar[clip]) >= 10 and len(signer[clip]) >= 10
        own = distances(avatar[clip], signer[clip])
        assert own.min() > embedder.threshold, f"{clip}: an avatar frame matches its signer"
        for other in runs:
            if other != clip:
                between = distances(avatar[clip], avatar[other]).mean()
                assert between < embedder.threshold and between < own.mean()


# --- a hard framing made from a repo clip --------------------------------------------------------


def approach_clip(source: Path, path: Path, frames: int = 40, size: tuple[int, int] = (360, 640)) -> Path:
    """A portrait zoom ramp of a real clip: its frames on a grey portrait canvas, scaled from 0.45
    to 1.3 of the canvas width over the clip (the signer small, then walking toward the camera)."""
    import itertools

    import cv2

    from signanon.video import VideoWriter

    info = probe_video(source)
    w, h = size
    with VideoWriter(path, w, h, info.fps) as writer:
        for i, frame in enumerate(itertools.islice(iter_frames(info), frames)):
            k = (0.45 + 0.85 * i / (frames - 1)) * w / info.width
            m = np.array([[k, 0, w / 2 - k * info.width / 2], [0, k, 0.6 * h - k * info.height / 2 - 60 * k]])
            writer.write(cv2.warpAffine(frame, m, (w, h), borderValue=(118, 118, 118)))
    return path


def framing_run(tmp_path_factory, name: str, make, source: str, *flags: str) -> dict:
    """``make(REPO / source, path)`` written to a fresh folder ``name``, then :func:`anonymized_run`."""
    return anonymized_run(make(REPO / source, tmp_path_factory.mktemp(name) / f"{name}.mp4"), *flags)


def anonymized_run(src: Path, *flags: str) -> dict:
    """``src`` anonymized by the command line beside it (with ``flags``), and both videos' landmarks."""
    out = src.with_name(f"{src.stem}_anon.mp4")
    assert main(["anonymize", str(src), "-o", str(out), "--quiet", *flags]) == 0
    return {"src": src, "out": out, "src_landmarks": landmarks_of(src), "out_landmarks": landmarks_of(out)}


@pytest.fixture(scope="module")
def approach_run(tmp_path_factory) -> dict:
    return framing_run(tmp_path_factory, "approach", approach_clip, "tests/data/asl_house.gif")


def _shoulder_widths_and_necks(data: np.ndarray, conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: 2-D shoulder width (px) and nose height above the shoulder centre over it (NaN
    where the shoulders or the nose are missing)."""
    ls, rs, nose = data[:, layout.LEFT_SHOULDER, :2], data[:, layout.RIGHT_SHOULDER, :2], data[:, 0, :2]
    width = np.linalg.norm(ls - rs, axis=1)
    neck = ((ls[:, 1] + rs[:, 1]) / 2 - nose[:, 1]) / np.maximum(width, 1e-6)
    seen = (conf[:, [layout.LEFT_SHOULDER, layout.RIGHT_SHOULDER, 0]] > 0).all(axis=1)
    return np.where(seen, width, np.nan), np.where(seen, neck, np.nan)


def test_signer_walking_toward_the_camera_keeps_body_and_hands(approach_run):
    """Portrait canvas, the signer growing from small to close: the avatar grows with them (its
    shoulder width follows the signer's), the neck never stretches and the hands stay readable."""
    (sd, sc), (od, oc) = approach_run["src_landmarks"], approach_run["out_landmarks"]
    src_w, _ = _shoulder_widths_and_necks(sd, sc)
    out_w, out_neck = _shoulder_widths_and_necks(od, oc)
    both = np.isfinite(src_w) & np.isfinite(out_w)
    assert both.mean() >= 0.9
    ratio = out_w[both] / src_w[both]
    assert src_w[both][-5:].mean() > 2.0 * src_w[both][:5].mean()  # the clip really zooms
    assert 0.75 < np.median(ratio) < 1.3 and ratio.max() / ratio.min() < 1.5  # no size drift
    # a stretched neck read ~1.5-2x its first height by the end; canonical is ~0.5-0.7
    assert np.nanmax(out_neck) < 0.95 and np.nanmax(out_neck) / np.nanmin(out_neck) < 1.5
    assert_hands_agree(approach_run, APPROACH_RECALL_MIN)


# --- a wide shot: a small signer off-centre in a large landscape frame -------------------------------


def wide_clip(source: Path, path: Path, frames: int = 30, size: tuple[int, int] = (960, 540)) -> Path:
    """A real clip on a grey landscape canvas at 60% of its height, centred at (0.3, 0.55) of it:
    the signer a small part of the frame, left of centre (a wide shot)."""
    import itertools

    import cv2

    from signanon.video import VideoWriter

    info = probe_video(source)
    w, h = size
    k = 0.6 * h / info.height
    m = np.array([[k, 0, 0.3 * w - k * info.width / 2], [0, k, 0.55 * h - k * info.height / 2]])
    with VideoWriter(path, w, h, info.fps) as writer:
        for frame in itertools.islice(iter_frames(info), frames):
            writer.write(cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_AREA, borderValue=(118, 118, 118)))
    return path


@pytest.fixture(scope="module")
def wide_run(tmp_path_factory) -> dict:
    return framing_run(tmp_path_factory, "wide", wide_clip, "tests/data/asl_different.gif")


def test_signer_in_a_wide_shot_is_drawn_where_and_as_large_as_they_are(wide_run):
    """The avatar stands where the signer stands (not centred, not filling the frame), at the
    signer's size, and its hands read back."""
    (sd, sc), (od, oc) = wide_run["src_landmarks"], wide_run["out_landmarks"]
    width = float(probe_video(wide_run["src"]).width)
    src_w, _ = _shoulder_widths_and_necks(sd, sc)
    out_w, _ = _shoulder_widths_and_necks(od, oc)
    both = np.isfinite(src_w) & np.isfinite(out_w)
    assert both.mean() >= 0.9
    centre = lambda d: (d[both, layout.LEFT_SHOULDER, 0] + d[both, layout.RIGHT_SHOULDER, 0]) / 2  # noqa: E731
    assert np.median(centre(sd)) < 0.4 * width  # the clip really puts the signer left of centre
    assert np.median(np.abs(centre(od) - centre(sd))) < 0.03 * width
    ratio = out_w[both] / src_w[both]
    assert 0.8 < np.median(ratio) < 1.25
    assert_hands_agree(wide_run, 0.85, min_hands=10)


# --- a clip recorded at half the frame rate --------------------------------------------------------


def halfrate_clip(source: Path, path: Path) -> Path:
    """Every other frame of a real clip at half its frame rate (a 12.5 fps recording: twice the
    movement between frames)."""
    from signanon.video import VideoWriter

    info = probe_video(source)
    with VideoWriter(path, info.width, info.height, info.fps / 2) as writer:
        for i, frame in enumerate(iter_frames(info)):
            if i % 2 == 0:
                writer.write(frame)
    return path


@pytest.fixture(scope="module")
def halfrate_run(tmp_path_factory) -> dict:
    # the lips' and the brows' drawing choices off: the rate and the hands are tested (they cost
    # 2 x 8 s on this clip's 50 frames)
    return framing_run(tmp_path_factory, "halfrate", halfrate_clip, "tests/data/dgs_zug_100.mp4",
                       "--no-mouth-choice", "--no-furrow-choice")  # fmt: skip


def test_a_clip_at_half_the_frame_rate_keeps_its_rate_and_its_hands(halfrate_run):
    """Smoothing, gap filling and the face's fade work in seconds, not frames: at 12.5 fps the output
    keeps the exact rate and every frame, and the hands read back within the bounds of the
    full-rate clips (this 100-frame DGS cut, measured here: 0.95 of 40 hands, 11.2 deg at half
    rate, 1.00 / 10.1 deg since the lips' and brows' choices are off here; 0.98 of 81, 8.8 deg at
    full rate)."""
    src, out = probe_video(halfrate_run["src"]), probe_video(halfrate_run["out"])
    assert src.fps == Fraction(25, 2) and out.fps == src.fps
    assert out.frame_count == src.frame_count == 50
    assert_hands_agree(halfrate_run, min_hands=20)


def test_an_interpreter_inset_is_anonymized_with_region(tmp_path, monkeypatch):
    """A broadcast: a talking head fills the frame, the DGS signer signs in an inset at its lower
    right. Holistic follows one of the two (with a 213x160 inset in a 640x480 frame it followed the
    speaker, and the avatar signed with her body; here it follows the signer, drawn as small as the
    inset: read back 0.93 / 14.5 deg against the inset, 0.95 / 11.2 with the region). ``--region``
    cuts the inset out first: the output is the inset's size and its hands agree with the inset
    signer's, and ``evaluate --region`` compares the same box. The temporary cut is gone afterwards,
    the input unchanged."""
    import tempfile

    src, cut = broadcast_clip(tmp_path / "broadcast.mp4", tmp_path / "inset.mp4", start=30, frames=60), tmp_path / "inset.mp4"
    before, src_info = hashlib.sha256(src.read_bytes()).hexdigest(), probe_video(src)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the run's temporary cut goes
    out, summary = tmp_path / "inset_anon.mp4", tmp_path / "run.json"
    # the hand and lip drawing choices off (they keep the plain hands here: the same read-back,
    # 0.98 / 11.7 deg, in 13 s instead of 34): the region is what is tested
    assert main(["anonymize", str(src), "-o", str(out), "--region", INSET_REGION, "--summary", str(summary), "-q",
                 "--no-hand-choice", "--no-mouth-choice"]) == 0  # fmt: skip
    info = probe_video(out)
    assert (info.width, info.height, info.frame_count) == (640, 480, 60)  # the 320x240 box, drawn at 480
    record = json.loads(summary.read_text())
    assert record["extra"]["region"] == INSET_BOX and record["input"] == str(src)
    run = {"src": cut, "out": out, "src_landmarks": landmarks_of(cut), "out_landmarks": landmarks_of(out)}
    assert_hands_agree(run, min_hands=20)
    # evaluate compares the same box of the original with the output, and says so
    report_dir = tmp_path / "report"
    assert main(["evaluate", "--original", str(src), "--anonymized", str(out), "--region", INSET_REGION,
                 "-o", str(report_dir), "-q", "--every", "3", "--no-video", "--no-reader-check"]) == 0
    report = json.loads((report_dir / "report.json").read_text())
    assert report["inputs"]["original"]["path"] == str(src) and report["inputs"]["original"]["region"] == INSET_BOX
    assert report["inputs"]["original"]["width"] == 320 and report["signing"]["hand_recall"] >= HAND_RECALL_MIN_CLIP
    assert report["identity"]["reid_rate"] == 0.0
    # the same box as fractions of the frame is the same box (tests/test_job.py runs a job with fractions)
    assert Region.parse("0.5875,0.5833,0.4,0.4").box(src_info.width, src_info.height) == tuple(INSET_BOX)
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before
    assert list(scratch.iterdir()) == []  # the cut is gone


@pytest.mark.parametrize("region, problem", [
    ("1,2,3", "must be four numbers"), ("700,500,200,200", "reaches past the 800x600 frame"),
    ("10,10,30,30", "at least 64x64 px"), ("0.5,0.5,0,0.2", "has no area"),
])  # fmt: skip
def test_a_bad_region_is_one_line_and_writes_nothing(region, problem, tmp_path, capsys):
    from signanon.video import VideoWriter

    src = tmp_path / "grey.mp4"
    with VideoWriter(src, 800, 600, Fraction(25)) as writer:
        writer.write(np.full((600, 800, 3), 128, np.uint8))
    assert main(["anonymize", str(src), "-o", str(tmp_path / "out.mp4"), "--region", region, "-q"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and problem in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grey.mp4"]


def test_a_small_signer_is_drawn_larger_and_keeps_the_brow_raise(runs, tmp_path):
    """ASL DIFFERENT (320x240, a ~30 px face): by default the avatar is drawn at 640x480 from the
    same landmarks (``min_output_side`` 480), and the brow raise the read-back takes at two thirds
    of the signer's when drawn at 320x240 (``--min-output-side 0``) reads in full (our landmarks,
    measured: gain 0.63 -> 0.78, r 0.88 -> 0.89); the hands still agree, and the identity guard
    checked the larger faces."""
    src = REPO / "tests" / "data" / "asl_different.gif"
    default = runs["tests/data/asl_different.gif"]
    info = probe_video(default["out"])
    assert (info.width, info.height, info.frame_count) == (640, 480, probe_video(src).frame_count)
    record = default["summary"]
    assert (record["width"], record["height"]) == (640, 480)
    guard = record["extra"]["identity_guard"]
    assert guard["checked"] > 0 and guard["min_distance"] > 0.6
    out = tmp_path / "different_own_size.mp4"
    # the hand and lip drawing choices off at its own size (they draw neither the brows nor the size)
    assert main(["anonymize", str(src), "-o", str(out), "--min-output-side", "0", "-q", "--no-hand-choice", "--no-mouth-choice"]) == 0
    assert (probe_video(out).width, probe_video(out).height) == (320, 240)
    run = {"src": src, "out": out, "src_landmarks": default["src_landmarks"], "out_landmarks": landmarks_of(out)}
    assert_hands_agree(run, min_hands=20)
    gains = []
    for landmarks in (run["out_landmarks"], default["out_landmarks"]):  # own size, then drawn larger
        s = face_series(*run["src_landmarks"], "brow_raise")
        o = face_series(*landmarks, "brow_raise")
        keep = np.isfinite(s) & np.isfinite(o)
        assert pearson(s[keep], o[keep]) >= 0.6
        gains.append(o[keep].std() / s[keep].std())
    assert gains[1] >= 0.7 and gains[1] >= gains[0] + 0.08, f"brow gain at 1x {gains[0]:.2f}, drawn larger {gains[1]:.2f}"
