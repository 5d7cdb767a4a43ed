"""The avatar anonymizer: a real signing video in, a synthetic signer doing the same signing out.

CPU only, nothing downloaded. The pipeline streams: frames are decoded, reduced to landmarks and
dropped; only landmarks (a few kB per frame) are kept, and only for the calibration window.

    anonymizer = AvatarAnonymizer(AvatarConfig())
    summary = anonymizer(Path("in.mp4"), Path("out.mp4"))
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import setting
from ..errors import InputError, NoPersonError
from ..landmarks.holistic import HolisticConfig, HolisticEstimator
from ..landmarks.parallel import ParallelLandmarks
from ..landmarks.smoothing import LandmarkFrame, LandmarkProcessor, SmoothingConfig
from ..progress import ProgressArg, progress_reporter
from ..summary import RunSummary, StageTimer
from ..video import VideoInfo, VideoWriter, check_output_path, iter_frames, probe_video
from .animator import AnimatorConfig, AvatarAnimator, PresenceFader, has_body
from .renderer import AvatarRenderer
from .style import PALETTES, AvatarStyle, make_style
from .worker import RenderWorker


MIN_FRAMES_PER_WORKER = 150  # below this a landmark process costs more to start than it saves


@dataclass(frozen=True)
class AvatarConfig:
    """Everything that shapes an avatar run; the CLI, batch and web front-ends all build one.

    ``palette`` and ``background`` choose the look; ``custom_style`` (Python API only) replaces
    the palette with a whole :class:`~signanon.avatar.style.AvatarStyle`.
    """

    palette: str = setting("default", "avatar colours", choices=tuple(PALETTES))
    background: str | None = setting(None, "background colour, #rrggbb or r,g,b", metavar="COLOUR")
    custom_style: AvatarStyle | None = None
    holistic: HolisticConfig = field(default_factory=HolisticConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    animator: AnimatorConfig = field(default_factory=AnimatorConfig)
    landmark_workers: int = setting(
        1, "processes that find the landmarks of one clip in parallel time chunks (for long clips on "
        "several cores; clips shorter than 150 frames per process use one)", flag="workers", metavar="N",
    )  # fmt: skip
    chunk_overlap: int = 15  # frames each later chunk reads first, to warm up MediaPipe's tracking
    calibration_frames: int = 90  # frames with a body used to measure the signer
    fade_seconds: float = 1.0  # when the person leaves, fade to the neutral pose over this long

    def __post_init__(self) -> None:
        self.style  # noqa: B018 - a bad palette or colour fails here, when the config is built
        if self.landmark_workers < 1:
            raise InputError(f"landmark_workers must be at least 1, got {self.landmark_workers}")

    def workers_for(self, frame_count: int) -> int:
        """Landmark processes for a clip of ``frame_count`` frames (at least 150 frames each)."""
        return max(1, min(self.landmark_workers, frame_count // MIN_FRAMES_PER_WORKER))

    @property
    def style(self) -> AvatarStyle:
        """The look of the avatar: ``custom_style``, or the palette with the background applied."""
        if self.custom_style is not None:
            return self.custom_style
        try:
            return make_style(self.palette, self.background)
        except ValueError as err:
            raise InputError(f"avatar {err}") from None


class AvatarAnonymizer:
    """Drives one avatar run; safe to reuse for several videos (each run starts afresh)."""

    method = "avatar"

    def __init__(self, config: AvatarConfig = AvatarConfig()):
        self.config = config

    def __call__(
        self,
        input_path: str | Path,
        output_path: str | Path,
        *,
        keep_audio: bool = False,
        progress: ProgressArg = True,
    ) -> RunSummary:
        started = time.perf_counter()
        timer = StageTimer()
        # 1. Check the input and the output path before any work.
        with timer("probe"):
            info = probe_video(input_path)
            output = check_output_path(output_path, info.path)
        summary = RunSummary(
            method=self.method,
            input=str(info.path),
            output=str(output),
            frames_in=info.frame_count,
            fps_in=float(info.fps),
            width=info.width,
            height=info.height,
            audio_kept=keep_audio and info.has_audio,
        )
        renderer = AvatarRenderer(info.width, info.height, self.config.style)
        processor = LandmarkProcessor(float(info.fps), self.config.smoothing)
        with (
            progress_reporter(info.frame_count, progress, desc="anonymize") as bar,
            VideoWriter(
                output, info.width, info.height, info.fps, audio_source=info if keep_audio else None
            ) as writer,
        ):
            # 2. Landmarks per frame (one estimator, or time chunks on several processes), smoothed,
            #    short gaps filled (streamed).
            landmarks = processor.process(self._estimate(info, timer))
            # 3. Measure the signer on the first frames, then 4. animate every frame and hand it
            #    to the worker thread, which draws and encodes it.
            with RenderWorker(renderer.render, writer.write, timer, lambda: bar.update(1)) as worker:
                for pose in self._animate(landmarks, info, timer, summary):
                    worker.submit(pose)
            summary.frames_out = writer.frames_written
        summary.fps_out = float(info.fps)
        stats = processor.stats
        summary.frames_with = dict(stats.present)
        summary.frames_interpolated = dict(stats.interpolated)
        summary.seconds_per_stage = timer.as_dict()
        summary.seconds_total = round(time.perf_counter() - started, 4)
        return summary

    def _estimate(self, info: VideoInfo, timer: StageTimer) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Raw ``(data, confidence)`` per frame, in order (see :mod:`signanon.landmarks`)."""
        workers = self.config.workers_for(info.frame_count)
        if workers > 1:
            rows = iter(ParallelLandmarks(info, self.config.holistic, workers,
                                          self.config.chunk_overlap))  # fmt: skip
            while True:
                with timer("landmarks"):
                    row = next(rows, None)
                if row is None:
                    return
                yield row
        with HolisticEstimator(self.config.holistic) as estimator:
            frames = iter_frames(info)
            while True:
                with timer("decode"):
                    frame = next(frames, None)
                if frame is None:
                    return
                with timer("landmarks"):
                    yield estimator(frame)

    def _animate(
        self,
        landmarks: Iterator[LandmarkFrame],
        info: VideoInfo,
        timer: StageTimer,
        summary: RunSummary,
    ):
        """Yield one :class:`AvatarPose` per input frame, in order."""
        config = self.config
        # Frames before calibration: landmarks only, and None for a frame without a body, so a long
        # empty stretch at the start costs nothing.
        pending: list[LandmarkFrame | None] = []
        animator: AvatarAnimator | None = None
        fader: PresenceFader | None = None
        fade_frames = max(1, round(config.fade_seconds * float(info.fps)))

        def calibrate() -> None:
            nonlocal animator, fader
            with_body = [(f.data, f.confidence) for f in pending if f is not None]
            if not with_body:
                raise NoPersonError(f"no person found in {info.path}: nothing to anonymize")
            with timer("calibrate"):
                animator = AvatarAnimator.calibrate(with_body, info.width, info.height, config.animator)
                fader = PresenceFader(animator.neutral(), fade_frames)

        def animate(frame: LandmarkFrame | None):
            with timer("animate"):
                pose = None
                if frame is not None and has_body(frame.confidence):
                    pose = animator(frame.data, frame.confidence)
                if pose is None:
                    summary.frames_without_person += 1
                return fader(pose)

        bodies = 0
        for frame in landmarks:
            if animator is None:
                body = has_body(frame.confidence)
                pending.append(frame if body else None)
                bodies += body
                if bodies >= config.calibration_frames:
                    calibrate()
                    for waiting in pending:
                        yield animate(waiting)
                    pending.clear()
                continue
            yield animate(frame)
        if animator is None:
            calibrate()
            for waiting in pending:
                yield animate(waiting)
