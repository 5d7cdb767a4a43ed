"""One clip, start to finish, inside whichever process runs it (this one, a pool process, a Ray
actor): anonymize, optionally extract the pose and evaluate, and say what came of it.

A :class:`ClipWorker` lives as long as its process and builds the method's pipeline object once
(:func:`~signanon.job.make_anonymizer`), so models load once per worker, not per clip. It writes
only into the clip's own work folder; the main process moves finished files into ``OUT_DIR``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NoPersonError, ReidentifiedError, SignanonError
from ..job import AnonymizeJob, make_anonymizer, run_job
from ..video.region import Region

# The files a clip can produce, by the suffix its output name gets in the tree.
VIDEO, SUMMARY, POSE, REPORT = ".mp4", ".summary.json", ".pose", ".report.json"
FACES = "faces.npz"  # face embeddings for the corpus gallery attack (kept in the control folder)


@dataclass(frozen=True)
class ClipTask:
    """What a worker needs for one clip (picklable). ``work``: the clip's empty work folder.
    ``region``: the signer's box of the input (anonymized, evaluated and posed alone), or None."""

    relative: str
    input: Path
    work: Path
    config: Any
    pose: bool = False
    evaluate: bool = False
    region: Region | None = None


@dataclass(frozen=True)
class ClipOutcome:
    """What came of one clip.

    ``status``: "done", "failed" or "quarantined"; ``reason``: one line (failed, quarantined, or a
    note on a done clip). ``files``: produced files in the work folder by output suffix.
    ``metrics``: evaluation figures (empty without evaluation). ``faces``: the embeddings file for
    the gallery attack, or None. ``worker``: pid, pipelines built and peak RSS of the worker.
    """

    relative: str
    status: str
    reason: str | None = None
    seconds: float = 0.0
    frames: int | None = None
    files: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    faces: Path | None = None
    worker: dict[str, Any] = field(default_factory=dict)


def failed(task: ClipTask, reason: str, seconds: float = 0.0) -> ClipOutcome:
    """The outcome of a clip that could not be done."""
    return ClipOutcome(task.relative, "failed", reason, seconds)


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class ClipWorker:
    """Runs clips one after another with one pipeline object and one evaluator per process.

    ``evaluation``: the :class:`~signanon.evaluation.evaluate.EvaluationConfig` used for
    ``task.evaluate`` (None: the batch default, no side-by-side video, no HTML).
    """

    def __init__(self, evaluation: Any = None):
        self._evaluation = evaluation
        self._anonymizer: Any = None
        self._embedder: Any = None
        self.pipelines_built = 0

    def anonymizer(self, config: Any) -> Any:
        """The pipeline object for ``config``: the current one, or a new one (a diffusion pipeline
        for another prompt or seed keeps the loaded models)."""
        fresh = make_anonymizer(config, previous=self._anonymizer)
        if fresh is not self._anonymizer:
            self.pipelines_built += 1
            self._anonymizer = fresh
        return fresh

    def run(self, task: ClipTask) -> ClipOutcome:
        """Do one clip; never raises for a bad clip (its outcome says why)."""
        start = time.perf_counter()
        try:
            outcome = self._run(task)
        except Exception as err:
            from ..cli.main import interrupt_inside

            interrupt = interrupt_inside(err)
            if interrupt is not None:  # Ctrl-C that a library wrapped (in an import, say): stop all
                raise interrupt from None
            if isinstance(err, SignanonError):
                outcome = failed(task, str(err))
            else:  # a bug on one clip must not stop the corpus
                outcome = failed(task, f"internal error: {type(err).__name__}: {err}")
        info = {"pid": os.getpid(), "pipelines_built": self.pipelines_built, "peak_rss_mib": round(peak_rss_mib(), 1)}
        return dataclasses.replace(outcome, seconds=round(time.perf_counter() - start, 3), worker=info)

    __call__ = run

    def _run(self, task: ClipTask) -> ClipOutcome:
        task.work.mkdir(parents=True, exist_ok=True)
        files = {VIDEO: task.work / "clip.mp4", SUMMARY: task.work / "clip.summary.json"}
        job = AnonymizeJob(task.input, files[VIDEO], task.config, summary=files[SUMMARY], region=task.region)
        try:
            summary = run_job(job, None, anonymizer=self.anonymizer(task.config))
        except ReidentifiedError as err:
            return _refused(task, err, files[SUMMARY])
        if not (task.pose or task.evaluate):
            return ClipOutcome(task.relative, "done", frames=summary.frames_out, files=files)
        with signer_video(task) as source:
            if task.pose:
                files[POSE] = self._pose(task, source)
            if not task.evaluate:
                return ClipOutcome(task.relative, "done", frames=summary.frames_out, files=files)
            return self._evaluate(task, source, files, summary.frames_out)

    def _pose(self, task: ClipTask, source: Path) -> Path:
        from ..landmarks.extract import PoseExtractionConfig, extract_pose

        path = task.work / "clip.pose"
        extract_pose(source, path, PoseExtractionConfig(), progress=False)
        return path

    def _evaluator(self):
        from ..evaluation.evaluate import EvaluationConfig, Evaluator

        config = self._evaluation or EvaluationConfig(side_by_side=False, html=False)
        evaluator = Evaluator(config, self._embedder)  # a fresh analysis cache per clip
        self._embedder = evaluator.embedder  # the face recogniser loads once per worker
        return evaluator

    def _evaluate(self, task: ClipTask, source: Path, files: dict[str, Path], frames: int) -> ClipOutcome:
        """Evaluate the clip's output against the input (its region, when the clip has one);
        ``source``: the video that shows the signer (the input or its region's cut)."""
        from ..files import write_json_atomic

        evaluator = self._evaluator()
        try:
            report = evaluator.evaluate(task.input, files[VIDEO], (), None, progress=False, region=task.region,
                                        region_cut=None if task.region is None else source)
        except NoPersonError as err:  # no face in the original: nothing to re-identify
            return ClipOutcome(task.relative, "done", f"not evaluated: {err}", frames=frames, files=files)
        report.pop("series", None)
        files[REPORT] = task.work / "clip.report.json"
        write_json_atomic(files[REPORT], report)
        faces = _save_faces(evaluator, task, source, files[VIDEO])
        metrics = clip_metrics(report)
        hits = [p for p in report["identity"]["per_frame"] if p.get("reidentified")]
        if hits:
            reason = (
                f"re-identified by {report['identity']['embedder']} in {len(hits)} of "
                f"{report['identity']['frames_judged']} frames (distance <= {report['identity']['threshold']})"
            )
            return ClipOutcome(task.relative, "quarantined", reason, frames=frames, files=files, metrics=metrics, faces=faces)
        return ClipOutcome(task.relative, "done", frames=frames, files=files, metrics=metrics, faces=faces)


