"""The avatar pipeline on one time chunk of a video: landmarks, smoothing, calibration and
animation, then drawing and encoding. A one-process run is one chunk, the whole video;
``anonymize --workers N`` runs N chunks on N processes (:mod:`.parallel`).

A chunk draws frames ``[start, stop)`` but reads from ``warm`` (``warm <= start``): the frames
before ``start`` go through MediaPipe, smoothing and animation (so the tracker, the filters and the
avatar's scale tracking have warmed up by ``start``) and are not drawn. Every stage streams; the
frames kept are the ones waiting for the calibration (landmarks only, about 9.4 kB a frame).

The calibration measures the signer once per video, on the first ``calibration_window(fps)`` frames
with a body (all of them when there are fewer). :class:`CalibrateHere` does that on the chunk's own
frames, reading on past ``stop`` if the chunk has too few (so the result is the one a single
process gets) and optionally publishing the calibrated animator, with the signer's face the
identity guard keeps the drawn faces from, as a pickle;
:class:`WaitForCalibration` (the later chunks of a parallel run) loads that file. In a parallel
run, :class:`Seams` cross-fades each chunk's last frames into the next chunk's avatar.
"""

from __future__ import annotations

import pickle
import time
from contextlib import closing
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from ..errors import NoPersonError
from ..files import write_bytes_atomic
from ..landmarks.holistic import HolisticConfig, HolisticEstimator
from ..landmarks.smoothing import LandmarkFrame, LandmarkProcessor, LandmarkStats
from ..recognition import DlibConfig, DlibEmbedder
from ..summary import StageTimer
from ..video import VideoInfo, iter_selected_frames
from ..video.bars import BarFinder
from ..video.people import FaceCounter
from ..video.writer import as_encoded
from .animator import AvatarAnimator, PresenceFader, has_body
from .face_gains import tune_avatar_face
from .furrow_choice import choose_brows_and_eyes
from .hand_choice import choose_hands
from .hands import HandLook
from .identity_guard import GuardCounts, GuardedRenderer, SignerFace, choose_look, find_signer
from .mouth_choice import choose_parting
from .renderer import AvatarRenderer
from .skeleton import AvatarPose
from .style import Look
from .worker import RenderWorker

if TYPE_CHECKING:
    from .anonymizer import AvatarConfig

_WAIT_POLL_S = 0.05


@dataclass(frozen=True)
class Chunk:
    """Frames ``[start, stop)`` of a video, read from ``warm`` on (``0 <= warm <= start < stop``).
    ``index``: the chunk's place in the video (0 = first)."""

    index: int
    warm: int
    start: int
    stop: int

    @property
    def frames(self) -> int:
        """Frames drawn."""
        return self.stop - self.start


@dataclass
class ChunkResult:
    """What one chunk reports for the run summary; every count covers the drawn frames only.

    frames_with / frames_interpolated: ``{component: frames}`` as in
    :class:`~signanon.landmarks.smoothing.LandmarkStats`; seconds_per_stage: this chunk's
    :class:`~signanon.summary.StageTimer`.
    """

    frames: int = 0  # drawn (a worker: written to its segment)
    frames_with: dict[str, int] = field(default_factory=dict)
    frames_interpolated: dict[str, int] = field(default_factory=dict)
    frames_without_person: int = 0
    # the several-faces count (:class:`~signanon.video.people.FaceCounter`) on this chunk's frames
    frames_checked_for_faces: int = 0
    frames_with_several_faces: int = 0
    # the avatar's expression gains measured on this clip (face_gains.calibrate_face_gains's record;
    # from the chunk that calibrated, empty in the others)
    face_gains: dict = field(default_factory=dict)
    # how the hand drawing was chosen (hand_choice.choose_hands's record; from the chunk that calibrated)
    hand_drawing: dict = field(default_factory=dict)
    # how the lips' rest parting was chosen (mouth_choice.choose_parting's record; likewise)
    mouth_parting: dict = field(default_factory=dict)
    # how the brow furrow's gain was chosen (furrow_choice.choose_brows_and_eyes's record; likewise)
    furrow_gain: dict = field(default_factory=dict)
    # how the eyes' gain was chosen (furrow_choice.choose_brows_and_eyes's record; likewise)
    eye_gain: dict = field(default_factory=dict)
    # the picture's box inside black bars, [x0, y0, x1, y1] px (video.bars; likewise; empty: none)
    picture: list = field(default_factory=list)
    # what the identity guard did (identity_guard.GuardCounts.as_dict; empty when it is off)
    identity_guard: dict = field(default_factory=dict)
    seconds_per_stage: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def merged(cls, results: list["ChunkResult"]) -> "ChunkResult":
        """The results of consecutive chunks as one: counts and seconds added up."""
        total = cls()
        for r in results:
            total.frames += r.frames
            total.frames_without_person += r.frames_without_person
            total.frames_checked_for_faces += r.frames_checked_for_faces
            total.frames_with_several_faces += r.frames_with_several_faces
            total.face_gains = total.face_gains or r.face_gains
            total.hand_drawing = total.hand_drawing or r.hand_drawing
            total.mouth_parting = total.mouth_parting or r.mouth_parting
            total.furrow_gain = total.furrow_gain or r.furrow_gain
            total.eye_gain = total.eye_gain or r.eye_gain
            total.picture = total.picture or r.picture
            if r.identity_guard:
                guard = GuardCounts(**total.identity_guard)
                guard.add(GuardCounts(**r.identity_guard))
                total.identity_guard = guard.as_dict()
            for mine, theirs in ((total.frames_with, r.frames_with), (total.frames_interpolated, r.frames_interpolated),
                                 (total.seconds_per_stage, r.seconds_per_stage)):  # fmt: skip
                for key, value in theirs.items():
                    mine[key] = mine.get(key, 0) + value
        total.seconds_per_stage = {k: round(v, 4) for k, v in total.seconds_per_stage.items()}
        return total


