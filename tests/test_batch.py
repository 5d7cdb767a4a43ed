"""signanon batch on real clips: discovery, resume, kill safety, parallel workers, the privacy gate
and the gallery attack, Ray on a simulated two-node cluster. Clips are 10-20 frame cuts."""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DATA, INSET_BOX, INSET_REGION, SAMPLE, broadcast_clip, first_frames_clip
from signanon.batch import worker as batch_worker
from signanon.batch.corpus import discover
from signanon.batch.runner import BatchConfig, clip_config, run_corpus
from signanon.batch.state import corpus_secret, identity_for
from signanon.cli.main import main
from signanon.errors import InputError, ReidentifiedError
from signanon.job import config_class, run_job
from signanon.video import VideoWriter, iter_frames, probe_video

TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{8,}\.(partial|tmp)$")


def cut(source: Path, frames: int, path: Path) -> Path:
    """The first frames of a real clip at ``path`` (any video suffix; written as mp4)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".cut.mp4")
    first_frames_clip(source, frames, tmp)
    tmp.rename(path)
    return path


def report(out: Path) -> dict:
    return json.loads((out / "batch_report.json").read_text())


def entry(rep: dict, name: str) -> dict:
    return next(c for c in rep["clips"] if c["input"] == name)


def frames_of(path: Path) -> int:
    return probe_video(path).frame_count


# the look pinned where a test is about running a corpus, not about the look: the look choice
# (signanon.avatar.identity_guard.choose_look) is a fixed cost of seconds per clip, most of a
# 10-frame clip's run; the identity guard stays on
FIXED_LOOK = ["--palette", "default", "--face-shape", "average"]


def leftovers(out: Path) -> list[str]:
    return [str(p) for p in out.rglob("*") if TEMP_NAME.match(p.name)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Short cuts of three signers, made once."""
    folder = tmp_path_factory.mktemp("cuts")
    return {
        "web15": cut(SAMPLE, 15, folder / "web15.mp4"),
        "web10": cut(SAMPLE, 10, folder / "web10.mp4"),
        "house15": cut(DATA / "asl_house.gif", 15, folder / "house15.mp4"),
        "house10": cut(DATA / "asl_house.gif", 10, folder / "house10.mp4"),
        "house20": cut(DATA / "asl_house.gif", 20, folder / "house20.mp4"),  # hands from frame 13
        "diff15": cut(DATA / "asl_different.gif", 15, folder / "diff15.mp4"),
    }


# -- discovery and identities (no video work) ------------------------------------------------


