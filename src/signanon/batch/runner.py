"""``signanon batch`` as a library call: anonymize a corpus into a mirrored output tree, resumably.

    from signanon.batch.runner import BatchConfig, run_corpus
    from signanon.avatar.anonymizer import AvatarConfig

    result = run_corpus("corpus/", "release/", AvatarConfig(), BatchConfig(workers=2, evaluate=True))
    result.totals   # {"done": 10, "skipped": 0, "failed": 1, "quarantined": 0}

Steps of a run: find the clips (:mod:`.corpus`); under the ``OUT_DIR`` lock remove what a killed
run left and read the resume state (:mod:`.state`); skip every clip finished before with the same
content and settings; run the others (:mod:`.executors`: here, N processes or Ray); move each
finished clip's files into the tree (or into ``_quarantine/``) and record it; with evaluation run
the corpus gallery attack (:mod:`.gallery`); write ``batch_report.json``/``.csv``/``.html``
(:mod:`.report`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..config import check_local_processes, setting, with_settings
from ..errors import InputError, OutputError
from ..files import make_folder, remove_empty_folders, write_json_atomic
from ..job import method_of
from ..progress import Progress, ProgressCallback
from .corpus import Clip, Corpus, discover
from .state import (BatchLock, BatchState, clean_leftovers, clear_work, clip_key, control_dir, corpus_secret,
                    file_digest, identity_for, remove_empty_work, work_dir)
from .worker import POSE, REPORT, SUMMARY, VIDEO, ClipOutcome, ClipTask

QUARANTINE = "_quarantine"
OUTPUT_SUFFIXES = (SUMMARY, POSE, REPORT, VIDEO)  # the video last: it appears when the rest is there
BATCH_FORMAT = 1  # bump when a change of this package changes what a clip's outputs are
STATUSES = ("done", "skipped", "failed", "quarantined")


@dataclass(frozen=True)
class BatchConfig:
    """How a corpus is run (the method's own settings are in its config)."""

    workers: int | None = setting(
        None, "clips at once, each in its own process that loads the models once; none = 1 here, "
        "and with --ray one actor per CPU of the cluster (per GPU for diffusion on GPUs), never more", metavar="N")  # fmt: skip
    ray: str | None = setting(
        None, "run the clips on Ray: 'local' starts Ray on this machine, else the address of a "
        "running cluster whose nodes see INPUT and OUT_DIR (needs the cluster extra)", metavar="local|ADDRESS")  # fmt: skip
    evaluate: bool = setting(
        False, "evaluate every clip (identity, signing), move re-identified outputs to "
        "OUT_DIR/_quarantine/, and attack the corpus with a face gallery")  # fmt: skip
    pose: bool = setting(False, "also write each clip's landmarks as a .pose file")

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise InputError(f"--workers must be 1 or more, got {self.workers}")
        if self.ray is None and self.workers is not None:
            check_local_processes(self.workers, "; --ray runs more on a cluster")


@dataclass(frozen=True)
class Planned:
    """One clip of this run: its config and resume key, and either a task to run or a finished
    report entry (skipped or failed before running)."""

    clip: Clip
    key: str | None = None
    task: ClipTask | None = None
    entry: dict[str, Any] | None = None
    content: str | None = None


@dataclass(frozen=True)
class BatchResult:
    """What a run did: ``entries`` (one per input, path order), ``totals`` per status for this run,
    ``gallery`` (the corpus attack, with evaluation), ``report``: the JSON report's path,
    ``ignored``: files that are not videos, ``notes``: lines on the input (merged manifest rows, renamed outside clips)."""

    entries: tuple[dict[str, Any], ...]
    totals: dict[str, int]
    gallery: dict[str, Any] | None
    report: Path
    ignored: tuple[str, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> bool:
        return self.totals.get("failed", 0) > 0


# -- planning ----------------------------------------------------------------------------------


def clip_config(config: Any, clip: Clip, secret: bytes | None, prompt_given: bool) -> Any:
    """The method config of one clip. Diffusion: the manifest's prompt/seed when given; else, for
    a clip with a signer, that signer's identity from the corpus secret (a ``--prompt`` given on
    the command line is kept, only the seed is the signer's); else ``config`` as is."""
    if method_of(config) != "diffusion":
        return config
    changes: dict[tuple[str, ...], Any] = {}
    if clip.signer is not None and secret is not None:
        prompt, seed = identity_for(secret, clip.signer)
        changes[("sampling", "seed")] = seed
        if not prompt_given:
            changes[("prompt",)] = prompt
    if clip.prompt is not None:
        changes[("prompt",)] = clip.prompt
    if clip.seed is not None:
        changes[("sampling", "seed")] = clip.seed
    return with_settings(config, changes)


def clip_settings(config: Any, batch: BatchConfig) -> dict[str, Any]:
    """Every setting that changes a clip's outputs (workers and Ray do not)."""
    return {
        "format": BATCH_FORMAT,
        "method": method_of(config),
        "config": dataclasses.asdict(config),
        "pose": batch.pose,
        "evaluate": batch.evaluate,
    }


def _name_digest(relative: str) -> str:
    """A short hash of a clip's relative path (its bytes: a name that is not UTF-8 hashes too)."""
    return hashlib.sha256(os.fsencode(relative)).hexdigest()[:20]


def _work_folder(out_dir: Path, clip: Clip) -> Path:
    return work_dir(out_dir) / _name_digest(clip.relative)


def _files_present(out_dir: Path, entry: dict[str, Any]) -> bool:
    """Every file a finished clip published is still there (a refused clip may have none)."""
    return all((out_dir / f).is_file() for f in entry.get("files", []))


def plan_clip(clip: Clip, out_dir: Path, config: Any, batch: BatchConfig, state: BatchState,
              secret: bytes | None, prompt_given: bool) -> Planned:  # fmt: skip
    """Decide one clip: failed at once, skipped (done before with the same key), or to run."""
    if clip.problem is not None:
        return Planned(clip, entry=base_entry(clip, "failed", clip.problem))
    if not clip.path.is_file():
        return Planned(clip, entry=base_entry(clip, "failed", f"input not found: {clip.path}"))
    try:
        content = file_digest(clip.path)
    except OSError as err:
        return Planned(clip, entry=base_entry(clip, "failed", f"cannot read {clip.path}: {err.strerror}"))
    own = clip_config(config, clip, secret, prompt_given)
    settings = clip_settings(own, batch)
    if clip.region is not None:  # (absent otherwise: clips done before the column existed stay done)
        settings["region"] = str(clip.region)
    key = clip_key(content, settings)
    previous = state.done_entry(clip.relative, key)
    if previous is not None and _files_present(out_dir, previous):
        return Planned(clip, key, entry=dict(previous, status="skipped"))
    task = ClipTask(clip.relative, clip.path, _work_folder(out_dir, clip), own, batch.pose, batch.evaluate, clip.region)
    return Planned(clip, key, task=task, content=content)


def base_entry(clip: Clip, status: str, reason: str | None = None) -> dict[str, Any]:
    """A report entry without outputs (``outcome``: what the clip is now; ``status``: this run)."""
    entry = {"input": clip.relative, "output": None, "status": status, "outcome": status, "reason": reason,
             "seconds": None, "frames": None, "signer": clip.signer, "files": []}  # fmt: skip
    if clip.region is not None:
        entry["region"] = str(clip.region)
    return entry


# -- publishing --------------------------------------------------------------------------------


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


def faces_file(out_dir: Path, relative: str) -> Path:
    """Where a clip's face embeddings are kept for the gallery attack."""
    return control_dir(out_dir) / "faces" / (_name_digest(relative) + ".npz")


def published_paths(data: dict[str, Any], relative: str, output: str | None) -> dict[str, Any]:
    """A clip's summary or evaluation report as published: the input named by its corpus path
    (``relative``), the output by its path in ``OUT_DIR`` (None when no video was published), never
    by absolute or work-folder paths (folder names can be signer names)."""
    data = dict(data)
    if "input" in data:  # a run summary
        data.update(input=relative, output=output)
    inputs = data.get("inputs")
    if isinstance(inputs, dict):  # an evaluation report
        data["inputs"] = dict(inputs)
        if isinstance(inputs.get("original"), dict):
            data["inputs"]["original"] = dict(inputs["original"], path=relative)
        if isinstance(inputs.get("anonymized"), dict):
            data["inputs"]["anonymized"] = dict(inputs["anonymized"], path=output)
    return data


def _publish_json(source: Path, target: Path, relative: str, output: str | None) -> None:
    """Publish a JSON file of the work folder at ``target`` through :func:`published_paths`."""
    data = json.loads(source.read_text())
    target.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(target, published_paths(data, relative, output))
    source.unlink()


def output_paths(clip: Clip, out_dir: Path) -> list[Path]:
    """Every path the batch may publish for ``clip``, in the tree and in ``_quarantine/``."""
    return [clip.output_in(folder, suffix) for folder in (out_dir, out_dir / QUARANTINE) for suffix in OUTPUT_SUFFIXES]


def _under(out_dir: Path, path: Path) -> str:
    return path.relative_to(out_dir).as_posix()


def remove_outputs(clip: Clip, out_dir: Path, state: BatchState) -> list[str]:
    """Remove what earlier runs published for ``clip`` (only the batch's own files: the run
    started with :func:`check_outputs_free`); the removed paths relative to ``out_dir``."""
    removed = []
    for path in output_paths(clip, out_dir):
        if os.path.lexists(path):
            path.unlink()
            removed.append(_under(out_dir, path))
    state.disown([_under(out_dir, p) for p in output_paths(clip, out_dir)])
    return removed


def _without_work_paths(reason: str | None, clip: Clip, out_dir: Path) -> str | None:
    """A clip's reason naming its output by the tree path, not the work file (the privacy gate
    says "nothing was written to <the work file>")."""
    work = str(_work_folder(out_dir, clip) / "clip.mp4")
    return reason if reason is None else reason.replace(work, clip.stem + VIDEO)


def publish(outcome: ClipOutcome, clip: Clip, out_dir: Path, state: BatchState) -> dict[str, Any]:
    """Move a finished clip's files from its work folder into the tree (``_quarantine/`` when
    quarantined), removing what an earlier run left for it in either place; its report entry.
    The files are recorded in ``state`` as the batch's own before they are moved."""
    entry = base_entry(clip, outcome.status, _without_work_paths(outcome.reason, clip, out_dir))
    entry.update(seconds=outcome.seconds, frames=outcome.frames, worker=outcome.worker, **outcome.metrics)
    if outcome.status == "failed":
        return entry
    root = out_dir / QUARANTINE if outcome.status == "quarantined" else out_dir
    remove_outputs(clip, out_dir, state)
    state.claim([_under(out_dir, clip.output_in(root, suffix)) for suffix in OUTPUT_SUFFIXES if suffix in outcome.files])
    if VIDEO in outcome.files:
        entry["output"] = _under(out_dir, clip.output_in(root, VIDEO))
    for suffix in OUTPUT_SUFFIXES:
        if suffix in outcome.files:
            target = clip.output_in(root, suffix)
            if suffix in (SUMMARY, REPORT):
                _publish_json(outcome.files[suffix], target, clip.relative, entry["output"])
            else:
                _move(outcome.files[suffix], target)
            entry["files"].append(_under(out_dir, target))
    if outcome.faces is not None:
        _move(outcome.faces, faces_file(out_dir, clip.relative))
    return entry


# -- the run -----------------------------------------------------------------------------------


def prepare_out_dir(out_dir: str | Path) -> Path:
    """Create ``OUT_DIR`` (its parent must exist); OutputError when it cannot be or is not writable."""
    folder = make_folder(out_dir, "output folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"output folder is not writable: {folder}")
    return folder


def _outcomes(tasks: list[ClipTask], config: Any, batch: BatchConfig, evaluation: Any) -> Iterator[ClipOutcome]:
    from . import executors

    if batch.ray is not None:
        plan = executors.RayPlan(batch.ray, batch.workers, wants_gpu(config))
        return executors.run_ray(tasks, plan, evaluation)
    if (batch.workers or 1) > 1:
        return executors.run_processes(tasks, batch.workers, evaluation)
    return executors.run_here(tasks, evaluation)


def wants_gpu(config: Any) -> bool | None:
    """Whether a Ray actor asks for a GPU: diffusion on "cuda" yes, on "auto" when the cluster has
    one (None), anything else no."""
    if method_of(config) != "diffusion":
        return False
    device = getattr(config, "device", "auto")
    return True if device == "cuda" else None if device == "auto" else False


def _report_progress(callback: ProgressCallback | None, done: int, total: int, started: float) -> None:
    if callback is not None:
        callback(Progress("clips", done, total, time.perf_counter() - started, unit="clip"))


def run_corpus(
    source: str | Path,
    out_dir: str | Path,
    config: Any,
    batch: BatchConfig = BatchConfig(),
    *,
    progress: ProgressCallback | None = None,
    prompt_given: bool = False,
    evaluation: Any = None,
) -> BatchResult:
    """Anonymize every clip of ``source`` (folder or CSV manifest) into ``out_dir``.

    ``config``: the method config (its type chooses the method). ``progress``: called with one
    :class:`~signanon.progress.Progress` per finished clip (unit "clip"; skipped clips are not
    counted in the total). ``prompt_given``: the user chose the diffusion prompt (signers then
    differ by seed only). ``evaluation``: an EvaluationConfig for ``batch.evaluate`` (None: the
    default without side-by-side video). A bad clip never stops the others.
    """
    if Path(source).expanduser().is_dir() and _same_path(source, out_dir):
        raise OutputError(f"output folder must differ from the input folder: {Path(out_dir).expanduser().absolute()}")
    target = Path(out_dir).expanduser().absolute()
    existed = target.exists()
    try:  # the folder is made inside: an interrupt right after it is made still removes it
        out = prepare_out_dir(out_dir)
        return _run_corpus(source, out, config, batch, progress, prompt_given, evaluation)
    except BaseException:
        if not existed:  # a bad input or an early interrupt leaves no empty output folder
            _forget_lock(target)
            remove_empty_folders(target)
        raise


def _same_path(a: str | Path, b: str | Path) -> bool:
    return Path(a).expanduser().absolute().resolve() == Path(b).expanduser().absolute().resolve()


def check_no_overwrite(corpus: Corpus, out: Path) -> None:
    """Refuse a run that would write over one of its own inputs (a manifest's clips mirrored into
    an OUT_DIR that is their folder: ``clip.mp4`` -> ``OUT_DIR/clip.mp4``); OutputError, one line."""
    inputs = {clip.path.resolve() for clip in corpus.clips}
    for clip in corpus.clips:
        for root in (out, out / QUARANTINE):
            for suffix in OUTPUT_SUFFIXES:
                target = clip.output_in(root, suffix).resolve()
                if target in inputs:
                    raise OutputError(
                        f"output folder {out} would overwrite the input {target} (the output of {clip.relative}); "
                        "choose another output folder"
                    )


def check_outputs_free(corpus: Corpus, out: Path, state: BatchState) -> None:
    """Refuse a run that would replace or delete a file it did not write: any path a clip may
    publish (its video, ``.pose``, ``.summary.json``, ``.report.json``, in the tree or in
    ``_quarantine/``) that exists and is not recorded in ``state`` as the batch's own (a user's
    recording beside a manifest's clips, say), and likewise the batch's own reports
    (:data:`~.report.REPORT_FILES`; where the state knows clips, an earlier run of this batch wrote
    them); OutputError, one line naming the file."""
    from .report import REPORT_FILES

    for name in REPORT_FILES:
        path = out / name
        if os.path.lexists(path) and not (state.wrote(name) or state.clips):
            raise OutputError(
                f"output folder {out} already holds {path}, which this batch did not write (the batch's report "
                "would replace it); move it away or choose another output folder"
            )
    for clip in corpus.clips:
        if clip.problem is not None:
            continue  # never run, never published
        for path in output_paths(clip, out):
            if os.path.lexists(path) and not state.wrote(_under(out, path)):
                raise OutputError(
                    f"output folder {out} already holds {path}, which this batch did not write (it would be "
                    f"replaced by an output of {clip.relative}); move it away or choose another output folder"
                )


def _forget_lock(out: Path) -> None:
    """Remove the lock file of a run that created ``out`` and is failing (the lock is released;
    without it, a folder holding nothing else is removed whole)."""
    lock = BatchLock(out).path
    try:
        lock.unlink()
    except OSError:
        pass


def _run_corpus(source, out: Path, config: Any, batch: BatchConfig, progress: ProgressCallback | None,
                prompt_given: bool, evaluation: Any) -> BatchResult:  # fmt: skip
    """:func:`run_corpus` once ``out`` exists."""
    from .report import REPORT_FILES, build_report, write_reports

    corpus = discover(source, out)
    check_no_overwrite(corpus, out)
    if batch.ray is not None:
        from .executors import import_ray

        import_ray()  # a missing extra is one line before any work
    with BatchLock(out):
        clean_leftovers(out)
        state = BatchState.load(out)
        check_outputs_free(corpus, out, state)
        secret = corpus_secret(out) if method_of(config) == "diffusion" and corpus.has_signers else None
        planned = [plan_clip(c, out, config, batch, state, secret, prompt_given) for c in corpus.clips]
        entries = _run_planned(planned, out, config, batch, state, progress, evaluation)
        remove_empty_work(out)
        gallery = _gallery(out, corpus, entries) if batch.evaluate else None
        report = build_report(corpus, entries, gallery, config, batch)
        state.claim(list(REPORT_FILES))
        path = write_reports(out, report)
    return BatchResult(tuple(entries), report["totals"], gallery, path, corpus.ignored, corpus.notes)


def _run_planned(planned: list[Planned], out: Path, config: Any, batch: BatchConfig, state: BatchState,
                 progress: ProgressCallback | None, evaluation: Any) -> list[dict[str, Any]]:  # fmt: skip
    """Run the planned tasks, publishing and recording each as it finishes; entries in input order."""
    entries = [p.entry for p in planned]
    index = {p.clip.relative: i for i, p in enumerate(planned) if p.task is not None}
    tasks = [p.task for p in planned if p.task is not None]
    started = time.perf_counter()
    _report_progress(progress, 0, len(tasks), started)
    finished = 0
    try:
        for count, outcome in enumerate(_outcomes(tasks, config, batch, evaluation), start=1):
            i = index[outcome.relative]
            item = planned[i]
            entries[i] = publish(outcome, item.clip, out, state)
            if outcome.status == "failed" and state.content_of(item.clip.relative) != item.content:
                entries[i] = _remove_stale(entries[i], item.clip, out, state)
            state.record(outcome.relative, item.key, entries[i], item.content)
            finished += outcome.status != "failed"
            clear_work(item.task.work)  # a failed diffusion clip keeps its resume cache for the retry
            _report_progress(progress, count, len(tasks), started)
    except KeyboardInterrupt as err:  # what the command's last line says is left (cli.main)
        if finished:
            err.left = (f"{finished} clip{'s' if finished > 1 else ''} finished in this run kept in {out}; "
                        "run the same command again to do the rest")
        raise
    return entries


def _remove_stale(entry: dict[str, Any], clip: Clip, out: Path, state: BatchState) -> dict[str, Any]:
    """A clip whose input changed and now fails: remove what its earlier input published (the
    tree must not keep outputs of content that is no longer the input); the entry says so."""
    removed = remove_outputs(clip, out, state)
    faces_file(out, clip.relative).unlink(missing_ok=True)
    if not removed:
        return entry
    return dict(entry, reason=f"{entry['reason']}; the input changed, so removed its earlier outputs {', '.join(removed)}")


def _gallery(out: Path, corpus: Corpus, entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    from .gallery import attack, load_faces

    signer_of = {c.relative: (c.signer if corpus.has_signers else None) or c.relative for c in corpus.clips}
    clips = []
    for entry in entries:
        path = faces_file(out, entry["input"])
        if entry["outcome"] in ("done", "quarantined") and path.is_file():
            clips.append(load_faces(path, entry["input"], signer_of[entry["input"]]))
    return attack(clips, by_signer=corpus.has_signers)