# -- the calibration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibrated:
    """What the calibration hands to every chunk: the calibrated animator (its face on the look's
    face shape), the look to draw it in (chosen with ``palette`` / ``face_shape`` ``"auto"``), how
    that look was chosen, and the signer's face the identity guard keeps every drawn face from
    (None where neither the guard nor the look choice needs it): a parallel run's other chunks
    take it from here instead of each finding it again."""

    animator: AvatarAnimator
    look: Look
    record: dict
    signer: SignerFace | None = None


def look_renderer(look: Look, width: int, height: int, scale: float = 1.0) -> AvatarRenderer:
    """The renderer that draws ``look``: its colours, its head fitted to its face shape; ``scale``
    output pixels per input pixel."""
    return AvatarRenderer(width, height, look.style, look.canonical(), scale=scale)


def dlib_factory(config: "AvatarConfig") -> Callable[[], DlibEmbedder]:
    """Builds the dlib embedders of the identity guard (one per thread)."""
    return lambda: DlibEmbedder(DlibConfig(threshold=config.guard.threshold))


def signer_face(info: VideoInfo, config: "AvatarConfig", timer: StageTimer) -> SignerFace | None:
    """The signer's face (:func:`~.identity_guard.find_signer`), when the guard or the look
    choice needs it, with the bodies the look is chosen on, spread over the clip, where the clip is
    longer than the calibration window (on a shorter one the calibration sees every frame). Found
    by the chunk that calibrates; the other chunks of a parallel run take it from its
    :class:`Calibrated` (each found the same for itself until session 49: on two cores, two
    workers finding it at once took twice as long as one)."""
    if not (config.guard.enabled or len(config.looks) > 1):
        return None
    with timer("find the signer's face"):
        spread = len(config.looks) > 1 and info.frame_count > config.calibration_window(info.fps)
        holistic = config.holistic if spread else None
        return find_signer(info, config.guard, dlib_factory(config)(), holistic, DlibEmbedder(config.guard.viewer))


