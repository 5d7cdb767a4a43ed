"""Bad input to every command but ``anonymize`` (that one is in test_cli_errors.py): ``pose``,
``evaluate``, ``reenact``, ``extract-faces``, ``train-face``, ``batch`` and ``serve``.

Each case runs the real command line in a subprocess, in a folder of its own holding every input
(a 6-frame cut of the sample clip, an empty file, a text file named .mp4, a truncated clip, a
.pose file, a picture, a solid-colour video without a person, ...) and $TMPDIR. It must exit
non-zero with exactly one line, ``signanon: error: ...`` naming the problem, and leave that folder
exactly as it was: every input byte-identical, no output, no temporary or hidden file, no empty
report or run folder.

The cases run two at a time (a subprocess each; the two cores are used) and each test checks one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import DATA, SAMPLE, first_frames_clip

PARALLEL = 2


@dataclass(frozen=True)
class Case:
    """``args``: the command line, ``{w}`` standing for the case's folder and ``{port}`` for a port
    that is in use; ``words``: what the error line must say (case-insensitive)."""

    id: str
    args: tuple[str, ...]
    words: tuple[str, ...]


def case(id: str, args: str, *words: str) -> Case:
    return Case(id, tuple(args.split()), words)


TRAIN = "--vgg19-weights {w}/vgg19.pth --model-size tiny --batch-size 2 --steps-per-epoch 1 --epochs 1 --device cpu"
TRAIN_OK = f"--data a={{w}}/faces --init {{w}}/init.pth.tar {TRAIN}"

CASES = [
    # pose IN -o OUT.pose
    case("pose-missing", "pose {w}/missing.mp4 -o {w}/out.pose", "not found", "missing.mp4"),
    case("pose-empty", "pose {w}/empty.mp4 -o {w}/out.pose", "empty", "empty.mp4"),
    case("pose-text-as-mp4", "pose {w}/text.mp4 -o {w}/out.pose", "not a video", "text.mp4"),
    case("pose-truncated", "pose {w}/cut.mp4 -o {w}/out.pose", "truncated", "cut.mp4"),
    case("pose-pose-file", "pose {w}/landmarks.pose -o {w}/out.pose", "not a video", "landmarks.pose"),
    case("pose-image", "pose {w}/face.jpg -o {w}/out.pose", "still image", "face.jpg"),
    case("pose-no-person", "pose {w}/solid.mp4 -o {w}/out.pose", "no person", "solid.mp4"),
    case("pose-output-is-input", "pose {w}/clip.mp4 -o {w}/clip.mp4", "must not be the input", "clip.mp4"),
    case("pose-output-folder-missing", "pose {w}/clip.mp4 -o {w}/nowhere/out.pose", "does not exist", "nowhere"),
    case("pose-output-suffix", "pose {w}/clip.mp4 -o {w}/out.mp4", ".pose"),
    # evaluate --original IN --anonymized OUT -o DIR
    case("evaluate-original-missing", "evaluate --original {w}/missing.mp4 --anonymized {w}/clip.mp4 -o {w}/report",
         "not found", "missing.mp4"),
    case("evaluate-anonymized-missing", "evaluate --original {w}/clip.mp4 --anonymized {w}/missing.mp4 -o {w}/report",
         "not found", "missing.mp4"),
    case("evaluate-original-empty", "evaluate --original {w}/empty.mp4 --anonymized {w}/clip.mp4 -o {w}/report",
         "empty", "empty.mp4"),
    case("evaluate-anonymized-text", "evaluate --original {w}/clip.mp4 --anonymized {w}/text.mp4 -o {w}/report",
         "not a video", "text.mp4"),
    case("evaluate-original-truncated", "evaluate --original {w}/cut.mp4 --anonymized {w}/clip.mp4 -o {w}/report",
         "truncated", "cut.mp4"),
    case("evaluate-anonymized-truncated", "evaluate --original {w}/clip.mp4 --anonymized {w}/cut.mp4 -o {w}/report",
         "truncated", "cut.mp4"),
    case("evaluate-original-pose-file",
         "evaluate --original {w}/landmarks.pose --anonymized {w}/clip.mp4 -o {w}/report", "not a video", "landmarks.pose"),
    case("evaluate-anonymized-image", "evaluate --original {w}/clip.mp4 --anonymized {w}/face.jpg -o {w}/report",
         "still image", "face.jpg"),
    case("evaluate-original-no-face", "evaluate --original {w}/solid.mp4 --anonymized {w}/clip.mp4 -o {w}/report",
         "no face", "solid.mp4"),
    case("evaluate-extra-truncated",
         "evaluate --original {w}/clip.mp4 --anonymized {w}/clip.mp4 --original-extra {w}/cut.mp4 -o {w}/report",
         "truncated", "cut.mp4"),
    case("evaluate-output-is-input", "evaluate --original {w}/clip.mp4 --anonymized {w}/clip.mp4 -o {w}/clip.mp4",
         "is a file", "clip.mp4"),
    case("evaluate-output-folder-missing",
         "evaluate --original {w}/clip.mp4 --anonymized {w}/clip.mp4 -o {w}/nowhere/report", "does not exist", "nowhere"),
    case("evaluate-benchmark-missing", "evaluate --benchmark {w}/missing -o {w}/report", "not found", "missing"),
    case("evaluate-benchmark-no-pairs", "evaluate --benchmark {w}/videos -o {w}/report", "no clip pairs", "videos"),
    # reenact --source IMG_OR_VIDEO --driving VIDEO -o OUT.mp4
    case("reenact-source-missing", "reenact --source {w}/missing.jpg --driving {w}/clip.mp4 -o {w}/out.mp4",
         "not found", "missing.jpg"),
    case("reenact-source-empty", "reenact --source {w}/empty.jpg --driving {w}/clip.mp4 -o {w}/out.mp4",
         "0 bytes", "empty.jpg"),
    case("reenact-source-text-as-jpg", "reenact --source {w}/text.jpg --driving {w}/clip.mp4 -o {w}/out.mp4",
         "cannot be decoded", "text.jpg"),
    case("reenact-source-text-as-mp4", "reenact --source {w}/text.mp4 --driving {w}/clip.mp4 -o {w}/out.mp4",
         "not a video", "text.mp4"),
    case("reenact-source-truncated", "reenact --source {w}/cut.mp4 --driving {w}/clip.mp4 -o {w}/out.mp4",
         "truncated", "cut.mp4"),
    case("reenact-source-pose-file", "reenact --source {w}/landmarks.pose --driving {w}/clip.mp4 -o {w}/out.mp4",
         "landmarks.pose"),
    case("reenact-source-image-no-face", "reenact --source {w}/solid.png --driving {w}/clip.mp4 -o {w}/out.mp4",
         "no face", "solid.png"),
    case("reenact-source-video-no-face", "reenact --source {w}/solid.mp4 --driving {w}/clip.mp4 -o {w}/out.mp4",
         "no face", "solid.mp4"),
    case("reenact-driving-missing", "reenact --source {w}/face.jpg --driving {w}/missing.mp4 -o {w}/out.mp4",
         "not found", "missing.mp4"),
    case("reenact-driving-empty", "reenact --source {w}/face.jpg --driving {w}/empty.mp4 -o {w}/out.mp4",
         "empty", "empty.mp4"),
    case("reenact-driving-text-as-mp4", "reenact --source {w}/face.jpg --driving {w}/text.mp4 -o {w}/out.mp4",
         "not a video", "text.mp4"),
    case("reenact-driving-truncated", "reenact --source {w}/face.jpg --driving {w}/cut.mp4 -o {w}/out.mp4",
         "truncated", "cut.mp4"),
    case("reenact-driving-pose-file", "reenact --source {w}/face.jpg --driving {w}/landmarks.pose -o {w}/out.mp4",
         "not a video", "landmarks.pose"),
    case("reenact-driving-image", "reenact --source {w}/face.jpg --driving {w}/face.jpg -o {w}/out.mp4",
         "still image", "face.jpg"),
    case("reenact-driving-no-face", "reenact --source {w}/face.jpg --driving {w}/solid.mp4 -o {w}/out.mp4",
         "no face", "solid.mp4"),
    case("reenact-output-is-driving", "reenact --source {w}/face.jpg --driving {w}/clip.mp4 -o {w}/clip.mp4",
         "must not be the input", "clip.mp4"),
    case("reenact-output-is-source", "reenact --source {w}/source.mp4 --driving {w}/clip.mp4 -o {w}/source.mp4",
         "must not be the input", "source.mp4"),
    case("reenact-output-folder-missing", "reenact --source {w}/face.jpg --driving {w}/clip.mp4 -o {w}/nowhere/out.mp4",
         "does not exist", "nowhere"),
    case("reenact-output-suffix", "reenact --source {w}/face.jpg --driving {w}/clip.mp4 -o {w}/out.avi", ".mp4"),
    case("reenact-face-model-missing",
         "reenact --source {w}/face.jpg --driving {w}/clip.mp4 -o {w}/out.mp4 --face-model {w}/missing.pth.tar",
         "not found", "missing.pth.tar"),
    # extract-faces VIDEO_DIR -o DIR
    case("extract-faces-missing", "extract-faces {w}/missing -o {w}/crops", "not found", "missing"),
    case("extract-faces-file-not-folder", "extract-faces {w}/clip.mp4 -o {w}/crops", "the file", "clip.mp4"),
    case("extract-faces-bad-videos", "extract-faces {w}/bad_videos -o {w}/crops", "no face clip", "bad_videos"),
    case("extract-faces-no-person", "extract-faces {w}/no_person -o {w}/crops", "no face", "solid.mp4"),
    case("extract-faces-no-videos", "extract-faces {w}/not_videos -o {w}/crops", "holds no videos", "not_videos"),
    case("extract-faces-output-is-input", "extract-faces {w}/videos -o {w}/videos", "must differ", "videos"),
    case("extract-faces-output-folder-missing", "extract-faces {w}/videos -o {w}/nowhere/crops",
         "does not exist", "nowhere"),
    case("extract-faces-output-is-file", "extract-faces {w}/videos -o {w}/clip.mp4", "is a file", "clip.mp4"),
    # train-face --data NAME=DIR --init CKPT --vgg19-weights FILE -o RUN_DIR
    case("train-face-data-missing", f"train-face --data a={{w}}/missing --init {{w}}/init.pth.tar {TRAIN} -o {{w}}/run",
         "not found", "missing"),
    case("train-face-data-is-file", f"train-face --data a={{w}}/clip.mp4 --init {{w}}/init.pth.tar {TRAIN} -o {{w}}/run",
         "is a file", "clip.mp4"),
    case("train-face-data-no-clips",
         f"train-face --data a={{w}}/not_videos --init {{w}}/init.pth.tar {TRAIN} -o {{w}}/run",
         "holds no clips", "not_videos"),
    case("train-face-data-bad-videos",
         f"train-face --data a={{w}}/bad_videos --init {{w}}/init.pth.tar {TRAIN} -o {{w}}/run",
         "input video", "bad_videos"),
    case("train-face-init-missing", f"train-face --data a={{w}}/faces --init {{w}}/missing.pth.tar {TRAIN} -o {{w}}/run",
         "not found", "missing.pth.tar"),
    case("train-face-init-text", f"train-face --data a={{w}}/faces --init {{w}}/text.mp4 {TRAIN} -o {{w}}/run",
         "cannot be read", "text.mp4"),
    case("train-face-vgg-missing",
         "train-face --data a={w}/faces --init {w}/init.pth.tar --vgg19-weights {w}/missing.pth -o {w}/run",
         "not found", "missing.pth"),
    case("train-face-vgg-pose-file",
         "train-face --data a={w}/faces --init {w}/init.pth.tar --vgg19-weights {w}/landmarks.pose -o {w}/run",
         "cannot be read", "landmarks.pose"),
    case("train-face-output-is-data", f"train-face {TRAIN_OK} -o {{w}}/faces", "--data folder", "faces"),
    case("train-face-output-is-file", f"train-face {TRAIN_OK} -o {{w}}/init.pth.tar", "is a file", "init.pth.tar"),
    case("train-face-output-folder-missing", f"train-face {TRAIN_OK} -o {{w}}/nowhere/run", "does not exist", "nowhere"),
    # batch IN_DIR_OR_MANIFEST.csv -o OUT_DIR (bad clips inside a good folder: test_batch_bad_clips below)
    case("batch-missing", "batch {w}/missing -o {w}/release", "not found", "missing"),
    case("batch-empty-file", "batch {w}/empty.mp4 -o {w}/release", "folder or a .csv", "empty.mp4"),
    case("batch-truncated-file", "batch {w}/cut.mp4 -o {w}/release", "folder or a .csv", "cut.mp4"),
    case("batch-pose-file", "batch {w}/landmarks.pose -o {w}/release", "folder or a .csv", "landmarks.pose"),
    case("batch-image", "batch {w}/face.jpg -o {w}/release", "folder or a .csv", "face.jpg"),
    case("batch-no-videos", "batch {w}/not_videos -o {w}/release", "no video files", "not_videos"),
    case("batch-empty-manifest", "batch {w}/empty.csv -o {w}/release", "no 'path' column", "empty.csv"),
    case("batch-output-is-input", "batch {w}/videos -o {w}/videos", "must differ", "videos"),
    case("batch-output-overwrites-manifest-clip", "batch {w}/manifest.csv -o {w}", "would overwrite", "clip.mp4"),
    case("batch-output-folder-missing", "batch {w}/videos -o {w}/nowhere/release", "does not exist", "nowhere"),
    case("batch-output-is-file", "batch {w}/videos -o {w}/clip.mp4", "is a file", "clip.mp4"),
    # serve: what it validates before the server starts (none of these may start one)
    case("serve-port-zero", "serve --port 0", "--port", "0"),
    case("serve-port-too-large", "serve --port 70000", "--port", "70000"),
    case("serve-port-in-use", "serve --port {port}", "in use", "{port}"),
    case("serve-host-unknown", "serve --host no-such-host.invalid --port 1", "--host", "no-such-host.invalid"),
    case("serve-upload-limit-zero", "serve --max-upload-mb 0", "max-upload-mb"),
    case("serve-upload-limit-infinite", "serve --max-upload-mb inf", "max-upload-mb"),
    case("serve-minutes-negative", "serve --max-minutes -5", "max-minutes"),
    case("serve-keep-minutes-nan", "serve --keep-minutes nan", "keep-minutes"),
]  # fmt: skip


# -- the inputs ------------------------------------------------------------------------------------


def _solid_video(path: Path, frames: int = 6) -> None:
    """A video of one flat colour: nobody in it."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(frames):
            rgb = np.full((48, 64, 3), (90, 140, 200), np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))