def test_discover_mirrors_tree_counts_other_files_and_skips_out_dir(tmp_path):
    root = tmp_path / "corpus"
    for name in ("a/b/clip.mov", "a/x.webm", "top.gif", "a/x.mp4", "notes.txt", "a/b/list.csv", "out/old.mp4", ".hidden/h.mp4"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    corpus = discover(root, root / "out")
    names = [c.relative for c in corpus.clips]
    assert names == ["a/b/clip.mov", "a/x.mp4", "a/x.webm", "top.gif"]
    assert corpus.ignored == ("a/b/list.csv", "notes.txt")
    by = {c.relative: c for c in corpus.clips}
    assert by["a/b/clip.mov"].output_in(tmp_path / "o") == tmp_path / "o/a/b/clip.mp4"
    assert by["a/x.mp4"].problem is None
    assert "a/x.mp4" in by["a/x.webm"].problem  # both would write a/x.mp4
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no video files"):
        discover(tmp_path / "empty")


def test_folder_discovery_compares_resolved_paths_and_skips_batch_output_trees(tmp_path, monkeypatch):
    """OUT_DIR is skipped however either path is spelt (``..`` from inside OUT_DIR, ``o/../o``, a
    symlink), and so is any subfolder holding a batch's control folder (an earlier OUT_DIR)."""
    for name in ("in/a.mp4", "in/sub/b.mp4", "in/rel/x.mp4", "in/rel/.signanon_batch/state.json", "in2/a.mp4", "in2/o/old.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    release = tmp_path / "v2" / "release"
    release.mkdir(parents=True)
    monkeypatch.chdir(release)
    assert [c.relative for c in discover(Path("../../in"), Path(".")).clips] == ["a.mp4", "sub/b.mp4"]
    (tmp_path / "link").symlink_to(tmp_path / "in2" / "o")
    for out in (tmp_path / "in2" / "o" / ".." / "o", tmp_path / "link"):
        assert [c.relative for c in discover(tmp_path / "in2", out).clips] == ["a.mp4"], out


def test_manifest_columns_relative_paths_and_bad_rows(tmp_path):
    (tmp_path / "v").mkdir()
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,signer,prompt,seed\nv/one.mp4,ann,,\nv/two.mp4,bob,a robot,7\n/elsewhere/three.mp4,,,x\n")
    corpus = discover(manifest)
    by = {c.relative: c for c in corpus.clips}
    assert set(by) == {"v/one.mp4", "v/two.mp4", "three.mp4"}  # outside the folder: by its name alone
    assert by["v/one.mp4"].path == tmp_path / "v/one.mp4" and by["v/one.mp4"].signer == "ann"
    assert (by["v/two.mp4"].prompt, by["v/two.mp4"].seed) == ("a robot", 7)
    assert "not a whole number" in by["three.mp4"].problem
    assert corpus.has_signers
    (tmp_path / "bad.csv").write_text("file\nx.mp4\n")
    with pytest.raises(InputError, match="no 'path' column"):
        discover(tmp_path / "bad.csv")


def test_signers_get_stable_distinct_identities_from_the_corpus_secret(tmp_path):
    from signanon.batch.corpus import Clip

    secret = corpus_secret(tmp_path)
    assert (tmp_path / ".signanon_batch" / "secret").is_file()
    assert corpus_secret(tmp_path) == secret  # kept, not remade
    config = config_class("diffusion")()
    ann1, ann2, bob = (clip_config(config, Clip(Path(p), p, s), secret, False) for p, s in (("1", "ann"), ("2", "ann"), ("3", "bob")))
    assert (ann1.prompt, ann1.sampling.seed) == (ann2.prompt, ann2.sampling.seed)
    assert (ann1.prompt, ann1.sampling.seed) != (bob.prompt, bob.sampling.seed)
    assert identity_for(secret, "ann") != identity_for(b"another secret", "ann")  # names alone do not rebuild it
    kept = clip_config(config, Clip(Path("4"), "4", "ann"), secret, True)
    assert kept.prompt == config.prompt and kept.sampling.seed == ann1.sampling.seed
    row = clip_config(config, Clip(Path("5"), "5", "ann", "a robot", 3), secret, False)
    assert (row.prompt, row.sampling.seed) == ("a robot", 3)


def test_cleanup_removes_a_killed_runs_files_but_keeps_a_diffusion_resume_cache(tmp_path):
    from signanon.batch.state import clean_leftovers

    work = tmp_path / ".signanon_batch" / "work" / "abc"
    files = {
        "unpublished": work / "clip.mp4",
        "partial": work / ".clip.mp4.0123456789ab.partial",
        "cache": work / ".clip.mp4.signanon-cache" / "000001.png",
        "stray": tmp_path / "a" / ".x.mp4.0123456789ab.partial",
        "tmp": tmp_path / ".batch_report.json.a1b2c3d4e5f6.tmp",
        "release": tmp_path / "a" / "x.mp4",
    }
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert clean_leftovers(tmp_path) >= 2
    assert {k for k, p in files.items() if p.exists()} == {"cache", "release"}


# -- the command on real clips ------------------------------------------------------------------


def test_batch_folder_resumes_retries_failures_and_redoes_changed_clips(tmp_path, clips, capsys):
    corpus, out = tmp_path / "corpus", tmp_path / "out"
    (corpus / "a").mkdir(parents=True)
    (corpus / "b" / "c").mkdir(parents=True)
    shutil.copy(clips["web15"], corpus / "a" / "web.mp4")
    shutil.copy(clips["house15"], corpus / "b" / "c" / "house.mov")
    (corpus / "broken.mp4").write_bytes(clips["web10"].read_bytes()[:3000])  # truncated
    (corpus / "notes.txt").write_text("not a clip")

    assert main(["batch", str(corpus), "-o", str(out), "-q", *FIXED_LOOK]) == 1  # one clip failed
    rep = report(out)
    assert rep["totals"] == {"done": 2, "skipped": 0, "failed": 1, "quarantined": 0}
    assert rep["ignored_files"] == ["notes.txt"]
    assert frames_of(out / "a" / "web.mp4") == 15 and frames_of(out / "b" / "c" / "house.mp4") == 15
    assert (out / "b" / "c" / "house.summary.json").is_file()
    bad = entry(rep, "broken.mp4")
    assert bad["status"] == "failed" and bad["output"] is None and "\n" not in bad["reason"] and bad["reason"]
    assert not (out / "broken.mp4").exists()
    assert entry(rep, "b/c/house.mov")["output"] == "b/c/house.mp4" and entry(rep, "a/web.mp4")["frames"] == 15
    rows = list(csv.DictReader(open(out / "batch_report.csv")))
    assert [r["status"] for r in rows] == ["done", "done", "failed"]
    assert "<svg" in (out / "batch_report.html").read_text()

    before = (out / "a" / "web.mp4").stat().st_mtime_ns
    assert main(["batch", str(corpus), "-o", str(out), "-q", *FIXED_LOOK]) == 1  # the failed clip is retried
    assert report(out)["totals"] == {"done": 0, "skipped": 2, "failed": 1, "quarantined": 0}
    assert (out / "a" / "web.mp4").stat().st_mtime_ns == before

    shutil.copy(clips["web10"], corpus / "a" / "web.mp4")  # new content, same name and folder
    (corpus / "broken.mp4").unlink()
    assert main(["batch", str(corpus), "-o", str(out), "-q", *FIXED_LOOK]) == 0
    assert report(out)["totals"] == {"done": 1, "skipped": 1, "failed": 0, "quarantined": 0}
    assert frames_of(out / "a" / "web.mp4") == 10

    assert main(["batch", str(corpus), "-o", str(out), "-q", "--palette", "dark-skin", "--face-shape", "average"]) == 0  # new settings
    assert report(out)["totals"]["done"] == 2
    assert leftovers(out) == [] and not (out / ".signanon_batch" / "work").exists()


def test_kill_minus_9_of_the_process_group_then_resume(tmp_path, clips):
    corpus, out = tmp_path / "corpus", tmp_path / "out"
    corpus.mkdir()
    for i, name in enumerate(("web15", "house15", "diff15")):
        shutil.copy(clips[name], corpus / f"{i}_{name}.mp4")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "signanon.cli.main", "batch", str(corpus), "-o", str(out), "-q", *FIXED_LOOK],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    state = out / ".signanon_batch" / "state.json"
    deadline = time.monotonic() + 300  # a loaded machine (the suite's other worker) is slow
    finished = False
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if state.is_file() and json.loads(state.read_text())["clips"]:
                finished = True
                break
            time.sleep(0.1)
        assert finished, "no clip finished before the deadline: the kill would land in the first one"
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(1.0)  # inside the second clip
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    work = out / ".signanon_batch" / "work"
    assert work.is_dir() and any(work.rglob("*")), "killed between clips, not inside one"
    for video in out.rglob("*.mp4"):  # whatever is at a final path is a whole video
        if ".signanon_batch" not in video.parts:
            assert frames_of(video) == 15, video
    assert main(["batch", str(corpus), "-o", str(out), "-q", *FIXED_LOOK]) == 0
    rep = report(out)
    rows = [(c["input"], c["status"], c.get("reason")) for c in rep["clips"]]
    assert rep["totals"]["skipped"] >= 1 and rep["totals"]["done"] + rep["totals"]["skipped"] == 3, (rep["totals"], rows)
    assert all(frames_of(out / f"{i}_{n}.mp4") == 15 for i, n in enumerate(("web15", "house15", "diff15")))
    assert leftovers(out) == [] and not (out / ".signanon_batch" / "work").exists()


def test_two_worker_processes_load_the_pipeline_once_each(tmp_path, clips):
    corpus, out = tmp_path / "corpus", tmp_path / "out"
    corpus.mkdir()
    for name in ("web10", "house10", "diff15"):
        shutil.copy(clips[name], corpus / f"{name}.mp4")
    assert main(["batch", str(corpus), "-o", str(out), "-q", "--workers", "2", *FIXED_LOOK]) == 0
    rep = report(out)
    assert rep["totals"]["done"] == 3
    workers = [c["worker"] for c in rep["clips"]]
    pids = {w["pid"] for w in workers}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert max(w["pipelines_built"] for w in workers) == 1  # three clips, one pipeline per process
    assert frames_of(out / "diff15.mp4") == 15


def _leak(job, progress=None, *, anonymizer=None):
    """A broken anonymizer: the original frames, re-encoded (what the gate must stop)."""
    if "refused" in job.input.name:
        raise ReidentifiedError("privacy gate: the original signer was matched in 3 of 10 frames")
    if "leak" not in job.input.name:
        return run_job(job, progress, anonymizer=anonymizer)
    info = probe_video(job.input)
    with VideoWriter(job.output, info.width, info.height, info.fps) as writer:
        for frame in iter_frames(info):
            writer.write(frame)
    summary = run_job(job.replace(output=job.output.with_name("unused.mp4")), anonymizer=anonymizer)
    summary.write(job.summary)
    return summary


def test_evaluate_quarantines_reidentified_outputs_and_attacks_the_corpus(tmp_path, clips, monkeypatch):
    monkeypatch.setattr(batch_worker, "run_job", _leak)
    (tmp_path / "v").mkdir()
    shutil.copy(clips["house20"], tmp_path / "v" / "real.mp4")
    shutil.copy(clips["web10"], tmp_path / "v" / "leak.mp4")
    shutil.copy(clips["web10"], tmp_path / "v" / "refused.mp4")
    manifest = tmp_path / "corpus.csv"
    manifest.write_text("path,signer\nv/real.mp4,ann\nv/leak.mp4,ben\nv/refused.mp4,ben\n")
    out = tmp_path / "out"
    result = run_corpus(manifest, out, config_class("avatar")(palette="default", face_shape="average"), BatchConfig(evaluate=True))
    assert not result.failed
    rep = report(out)
    assert rep["totals"] == {"done": 1, "skipped": 0, "failed": 0, "quarantined": 2}
    real, leak, refused = (entry(rep, f"v/{n}.mp4") for n in ("real", "leak", "refused"))
    assert real["status"] == "done" and real["reid_rate"] == 0.0 and real["hand_recall"] > 0.5
    assert real["handshape_angle_error_deg"] is not None and "mouth_opening" in real["face_grammar_r"]
    assert (out / "v" / "real.report.json").is_file() and (out / "v" / "real.mp4").is_file()
    # the leak: re-identified by dlib, kept out of the release tree, its report beside it
    assert leak["status"] == "quarantined" and leak["reid_rate"] > 0 and "re-identified" in leak["reason"]
    assert leak["output"] == "_quarantine/v/leak.mp4"
    assert not (out / "v" / "leak.mp4").exists() and (out / "_quarantine" / "v" / "leak.report.json").is_file()
    # the pipeline's own gate refused the output: quarantined with its reason, no video anywhere
    assert refused["status"] == "quarantined" and "privacy gate" in refused["reason"] and refused["output"] is None
    assert not list(out.rglob("refused.mp4"))
    g = rep["gallery_attack"]
    assert g["identity_unit"] == "signer" and g["identities"] == 2 and g["chance_top1_rate"] == 0.5
    assert g["chance_mean_rank"] == 1.5 and g["probes"] + len(g["probes_without_face"]) == 2
    assert leak["gallery_rank"] == 1  # the attack finds a leaked signer
    # a rerun skips both finished and quarantined clips
    assert run_corpus(manifest, out, config_class("avatar")(palette="default", face_shape="average"), BatchConfig(evaluate=True)).totals["skipped"] == 3


def test_ray_on_a_two_node_cluster_gives_the_local_result(tmp_path, clips, monkeypatch):
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(clips["web10"], corpus / "web.mp4")
    shutil.copy(clips["house10"], corpus / "house.mp4")
    assert main(["batch", str(corpus), "-o", str(tmp_path / "local"), "-q", *FIXED_LOOK]) == 0
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        assert main(["batch", str(corpus), "-o", str(tmp_path / "ray"), "-q", "--ray", cluster.address, *FIXED_LOOK]) == 0
    finally:
        cluster.shutdown()
    local, remote = report(tmp_path / "local"), report(tmp_path / "ray")
    assert remote["totals"] == local["totals"] == {"done": 2, "skipped": 0, "failed": 0, "quarantined": 0}
    assert len({c["worker"]["pid"] for c in remote["clips"]}) == 2  # one actor per node
    for name in ("web", "house"):
        a = json.loads((tmp_path / "local" / f"{name}.summary.json").read_text())
        b = json.loads((tmp_path / "ray" / f"{name}.summary.json").read_text())
        assert (a["frames_out"], a["frames_with"]) == (b["frames_out"], b["frames_with"])
        fa = list(iter_frames(probe_video(tmp_path / "local" / f"{name}.mp4")))
        fb = list(iter_frames(probe_video(tmp_path / "ray" / f"{name}.mp4")))
        assert len(fa) == len(fb) == 10
        assert max(abs(x.astype(int) - y.astype(int)).mean() for x, y in zip(fa, fb)) < 1.0


def test_missing_ray_is_one_line_with_the_install_hint(tmp_path, clips, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    (tmp_path / "c").mkdir()
    shutil.copy(clips["web10"], tmp_path / "c" / "web.mp4")
    assert main(["batch", str(tmp_path / "c"), "-o", str(tmp_path / "out"), "--ray", "local"]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == ['signanon: error: --ray needs Ray, an optional extra; install it with: pip install -e ".[cluster]"']
    assert not (tmp_path / "out" / "web.mp4").exists()


def _method_flags(command: str) -> set[str]:
    from signanon.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict)).choices[command]
    return {flag for group in sub._action_groups if "method" in (group.title or "") for a in group._group_actions
            for flag in a.option_strings}  # fmt: skip


def test_batch_has_exactly_the_method_flags_of_anonymize():
    flags = _method_flags("batch")
    # but --workers: in anonymize, landmark processes for one clip; in batch, clips in parallel
    assert "--palette" in flags and flags == _method_flags("anonymize") - {"--workers"}


def test_batch_usage_errors(tmp_path, capsys):
    assert main(["batch", str(tmp_path / "missing"), "-o", str(tmp_path / "out")]) == 1
    assert "batch input not found" in capsys.readouterr().err
    (tmp_path / "c").mkdir()
    assert main(["batch", str(tmp_path / "c"), "-o", str(tmp_path / "out"), "--method", "diffusion", "--palette", "dark-skin"]) == 2
    assert "--palette applies to --method avatar" in capsys.readouterr().err
    assert main(["batch", str(tmp_path / "c"), "-o", str(tmp_path / "out"), "--prompt", "a robot"]) == 2
    assert "--prompt applies to --method diffusion" in capsys.readouterr().err
    assert main(["batch", str(tmp_path / "c"), "-o", str(tmp_path / "out"), "--workers", "0"]) == 1
    assert "--workers must be 1 or more" in capsys.readouterr().err
    assert main(["batch", str(tmp_path / "c"), "-o", str(tmp_path / "out"), "--workers", "100000"]) == 1
    assert "--workers 100000 is more processes than this machine can run" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_an_interrupt_right_after_the_output_folder_is_made_leaves_no_folder(tmp_path, monkeypatch):
    """A Ctrl-C landing inside an import is delivered again ~50 ms later (cli.main), which can be
    just after OUT_DIR was made: the run must still remove the folder it made (in the start-up
    interrupt test, 1 of ~30 signals in one full-suite run left an empty OUT_DIR behind)."""
    from signanon.batch import runner

    made = runner.prepare_out_dir

    def made_then_interrupted(out_dir):
        made(out_dir)
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "prepare_out_dir", made_then_interrupted)
    (tmp_path / "videos").mkdir()
    shutil.copy(SAMPLE, tmp_path / "videos" / "clip.mp4")
    with pytest.raises(KeyboardInterrupt):
        run_corpus(tmp_path / "videos", tmp_path / "out", config_class("avatar")(), BatchConfig())
    assert not (tmp_path / "out").exists()
    existing = tmp_path / "kept"
    existing.mkdir()  # a folder the user had stays
    with pytest.raises(KeyboardInterrupt):
        run_corpus(tmp_path / "videos", existing, config_class("avatar")(), BatchConfig())
    assert existing.is_dir()


