"""The job object every front-end builds, and the anonymize command line generated from the configs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from signanon.avatar.anonymizer import AvatarConfig
from signanon.errors import InputError, OutputError
from signanon.job import AnonymizeJob, check_job, run_job
from signanon.video import probe_video

REPO = Path(__file__).resolve().parents[1]


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "signanon.cli.main", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--prompt", "a woman"], "--prompt applies to --method diffusion"),
        (["--steps", "5"], "--steps applies to --method diffusion"),
        (["--no-face-enhance"], "--face-enhance applies to --method diffusion"),
        (["--method", "diffusion", "--palette", "dark-skin"], "--palette applies to --method avatar"),
        (["--method", "diffusion", "--background", "#ffffff"], "--background applies to --method avatar"),
        (["--ablation", "abl.mp4"], "--ablation applies to --method diffusion"),
    ],
)
def test_a_flag_of_the_other_method_is_refused_in_one_line(tmp_path, sample_clip, flags, message):
    out = tmp_path / "out.mp4"
    result = run_cli(["anonymize", str(sample_clip), "-o", str(out), *flags])
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"signanon: error: {message}"]
    assert list(tmp_path.iterdir()) == []


def test_every_config_setting_has_one_flag_with_the_dataclass_default():
    from signanon.cli.main import build_parser
    from signanon.config import settings_of
    from signanon.diffusion.runner import DiffusionConfig

    anonymize = build_parser()._subparsers._group_actions[0].choices["anonymize"]
    flags = {s: a for a in anonymize._actions for s in a.option_strings}
    for config in (AvatarConfig, DiffusionConfig):
        for s in settings_of(config):
            if not s.info.cli:
                continue
            action = flags[s.flag]
            assert action.default is None  # the dataclass holds the only default
            assert action.dest == s.dest


def test_library_errors_name_the_setting_not_a_flag():
    with pytest.raises(InputError, match="palette"):
        AvatarConfig(palette="neon")
    with pytest.raises(InputError) as err:
        AvatarConfig(background="not a colour")
    assert "--" not in str(err.value)


def test_job_paths_are_checked_before_any_work(tmp_path, sample_clip):
    with pytest.raises(OutputError, match="must end in .mp4"):
        check_job(AnonymizeJob(sample_clip, tmp_path / "out.avi"))
    with pytest.raises(OutputError, match="summary folder"):
        check_job(AnonymizeJob(sample_clip, tmp_path / "out.mp4", summary=tmp_path / "missing" / "s.json"))
    with pytest.raises(InputError, match="ablation applies to the diffusion method"):
        check_job(AnonymizeJob(sample_clip, tmp_path / "out.mp4", ablation=tmp_path / "a.mp4"))
    with pytest.raises(OutputError, match="must not be the input"):
        check_job(AnonymizeJob(sample_clip, sample_clip))
    assert list(tmp_path.iterdir()) == []


def test_a_summary_path_that_is_the_input_or_the_output_in_another_spelling_is_refused(tmp_path, sample_clip):
    # a summary written there replaced the input video with JSON (or the finished output)
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    clip = work / "clip.mp4"
    clip.write_bytes(sample_clip.read_bytes())
    (work / "link.mp4").symlink_to(clip)
    os.link(clip, work / "hard.mp4")
    before = clip.read_bytes()
    out = work / "out.mp4"
    cases = [
        AnonymizeJob(clip, out, summary=work / "sub" / ".." / "clip.mp4"),  # the input, through ..
        AnonymizeJob(work / "link.mp4", out, summary=clip),  # the input is a symlink to the summary
        AnonymizeJob(clip, out, summary=work / "hard.mp4"),  # a hard link of the input
        AnonymizeJob(clip, out, summary=work / "sub" / ".." / "out.mp4"),  # the output, through ..
    ]
    for job in cases:
        with pytest.raises(OutputError, match="summary path .* must differ from the input and the output"):
            run_job(job)
    assert clip.read_bytes() == before and not out.exists()
    assert sorted(p.name for p in work.iterdir()) == ["clip.mp4", "hard.mp4", "link.mp4", "sub"]


def test_a_summary_folder_that_cannot_be_written_is_refused_before_the_work(tmp_path, sample_clip):
    # found only after the video was published, as a raw FileNotFoundError
    out = tmp_path / "out.mp4"
    with pytest.raises(OutputError, match=r"summary folder cannot be written .*/proc"):
        run_job(AnonymizeJob(sample_clip, out, summary="/proc/s.json"))
    assert not out.exists()


@pytest.mark.parametrize(
    "changes, error, words",
    [
        (dict(keep_audio="no"), InputError, "keep_audio must be True or False"),  # a truthy string kept the voices
        (dict(keep_audio=1), InputError, "keep_audio must be True or False"),
        (dict(region=(-10, 0, 100, 100)), InputError, "negative"),
        (dict(region=(float("nan"), 0, 0.5, 0.5)), InputError, "finite"),
        (dict(region=5), InputError, "region must be"),
        (dict(input=None), InputError, "needs an input path"),
        (dict(output=7), InputError, "output must be a path, got int"),
        (dict(verify="yes"), InputError, "verify must be a VerifyConfig"),
    ],
    ids=["keep-audio-string", "keep-audio-int", "region-negative", "region-nan", "region-int", "no-input",
         "output-int", "verify-string"],
)
def test_job_values_of_the_wrong_kind_are_refused_in_one_line(tmp_path, sample_clip, changes, error, words):
    values = dict(input=sample_clip, output=tmp_path / "out.mp4") | changes
    with pytest.raises(error, match=re.escape(words)):
        AnonymizeJob(**values)
    assert list(tmp_path.iterdir()) == []


def test_a_region_given_as_four_numbers_is_a_region(tmp_path, sample_clip):
    from signanon.video.region import Region

    job = AnonymizeJob(sample_clip, tmp_path / "out.mp4", region=(0, 0, 0.5, 0.5))
    assert job.region == Region(0, 0, 0.5, 0.5) and job.region.box(640, 480) == (0, 0, 320, 240)


def test_progress_callback_sees_every_frame(tmp_path, sample_clip):
    seen = []
    summary = run_job(AnonymizeJob(sample_clip, tmp_path / "out.mp4", summary=tmp_path / "run.json"), seen.append)
    done = [p.done for p in seen if p.stage == "anonymize"]
    assert done[0] == 0 and done[-1] == summary.frames_out == 58
    assert done == sorted(done)
    assert seen[-1].total == 58 and seen[-1].eta == 0
    assert probe_video(tmp_path / "out.mp4").frame_count == 58
    assert '"frames_out": 58' in (tmp_path / "run.json").read_text()


def test_readme_python_example_runs_as_written(tmp_path):
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    example = next(b for b in blocks if "run_job" in b)
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "asl_webcam.mp4").symlink_to(REPO / "examples" / "asl_webcam.mp4")
    result = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    outputs = [p for p in tmp_path.iterdir() if p.suffix == ".mp4"]
    assert len(outputs) == 1
    assert probe_video(outputs[0]).frame_count == 58


def test_make_anonymizer_reuses_what_it_can():
    from signanon.diffusion.runner import DiffusionConfig
    from signanon.job import make_anonymizer

    first = make_anonymizer(DiffusionConfig())
    first.components = loaded = object()  # stands in for models loaded by a first run
    assert make_anonymizer(DiffusionConfig(), previous=first) is first
    other_prompt = make_anonymizer(DiffusionConfig(prompt="a woman in CG style"), previous=first)
    assert other_prompt is not first and other_prompt.components is loaded
    other_model = make_anonymizer(DiffusionConfig(model="other/model"), previous=first)
    assert other_model.components is None
    avatar = make_anonymizer(AvatarConfig(), previous=first)
    assert avatar.config == AvatarConfig()


def test_command_line_errors_name_the_flag_the_user_typed():
    # the configs' checks name their field; on the command line the same message names the flag
    from signanon.cli.options import _in_flags
    from signanon.config import settings_of
    from signanon.evaluation.verify import VerifyConfig

    settings = {s.name: s for config in (AvatarConfig, VerifyConfig) for s in settings_of(config)}
    given = [settings["guard.margin"], settings["margin"], settings["min_output_side"]]
    assert _in_flags("min_output_side must be 0 or from 64", given) == "--min-output-side must be 0 or from 64"
    assert _in_flags("guard.margin must be 0 or more", given) == "--margin must be 0 or more"
    assert _in_flags("margin must be 0 or more", given) == "--verify-margin must be 0 or more"
    # two given flags it could be (guard.margin and margin): left as the config said it
    assert _in_flags("other.margin must be 0 or more", given) == "other.margin must be 0 or more"
    # a field that was not given, or not at the start, is not renamed
    assert _in_flags("every must be at least 1", given) == "every must be at least 1"
    assert _in_flags("the min_output_side is odd", given) == "the min_output_side is odd"


@pytest.mark.parametrize(
    "changes, words",
    [
        (dict(landmark_workers=1.5), "landmark_workers must be a whole number"),  # failed in a worker, left a temp folder
        (dict(landmark_workers="2"), "landmark_workers must be a whole number"),
        (dict(landmark_workers=float("nan")), "landmark_workers must be a whole number"),  # ran unchecked
        (dict(calibration_frames=0), "calibration_frames must be a whole number, at least 1"),
        (dict(seam_frames=float("nan")), "seam_frames must be a whole number"),
        (dict(min_output_side="480"), "min_output_side must be a whole number"),
        (dict(fade_seconds=float("nan")), "fade_seconds must be a number of seconds"),  # failed after the landmarks
        (dict(fade_seconds=-1.0), "fade_seconds must be a number of seconds"),
        (dict(background=5), "background must be a colour as text"),
    ],
)
def test_avatar_settings_of_the_wrong_kind_are_refused_when_the_config_is_built(changes, words):
    with pytest.raises(InputError, match=re.escape(words)):
        AvatarConfig(**changes)
    # the floors themselves are fine
    AvatarConfig(min_output_side=0, seam_frames=0, calibration_frames=1, fade_seconds=0.0, landmark_workers=1)
