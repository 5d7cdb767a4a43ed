"""One anonymization job: what the command line, the Python API, batch and the web page all build
and run.

    from signanon.job import AnonymizeJob, run_job
    from signanon.avatar.anonymizer import AvatarConfig

    summary = run_job(AnonymizeJob("in.mp4", "out.mp4", AvatarConfig(palette="dark-skin")))

A job names the input, the output, the method's config (:class:`~signanon.avatar.anonymizer.
AvatarConfig` or :class:`~signanon.diffusion.runner.DiffusionConfig`, each holding every setting of
its method, face enhancement included), whether to keep the audio, where to write the run summary
and (diffusion only) the ablation video. :func:`run_job` checks the paths once, runs the method and
reports progress to a callback (:mod:`signanon.progress`). Errors are
:class:`~signanon.errors.SignanonError` with one line that names the setting, never a CLI flag.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .avatar.anonymizer import AvatarConfig
from .errors import InputError, OutputError, ReidentifiedError
from .evaluation.verify import VerifyConfig, refusal_message, skipped_record, verify_video
from .progress import ProgressArg
from .summary import RunSummary
from .video import check_output_path
from .video.writer import same_file
from .video.region import Region

METHODS = ("avatar", "diffusion")


def config_class(method: str) -> type:
    """The config dataclass of a method name ("avatar" or "diffusion"); imports no torch."""
    if method == "avatar":
        return AvatarConfig
    if method == "diffusion":
        from .diffusion.runner import DiffusionConfig

        return DiffusionConfig
    raise InputError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")


def method_of(config: Any) -> str:
    """The method name of a config instance."""
    for method in METHODS:
        if isinstance(config, config_class(method)):
            return method
    raise InputError(f"not a method config: {type(config).__name__}")


@dataclass(frozen=True)
class AnonymizeJob:
    """Everything one run needs. Paths may be str or Path.

    ``config``: the method's config (its type chooses the method). ``keep_audio``: copy the audio
    track (dropped by default: voices identify people). ``summary``: also write the run summary
    (JSON) here. ``ablation``: diffusion only, also write original | without | with face
    enhancement side by side here (it shows the original signer: for review, not publication).
    ``verify``: the privacy gate (:mod:`signanon.evaluation.verify`; by default on for diffusion):
    the output appears at ``output`` only when no checked frame shows the original signer.
    ``region``: anonymize only this box of the frame (:class:`~signanon.video.region.Region`: an
    interpreter's inset beside a larger speaker); the output is the box.
    """

    input: Path
    output: Path
    config: Any = field(default_factory=AvatarConfig)
    keep_audio: bool = False
    summary: Path | None = None
    ablation: Path | None = None
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    region: Region | None = None

    def __post_init__(self) -> None:
        if isinstance(self.region, str):
            object.__setattr__(self, "region", Region.parse(self.region))
        elif isinstance(self.region, (tuple, list)) and len(self.region) == 4:
            object.__setattr__(self, "region", Region(*self.region))
        elif self.region is not None and not isinstance(self.region, Region):
            raise InputError(f"region must be a Region, 'X,Y,W,H' or four numbers, got {self.region!r}")
        for name in ("input", "output", "summary", "ablation"):
            value = getattr(self, name)
            if value is None and name in ("input", "output"):
                raise InputError(f"the job needs an {name} path")
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise InputError(f"{name} must be a path, got {type(value).__name__} {value!r}")
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        # a truthy string ("no") kept the voices: only True copies the audio
        if not isinstance(self.keep_audio, bool):
            raise InputError(f"keep_audio must be True or False, got {self.keep_audio!r}")
        if not isinstance(self.verify, VerifyConfig):
            raise InputError(f"verify must be a VerifyConfig, got {type(self.verify).__name__}")

    @property
    def method(self) -> str:
        return method_of(self.config)

    def replace(self, **changes: Any) -> "AnonymizeJob":
        return dataclasses.replace(self, **changes)


def check_job(job: AnonymizeJob) -> None:
    """Refuse a job whose paths cannot work, before any frame is read (one-line errors).

    The input itself (exists, is a video, has a video stream) and the output folder (exists,
    writable, not the input) are checked by the method's first step, once.
    """
    method = job.method
    if job.output.suffix.lower() != ".mp4":
        raise OutputError(f"output {job.output} must end in .mp4 (the output is H.264 in MP4)")
    check_output_path(job.output, job.input)
    for name in ("summary", "ablation"):
        path = getattr(job, name)
        if path is None:
            continue
        # any spelling of the input or the output (.., a symlink, a hard link): a summary written
        # there replaced the input video with JSON
        if same_file(path, job.input) or same_file(path, job.output):
            raise OutputError(f"{name} path {path} must differ from the input and the output")
        # a folder, a missing or unwritable folder: found before the work, not after the video is out
        check_output_path(path, what=name)
    if job.ablation is not None:
        if method != "diffusion":
            raise InputError("ablation applies to the diffusion method (the avatar has no face enhancement to ablate)")
        if job.ablation.suffix.lower() != ".mp4":
            raise OutputError(f"ablation video {job.ablation} must end in .mp4")


def make_anonymizer(config: Any, previous: Any = None):
    """The pipeline object of a config, reusable for many jobs with the same config (batch workers
    and the web page keep one; a diffusion anonymizer loads its models on its first run and keeps
    them). ``previous``: the pipeline used before; returned as is for the same config, and a
    diffusion pipeline for other settings (prompt, seed, ...) keeps its loaded models when the
    weights are the same."""
    if previous is not None and previous.config == config:
        return previous
    if method_of(config) == "diffusion":
        from .diffusion.runner import DiffusionAnonymizer

        components = None
        if isinstance(previous, DiffusionAnonymizer) and previous.config.weights_key == config.weights_key:
            components = previous.components
        return DiffusionAnonymizer(config, components)
    from .avatar.anonymizer import AvatarAnonymizer

    return AvatarAnonymizer(config)


def run_job(job: AnonymizeJob, progress: ProgressArg = None, *, anonymizer: Any = None) -> RunSummary:
    """Run one job and return its summary (also written to ``job.summary`` when set).

    ``progress``: a :data:`~signanon.progress.ProgressCallback`, True (a tqdm bar) or None.
    ``anonymizer``: a pipeline object from :func:`make_anonymizer` to reuse (its config must be the
    job's); None builds one. The output appears only when the whole video is written.
    """
    # 1. Paths that cannot work are refused before any work.
    check_job(job)
    # 2. The method's pipeline object (diffusion: every missing weight named at once, up front).
    if job.method == "diffusion" and (anonymizer is None or getattr(anonymizer, "components", False) is None):
        from .diffusion.weights import check_weights

        check_weights(job.config)
    if anonymizer is None:
        anonymizer = make_anonymizer(job.config)
    elif anonymizer.config != job.config:
        raise InputError("the anonymizer given was built for other settings than the job's")
    region = tempfile.TemporaryDirectory(prefix="signanon-region-") if job.region is not None else nullcontext()
    with region as scratch:
        # 3. With a region, the run's input is that box of every frame (a private temporary cut).
        source, box = (job.input, None) if scratch is None else _cut_region(job, Path(scratch), progress)
        summary = _run_and_gate(job, anonymizer, source, box, progress)
    # 6. The summary file.
    _write_summary(job, summary)
    return summary


def _cut_region(job: AnonymizeJob, scratch: Path, progress: ProgressArg) -> tuple[Path, tuple[int, int, int, int]]:
    """``job.region`` of the input as a temporary video in ``scratch`` (removed with it), and the
    box ``(x0, y0, x1, y1)`` in the input's pixels."""
    from .video import probe_video
    from .video.region import crop_video

    info = probe_video(job.input)
    box = job.region.box(info.width, info.height)
    return crop_video(info, job.region, scratch / "region.mp4", keep_audio=job.keep_audio, progress=progress), box


def _run_and_gate(job: AnonymizeJob, anonymizer: Any, source: Path, box: tuple[int, ...] | None,
                  progress: ProgressArg) -> RunSummary:
    """Steps 4 and 5 of :func:`run_job` on ``source``: the input, or the cut of its region ``box``."""
    # 4. Run it: straight to the output, or into a hidden file beside it that the gate checks.
    gate = job.verify.applies_to(job.method)
    target = unverified_path(job.output) if gate else job.output
    extra = {"ablation": job.ablation} if job.method == "diffusion" else {}
    try:
        summary = anonymizer(source, target, keep_audio=job.keep_audio, progress=progress, **extra)
        if box is not None:
            summary.input, summary.extra["region"] = str(job.input), list(box)
        if not summary.frames_checked_for_faces:  # the avatar counts on the frames it decodes
            _count_several_faces(source, summary)
        # 5. The privacy gate: publish the output only when no checked frame shows the signer.
        if gate:
            # claim the file under a name no other run uses, so what is checked is what is published
            claimed = _claim(target)
            try:
                summary.verification = verify_video(source, claimed, job.verify, progress=progress)
                if summary.verification["reidentified_frames"]:
                    _write_summary(job, summary)
                    raise ReidentifiedError(refusal_message(summary.verification, job.output), summary)
                os.replace(claimed, job.output)
            finally:
                claimed.unlink(missing_ok=True)
            summary.output = str(job.output.expanduser().absolute())
        else:
            summary.verification = skipped_record(job.verify)
    finally:
        if gate:
            target.unlink(missing_ok=True)
    return summary


def _count_several_faces(source: Path, summary: RunSummary) -> None:
    """Record how many checked input frames show more than one face (the pipeline follows one)."""
    from .video import probe_video
    from .video.people import count_faces

    faces = count_faces(probe_video(source))
    summary.frames_checked_for_faces = faces.checked
    summary.frames_with_several_faces = faces.several


def unverified_path(output: Path) -> Path:
    """Where a gated run writes before the check: hidden, beside the output (same file system, so
    the final rename is atomic), never at the requested path."""
    return output.parent / f".{output.stem}.unverified{output.suffix}"


def _claim(target: Path) -> Path:
    """Rename the finished, unchecked output to a name unique to this run (atomic, same folder)."""
    fd, name = tempfile.mkstemp(prefix=target.stem + ".", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    claimed = Path(name)
    try:
        os.replace(target, claimed)
    except FileNotFoundError:
        claimed.unlink(missing_ok=True)
        raise OutputError(f"another run writing {target.parent} replaced this run's output; run again") from None
    return claimed


def _write_summary(job: AnonymizeJob, summary: RunSummary) -> None:
    if job.summary is not None:
        summary.write(job.summary)