def test_a_manifest_region_anonymizes_poses_and_evaluates_the_inset_alone(tmp_path, monkeypatch):
    """A manifest row with a ``region``: the broadcast's DGS inset is anonymized alone (the output
    is the box), posed alone (the .pose is the box's) and evaluated against the box; the gallery
    keeps the inset signer's faces, not the speaker's, and the evaluation reads each video once.
    A malformed region fails that row only, and a changed region redoes the clip."""
    import numpy as np

    from signanon.batch.runner import faces_file
    from signanon.evaluation.evaluate import EvaluationConfig, Evaluator
    from signanon.landmarks.pose_io import pose_info, read_pose

    (tmp_path / "v").mkdir()
    src, inset = broadcast_clip(tmp_path / "v" / "broadcast.mp4", tmp_path / "inset.mp4", start=30, frames=20), tmp_path / "inset.mp4"
    shutil.copy(src, tmp_path / "v" / "bad.mp4")
    manifest = tmp_path / "corpus.csv"
    manifest.write_text(f'path,region\nv/broadcast.mp4,"{INSET_REGION}"\nv/bad.mp4,"1,2,3"\n')
    out = tmp_path / "out"
    reads, read = [], Evaluator._read
    monkeypatch.setattr(Evaluator, "_read", lambda self, info, *a, **k: reads.append(info.path.name) or read(self, info, *a, **k))
    assert main(["batch", str(manifest), "-o", str(out), "--evaluate", "--pose", "-q", *FIXED_LOOK]) == 1
    assert sorted(reads) == ["clip.mp4", "region.mp4"], reads  # the box's cut and the output, each read once
    monkeypatch.undo()
    rep = report(out)
    done, bad = entry(rep, "v/broadcast.mp4"), entry(rep, "v/bad.mp4")
    assert bad["status"] == "failed" and "manifest line 3" in bad["reason"] and "four numbers" in bad["reason"]
    assert done["status"] == "done" and done["region"] == INSET_REGION and done["reid_rate"] == 0.0
    with open(out / "batch_report.csv", newline="") as fh:
        rows = {r["input"]: r for r in csv.DictReader(fh)}
    assert rows["v/broadcast.mp4"]["region"] == INSET_REGION and rows["v/bad.mp4"]["region"] == ""
    info = probe_video(out / "v" / "broadcast.mp4")
    assert (info.width, info.height, info.frame_count) == (640, 480, 20)  # the 320x240 box, drawn at 480
    pose = pose_info(read_pose(out / "v" / "broadcast.pose"))
    assert (pose.width, pose.height, pose.frames) == (320, 240, 20)
    clip_report = json.loads((out / "v" / "broadcast.report.json").read_text())
    assert clip_report["inputs"]["original"]["region"] == INSET_BOX
    # the gallery's original faces are the inset signer's: near her faces, far from the speaker's
    kept = np.load(faces_file(out, "v/broadcast.mp4"))["original"]
    evaluator = Evaluator(EvaluationConfig(side_by_side=False, html=False))
    ref = {name: evaluator.analyse(path, landmarks=False).faces for name, path in
           (("signer", inset), ("speaker", DATA / "talking_woman_90.mp4"))}  # fmt: skip
    mean = {k: f.embeddings[f.found].mean(0) for k, f in ref.items()}
    assert len(kept) > 0
    gap = {k: float(np.linalg.norm(kept - m, axis=1).max()) for k, m in mean.items()}
    assert gap["signer"] < 0.3 and float(np.linalg.norm(kept - mean["speaker"], axis=1).min()) > 0.6, gap
    # another box is another job: the clip is redone, not skipped
    manifest.write_text('path,region\nv/broadcast.mp4,"0.5875,0.5833,0.4,0.39"\n')
    assert main(["batch", str(manifest), "-o", str(out), "-q", *FIXED_LOOK]) == 0
    assert report(out)["totals"]["done"] == 1
    assert probe_video(out / "v" / "broadcast.mp4").width == 656  # a 320x234 box, drawn at 480 x 656


