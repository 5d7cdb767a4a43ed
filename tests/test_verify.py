"""The privacy gate (issue 13): no output is published in which dlib still recognises the signer.

The diffusion method's translation stage is replaced here by a stand-in that copies the input (the
tiny random VAE of the toy pipeline destroys every image, so it cannot make a recognisable face):
that is the worst case the gate must catch.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import pytest

from conftest import first_frames_clip
from signanon.diffusion.runner import DiffusionConfig
from signanon.errors import InputError, ReidentifiedError
from signanon.evaluation.verify import VerifyConfig, verify_video
from signanon.job import AnonymizeJob, run_job
from signanon.summary import RunSummary
from signanon.video import VideoWriter, iter_frames, probe_video

FRAMES = 12


class CopyingTranslator:
    """Stands in for the diffusion method: writes the input frames unchanged (or another clip's)."""

    def __init__(self, config, source: Path | None = None):
        self.config, self.source = config, source

    def __call__(self, input_path, output_path, *, keep_audio=False, progress=None, ablation=None):
        info = probe_video(input_path)
        frames = iter_frames(probe_video(self.source or input_path))
        with VideoWriter(output_path, info.width, info.height, info.fps) as writer:
            for frame in itertools.islice(frames, info.frame_count):
                writer.write(cv2.resize(frame, (info.width, info.height), interpolation=cv2.INTER_CUBIC))
            written = writer.frames_written
        return RunSummary(method="diffusion", input=str(input_path), output=str(output_path),
                          frames_in=info.frame_count, frames_out=written)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, sample_clip) -> Path:
    return first_frames_clip(sample_clip, FRAMES, tmp_path_factory.mktemp("clip") / "signer.mp4")


def test_an_output_that_is_the_input_is_refused_and_not_written(tmp_path, clip):
    out, summary = tmp_path / "anon.mp4", tmp_path / "run.json"
    job = AnonymizeJob(clip, out, DiffusionConfig(), summary=summary)
    with pytest.raises(ReidentifiedError) as err:
        run_job(job, anonymizer=CopyingTranslator(job.config))
    message = str(err.value)
    assert "\n" not in message
    assert f"recognised in {FRAMES} of {FRAMES} checked frames" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]  # no output, no hidden file
    record = json.loads(summary.read_text())["verification"]
    assert record["skipped"] is False
    assert record["reidentified_frames"] == record["checked_frames"] == FRAMES
    # the same pixels after one more x264 encode: dlib read 0.03-0.051,
    # against 0.6 for "same person" and ~0.7+ for another signer
    assert record["min_distance"] < 0.1
    assert len(record["frames"]) == FRAMES and all(f["reidentified"] for f in record["frames"])
    assert record["seconds_per_frame"] > 0


def test_a_stricter_margin_refuses_more_and_every_n_checks_fewer(tmp_path, clip, data_dir):
    other = first_frames_clip(data_dir / "asl_house.gif", FRAMES, tmp_path / "other.mp4")
    lax = verify_video(clip, other, VerifyConfig(every=3))
    assert lax["checked_frames"] == FRAMES // 3
    strict = verify_video(clip, other, VerifyConfig(every=3, margin=2.0))  # any face within 2.6: refused
    assert strict["threshold"] == pytest.approx(2.6)
    assert strict["reidentified_frames"] > lax["reidentified_frames"] == 0


def test_a_different_signer_is_accepted(tmp_path, clip, data_dir):
    job = AnonymizeJob(clip, tmp_path / "anon.mp4", DiffusionConfig())
    summary = run_job(job, anonymizer=CopyingTranslator(job.config, source=data_dir / "asl_different.gif"))
    assert (tmp_path / "anon.mp4").is_file() and summary.output == str(tmp_path / "anon.mp4")
    v = summary.verification
    assert v["reidentified_frames"] == 0 and v["checked_frames"] == FRAMES
    assert v["min_distance"] is None or v["min_distance"] > 0.6
    assert [p.name for p in tmp_path.iterdir()] == ["anon.mp4"]


def test_avatar_output_passes_the_gate_on_request(tmp_path, clip):
    from signanon.avatar.anonymizer import AvatarConfig

    summary = run_job(AnonymizeJob(clip, tmp_path / "anon.mp4", AvatarConfig(), verify=VerifyConfig(enabled=True)))
    v = summary.verification
    assert v["skipped"] is False and v["checked_frames"] == FRAMES and v["reidentified_frames"] == 0
    assert probe_video(tmp_path / "anon.mp4").frame_count == FRAMES


def test_no_verify_writes_and_says_so(tmp_path, clip):
    from signanon.outcome import describe

    job = AnonymizeJob(clip, tmp_path / "anon.mp4", DiffusionConfig(), verify=VerifyConfig(enabled=False))
    summary = run_job(job, anonymizer=CopyingTranslator(job.config))
    assert (tmp_path / "anon.mp4").is_file()
    assert summary.verification["skipped"] is True
    summary.key_frames = summary.key_frames_resumed = summary.unet_evaluations = 0
    assert "privacy check skipped" in describe(summary)