def _train_files(folder: Path) -> None:
    """A tiny TPSMM checkpoint and a toy VGG19 in torchvision's layout (what train-face reads)."""
    import torch

    from signanon.reenactment import training
    from signanon.reenactment.tpsmm import TINY, TPSMM, checkpoint_dict

    torch.manual_seed(0)
    torch.save(checkpoint_dict(TPSMM(TINY), epoch=0), folder / "init.pth.tar")
    vgg = training.Vgg19Features((4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8))
    torch.save({f"features.{k}": v for k, v in vgg.features.state_dict().items()}, folder / "vgg19.pth")


def _make_inputs(root: Path) -> None:
    """Every input a case may name, written once; each case gets a copy."""
    clip = first_frames_clip(SAMPLE, 6, root / "clip.mp4")
    (root / "source.mp4").write_bytes(clip.read_bytes())
    (root / "empty.mp4").touch()
    (root / "empty.jpg").touch()
    (root / "text.mp4").write_text("this is not a video\n" * 40)
    (root / "text.jpg").write_text("this is not a picture\n" * 40)
    data = clip.read_bytes()
    (root / "cut.mp4").write_bytes(data[: len(data) // 2])
    (root / "landmarks.pose").write_bytes((DATA / "dgs_kinder.pose").read_bytes())
    (root / "face.jpg").write_bytes((DATA / "faces" / "obama" / "1.jpg").read_bytes())
    _solid_video(root / "solid.mp4")
    cv2.imwrite(str(root / "solid.png"), np.full((96, 96, 3), 128, np.uint8))
    (root / "empty.csv").touch()
    (root / "manifest.csv").write_text("path\nclip.mp4\n")
    folders = {"videos": ["clip.mp4"], "bad_videos": ["empty.mp4", "text.mp4", "cut.mp4"],
               "no_person": ["solid.mp4"], "not_videos": ["landmarks.pose", "face.jpg"]}  # fmt: skip
    for name, files in folders.items():
        (root / name).mkdir()
        for file in files:
            shutil.copy(root / file, root / name / file)
    face = cv2.resize(cv2.imread(str(root / "face.jpg")), (64, 64))
    (root / "faces" / "clip").mkdir(parents=True)
    for i in range(4):
        cv2.imwrite(str(root / "faces" / "clip" / f"{i:05d}.png"), np.roll(face, i, axis=1))
    _train_files(root)
    (root / ".tmp").mkdir()  # the case's $TMPDIR


def _copy_inputs(source: Path, work: Path) -> None:
    """A case's own folder: small inputs copied, the 50 MB checkpoint linked (it is hashed too)."""
    shutil.copytree(source, work, ignore=shutil.ignore_patterns("init.pth.tar"))
    (work / "init.pth.tar").symlink_to(source / "init.pth.tar")


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (hidden ones too): a folder, a link's target, or the SHA-256 of a
    file."""
    entries = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink():
            entries[name] = f"link to {os.readlink(path)}"
        elif path.is_dir():
            entries[name] = "folder"
        else:
            entries[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return entries


# -- running ---------------------------------------------------------------------------------------


@dataclass
class Result:
    status: int
    stderr: str
    before: dict[str, str]
    after: dict[str, str]


def run_case(item: Case, inputs: Path, work: Path, port: int) -> Result:
    _copy_inputs(inputs, work)
    args = [a.format(w=work, port=port) for a in item.args]
    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TMPDIR=str(work / ".tmp"))
    env.pop("SIGNANON_DEBUG", None)
    before = snapshot(work)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "signanon.cli.main", *args],
            capture_output=True, text=True, env=env, cwd=work, timeout=180, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        status, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as err:  # e.g. a server that started instead of refusing
        status, stderr = -1, f"still running after {err.timeout} s\n{err.stderr or ''}"
    return Result(status, stderr, before, snapshot(work))


@pytest.fixture(scope="module")
def busy_port():
    """A port some other program listens on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


@pytest.fixture(scope="module")
def results(request, tmp_path_factory, busy_port) -> dict[str, Future]:
    """Every selected case, started two at a time as soon as the first test asks."""
    inputs = tmp_path_factory.mktemp("inputs")
    _make_inputs(inputs)
    root = tmp_path_factory.mktemp("cases")
    selected = [
        item.callspec.params["item"] for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec") and "item" in item.callspec.params
    ]  # fmt: skip
    shared = snapshot(inputs)  # the linked checkpoint is checked here, once
    pool = ThreadPoolExecutor(PARALLEL)
    futures = {c.id: pool.submit(run_case, c, inputs, root / c.id, busy_port) for c in selected}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)
    assert snapshot(inputs) == shared, "a case wrote into the shared inputs"


@pytest.mark.parametrize("item", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_one_line_and_leaves_nothing(item: Case, results, busy_port) -> None:
    result = results[item.id].result()
    assert result.status not in (0, -1), (result.status, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{result.stderr}"
    assert lines[0].startswith("signanon: error: "), lines[0]
    for word in item.words:
        word = word.format(port=busy_port)
        assert word.lower() in lines[0].lower(), (word, lines[0])
    added = sorted(set(result.after) - set(result.before))
    removed = sorted(set(result.before) - set(result.after))
    changed = sorted(k for k in result.before.keys() & result.after.keys() if result.before[k] != result.after[k])
    assert (added, removed, changed) == ([], [], []), f"added {added}, removed {removed}, changed {changed}"



def test_batch_reports_every_bad_clip_and_publishes_nothing(tmp_path: Path) -> None:
    """Bad clips inside a corpus folder do not stop batch: each is listed as failed with a one-line
    reason (on the terminal and in the report), exit 1, and nothing but the reports and the resume
    state is written: no video, summary or work file, the inputs untouched."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    clip = first_frames_clip(SAMPLE, 6, tmp_path / "clip.mp4").read_bytes()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    bad = {
        "empty.mp4": (b"", "empty"),
        "text.mp4": (b"this is not a video\n" * 40, "not a video"),
        "cut.mp4": (clip[: len(clip) // 2], "truncated"),
        "pose.mp4": ((DATA / "dgs_kinder.pose").read_bytes(), "not a video"),  # a .pose file as a clip
        "picture.mp4": ((DATA / "faces" / "obama" / "1.jpg").read_bytes(), "still image"),
    }
    for name, (data, _) in bad.items():
        (corpus / name).write_bytes(data)
    _solid_video(corpus / "solid.mp4")
    bad["solid.mp4"] = (b"", "no person")
    before = snapshot(corpus)
    out = tmp_path / "release"
    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TMPDIR=str(tmp_path))
    env.pop("SIGNANON_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "signanon.cli.main", "batch", str(corpus), "-o", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == len(bad) + 1, proc.stderr
    assert lines[-1].startswith(f"batch: 0 done, 0 skipped, {len(bad)} failed, 0 quarantined"), lines[-1]
    report = {e["input"]: e for e in json.loads((out / "batch_report.json").read_text())["clips"]}
    assert set(report) == set(bad)
    for name, (_, word) in bad.items():
        entry = report[name]
        assert entry["status"] == "failed" and "\n" not in entry["reason"], entry
        assert word in entry["reason"].lower(), entry
        assert f"failed: {name}: {entry['reason']}" in lines, (name, lines)
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == [".signanon_batch/lock", ".signanon_batch/state.json",
                       "batch_report.csv", "batch_report.html", "batch_report.json"], written  # fmt: skip
    assert snapshot(corpus) == before


def test_reenact_source_is_read_by_content(tmp_path: Path) -> None:
    """A video named like a picture gives its first frame, a picture named like a video gives the
    picture: ``--source`` takes either, whatever the suffix says."""
    from signanon.reenactment.reenact import read_source_image
    from signanon.video import iter_frames, probe_video

    clip = first_frames_clip(SAMPLE, 3, tmp_path / "clip.mp4")
    video_as_png = tmp_path / "video.png"
    video_as_png.write_bytes(clip.read_bytes())
    first = next(iter_frames(probe_video(clip)))
    assert np.array_equal(read_source_image(video_as_png), first)
    picture = DATA / "faces" / "obama" / "1.jpg"
    picture_as_mp4 = tmp_path / "picture.mp4"
    picture_as_mp4.write_bytes(picture.read_bytes())
    assert np.array_equal(read_source_image(picture_as_mp4), cv2.cvtColor(cv2.imread(str(picture)), cv2.COLOR_BGR2RGB))


def test_evaluate_benchmark_names_every_bad_pair_and_exits_1(tmp_path: Path) -> None:
    """``evaluate --benchmark`` over pairs that cannot be read: each named in one line, the table
    still written (it lists them), and exit 1 as for batch (it was 0: a script saw success)."""
    clip = first_frames_clip(SAMPLE, 6, tmp_path / "clip.mp4").read_bytes()
    pairs = tmp_path / "pairs"
    for name, original, anonymized in [("text", clip, b"not a video\n" * 40), ("cut", clip[: len(clip) // 2], clip)]:
        (pairs / name).mkdir(parents=True)
        (pairs / name / "original.mp4").write_bytes(original)
        (pairs / name / "anonymized.mp4").write_bytes(anonymized)
    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    env.pop("SIGNANON_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "signanon.cli.main", "evaluate", "--benchmark", str(pairs), "-o", str(tmp_path / "bench")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("failed: cut: input video is truncated or corrupt"), lines
    assert lines[0].endswith(str(pairs / "cut" / "original.mp4")), lines
    assert lines[1] == f"failed: text: input video is not a video FFmpeg can read: {pairs / 'text' / 'anonymized.mp4'}"
    assert len(lines) == 3 and lines[2].startswith("evaluated 0 pairs (2 failed)"), lines
    rows = json.loads((tmp_path / "bench" / "benchmark.json").read_text())["clips"]
    assert sorted(row["clip"] for row in rows if "error" in row) == ["cut", "text"]