# -- OUT_DIR safety, published paths, odd inputs (a fast stand-in for the method) --------------


def _copy_run(job, progress=None, *, anonymizer=None):
    """A fast stand-in for the method: the input copied as the output, a summary naming both paths
    as the real run does (an input FFmpeg cannot read fails as it would)."""
    from signanon.summary import RunSummary

    frames = probe_video(job.input).frame_count
    shutil.copyfile(job.input, job.output)
    summary = RunSummary("avatar", str(job.input), str(job.output), frames_in=frames, frames_out=frames)
    summary.write(job.summary)
    return summary


@pytest.fixture
def fast(monkeypatch):
    """Clips run in a blink: no pipeline is built, the output is the input."""
    monkeypatch.setattr(batch_worker, "run_job", _copy_run)
    monkeypatch.setattr(batch_worker, "make_anonymizer", lambda config, previous=None: previous or object())


def _fast_batch(source: Path, out: Path, batch: BatchConfig = BatchConfig()):
    return run_corpus(source, out, config_class("avatar")(), batch)


def test_a_manifest_batch_refuses_to_write_over_user_files_it_did_not_write(tmp_path, clips, fast):
    """OUT_DIR is the manifest's folder: clips/a.mov would publish clips/a.mp4, .pose and
    .summary.json over the user's own files of those names (not listed as clips); refused before
    any work, naming the file. The batch's own outputs do not stop a re-run."""
    from signanon.errors import OutputError

    v = tmp_path / "v1"
    shutil.copy(clips["web10"], (v / "clips").mkdir(parents=True) or v / "clips" / "a.mov")
    shutil.copy(clips["house10"], v / "clips" / "a.mp4")  # a raw recording, not in the manifest
    (v / "manifest.csv").write_text("path\nclips/a.mov\n")
    raw = (v / "clips" / "a.mp4").read_bytes()
    with pytest.raises(OutputError, match=r"clips/a\.mp4") as err:
        _fast_batch(v / "manifest.csv", v)
    assert "\n" not in str(err.value) and "did not write" in str(err.value)
    assert (v / "clips" / "a.mp4").read_bytes() == raw and not (v / "clips" / "a.summary.json").exists()
    (v / "clips" / "a.mp4").rename(v / "raw.mp4")
    for name, text in (("a.pose", "user pose"), ("a.summary.json", "user notes")):
        (v / "clips" / name).write_text(text)
        with pytest.raises(OutputError, match=re.escape(f"clips/{name}")):
            _fast_batch(v / "manifest.csv", v, BatchConfig(pose=True))
        assert (v / "clips" / name).read_text() == text
        (v / "clips" / name).unlink()
    assert _fast_batch(v / "manifest.csv", v).totals["done"] == 1
    assert _fast_batch(v / "manifest.csv", v).totals["skipped"] == 1  # its own outputs
    shutil.copy(clips["house10"], v / "clips" / "a.mov")  # changed: redone over its own outputs
    assert _fast_batch(v / "manifest.csv", v).totals["done"] == 1
    assert frames_of(v / "clips" / "a.mp4") == 10 and (v / "raw.mp4").read_bytes() == raw