class CalibrateHere:
    """Measures the signer on the first ``config.calibration_window(fps)`` frames with a body (all of
    them, if the video has fewer) and, with ``publish``, pickles the calibrated animator there
    (atomically) for the other chunks. Reads on past its chunk until it has them."""

    reads_past_chunk = True

    def __init__(self, info: VideoInfo, config: "AvatarConfig", timer: StageTimer, publish: Path | None = None):
        self._info, self._config, self._timer, self._publish = info, config, timer, publish
        self._bodies: list[tuple[np.ndarray, np.ndarray]] = []  # (586, 3) data, (586,) confidence
        self.face_gains: dict = {}  # how the expression gains were measured (tune_avatar_face)
        self.hand_drawing: dict = {}  # how the hand drawing was chosen (hand_choice.choose_hands)
        self.mouth_parting: dict = {}  # how the lips' rest parting was chosen (mouth_choice.choose_parting)
        self.furrow_gain: dict = {}  # how the brow furrow's gain was chosen (furrow_choice.choose_brows_and_eyes)
        self.eye_gain: dict = {}  # how the eyes' gain was chosen (furrow_choice.choose_brows_and_eyes)
        self.signer: SignerFace | None = None  # set by render_chunk
        self.result: Calibrated | None = None
        self.bars = BarFinder()  # offered the decoded frames until the calibration (chunk_poses)
        self.picture: list = []  # the picture's box the calibration kept, [x0, y0, x1, y1] px

    def offer(self, frame: LandmarkFrame) -> AvatarAnimator | None:
        """Take the next frame; the animator once enough frames with a body were seen."""
        if has_body(frame.confidence, frame.data):
            self._bodies.append((frame.data, frame.confidence))
            if len(self._bodies) >= self._config.calibration_window(self._info.fps):
                return self._calibrate()
        return None

    def finish(self) -> AvatarAnimator:
        """The video has ended: calibrate on the frames seen (NoPersonError if none had a body)."""
        if not self._bodies:
            raise NoPersonError(f"no person found in {self._info.path}: nothing to anonymize")
        return self._calibrate()

    def _calibrate(self) -> AvatarAnimator:
        with self._timer("calibrate"):
            picture = self.bars.box()  # a clip between black bars: the picture inside them
            animator = AvatarAnimator.calibrate(
                self._bodies, self._info.width, self._info.height, self._config.animator.at_rate(self._info.fps), picture,
            )
            kept = animator.retargeter.calibration.picture  # None where the signer crosses a "bar"
            self.picture = [] if kept is None else [round(v) for v in kept]
        if self._config.animator.face_gains.enabled:
            with self._timer("calibrate face gains"):
                w, h = self._info.width, self._info.height  # drawn at the output's size, as the run draws
                renderer = AvatarRenderer(w, h, self._config.style, scale=self._config.draw_scale(w, h))
                animator, self.face_gains = tune_avatar_face(animator, self._bodies, renderer, self._config.animator.face_gains)
        looks = self._config.looks
        look, record = looks[0], {}
        spread = list(self.signer.bodies) if self.signer is not None else []
        bodies = spread or self._bodies  # spread over the clip, else the first frames
        if len(looks) > 1 and self.signer is not None:
            with self._timer("choose look"):
                look, record = choose_look(
                    animator, bodies, looks, self._probe_renderer, self.signer, self._config.guard, dlib_factory(self._config)(),
                )  # fmt: skip
            record["probed_on"] = "frames spread over the video" if self.signer.bodies else "the calibration frames"
        animator = AvatarAnimator(animator.retargeter, animator.face.with_canonical(look.canonical()))
        if self._config.hand_choice.enabled:
            with self._timer("choose hand drawing"):
                look = self._choose_hands(animator, look, spread + self._bodies)
        if self._config.mouth_choice.enabled:
            with self._timer("choose mouth parting"):
                look = self._choose_parting(animator, look, spread + self._bodies)
        furrow, eyes = self._config.furrow_choice, self._config.eye_choice
        if (furrow.enabled or eyes.enabled) and not self._config.animator.face_gains.enabled:  # else measured above
            with self._timer("choose brow furrow and eyes"):
                renderer = self._probe_renderer(look)  # the look as chosen: drawn as the output will be
                animator, chosen = choose_brows_and_eyes(
                    animator, spread + self._bodies, lambda pose: as_encoded(renderer.render(pose)), furrow, eyes,
                )  # fmt: skip
                self.furrow_gain, self.eye_gain = chosen["furrow_gain"], chosen["eye_gain"]
        self.result = Calibrated(animator, look, record, self.signer)
        self._bodies = []
        if self._publish is not None:
            write_bytes_atomic(self._publish, pickle.dumps(self.result))
        return animator

    def _probe_renderer(self, look: Look) -> AvatarRenderer:
        """The renderer of ``look`` at the output's size, as the run draws (a small clip is drawn
        larger): the look and hand choices' probe frames are drawn with it."""
        w, h = self._info.width, self._info.height
        return look_renderer(look, w, h, self._config.draw_scale(w, h))

    def _choose_hands(self, animator: AvatarAnimator, look: Look, bodies: list[tuple[np.ndarray, np.ndarray]]) -> Look:
        """``look`` with the hand drawing :func:`~.hand_choice.choose_hands` picks on ``bodies``
        (the signer's frames spread over the clip, then the calibration's: a folded finger shows
        on a few of either); the record goes to ``self.hand_drawing``. The probes are drawn at the
        output's size, as the run draws: a small clip is drawn larger, and at the input's 192x144
        the NGT clip's probe read the fold 0.6 deg further off, at the output's 640x480 1.5 nearer
        (the output's read-back: 1.9 nearer)."""
        def drawer(hands: HandLook) -> Callable[[AvatarPose], np.ndarray]:
            renderer = self._probe_renderer(replace(look, style=replace(look.style, hands=hands)))
            return lambda pose: as_encoded(renderer.render(pose))  # as the output will be encoded

        out_width = self._config.output_size(self._info.width, self._info.height)[0]  # the read-back's z unit: the drawn image's width
        hands, self.hand_drawing = choose_hands(animator, bodies, look.style.hands, drawer, out_width, self._config.hand_choice)
        return replace(look, style=replace(look.style, hands=hands))


    def _choose_parting(self, animator: AvatarAnimator, look: Look, bodies: list[tuple[np.ndarray, np.ndarray]]) -> Look:
        """``look`` with the rest parting :func:`~.mouth_choice.choose_parting` picks on ``bodies``
        (the signer's frames spread over the clip, then the calibration's), its probes drawn at the
        output's size and encoded as the output will be; the record goes to ``self.mouth_parting``."""
        def drawer(parting: float) -> Callable[[AvatarPose], np.ndarray]:
            renderer = self._probe_renderer(replace(look, style=replace(look.style, rest_parting=parting)))
            return lambda pose: as_encoded(renderer.render(pose))

        parting, self.mouth_parting = choose_parting(animator, bodies, look.style.rest_parting, drawer, self._config.mouth_choice)
        return replace(look, style=replace(look.style, rest_parting=parting))


