"""The diffusion anonymizer (DiffSLVA): a signing video in, the same signing by a text-described
person out. Drives :class:`~signanon.diffusion.pipeline.VideoTranslationPipeline` over a video.

    anonymizer = DiffusionAnonymizer(DiffusionConfig(prompt="a woman in CG style, short red hair"))
    summary = anonymizer(Path("in.mp4"), Path("out.mp4"))

* **Streaming**: frames are decoded one at a time and resized to the working size (short side
  ``resolution``, both sides multiples of 64). Held in memory: the first frame, the previous key
  frame, and for ``keyframe_interval`` K > 1 the input frames since the last key frame.
* **Key frames** 0, K, 2K, ... are diffused; frames between two key frames are propagated from
  both along optical flow (:func:`~signanon.diffusion.propagation.propagate_between`), and the
  tail after the last key frame from that key frame alone
  (:func:`~signanon.diffusion.propagation.propagate_from`).
* **Resume**: each finished key frame is kept as a lossless PNG in ``.OUTPUT.signanon-cache/`` beside
  the output, under a manifest holding a hash of the input file and of every setting that changes
  the result. Re-running the same command skips the finished key frames (the first frame is
  re-diffused once, to rebuild the cross-frame attention and fusion references it provides; the
  previous key frame then serves as a pixel-level reference only). The video is written atomically
  and the cache folder is removed on success.
* **Fails closed**: an error aborts the run with no output file; a frame whose decoded image is not
  finite (fp16 overflow) is written black, never as the source frame.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import setting
from ..errors import InputError, OutputError
from ..files import write_bytes_atomic
from ..progress import ProgressArg, progress_reporter
from ..summary import RunSummary, StageTimer
from ..video import VideoInfo, VideoWriter, check_output_path, iter_frames, probe_video
from .face_enhance import FaceEnhanceConfig
from .fusion import FusionConfig
from .pipeline import NEGATIVE_PROMPT, QUALITY_SUFFIX, SamplingConfig
from .weights import CONTROLNET_IDS, SD15_ID, DiffusionComponents

CACHE_VERSION = 1
DEFAULT_PROMPT = "a man in CG style, blond hair, is making gestures"
RESOLUTION_MULTIPLE = 64


@dataclass(frozen=True)
class DiffusionConfig:
    """Everything that shapes a diffusion run; the CLI, batch and web front-ends all build one.

    Each user-facing field is a :func:`~signanon.config.setting` (its help text is the reference);
    ``sampling`` (:class:`~.pipeline.SamplingConfig`), ``fusion`` (:class:`~.fusion.FusionConfig`)
    and ``face`` (:class:`~.face_enhance.FaceEnhanceConfig`, DiffSLVA's facial-expression
    enhancement) are nested configs.
    """

    model: str = setting(SD15_ID, "SD-1.5 diffusers folder, cached Hub id or single .safetensors/.ckpt file", metavar="PATH|ID")
    controlnet: str | None = setting(
        None, "ControlNet folder, cached Hub id or single file (default: lllyasviel/sd-controlnet-hed or -canny, after control)",
        metavar="PATH|ID",
    )  # fmt: skip
    control: str = setting("hed", "control map: soft HED edges or Canny edges", choices=("hed", "canny"))
    hed_weights: str | None = setting(
        None, "lllyasviel/Annotators ControlNetHED.pth (default: the copy in the Hugging Face cache)", metavar="FILE"
    )
    vae: str | None = setting(
        None, "VAE override, e.g. stabilityai/sd-vae-ft-mse or vae-ft-mse-840000-ema-pruned.safetensors", metavar="PATH|ID"
    )
    model_config: str | None = setting(
        None, "diffusers folder describing a single-file model's architecture (default: SD-1.5's)", cli=False
    )
    prompt: str = setting(
        DEFAULT_PROMPT, "who the new signer is; ', best quality, extremely detailed' is appended", metavar="TEXT"
    )
    negative_prompt: str = setting(NEGATIVE_PROMPT, "what to avoid (default: Rerender-A-Video's list of artefacts)", metavar="TEXT")
    quality_suffix: bool = setting(True, "append ', best quality, extremely detailed' to the prompt", cli=False)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    temporal_fusion: bool = setting(
        True, "fuse each key frame with the first and previous ones along optical flow (Rerender-A-Video)", cli=False
    )
    resolution: int = setting(512, "short side of the working size, rounded to a multiple of 64", metavar="PX")
    keyframe_interval: int = setting(1, "diffuse every K-th frame, propagate the others along optical flow", metavar="K")
    device: str = setting("auto", "where the models run; fp16 on GPU", choices=("auto", "cpu", "cuda", "mps"))
    flow_ahead: bool | None = setting(
        None, "optical flow of the frames between key frames on a CPU thread while the models diffuse the "
        "next key frame (the frames come out the same either way); None: on where the models run on a CUDA "
        "GPU (faster in 4 of 5 runs on one H200, benchmarks/gpu_diffusion_h200.txt), off on the CPU, whose "
        "cores run the models",
        cli=False,
    )  # fmt: skip
    face: FaceEnhanceConfig = field(default_factory=FaceEnhanceConfig)

    def __post_init__(self) -> None:
        if self.control not in ("hed", "canny"):
            raise InputError(f"unknown control type {self.control!r}: use hed or canny")
        if self.keyframe_interval < 1:
            raise InputError(f"keyframe_interval must be at least 1, got {self.keyframe_interval}")
        if self.resolution < RESOLUTION_MULTIPLE:
            raise InputError(f"resolution must be at least {RESOLUTION_MULTIPLE}, got {self.resolution}")

    @property
    def weights_key(self) -> tuple:
        """What decides the loaded models: two configs with the same key share their components."""
        return (self.model, self.controlnet_spec, self.vae, self.model_config, self.device)

    @property
    def controlnet_spec(self) -> str:
        return self.controlnet if self.controlnet is not None else CONTROLNET_IDS[self.control]

    @property
    def full_prompt(self) -> str:
        return self.prompt + QUALITY_SUFFIX if self.quality_suffix else self.prompt


@dataclass
class DiffusionRunSummary(RunSummary):
    """:class:`RunSummary` plus the diffusion counts (all at the top level of the JSON)."""

    unet_evaluations: int = 0  # UNet forward samples (a batched cond+uncond call counts 2)
    key_frames: int = 0  # frames diffused in this run (including a re-diffused first frame)
    key_frames_resumed: int = 0  # finished key frames taken from the resume cache
    frames_propagated: int = 0  # frames built from two key frames along flow
    frames_blank: int = 0  # frames written black because they could not be produced
    flow_pairs_ahead: int = 0  # in-between flow pairs computed on the CPU thread while a key frame diffused
    working_size: tuple[int, int] = (0, 0)  # (width, height) the frames were diffused at


def working_size(width: int, height: int, resolution: int) -> tuple[int, int]:
    """``(w, h)``: the short side ``resolution`` rounded to a multiple of 64, the long side scaled
    with the aspect ratio and rounded to a multiple of 64 (at least 64)."""
    m = RESOLUTION_MULTIPLE
    short = max(m, int(round(resolution / m)) * m)
    if width <= height:
        return short, max(m, int(round(height * short / width / m)) * m)
    return max(m, int(round(width * short / height / m)) * m), short


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    if (image.shape[1], image.shape[0]) == size:
        return image
    shrink = size[0] < image.shape[1]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def _sibling(path: Path, tag: str) -> Path:
    """A hidden working file beside ``path`` (same folder, so the final rename stays atomic)."""
    return path.parent / f".{path.stem}.{tag}{path.suffix}"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class KeyFrameCache:
    """Finished key frames of one run, beside the output: ``.NAME.signanon-cache/`` holding
    ``manifest.json`` (the run's key) and ``key_NNNNNN.png`` (working-size RGB, lossless).

    A cache whose manifest does not match ``key`` is emptied first."""

    def __init__(self, output: Path, key: str):
        self.folder = output.parent / f".{output.name}.signanon-cache"
        self.key = key
        manifest = self.folder / "manifest.json"
        try:
            found = json.loads(manifest.read_text())
        except (OSError, ValueError):
            found = None
        if not isinstance(found, dict) or found.get("key") != key:
            shutil.rmtree(self.folder, ignore_errors=True)
            try:
                self.folder.mkdir()
                write_bytes_atomic(manifest, json.dumps({"version": CACHE_VERSION, "key": key}).encode())
            except OSError as err:
                raise OutputError(f"cannot create the resume cache {self.folder}: {err.strerror}") from None

    def _path(self, index: int) -> Path:
        return self.folder / f"key_{index:06d}.png"

    def load(self, index: int, size: tuple[int, int]) -> np.ndarray | None:
        """The cached key frame ``(h, w, 3)`` uint8 RGB, or None (missing, unreadable, other size)."""
        import cv2

        path = self._path(index)
        if not path.is_file():
            return None
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None or (bgr.shape[1], bgr.shape[0]) != size:
            return None
        return np.ascontiguousarray(bgr[:, :, ::-1])

    def save(self, index: int, image: np.ndarray) -> None:
        import cv2

        ok, png = cv2.imencode(".png", np.ascontiguousarray(image[:, :, ::-1]))
        if ok:
            write_bytes_atomic(self._path(index), png.tobytes())

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class DiffusionAnonymizer:
    """Drives one diffusion run; safe to reuse for several videos (each run starts afresh).

    ``components``: already loaded models (tests, batch jobs); None loads them from the config on
    the first run (:func:`~signanon.diffusion.weights.load_components`) and keeps them.
    """

    method = "diffusion"

    def __init__(self, config: DiffusionConfig = DiffusionConfig(), components: DiffusionComponents | None = None):
        self.config = config
        self.components = components

    # -- setup -----------------------------------------------------------------------------

    def _load(self, timer: StageTimer) -> DiffusionComponents:
        if self.components is None:
            from .weights import load_components

            c = self.config
            with timer("load"):
                self.components = load_components(
                    c.model, c.controlnet_spec, c.vae, c.device, config=c.model_config
                )
        return self.components

    def _hed_weights(self) -> Path | None:
        if self.config.control != "hed":
            return None
        from .weights import resolve_hed_weights

        return resolve_hed_weights(self.config.hed_weights)

    def _control_mapper(self, components: DiffusionComponents, hed: Path | None):
        from .control import ControlMapper

        return ControlMapper(self.config.control, hed_weights=hed, device=str(components.device))

    def run_key(self, info: VideoInfo, components: DiffusionComponents) -> str:
        """Hash of the input file and every setting that changes the output (the resume key)."""
        settings = dataclasses.asdict(self.config)
        for unrelated in ("device", "face"):  # the cache holds pre-enhancement key frames
            settings.pop(unrelated)
        settings.update(device=str(components.device), dtype=str(components.dtype), version=CACHE_VERSION)
        digest = hashlib.sha256(_file_digest(info.path).encode())
        digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
        return digest.hexdigest()

    # -- the run ---------------------------------------------------------------------------

    def __call__(
        self,
        input_path: str | Path,
        output_path: str | Path,
        *,
        keep_audio: bool = False,
        progress: ProgressArg = True,
        ablation: str | Path | None = None,
    ) -> DiffusionRunSummary:
        """Anonymize ``input_path`` into ``output_path``. ``ablation``: also write a side-by-side
        video there (original | without | with face enhancement), as in DiffSLVA's Figures 6-7."""
        from .pipeline import VideoTranslationPipeline

        started = time.perf_counter()
        timer = StageTimer()
        # 1. Check the input, the output paths and the face model before any work.
        with timer("probe"):
            info, output, ablation = self.check_paths(input_path, output_path, ablation)
        size = working_size(info.width, info.height, self.config.resolution)
        summary = self.new_summary(info, output, keep_audio, size)
        # 2. Weights (all located before any is loaded), control maps, the resume cache.
        hed = self._hed_weights()
        components = self._load(timer)
        control = self._control_mapper(components, hed)
        with timer("probe"):
            cache = KeyFrameCache(output, self.run_key(info, components))
        pipeline = VideoTranslationPipeline(components, self.config.sampling, timer)
        # 3. The face stage (None when disabled).
        face = self._face_stage(components)
        # 4. Stream: key frames diffused (or taken from the cache), in-betweens propagated, faces
        #    re-enacted, frames written in order.
        video = _VideoRun(self.config, pipeline, control, cache, timer, summary, size,
                          ahead=self._flow_ahead(components.device))
        without = _sibling(ablation, "without") if ablation is not None else None
        try:
            self.stream(info, output, video, face, keep_audio=keep_audio, progress=progress, without=without)
        finally:
            video.close()
            pipeline.close()
            if face is not None:
                face.close()
        # 5. The ablation video from the output and the un-enhanced frames.
        if ablation is not None:
            self._write_ablation(info, without, output, ablation, timer)
        # 6. Done: drop the cache, fill the summary.
        cache.remove()
        return self.finish_summary(summary, pipeline, face, timer, started)

    def check_paths(self, input_path, output_path, ablation) -> tuple[VideoInfo, Path, Path | None]:
        """Probe the input; check the output (and ablation) paths and the face model."""
        info = probe_video(input_path)
        output = check_output_path(output_path, info.path, suffixes=(".mp4",))
        if ablation is not None:
            ablation = check_output_path(ablation, info.path, suffixes=(".mp4",))
            if ablation == output:
                raise OutputError(f"the ablation video cannot be the output itself: {ablation}")
        if self.config.face.enabled and self.config.face.model is not None:
            from ..reenactment.animator import check_face_model

            check_face_model(self.config.face.model)
        return info, output, ablation

    def new_summary(self, info: VideoInfo, output: Path, keep_audio: bool, size: tuple[int, int]) -> DiffusionRunSummary:
        return DiffusionRunSummary(
            method=self.method, input=str(info.path), output=str(output), frames_in=info.frame_count,
            fps_in=float(info.fps), width=info.width, height=info.height,
            audio_kept=keep_audio and info.has_audio, working_size=size,
        )  # fmt: skip

    def stream(self, info: VideoInfo, output: Path, video: "_VideoRun", face, *, keep_audio: bool,
               progress: ProgressArg, without: Path | None) -> None:
        """Decode, diffuse/propagate, enhance faces and write every frame of the video.

        ``without``: also write the un-enhanced frames there (for the ablation video)."""
        timer = video.timer
        audio = info if keep_audio else None
        size = (info.width, info.height)
        plain = VideoWriter(without, *size, info.fps) if without is not None else nullcontext()
        with (
            plain as plain_writer,  # outermost: aborted when the output fails
            progress_reporter(info.frame_count, progress, desc="diffusion") as bar,
            VideoWriter(output, *size, info.fps, audio_source=audio) as writer,
        ):

            def write(frames: list[np.ndarray]) -> None:
                for frame in frames:
                    with timer("io"):
                        writer.write(frame)
                    bar.update(1)

            originals: deque[np.ndarray] = deque()  # decoded, not yet written (face stage)
            decoded = self._decode(info, timer, originals if face is not None else None)
            for frame_out in video.frames(decoded, info.frame_count):
                frame_out = _resize(frame_out, size)
                if plain_writer is not None:
                    plain_writer.write(frame_out)
                write(self._enhance(face, timer, originals.popleft() if face is not None else None, frame_out))
            write(self._enhance_rest(face, timer))
            video.summary.frames_out = writer.frames_written

    @staticmethod
    def _enhance(face, timer: StageTimer, original: np.ndarray | None, frame: np.ndarray) -> list[np.ndarray]:
        """The frames the face stage releases after ``frame`` (``frame`` itself without a stage)."""
        if face is None:
            return [frame]
        with timer("face_enhance"):
            return list(face.push(original, frame))

    @staticmethod
    def _enhance_rest(face, timer: StageTimer) -> list[np.ndarray]:
        if face is None:
            return []
        with timer("face_enhance"):
            return list(face.finish())

    def finish_summary(self, summary: DiffusionRunSummary, pipeline, face, timer: StageTimer, started: float):
        summary.fps_out = summary.fps_in
        summary.unet_evaluations = pipeline.unet_evaluations
        if face is not None:
            summary.extra["face_enhance"] = face.stats
        summary.seconds_per_stage = timer.as_dict()
        summary.seconds_total = round(time.perf_counter() - started, 4)
        return summary

    def _flow_ahead(self, device) -> "_FlowAhead | None":
        """The flow thread (None: flows on the main thread), after ``flow_ahead`` (None: on where
        ``device``, the models' torch device, is a CUDA GPU)."""
        wanted = self.config.flow_ahead if self.config.flow_ahead is not None else str(device).startswith("cuda")
        if self.config.keyframe_interval < 2 or not wanted:
            return None
        return _FlowAhead(self.config.fusion.flow_preset)

    def _face_stage(self, components: DiffusionComponents):
        if not self.config.face.enabled:
            return None
        from .face_enhance import FaceStage

        return FaceStage(self.config.face, str(components.device))

    @staticmethod
    def _write_ablation(info: VideoInfo, without: Path, output: Path, ablation: Path, timer: StageTimer) -> None:
        from .ablation import write_ablation

        try:
            with timer("io"):
                write_ablation(info.path, without, output, ablation, fps=info.fps)
        finally:
            without.unlink(missing_ok=True)

    @staticmethod
    def _decode(info: VideoInfo, timer: StageTimer, keep: deque | None = None):
        """The input frames in order; each is also appended to ``keep`` when given."""
        frames = iter_frames(info)
        while True:
            with timer("io"):
                frame = next(frames, None)
            if frame is None:
                return
            if keep is not None:
                keep.append(frame)
            yield frame


class _FlowAhead:
    """The flows of the frames between two key frames, computed on one CPU thread while the models
    diffuse the later key frame: they depend on the input frames alone, so they need not wait for
    it. Its own :class:`~signanon.video.flow.FlowEstimator` (an OpenCV DIS object is not shared
    between threads); the same preset, so the pairs equal those computed on the main thread."""

    def __init__(self, preset: str) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from ..video.flow import FlowEstimator

        self._estimator = FlowEstimator(preset)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signanon-flow")

    def submit(self, frames: list[np.ndarray]):
        """A future of ``(from_a, from_b)``: the :class:`FlowPair` lists from the first and from the
        last of ``frames`` (two key frames' inputs, uint8 RGB (H, W, 3)) onto each frame between."""
        return self._pool.submit(_segment_flows, self._estimator.pair, frames)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _segment_flows(pair, frames: list[np.ndarray]) -> tuple[list, list]:
    """``(from_a, from_b)``: ``pair(frames[0], f)`` and ``pair(frames[-1], f)`` for each frame between."""
    between = frames[1:-1]
    return [pair(frames[0], f) for f in between], [pair(frames[-1], f) for f in between]


class _VideoRun:
    """The per-video state of one run: references, pending in-between frames, counts."""

    def __init__(self, config: DiffusionConfig, pipeline, control, cache: KeyFrameCache, timer: StageTimer,
                 summary: DiffusionRunSummary, size: tuple[int, int], ahead: _FlowAhead | None = None):
        from .fusion import TemporalFusion

        self.config, self.pipeline, self.control, self.cache = config, pipeline, control, cache
        self.timer, self.summary, self.size = timer, summary, size
        self.ahead = ahead  # the flow thread (None: in-between flows on this thread)
        self.fusion = TemporalFusion(config.fusion) if config.temporal_fusion else None
        self.first_frame: np.ndarray | None = None  # frame 0 at working size (to rebuild references)
        self.references_live = False  # the pipeline/fusion hold this run's first-frame references
        self.resumed: tuple[int, np.ndarray, np.ndarray] | None = None  # last key taken from the cache

    def frames(self, source, frame_count: int):
        """Yield every output frame (working size, uint8 RGB) in order.

        Key frames are 0, K, 2K, ...; frames between two key frames are built from both, and the
        tail after the last key frame (fewer than K frames) from the last key frame alone.
        """
        k = self.config.keyframe_interval
        pending: list[np.ndarray] = []  # input frames since the last key frame (inclusive)
        key_out: np.ndarray | None = None
        index = -1
        for index, frame in enumerate(source):
            with self.timer("io"):
                frame = _resize(frame, self.size)
            if index == 0:
                self.first_frame = frame
            if index % k:
                pending.append(frame)
                continue
            between = key_out is not None and len(pending) > 1
            flows = self.ahead.submit(pending + [frame]) if between and self.ahead is not None else None
            out = self.key_frame(index, frame)
            if between:
                yield from self.propagate(index, key_out, out, pending + [frame], flows)
            yield out
            key_out, pending = out, [frame]
        if key_out is not None and pending[1:]:
            yield from self.propagate_tail(index, key_out, pending)

    def key_frame(self, index: int, frame: np.ndarray) -> np.ndarray:
        """The output of key frame ``index``: from the cache, or diffused and cached."""
        cached = self.cache.load(index, self.size)
        if cached is not None:
            self.summary.key_frames_resumed += 1
            self.resumed = (index, frame, cached)
            return cached
        if self.resumed is not None and not self.references_live:
            self.rebuild_references()
        out = self.diffuse(index, frame)
        self.references_live = True
        with self.timer("io"):
            self.cache.save(index, out)
        return out

    def diffuse(self, index: int, frame: np.ndarray) -> np.ndarray:
        with self.timer("control_maps"):
            control = self.control(frame)
        result = self.pipeline(
            frame, control, self.config.full_prompt, self.config.negative_prompt, fusion=self.fusion, index=index
        )
        self.summary.key_frames += 1
        if not np.isfinite(result.decoded).all():
            self.summary.frames_blank += 1  # fail closed: never the source frame
            return np.zeros_like(frame)
        return result.image

    def rebuild_references(self) -> None:
        """After a resume: re-diffuse frame 0 (deterministic, so its attention features and x0 are
        the original ones), then register the last cached key frame as the pixel-level previous."""
        index, frame, out = self.resumed
        self.diffuse(0, self.first_frame)
        if index != 0:
            if self.fusion is not None:
                self.fusion.register(index, frame, out)
            self.pipeline.cross_frame.forget_previous()

    def close(self) -> None:
        """Stop the flow thread (after its current segment)."""
        if self.ahead is not None:
            self.ahead.close()

    def _flows(self):
        if self.fusion is not None:
            return self.fusion.flows
        from ..video.flow import FlowCache, FlowEstimator

        return FlowCache(FlowEstimator(self.config.fusion.flow_preset))

    def propagate_tail(self, last: int, key_out: np.ndarray, frames: list[np.ndarray]):
        """The frames after the last key frame (``frames[0]`` is its input), from it alone."""
        from .propagation import propagate_from

        a = last - (len(frames) - 1)
        flows = self._flows()
        with self.timer("flow"):
            pairs = [flows.get(a, frames[0], a + i, f) for i, f in enumerate(frames[1:], 1)]
        with self.timer("propagation"):
            tail = propagate_from(key_out, frames, pairs)
        self.summary.frames_propagated += len(tail)
        yield from tail

    def propagate(self, index: int, key_a: np.ndarray, key_b: np.ndarray, frames: list[np.ndarray], ahead=None):
        """The frames between key frames ``index - len(frames) + 1`` and ``index`` (``frames``: their
        inputs, both key frames included). ``ahead``: a future of their flows from the flow thread."""
        from .propagation import propagate_between

        a = index - (len(frames) - 1)
        with self.timer("flow"):  # on the thread: only the wait that the key frame did not hide
            if ahead is not None:
                from_a, from_b = ahead.result()
                self.summary.flow_pairs_ahead += len(from_a) + len(from_b)
            else:
                flows = self._flows()
                from_a = [flows.get(a, frames[0], a + i, f) for i, f in enumerate(frames[1:-1], 1)]
                from_b = [flows.get(index, frames[-1], a + i, f) for i, f in enumerate(frames[1:-1], 1)]
        with self.timer("propagation"):
            between = propagate_between(key_a, key_b, frames, from_a, from_b)
        self.summary.frames_propagated += len(between)
        yield from between