def test_a_batch_refuses_to_replace_a_report_it_did_not_write(tmp_path, clips, fast):
    """A user's own batch_report.csv (or .json, .html) in OUT_DIR before the first run is refused in
    one line, untouched; the batch's own reports do not stop a re-run."""
    from signanon.errors import OutputError

    corpus, out = tmp_path / "corpus", tmp_path / "out"
    corpus.mkdir()
    shutil.copy(clips["web10"], corpus / "a.mp4")
    for name in ("batch_report.csv", "batch_report.json", "batch_report.html"):
        (out.mkdir(exist_ok=True) or out / name).write_text("the user's own sheet")
        with pytest.raises(OutputError, match=re.escape(name)) as err:
            _fast_batch(corpus, out)
        assert "\n" not in str(err.value) and "did not write" in str(err.value)
        assert (out / name).read_text() == "the user's own sheet" and not (out / "a.mp4").exists()
        (out / name).unlink()
    assert _fast_batch(corpus, out).totals["done"] == 1
    assert json.loads((out / "batch_report.json").read_text())["totals"]["done"] == 1
    assert _fast_batch(corpus, out).totals["skipped"] == 1  # over its own reports


def test_published_json_names_the_input_by_its_corpus_path_and_outside_clips_mirror_by_name(tmp_path, clips, fast):
    """The files published beside the outputs name the input relative to the corpus (a clip
    outside the manifest's folder by its file name) and the output relative to OUT_DIR: no
    absolute source path (folder names can be signer names), no work path. An outside clip lands
    at OUT_DIR/<its name>, not under its absolute path; a second outside clip of that name (or one
    whose name a clip inside the folder has) lands numbered, with a note naming the manifest lines,
    and both are done; a re-run skips all of them."""
    (tmp_path / "anna_mueller").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "m" / "v").mkdir(parents=True)
    shutil.copy(clips["web10"], tmp_path / "m" / "v" / "in.mp4")
    shutil.copy(clips["house15"], tmp_path / "m" / "in.mov")
    shutil.copy(clips["house10"], tmp_path / "anna_mueller" / "meta.mp4")
    shutil.copy(clips["web10"], tmp_path / "other" / "meta.mp4")
    shutil.copy(clips["diff15"], tmp_path / "other" / "in.mp4")
    manifest = tmp_path / "m" / "corpus.csv"
    manifest.write_text(f"path\nv/in.mp4\n{tmp_path / 'anna_mueller' / 'meta.mp4'}\n{tmp_path / 'other' / 'meta.mp4'}\n"
                        f"{tmp_path / 'other' / 'in.mp4'}\nin.mov\n")
    out = tmp_path / "out"
    result = _fast_batch(manifest, out)
    assert result.totals == {"done": 5, "skipped": 0, "failed": 0, "quarantined": 0}
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mp4")) == [
        "in-2.mp4", "in.mp4", "meta-2.mp4", "meta.mp4", "v/in.mp4"]  # fmt: skip
    for name, source in (("meta.mp4", "anna_mueller/meta.mp4"), ("meta-2.mp4", "other/meta.mp4"),
                         ("in-2.mp4", "other/in.mp4"), ("in.mp4", "m/in.mov")):  # fmt: skip
        assert (out / name).read_bytes() == (tmp_path / source).read_bytes(), name
    assert result.notes == (
        "manifest line 4: line 3's clip has the name meta, so this meta.mp4 is published as meta-2.mp4",
        "manifest line 5: line 6's clip has the name in, so this in.mp4 is published as in-2.mp4",
    )
    summary = json.loads((out / "meta.summary.json").read_text())
    assert (summary["input"], summary["output"]) == ("meta.mp4", "meta.mp4")
    summary = json.loads((out / "meta-2.summary.json").read_text())
    assert (summary["input"], summary["output"]) == ("meta-2.mp4", "meta-2.mp4")
    summary = json.loads((out / "v" / "in.summary.json").read_text())
    assert (summary["input"], summary["output"]) == ("v/in.mp4", "v/in.mp4")
    rep = report(out)
    assert rep["notes"] == list(result.notes)
    page = (out / "batch_report.html").read_text()
    assert all(html.escape(note) in page for note in result.notes)  # shown where a user looks
    published = [p for p in out.rglob("*") if p.is_file() and ".signanon_batch" not in p.parts and p.suffix != ".mp4"]
    assert {p.name for p in published} >= {"batch_report.json", "batch_report.csv", "batch_report.html"}
    for path in published:  # the corpus report too: its input by name, not by the folders above it
        assert str(tmp_path) not in path.read_text() and "anna_mueller" not in path.read_text(), path
    assert rep["input"] == "corpus.csv"
    assert _fast_batch(manifest, out).totals["skipped"] == 5


