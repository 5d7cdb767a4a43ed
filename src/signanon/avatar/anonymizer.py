"""The avatar anonymizer: a real signing video in, a synthetic signer doing the same signing out.

CPU only, nothing downloaded. The pipeline streams: frames are decoded, reduced to landmarks and
dropped; only landmarks (a few kB per frame) are kept, and only for the calibration window. One
process runs it on the whole video (:mod:`.chunk`); with ``workers`` > 1 a long video is cut into
time chunks that run it on several processes, joined at the end (:mod:`.parallel`).

    anonymizer = AvatarAnonymizer(AvatarConfig())
    summary = anonymizer(Path("in.mp4"), Path("out.mp4"))
"""

from __future__ import annotations

import math
import numbers
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from ..config import check_local_processes, check_whole_number, setting
from ..errors import InputError
from ..landmarks.holistic import HolisticConfig
from ..landmarks.rate import frames_at_rate
from ..landmarks.smoothing import SmoothingConfig
from ..progress import ProgressArg, progress_reporter
from ..summary import RunSummary, StageTimer
from ..video import VideoInfo, VideoWriter, check_output_path, probe_video
from .animator import AnimatorConfig
from .chunk import CalibrateHere, Chunk, ChunkResult, render_chunk
from .parallel import WorkerPool, plan_chunks, render_in_parallel, warm_up_frames
from .hand_choice import HandChoiceConfig
from .furrow_choice import EyeChoiceConfig, FurrowChoiceConfig
from .mouth_choice import MouthChoiceConfig
from .identity_guard import IdentityGuardConfig
from .canonical import FACE_SHAPES
from .style import PALETTES, UNOFFERED_LOOKS, AvatarStyle, Look, make_style

AUTO_PALETTE = "auto"  # palette or face shape: the identity guard's choice (choose_look)


MIN_FRAMES_PER_WORKER = 150  # below this a worker process costs more to start than it saves