class WaitForCalibration:
    """Loads the animator that :class:`CalibrateHere` publishes at ``path`` (a later chunk of a
    parallel run), as soon as it appears; :meth:`finish` waits for it."""

    reads_past_chunk = False
    face_gains: dict = {}  # measured by the chunk that calibrates
    hand_drawing: dict = {}  # chosen by the chunk that calibrates
    mouth_parting: dict = {}  # chosen by the chunk that calibrates
    furrow_gain: dict = {}  # chosen by the chunk that calibrates
    eye_gain: dict = {}  # chosen by the chunk that calibrates
    picture: list = []  # found by the chunk that calibrates

    def __init__(self, path: Path, timer: StageTimer):
        self._path, self._timer = path, timer
        self.result: Calibrated | None = None

    def offer(self, frame: LandmarkFrame) -> AvatarAnimator | None:
        return self._load() if self._path.exists() else None

    def finish(self) -> AvatarAnimator:
        with self._timer("wait for calibration"):
            while not self._path.exists():
                time.sleep(_WAIT_POLL_S)
        return self._load()

    def _load(self) -> AvatarAnimator:
        self.result = pickle.loads(self._path.read_bytes())  # written by this run, in its private folder
        return self.result.animator


Calibration = CalibrateHere | WaitForCalibration


# -- the seams between chunks ------------------------------------------------------------------


@dataclass(frozen=True)
class Seams:
    """The hand-overs between the consecutive chunks of a parallel run (``chunks`` of them).

    Two MediaPipe runs that start at different frames keep tracking a few pixels apart for a long
    while (measured: the avatar's arms 5-15 px apart on a 540x720 clip, 15 to 90 frames after a
    warm-up), so cutting from one chunk to the next would make the avatar jump. Instead the last
    ``frames`` frames a chunk draws fade from its own avatar to the next chunk's: the next chunk
    computes those poses in its warm-up and publishes them in ``folder`` (a pickle).
    """

    folder: Path
    frames: int
    chunks: int

    def drawn(self, poses: Iterator[tuple[int, AvatarPose]], chunk: Chunk, timer: StageTimer) -> Iterator[AvatarPose]:
        """The poses of ``[chunk.start, chunk.stop)`` to draw, from ``poses`` (``(index, pose)``
        from ``chunk.warm`` on): the ones before ``chunk.start`` are published for the chunk
        before, the last ``frames`` are faded into the next chunk's."""
        before = chunk.start - self.frames if chunk.index > 0 else chunk.start
        fade = chunk.stop - self.frames if chunk.index + 1 < self.chunks else chunk.stop
        outgoing: list[AvatarPose] = []
        incoming: list[AvatarPose] | None = None
        for index, pose in poses:
            if before <= index < chunk.start:
                outgoing.append(pose)
                if index == chunk.start - 1:
                    write_bytes_atomic(self._path(chunk.index), pickle.dumps(outgoing))
            if index < chunk.start:
                continue
            if index >= fade:
                if incoming is None:
                    incoming = self._wait(chunk.index + 1, timer)
                t = (index - fade + 1) / (self.frames + 1)
                pose = pose.blend(incoming[index - fade], t)
            yield pose

    def _path(self, index: int) -> Path:
        return self.folder / f"seam{index:02d}.pkl"

    def _wait(self, index: int, timer: StageTimer) -> list[AvatarPose]:
        path = self._path(index)
        with timer("wait for next chunk"):
            while not path.exists():
                time.sleep(_WAIT_POLL_S)
        return pickle.loads(path.read_bytes())  # written by this run, in its private folder