def _work_file(out: Path, relative: str) -> Path:
    from signanon.batch.corpus import Clip
    from signanon.batch.runner import _work_folder

    return _work_folder(out, Clip(Path(relative), relative)) / "clip.mp4"


def test_a_published_clip_report_names_both_videos_by_their_corpus_paths(tmp_path):
    """The evaluation report published as x.report.json: ``inputs.original.path`` is the corpus
    path, ``inputs.anonymized.path`` the published video (relative to OUT_DIR), not the work file;
    a refused clip's reason names its output by the tree path too."""
    from signanon.batch.corpus import Clip
    from signanon.batch.runner import publish
    from signanon.batch.state import BatchState
    from signanon.batch.worker import REPORT, VIDEO, ClipOutcome

    work, out = tmp_path / "out" / ".signanon_batch" / "work" / "abc", tmp_path / "out"
    work.mkdir(parents=True)
    (work / "clip.mp4").write_bytes(b"video")
    source = tmp_path / "signer_anna" / "a" / "x.mov"
    (work / "clip.report.json").write_text(json.dumps({"inputs": {
        "original": {"path": str(source), "region": [0, 0, 8, 8]}, "anonymized": {"path": str(work / "clip.mp4")},
        "extras": []}, "identity": {"reid_rate": 0.0}}))  # fmt: skip
    outcome = ClipOutcome("a/x.mov", "quarantined", "re-identified", files={VIDEO: work / "clip.mp4", REPORT: work / "clip.report.json"})
    published = publish(outcome, Clip(source, "a/x.mov"), out, BatchState(out / ".signanon_batch" / "state.json"))
    assert published["output"] == "_quarantine/a/x.mp4"
    refused = ClipOutcome("a/y.mov", "quarantined", f"privacy check failed: ...; nothing was written to {_work_file(out, 'a/y.mov')}")
    assert publish(refused, Clip(source, "a/y.mov"), out, BatchState(out / "s.json"))["reason"].endswith("written to a/y.mp4")
    clip_report = json.loads((out / "_quarantine" / "a" / "x.report.json").read_text())
    assert clip_report["inputs"]["original"] == {"path": "a/x.mov", "region": [0, 0, 8, 8]}
    assert clip_report["inputs"]["anonymized"]["path"] == "_quarantine/a/x.mp4"
    assert clip_report["identity"] == {"reid_rate": 0.0} and not (work / "clip.report.json").exists()