@dataclass(frozen=True)
class AvatarConfig:
    """Everything that shapes an avatar run; the CLI, batch and web front-ends all build one.

    ``palette``, ``face_shape`` and ``background`` choose the look (``"auto"``: the palette / face
    shape whose drawn face a face recogniser puts furthest from the signer,
    :func:`~.identity_guard.choose_look`); ``custom_style`` (Python API only) replaces the palette with a whole
    :class:`~signanon.avatar.style.AvatarStyle`. ``guard``: the identity guard (:mod:`.identity_guard`).
    """

    palette: str = setting(
        AUTO_PALETTE, "avatar colours; auto: the palette a face recogniser finds least like the signer",
        choices=(AUTO_PALETTE, *PALETTES),
    )  # fmt: skip
    face_shape: str = setting(
        AUTO_PALETTE, "avatar face shape below the eyes; auto: the average face unless a face recogniser finds "
        "another shape less like the signer", choices=(AUTO_PALETTE, *FACE_SHAPES),
    )  # fmt: skip
    background: str | None = setting(None, "background colour, #rrggbb or r,g,b", metavar="COLOUR")
    min_output_side: int = setting(
        480, "draw the avatar of a video whose shorter side is under PX larger, at that size (the landmarks "
        "are read at the input's size; the output has the larger size): a small signer's face and hands "
        "read at full strength; 0: always the input's size", metavar="PX",
    )  # fmt: skip
    custom_style: AvatarStyle | None = None
    holistic: HolisticConfig = field(default_factory=HolisticConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    animator: AnimatorConfig = field(default_factory=AnimatorConfig)
    guard: IdentityGuardConfig = field(default_factory=IdentityGuardConfig)
    hand_choice: HandChoiceConfig = field(default_factory=HandChoiceConfig)
    mouth_choice: MouthChoiceConfig = field(default_factory=MouthChoiceConfig)
    furrow_choice: FurrowChoiceConfig = field(default_factory=FurrowChoiceConfig)
    eye_choice: EyeChoiceConfig = field(default_factory=EyeChoiceConfig)
    landmark_workers: int = setting(
        1, "processes that anonymize one clip in parallel time chunks, each finding the landmarks, "
        "drawing and encoding its own (for long clips on several cores; clips shorter than 150 frames "
        "per process use one)", flag="workers", metavar="N",
    )  # fmt: skip
    chunk_overlap: int = 0  # extra frames of MediaPipe tracking warm-up before a later chunk (see parallel.warm_up_frames)
    # The frame counts here are tuned at 30 fps; above it they cover as many seconds (landmarks.rate).
    seam_frames: int = 10  # frames over which one chunk's avatar fades into the next one's (chunk.Seams)
    # frames with a body used to measure the signer (calibration_window). As 90 frames at 50 fps
    # (1.8 s), DGS ZUG doubled to 50 fps ended before her hands came up (the palm and arm lengths
    # taken from the canonical prior: upper arm 139 px where hers is 171, palm 45 where hers is 34-42)
    calibration_frames: int = 90
    fade_seconds: float = 1.0  # when the person leaves, the avatar fades into the empty backdrop over this long

    def __post_init__(self) -> None:
        if self.background is not None and not isinstance(self.background, str):
            raise InputError(f"background must be a colour as text (#rrggbb or r,g,b), got {self.background!r}")
        self.style  # noqa: B018 - a bad palette or colour fails here, when the config is built
        if self.face_shape != AUTO_PALETTE and self.face_shape not in FACE_SHAPES:
            raise InputError(f"unknown avatar face shape {self.face_shape!r}; choose one of: {AUTO_PALETTE}, {', '.join(FACE_SHAPES)}")
        # whole numbers (a float or a string failed deep in a worker, nan ran unchecked) and their floors
        for name, low in (("min_output_side", 0), ("landmark_workers", 1), ("chunk_overlap", 0), ("seam_frames", 0),
                          ("calibration_frames", 1)):
            check_whole_number(name, getattr(self, name), low)
        if self.min_output_side and not 64 <= self.min_output_side <= 4320:
            raise InputError(f"min_output_side must be 0 (the input's size) or from 64 to 4320 px, got {self.min_output_side}")
        check_local_processes(self.landmark_workers)
        if not (isinstance(self.fade_seconds, numbers.Real) and 0 <= self.fade_seconds < math.inf):
            raise InputError(f"fade_seconds must be a number of seconds, 0 or more, got {self.fade_seconds!r}")

    def calibration_window(self, fps: float) -> int:
        """Frames with a body the calibration measures the signer on at ``fps`` frames/s:
        ``calibration_frames`` at 30 fps and below, as many seconds (3 s) above: 150 at 50 fps."""
        return frames_at_rate(self.calibration_frames, fps)

    def seam_window(self, fps: float) -> int:
        """Frames over which a parallel run's chunk fades into the next at ``fps`` frames/s:
        ``seam_frames`` at 30 fps and below, as many seconds above."""
        return frames_at_rate(self.seam_frames, fps)

    def draw_scale(self, width: int, height: int) -> float:
        """How many output pixels the avatar of a ``width`` x ``height`` input is drawn per input
        pixel: 1, or more where the shorter side is under ``min_output_side``."""
        short = min(width, height)
        return 1.0 if not self.min_output_side or short >= self.min_output_side else self.min_output_side / short

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """``(width, height)`` of the output for a ``width`` x ``height`` input."""
        k = self.draw_scale(width, height)
        return (width, height) if k == 1.0 else (round(width * k), round(height * k))

    def workers_for(self, frame_count: int) -> int:
        """Worker processes for a clip of ``frame_count`` frames (at least 150 frames each)."""
        return max(1, min(self.landmark_workers, frame_count // MIN_FRAMES_PER_WORKER))

    @property
    def looks(self) -> list[Look]:
        """The looks the avatar may take, in order of preference (the first is drawn when none can
        be chosen): ``custom_style`` or the palette (with ``"auto"`` every palette, the background
        applied), on the face shape (with ``"auto"`` every shape), shape by shape; where either is
        ``"auto"``, not the :data:`~.style.UNOFFERED_LOOKS`."""
        shapes = tuple(FACE_SHAPES) if self.face_shape == AUTO_PALETTE else (self.face_shape,)
        if self.custom_style is not None:
            styles = [("custom", self.custom_style)]
        else:
            names = tuple(PALETTES) if self.palette == AUTO_PALETTE else (self.palette,)
            try:
                styles = [(name, make_style(name, self.background)) for name in names]
            except ValueError as err:
                raise InputError(f"avatar {err}") from None
        looks = [Look(name, style, shape) for shape in shapes for name, style in styles]
        if len(looks) > 1:
            looks = [look for look in looks if (look.palette, look.shape) not in UNOFFERED_LOOKS]
        return looks

    @property
    def style(self) -> AvatarStyle:
        """The colours of the avatar before the calibration: the first of :attr:`looks`."""
        return self.looks[0].style


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
        with ExitStack() as stack:
            # the worker processes of --workers N start meanwhile (each ~1.5 s of imports)
            pool = stack.enter_context(WorkerPool(self.config.landmark_workers)) if self.config.landmark_workers > 1 else None
            return self._run(input_path, output_path, keep_audio, progress, timer, started, pool)

    def _run(self, input_path, output_path, keep_audio: bool, progress: ProgressArg, timer: StageTimer,
             started: float, pool: WorkerPool | None) -> RunSummary:  # fmt: skip
        # 1. Check the input and the output path before any work.
        with timer("probe"):
            info = probe_video(input_path)
            output = check_output_path(output_path, info.path)
        width, height = self.config.output_size(info.width, info.height)
        summary = RunSummary(
            method=self.method,
            input=str(info.path),
            output=str(output),
            frames_in=info.frame_count,
            fps_in=float(info.fps),
            width=width,
            height=height,
            audio_kept=keep_audio and info.has_audio,
        )
        # 2. Landmarks per frame, smoothed and short gaps filled, the signer measured on the first
        #    frames, every frame animated, drawn and encoded: in this process, or in time chunks on
        #    several processes whose videos are joined.
        workers = self.config.workers_for(info.frame_count)
        if pool is not None and workers == 1:
            pool.close()  # a clip too short to share
        with progress_reporter(info.frame_count, progress, desc="anonymize") as bar:
            if workers > 1:
                chunks = plan_chunks(info.frame_count, workers, warm_up_frames(self.config, info.fps))
                summary.frames_out, result = render_in_parallel(
                    info, self.config, chunks, output, keep_audio=keep_audio, on_frames=bar.update, timer=timer, pool=pool
                )
            else:
                summary.frames_out, result = self._render(info, output, keep_audio, timer, lambda: bar.update(1))
        summary.fps_out = float(info.fps)
        summary.frames_with = result.frames_with
        summary.frames_interpolated = result.frames_interpolated
        summary.frames_without_person = result.frames_without_person
        summary.frames_checked_for_faces = result.frames_checked_for_faces
        summary.frames_with_several_faces = result.frames_with_several_faces
        if result.face_gains:
            summary.extra["face_gains"] = result.face_gains
        if result.hand_drawing:
            summary.extra["hand_drawing"] = result.hand_drawing
        if result.mouth_parting:
            summary.extra["mouth_parting"] = result.mouth_parting
        if result.picture:
            summary.extra["picture_inside_bars"] = result.picture
        if result.furrow_gain:
            summary.extra["furrow_gain"] = result.furrow_gain
        if result.eye_gain:
            summary.extra["eye_gain"] = result.eye_gain
        if result.identity_guard:
            summary.extra["identity_guard"] = result.identity_guard
        summary.seconds_per_stage = {**timer.as_dict(), **result.seconds_per_stage}
        summary.seconds_total = round(time.perf_counter() - started, 4)
        return summary

    def _render(
        self, info: VideoInfo, output: Path, keep_audio: bool, timer: StageTimer, on_frame
    ) -> tuple[int, ChunkResult]:
        """The whole video in this process, as one chunk; return the frames written and the counts."""
        whole = Chunk(0, 0, 0, info.frame_count)
        calibration = CalibrateHere(info, self.config, timer)
        audio = info if keep_audio else None
        with VideoWriter(output, *self.config.output_size(info.width, info.height), info.fps, audio_source=audio) as writer:
            result = render_chunk(info, self.config, whole, calibration, writer.write, timer, on_frame)
        return writer.frames_written, result