def _refused(task: ClipTask, err: ReidentifiedError, summary_path: Path) -> ClipOutcome:
    """The privacy gate of the pipeline refused the output: quarantined, with its summary."""
    files = {}
    if err.summary is not None:
        err.summary.write(summary_path)
        files[SUMMARY] = summary_path
    frames = getattr(err.summary, "frames_out", None)
    return ClipOutcome(task.relative, "quarantined", str(err), frames=frames, files=files)


@contextmanager
def signer_video(task: ClipTask) -> Iterator[Path]:
    """The video that shows the clip's signer: its input, or (with a region) the region cut into
    the work folder, removed afterwards. Its pose and its faces are the signer's alone: a speaker
    beside the inset is neither posed nor put in the gallery."""
    if task.region is None:
        yield task.input
        return
    from ..video.reader import probe_video
    from ..video.region import crop_video

    cut = task.work / "region.mp4"
    try:
        yield crop_video(probe_video(task.input), task.region, cut)
    finally:
        cut.unlink(missing_ok=True)


def _save_faces(evaluator, task: ClipTask, source: Path, output: Path) -> Path:
    """Both videos' face embeddings (found faces only) for the gallery attack; ``source``: the
    video that shows the signer."""
    original = evaluator.analyse(source).faces  # cached: the evaluation read the same video
    anonymized = evaluator.analyse(output).faces
    path = task.work / FACES
    np.savez(
        path,
        original=original.embeddings[original.found],
        anonymized=anonymized.embeddings[anonymized.found],
        metric=np.array(evaluator.embedder.metric),
        threshold=np.array(evaluator.embedder.threshold),
    )
    return path


def clip_metrics(report: dict) -> dict[str, Any]:
    """The per-clip figures the batch report lists, from an evaluation report."""
    signing = report.get("signing", {})
    return {
        "reid_rate": report["identity"].get("reid_rate"),
        "hand_recall": signing.get("hand_recall"),
        "handshape_angle_error_deg": signing.get("handshape_angle_error_deg"),
        "face_grammar_r": {name: v.get("r") for name, v in report.get("face_grammar", {}).items()},
    }