def test_ray_starts_no_more_actors_than_the_cluster_can_place():
    """Each Ray actor asks for one CPU (one GPU for diffusion on CUDA). Asked for 4 workers on a
    2-CPU machine, 4 actors were started, 2 could never be placed and the clips given to them
    waited for ever; asked for a GPU the cluster lacks, nothing ran and nothing was said."""
    from signanon.batch.executors import RayPlan, actor_count
    from signanon.errors import SignanonError

    assert actor_count({"CPU": 2.0}, RayPlan("local", actors=4)) == (2, False)
    assert actor_count({"CPU": 2.0}, RayPlan("local", actors=1)) == (1, False)
    assert actor_count({"CPU": 16.0, "GPU": 2.0}, RayPlan("local", gpu=None)) == (2, True)
    assert actor_count({"CPU": 16.0, "GPU": 2.0}, RayPlan("local", actors=8, gpu=False)) == (8, False)
    with pytest.raises(SignanonError, match="has no GPU .*--device cuda"):
        actor_count({"CPU": 2.0}, RayPlan("local", gpu=True))


def test_more_ray_workers_than_cpus_still_finish(tmp_path, clips, monkeypatch):
    """The hang itself, on a real local Ray of 1 CPU: 3 clips and --workers 3 finish."""
    pytest.importorskip("ray")
    import ray

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for k in range(3):
        shutil.copy(clips["web10"], corpus / f"web{k}.mp4")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        assert main(["batch", str(corpus), "-o", str(tmp_path / "out"), "-q", "--ray", "local", "--workers", "3", *FIXED_LOOK]) == 0
    finally:
        ray.shutdown()
    assert report(tmp_path / "out")["totals"]["done"] == 3


def test_a_changed_input_that_now_fails_leaves_no_old_outputs_in_the_tree(tmp_path, clips, fast):
    """c2 was done; its file is replaced by garbage and the re-run fails: its earlier outputs
    (video, summary) are removed from the release tree and its report row says so."""
    corpus, out = tmp_path / "in", tmp_path / "out"
    corpus.mkdir()
    shutil.copy(clips["web10"], corpus / "c1.mp4")
    shutil.copy(clips["house10"], corpus / "c2.mp4")
    assert _fast_batch(corpus, out).totals["done"] == 2
    (corpus / "c2.mp4").write_text("garbage\n")
    result = _fast_batch(corpus, out)
    assert result.totals == {"done": 0, "skipped": 1, "failed": 1, "quarantined": 0}
    assert not (out / "c2.mp4").exists() and not (out / "c2.summary.json").exists()
    assert (out / "c1.mp4").is_file() and (out / "c1.summary.json").is_file()
    failed = entry(report(out), "c2.mp4")
    assert failed["output"] is None and "removed its earlier outputs c2.summary.json, c2.mp4" in failed["reason"]
    again = entry(report(_fast_batch(corpus, out).report.parent), "c2.mp4")  # nothing left to remove
    assert again["status"] == "failed" and "removed" not in again["reason"]


