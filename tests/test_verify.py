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
from signanon.errors import ReidentifiedError
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
    from signanon.cli.anonymize import describe

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
