"""The web app's pieces without a server: private session folders, upload checks, the page's
config building, the evaluation verdict, and the ``serve`` command line."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from signanon.cli.main import build_parser
from signanon.errors import InputError
from signanon.web.jobs import PROMPT_PRESETS, build_config, controls, diffusion_readiness, progress_text, verdict
from signanon.video import probe_video
from signanon.web.session import RESULT_NAME, WebLimits, Workspace, check_video, find_input, stage_upload


@pytest.fixture
def workspace(tmp_path):
    ws = Workspace(tmp_path)
    yield ws
    ws.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_workspace_is_private_and_hashes_the_session_id(workspace):
    folder = workspace.folder("../../etc")
    assert folder.parent == workspace.sessions and ".." not in folder.name
    for path in (workspace.root, workspace.sessions, workspace.gradio_cache, folder):
        assert _mode(path) == 0o700
    assert workspace.folder("../../etc") == folder and workspace.folder("other") != folder
    with pytest.raises(InputError):
        workspace.folder(None)


def test_session_folder_is_dropped_and_swept_but_not_while_busy(workspace):
    old = workspace.folder("a")
    past = time.time() - 3600
    os.utime(old, (past, past))
    with workspace.busy("b") as running:
        os.utime(running, (past, past))
        workspace.drop("b")
        assert workspace.sweep(60) == [old]
        assert running.is_dir()
    assert not old.exists()
    workspace.drop("b")
    assert not running.exists()
    root = workspace.root
    workspace.close()
    assert not root.exists()


def test_a_tab_closed_during_a_job_takes_its_files_with_it_when_the_job_ends(workspace, tmp_path):
    # the session folder (the original upload among it) stayed for good, and Gradio's copies of the
    # upload and the result until its hourly cache sweep
    upload = workspace.gradio_cache / "a1b2" / "my signing.mp4"
    served = workspace.gradio_cache / "c3d4" / RESULT_NAME
    other = workspace.gradio_cache / "e5f6" / "someone else.mp4"
    for path in (upload, served, other):
        path.parent.mkdir()
        path.write_bytes(b"video")
    outside = tmp_path / "not_in_the_cache.mp4"
    outside.write_bytes(b"video")
    workspace.own("tab", upload)
    workspace.own("tab", outside)  # not Gradio's: never deleted
    with workspace.busy("tab") as folder:
        (folder / "input.mp4").write_bytes(b"video")
        workspace.own("tab", served)
        workspace.drop("tab")  # the tab closes mid-run
        assert folder.is_dir() and upload.is_file()  # the job still needs them
    assert not folder.exists() and not upload.parent.exists() and not served.parent.exists()
    assert other.is_file() and outside.is_file()
    # a tab closed with no job running: at once
    workspace.own("idle", other)
    idle = workspace.folder("idle")
    workspace.drop("idle")
    assert not idle.exists() and not other.parent.exists()
    # a script's session never sends the unload: the time sweep deletes its copy, and it is forgotten
    stale = workspace.gradio_cache / "a9" / "clip.mp4"
    stale.parent.mkdir()
    stale.write_bytes(b"video")
    workspace.own("script", stale)
    past = time.time() - 3600
    os.utime(stale.parent, (past, past))
    assert workspace.sweep(60) == [stale.parent] and workspace._cached == {}


def test_a_tab_closed_during_a_job_stops_it(workspace, sample_clip, tmp_path):
    # the job ran to its end after the tab closed and held the server's single job slot
    from signanon.errors import SignanonError
    from signanon.web.jobs import WebJobs

    jobs = WebJobs(workspace, WebLimits())
    config = build_config("avatar", {"palette": "default", "face_shape": "average"})
    seen = []

    def closing(p):
        seen.append(p.done)
        if len(seen) == 3:
            jobs.drop("tab")  # the page's unload, from Gradio's thread

    folder = workspace.folder("tab")
    with pytest.raises(SignanonError, match="the page was closed: the run stopped"):
        jobs.anonymize("tab", str(sample_clip), config, closing)
    assert len(seen) == 3 and seen[-1] < probe_video(sample_clip).frame_count  # stopped at the next step
    assert not folder.exists()  # the staged original and any partial result are gone
    assert list(workspace.sessions.iterdir()) == []
    # the next visitor's job runs (on the clip's first 12 frames: the whole clip took 15 s more)
    from conftest import first_frames_clip

    short = first_frames_clip(sample_clip, 12, tmp_path / "short.mp4")
    result = jobs.anonymize("next", str(short), config)
    assert probe_video(result).frame_count == 12


def test_upload_is_copied_to_a_fixed_name(workspace, sample_clip, tmp_path):
    folder = workspace.folder("s")
    (folder / RESULT_NAME).write_bytes(b"old result")
    odd = tmp_path / "..; rm -rf ~ .MP4"
    odd.write_bytes(sample_clip.read_bytes())
    staged = stage_upload(odd, folder, WebLimits())
    assert staged == folder / "input.mp4" and find_input(folder) == staged
    assert not (folder / RESULT_NAME).exists()
    weird = tmp_path / "clip.exe"
    weird.write_bytes(b"x")
    assert stage_upload(weird, folder, WebLimits()).name == "input.video"


def test_upload_limits_give_one_line_messages(workspace, sample_clip, tmp_path):
    folder = workspace.folder("s")
    with pytest.raises(InputError, match="choose a video"):
        stage_upload(None, folder, WebLimits())
    with pytest.raises(InputError, match=r"this server takes up to 0.1 MB"):
        stage_upload(sample_clip, folder, WebLimits(max_upload_mb=0.1))
    staged = stage_upload(sample_clip, folder, WebLimits())
    assert check_video(staged, WebLimits()).frame_count == 58
    with pytest.raises(InputError, match=r"minutes long; this server takes up to 0.01 minutes") as err:
        check_video(staged, WebLimits(max_minutes=0.01))
    # said with the digits that show it is over the limit (a 1.9 s clip read "0.0 minutes long")
    assert float(str(err.value).split()[3]) > 0.01
    with pytest.raises(InputError, match=r"takes up to 0.03 minutes") as err:
        check_video(staged, WebLimits(max_minutes=0.03))  # 58 frames at 29.9 fps: 0.0323 minutes
    assert str(err.value).startswith("the video is 0.032 minutes long")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    bad = stage_upload(text, folder, WebLimits())
    with pytest.raises(InputError) as err:
        check_video(bad, WebLimits())
    assert str(folder) not in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(InputError):
        WebLimits(max_minutes=0)


def test_controls_take_labels_and_defaults_from_the_configs():
    from signanon.job import config_class

    avatar = controls("avatar")
    assert avatar["palette"].default == config_class("avatar")().palette
    assert "default" in avatar["palette"].choices
    assert avatar["face_shape"].default == config_class("avatar")().face_shape == "auto"
    assert set(avatar["face_shape"].choices) == {"auto", "average", "short"}
    diffusion = controls("diffusion")
    default = config_class("diffusion")()
    assert diffusion["prompt"].default == default.prompt == PROMPT_PRESETS[0]
    assert diffusion["steps"].default == default.sampling.steps
    assert isinstance(diffusion["face_enhance"].default, bool)


def test_build_config_applies_page_values():
    config = build_config("avatar", {"palette": "dark-skin", "face_shape": "short", "background": "  "})
    assert config.palette == "dark-skin" and config.face_shape == "short" and config.background is None
    assert [look.name for look in config.looks] == ["dark-skin/short"]
    with pytest.raises(InputError, match="face shape"):
        build_config("avatar", {"face_shape": "oval"})
    with pytest.raises(InputError):
        build_config("avatar", {"background": "not a colour"})
    config = build_config("diffusion", {"steps": 30.0, "seed": 7.0, "keyframe_interval": 2, "prompt": "a robot"})
    assert (config.sampling.steps, config.sampling.seed, config.keyframe_interval, config.prompt) == (30, 7, 2, "a robot")
    with pytest.raises(InputError, match="whole number"):
        build_config("diffusion", {"seed": 1.5})


def test_diffusion_readiness_says_what_is_missing():
    ready, text = diffusion_readiness()
    assert text.startswith("Ready" if ready else "Not")
    if not ready:
        assert "pip install" in text or "hf download" in text


def test_progress_text_and_verdict():
    from signanon.progress import Progress

    assert progress_text(Progress("anonymize", 10, 40, 5.0)) == "anonymize: 10 of 40 frames, about 15 s left"
    assert progress_text(Progress("anonymize", 0, None, 0.0)) == "anonymize: 0 frames"
    report = {
        "identity": {"reid_rate": 0.25, "frames_judged": 40},
        "signing": {"hand_recall": 0.9, "handshape_angle_error_deg": 12.0, "handshape_angle_error_chance_deg": 30.0},
        "face_grammar": {"brow_raise": {"r": 0.8}},
        "warnings": [],
    }
    text = verdict(report)
    assert "failed" in text and "10 of 40 frames" in text and "90 %" in text and "12.0°" in text
    assert "brow raise 0.80" in text
    report["identity"]["reid_rate"] = 0.0
    assert "passed" in verdict(report)
    # a clip too short for its chance level, or with no hand read in both videos: no "n/a°"
    report["signing"]["handshape_angle_error_chance_deg"] = None
    assert "12.0° per finger joint." in verdict(report) and "n/a" not in verdict(report)
    report["signing"]["handshape_angle_error_deg"] = None
    assert "Handshape error:** not measured" in verdict(report) and "°" not in verdict(report).split("Handshape")[1].split("\n")[0]


def test_serve_command_line_defaults_to_localhost():
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.max_upload_mb, args.max_minutes) == ("127.0.0.1", 7860, 500, 10)
    assert callable(args.run_serve)


def test_missing_gradio_gives_the_install_hint(monkeypatch):
    import sys

    from signanon.errors import SignanonError
    from signanon.web import import_gradio

    monkeypatch.setitem(sys.modules, "gradio", None)
    with pytest.raises(SignanonError, match=r'pip install -e "\.\[web\]"'):
        import_gradio()


def test_refused_output_shows_the_verdict_not_a_traceback():
    gr = pytest.importorskip("gradio")
    from signanon.errors import ReidentifiedError
    from signanon.web.app import _user_error

    err = _user_error(gr, ReidentifiedError("3 of 58 frames matched the original signer"))
    assert "3 of 58 frames matched" in err.message and "privacy" in err.title.lower()
    assert _user_error(gr, InputError("no person found in the upload")).message == "no person found in the upload"


def test_the_page_anonymizes_and_checks_the_signers_box(workspace, tmp_path):
    """The page's "Signer's box": the job runs on the broadcast's DGS inset alone (the result is
    the box), and "Check" compares the same box of the upload; a malformed box is one line,
    and a later run on the whole frame forgets the box."""
    import json

    from conftest import INSET_BOX, INSET_REGION, broadcast_clip
    from signanon.video import probe_video
    from signanon.web.jobs import WebJobs

    src = broadcast_clip(tmp_path / "broadcast.mp4", tmp_path / "inset.mp4", start=30, frames=16)
    jobs = WebJobs(workspace, WebLimits())
    config = build_config("avatar", {"palette": "default", "face_shape": "average"})
    with pytest.raises(InputError, match="must be four numbers") as bad:
        jobs.anonymize("s", str(src), config, region="470,350")
    assert "\n" not in str(bad.value)
    result = jobs.anonymize("s", str(src), config, region=INSET_REGION)
    assert (probe_video(result).width, probe_video(result).height) == (640, 480)  # the box, drawn at 480
    # the page says what the identity guard did, as the command line does, and names no server path
    outcome = jobs.outcome("s")
    assert outcome[0].startswith("identity guard: ") and "drawn faces checked against the signer" in outcome[0]
    assert not any(str(workspace.folder("s")) in line or str(tmp_path) in line for line in outcome), outcome
    assert jobs.outcome("another session") == []
    text, _ = jobs.evaluate("s")
    report = json.loads((workspace.folder("s") / "evaluation" / "report.json").read_text())
    assert report["inputs"]["original"]["region"] == INSET_BOX and report["inputs"]["original"]["width"] == 320
    assert report["identity"]["reid_rate"] == 0.0 and text
    jobs.anonymize("s", str(src), config, region="  ")
    assert probe_video(workspace.folder("s") / RESULT_NAME).width == 800
    jobs.evaluate("s")
    report = json.loads((workspace.folder("s") / "evaluation" / "report.json").read_text())
    assert "region" not in report["inputs"]["original"]