def test_a_file_name_that_is_not_utf8_does_not_stop_the_batch(tmp_path, clips, fast):
    """``bad\\xffname.mp4`` (not valid UTF-8) is run like any clip; the good clip is done and the
    reports are written, naming the odd clip with the byte escaped."""
    corpus, out = tmp_path / "in", tmp_path / "out"
    corpus.mkdir()
    shutil.copy(clips["web10"], corpus / "good.mp4")
    shutil.copy(clips["house10"], os.fsdecode(bytes(corpus) + b"/bad\xffname.mp4"))
    result = _fast_batch(corpus, out)
    assert result.totals == {"done": 2, "skipped": 0, "failed": 0, "quarantined": 0}
    assert frames_of(out / "good.mp4") == 10 and os.path.isfile(os.fsdecode(bytes(out) + b"/bad\xffname.mp4"))
    assert "bad\\xffname.mp4" in (out / "batch_report.csv").read_text()
    assert "bad\\xffname.mp4" in (out / "batch_report.html").read_text()
    assert _fast_batch(corpus, out).totals["skipped"] == 2


def test_duplicate_manifest_rows_for_one_file_are_merged_or_refused(tmp_path, clips, fast, capsys):
    """``x.mp4`` and ``./x.mp4`` name one file: with the same settings the rows are merged (the
    clip is done once, said once, and the re-run skips it instead of failing on itself); with
    different settings the manifest is refused in one line naming both rows."""
    shutil.copy(clips["web10"], tmp_path / "x.mp4")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,signer\nx.mp4,ann\n./x.mp4,ann\nsub/../x.mp4,ann\n")
    (tmp_path / "sub").mkdir()
    out = tmp_path / "out"
    assert main(["batch", str(manifest), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("name the same file x.mp4") == 1 and "lines 2, 3 and 4" in err
    rep = report(out)
    assert rep["totals"] == {"done": 1, "skipped": 0, "failed": 0, "quarantined": 0} and len(rep["clips"]) == 1
    assert rep["notes"] == ["manifest lines 2, 3 and 4 name the same file x.mp4: it is done once"]
    assert _fast_batch(manifest, out).totals == {"done": 0, "skipped": 1, "failed": 0, "quarantined": 0}
    manifest.write_text("path,signer\nx.mp4,ann\n./x.mp4,bob\n")
    with pytest.raises(InputError, match=r"lines 2 and 3 name the same file x\.mp4 with different settings") as refused:
        discover(manifest)
    assert "\n" not in str(refused.value)


def test_a_ray_address_where_nothing_listens_is_refused_at_once():
    """ray.init retried an address where nothing listens for about 14 minutes before giving up."""
    from signanon.batch import executors
    from signanon.errors import SignanonError

    class NoRay:  # ray.init must not even be tried
        @staticmethod
        def is_initialized():
            return False

        @staticmethod
        def init(**kwargs):
            raise AssertionError("ray.init was called")

    started = time.monotonic()
    with pytest.raises(SignanonError, match=r"cannot connect to Ray at 127\.0\.0\.1:1: nothing answers there"):
        executors._connect(NoRay, "127.0.0.1:1")
    with pytest.raises(SignanonError, match="nothing answers there"):
        executors._connect(NoRay, "ray://127.0.0.1:1")
    assert time.monotonic() - started < 15


def test_a_local_ray_started_by_the_batch_prints_no_info_lines(monkeypatch, capfd):
    """``--ray local -q`` printed Ray's own "Started a local Ray instance." among the batch's lines."""
    pytest.importorskip("ray")
    import ray

    from signanon.batch import executors

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert not ray.is_initialized()
    try:
        assert executors._connect(ray, "local") is True
    finally:
        ray.shutdown()
    captured = capfd.readouterr()
    assert "Started a local Ray instance" not in captured.err + captured.out, captured.err


def test_manifest_rows_are_named_by_their_line_in_the_file(tmp_path):
    """A blank line shifted every later row's number by one ("manifest line 9" for line 10), and a
    NUL byte in a path was an internal error (ValueError: embedded null byte)."""
    for name in ("x.mp4", "y.mp4"):
        (tmp_path / name).write_bytes(b"")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,seed\nx.mp4,1\n\n\ny.mp4,abc\n")
    (bad,) = [c for c in discover(manifest).clips if c.problem]
    assert bad.problem.startswith("manifest line 5: seed 'abc'"), bad.problem
    manifest.write_text("path\nx.mp4\ny\x00.mp4\n")
    with pytest.raises(InputError, match=r"line 3 holds a NUL byte"):
        discover(manifest)


def test_an_interrupted_batch_says_its_finished_clips_are_kept(tmp_path, clips, fast, monkeypatch, capsys):
    """Ctrl-C after the first clip was published said "no output written" while that clip stayed
    in OUT_DIR (as it should: a re-run resumes)."""
    from signanon.batch import runner

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("a", "b"):
        shutil.copy(clips["web10"], corpus / f"{name}.mp4")
    publish = runner.publish

    calls = []

    def publish_then_ctrl_c(outcome, clip, out_dir, state):  # Ctrl-C as the second clip finishes
        calls.append(clip)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return publish(outcome, clip, out_dir, state)

    monkeypatch.setattr(runner, "publish", publish_then_ctrl_c)
    assert main(["batch", str(corpus), "-o", str(tmp_path / "out"), "-q"]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"signanon: interrupted; 1 clip finished in this run kept in {tmp_path / 'out'}; run the same command again to do the rest")
    assert (tmp_path / "out" / "a.mp4").is_file()