def test_per_frame_distances_agree_with_evaluate(tmp_path, clip, data_dir):
    from signanon.evaluation.evaluate import EvaluationConfig, Evaluator

    other = first_frames_clip(data_dir / "asl_different.gif", FRAMES, tmp_path / "other.mp4")
    record = verify_video(clip, other)
    report = Evaluator(EvaluationConfig(side_by_side=False)).evaluate(clip, other, [], tmp_path / "eval")
    theirs = {f["frame"]: f for f in report["identity"]["per_frame"]}
    assert len(record["frames"]) == len(theirs) == FRAMES
    for f in record["frames"]:
        for key in ("distance", "gallery_distance"):
            a, b = f[key], theirs[f["frame"]][key]
            assert (a is None and b is None) or a == pytest.approx(b, abs=1e-9)


def _photo_clip(path: Path, rgb, frames: int = 4) -> Path:
    """A still photo as a short video (the camera drifting 2 px a frame, so no two frames are one)."""
    import numpy as np

    h, w = rgb.shape[:2]
    with VideoWriter(path, w - w % 2, h - h % 2, 25.0) as writer:
        for i in range(frames):
            writer.write(np.ascontiguousarray(np.roll(rgb, 2 * i, axis=1)[: h - h % 2, : w - w % 2]))
    return path


def test_a_second_person_left_recognisable_is_refused(tmp_path, data_dir):
    # Biden, Obama and a child in one real photo. The "anonymization" hides, in each frame, only the
    # face the recogniser ranks first there: comparing largest faces (evaluate's per-frame distance)
    # pairs two different people and would pass it; the gate compares every face and refuses it.
    from signanon.evaluation.identity import EVALUATE_ALIGNMENT, DlibEmbedder
    from signanon.recognition import DlibConfig

    embedder = DlibEmbedder(DlibConfig(upsample=1, alignment=EVALUATE_ALIGNMENT))  # as the gate detects
    photo = cv2.cvtColor(cv2.imread(str(data_dir / "two_people" / "obama_and_biden.jpg")), cv2.COLOR_BGR2RGB)
    original = _photo_clip(tmp_path / "three.mp4", photo)
    info = probe_video(original)
    with VideoWriter(tmp_path / "one_hidden.mp4", info.width, info.height, info.fps) as writer:
        for frame in iter_frames(info):
            faces = embedder.faces(frame)
            assert len(faces) >= 2  # dlib finds two or three of them, frame by frame
            x0, y0, x1, y1 = faces[0].box
            frame = frame.copy()
            frame[max(0, y0 - 20) : y1 + 20, max(0, x0 - 20) : x1 + 20] = 128
            writer.write(frame)
    output = tmp_path / "one_hidden.mp4"
    record = verify_video(original, output)
    assert record["checked_frames"] == 4
    for f in record["frames"]:
        assert f["original_face"] and f["output_faces"] >= 1
        assert f["distance"] > 0.6  # largest against largest: two different people
        assert f["nearest_distance"] < 0.2 and f["reidentified"]  # the others are still there
    assert record["reidentified_frames"] == 4 and record["min_distance"] < 0.2
    # evaluate's identity section: the paper's largest-face rate misses it, the every-face rate agrees with the gate
    from signanon.evaluation.identity import face_track, identity_report

    tracks = [face_track(iter_frames(probe_video(v)), embedder) for v in (original, output)]
    report = identity_report(*tracks, embedder)
    assert report["reid_rate"] == 0.0 and report["reid_rate_every_face"] == 1.0
    assert report["every_face_distance_min"] == pytest.approx(record["min_distance"], abs=1e-9)
    # the read-back's measure (the mean of the original's largest faces) is in the gate too, as in evaluate
    assert all(f["nearest_distance"] <= f["mean_distance"] for f in record["frames"])
    assert min(f["mean_distance"] for f in record["frames"]) == pytest.approx(report["signer_mean_distance_min"], abs=1e-9)
    # and through the job: nothing written, the one line says a person other than the signer counts
    out = tmp_path / "anon.mp4"
    job = AnonymizeJob(original, out, DiffusionConfig())
    with pytest.raises(ReidentifiedError, match=r"or another person the original shows\) is recognised in 4 of 4"):
        run_job(job, anonymizer=CopyingTranslator(job.config, source=output))
    assert not out.exists()


def test_a_margin_or_threshold_that_would_open_the_gate_is_refused():
    # every comparison with nan is false: the gate would never refuse, and the run said it passed
    for bad in (float("nan"), -0.1):
        with pytest.raises(InputError, match="margin"):
            VerifyConfig(margin=bad)
    assert VerifyConfig(margin=float("inf")).limit == float("inf")  # refuse everything: fails closed
    # a nan or negative threshold published an unchanged copy of the input (distance 0.000) as passed
    for bad in (float("nan"), -1.0, 0.0):
        with pytest.raises(InputError, match="threshold"):
            VerifyConfig(enabled=True, threshold=bad)
    for bad in (0, 1.5, True):
        with pytest.raises(InputError, match="every"):
            VerifyConfig(every=bad)