# -- the pipeline ------------------------------------------------------------------------------


def render_chunk(
    info: VideoInfo,
    config: "AvatarConfig",
    chunk: Chunk,
    calibration: Calibration,
    write: Callable[[np.ndarray], None],
    timer: StageTimer,
    on_frame: Callable[[], None] = lambda: None,
    seams: "Seams | None" = None,
) -> ChunkResult:
    """Draw frames ``[chunk.start, chunk.stop)`` of ``info`` and hand them to ``write`` (RGB uint8
    ``(height, width, 3)``, in order; ``on_frame`` after each), cross-faded into the next chunk
    with ``seams`` (a parallel run). Drawing and encoding run on :class:`~.worker.RenderWorker`
    threads while this one finds the landmarks; each drawn face is checked against the signer's
    (:class:`~.identity_guard.GuardedRenderer`) unless ``config.guard`` is off."""
    result = ChunkResult(frames=chunk.frames)
    faces = FaceCounter(info.frame_count, frames=range(chunk.start, chunk.stop))
    if isinstance(calibration, CalibrateHere):  # the other chunks take the signer it finds (Calibrated.signer)
        calibration.signer = signer_face(info, config, timer)
    guarded = None
    try:
        poses = chunk_poses(info, config, chunk, calibration, timer, result, faces)
        drawn = iter(seams.drawn(poses, chunk, timer) if seams else (pose for index, pose in poses if index >= chunk.start))
        first = next(drawn, None)  # MediaPipe up to the calibration: the look is known after it
        if first is not None:
            renderer = look_renderer(calibration.result.look, info.width, info.height, config.draw_scale(info.width, info.height))
            draw = renderer.render
            if config.guard.enabled:
                guarded = GuardedRenderer(renderer, calibration.result.signer, config.guard, dlib_factory(config))
                draw = guarded.render
            # the guard decides which frames to check from the checks before them, so it draws one
            # frame at a time: on two threads the order the checks finished in decided which frames
            # were checked and calmed, and a clip gave one of two files (ASL DIFFERENT: 2 of 5 runs)
            threads = 1 if guarded is not None else 2
            with RenderWorker(draw, write, timer, on_frame, threads=threads) as worker:
                worker.submit(first)
                for pose in drawn:
                    worker.submit(pose)
    finally:
        faces.close()
    result.frames_checked_for_faces, result.frames_with_several_faces = faces.count.checked, faces.count.several
    result.face_gains = calibration.face_gains
    result.hand_drawing = calibration.hand_drawing
    result.mouth_parting = calibration.mouth_parting
    result.furrow_gain = calibration.furrow_gain
    result.eye_gain = calibration.eye_gain
    result.picture = calibration.picture
    if guarded is not None:
        guarded.counts.look = calibration.result.record
        result.identity_guard = guarded.counts.as_dict()
    result.seconds_per_stage = timer.as_dict()
    return result


def chunk_poses(
    info: VideoInfo,
    config: "AvatarConfig",
    chunk: Chunk,
    calibration: Calibration,
    timer: StageTimer,
    result: ChunkResult,
    faces: FaceCounter | None = None,
) -> Iterator[tuple[int, AvatarPose]]:
    """``(frame index, pose)`` for every frame of ``[chunk.warm, chunk.stop)``, in order: MediaPipe
    Holistic from ``chunk.warm`` on, smoothing and gap filling, the calibration, the animation.
    The counts of the frames ``[chunk.start, chunk.stop)`` go into ``result``; every decoded frame
    is offered to ``faces`` (the several-faces count then needs no decoding of its own)."""
    processor = LandmarkProcessor(float(info.fps), config.smoothing)
    fade_frames = max(1, round(config.fade_seconds * float(info.fps)))
    calibrating = calibration if isinstance(calibration, CalibrateHere) else None
    with closing(_landmark_rows(info, config.holistic, chunk.warm, timer, faces, calibrating)) as rows:
        frames = _counted(processor.process(rows), processor, chunk, result)
        try:
            yield from _poses(frames, chunk, calibration, fade_frames, timer, result)
        except NoPersonError:
            if not processor.bodies_not_upright:
                raise
            raise NoPersonError(
                f"no upright person found in {info.path}: {processor.bodies_not_upright} frames show a body lying on "
                "its side or upside down; if the video is turned, turn it upright first (ffmpeg -vf transpose=1 turns it a "
                "quarter clockwise)"
            ) from None


def _landmark_rows(
    info: VideoInfo,
    holistic: HolisticConfig,
    first: int,
    timer: StageTimer,
    faces: FaceCounter | None,
    calibrating: CalibrateHere | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Raw ``(data, confidence)`` (float32 ``(586, 3)``, ``(586,)``) of frames ``first`` ... on, in
    order, from one MediaPipe Holistic; frames are decoded only as far as they are asked for, and
    each is offered to ``faces``, and to ``calibrating``'s bar finder until it has calibrated."""
    with HolisticEstimator(holistic) as estimator:
        frames = iter_selected_frames(info, range(first, info.frame_count))
        while True:
            with timer("decode"):
                item = next(frames, None)
            if item is None:
                return
            with timer("landmarks"):
                row = estimator(item[1])
            if faces is not None:
                with timer("count faces"):
                    faces.offer(*item)
            if calibrating is not None and calibrating.result is None:
                calibrating.bars.offer(item[1])
            yield row


def _counted(frames: Iterator[LandmarkFrame], processor: LandmarkProcessor, chunk: Chunk, result: ChunkResult) -> Iterator[LandmarkFrame]:
    """``frames`` (the processor's, from ``chunk.warm`` on) passed through; the processor's counts
    over the drawn frames go into ``result``."""
    before = LandmarkStats()
    for index, frame in enumerate(frames, chunk.warm):
        if index == chunk.start - 1:
            before = processor.stats
        if index == chunk.stop - 1:
            after = processor.stats
            result.frames_with = {k: v - before.present[k] for k, v in after.present.items()}
            result.frames_interpolated = {k: v - before.interpolated[k] for k, v in after.interpolated.items()}
        yield frame


def _poses(
    frames: Iterator[LandmarkFrame],
    chunk: Chunk,
    calibration: Calibration,
    fade_frames: int,
    timer: StageTimer,
    result: ChunkResult,
) -> Iterator[tuple[int, AvatarPose]]:
    """``(frame index, pose)`` for every frame of ``[chunk.warm, chunk.stop)``, in order.

    Frames wait (landmarks only, None for a frame without a body) until the calibration is known;
    a :class:`PresenceFader` covers the frames without a person, counted in ``result``.
    """
    pending: list[LandmarkFrame | None] = []
    animator: AvatarAnimator | None = None
    fader: PresenceFader | None = None
    next_index = chunk.warm

    def drain() -> Iterator[tuple[int, AvatarPose]]:
        nonlocal next_index
        for waiting in pending:
            with timer("animate"):
                pose = animator(waiting.data, waiting.confidence) if waiting is not None else None
                if pose is None and next_index >= chunk.start:
                    result.frames_without_person += 1
                pose = fader(pose)
            yield next_index, pose
            next_index += 1
        pending.clear()

    for index, frame in enumerate(frames, chunk.warm):
        if index < chunk.stop:
            pending.append(frame if has_body(frame.confidence, frame.data) else None)
        if animator is None:
            animator = calibration.offer(frame)
            if animator is not None:
                fader = PresenceFader(animator.neutral(), fade_frames)
        if animator is not None:
            yield from drain()
        if index + 1 >= chunk.stop and (animator is not None or not calibration.reads_past_chunk):
            break
    if animator is None:
        animator = calibration.finish()
        fader = PresenceFader(animator.neutral(), fade_frames)
        yield from drain()
