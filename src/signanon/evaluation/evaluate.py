"""`signanon evaluate`: does an anonymized video hide the signer and keep the signing?

One :class:`Evaluator` compares an original video with its anonymized version:

1. each video is read once: MediaPipe Holistic landmarks on every frame (signing, face grammar)
   and face embeddings on every ``identity_every``-th frame (identity); extra clips of the same
   signer are read for face embeddings only;
2. a second, joint pass measures the flow-warp error (temporal consistency) and writes the
   side-by-side video (original | anonymized, landmarks drawn);
3. ``report.json`` and ``report.html`` are written (:mod:`.report`, :mod:`.html_page`).

Videos are compared frame by frame over the first ``min(T_original, T_anonymized)`` frames (an
anonymizer keeps the frame count; a mismatch is reported as a warning). Analyses are cached per
file (path, size, modification time) inside one Evaluator, so a benchmark that reuses an original,
or a test that evaluates one clip against several outputs, reads each file once.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..config import setting
from ..errors import InputError
from ..files import StagedFiles, output_folder
from ..landmarks.holistic import HolisticConfig
from ..recognition import VIEWER_UPSAMPLE
from ..video import VideoInfo, check_output_path, iter_frames, probe_video
from .identity import FaceEmbedder, FaceTrack, FaceTrackBuilder, identity_report, make_embedder, require_face
from .signing import add_reader_check, compare_signing
from .temporal import TemporalConfig, WarpErrorMeter

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".gif")


@dataclass(frozen=True)
class EvaluationConfig:
    """What `signanon evaluate` measures and writes.

    ``embedder``: "dlib" (default; weights come with face-recognition-models) or "facenet" /
    "arcface" with ``embedder_weights`` = a TorchScript or ONNX file. ``identity_every``: embed
    faces on every n-th frame (dlib costs ~0.1-0.2 s per frame on one core). ``max_frames``:
    evaluate only the first n frames (None = all). ``face_upsample``: dlib detector upsampling,
    1 as the independent read-back (and dlib's face_recognition) detect at any frame size; None =
    by frame size (0 from 480 px: ~4x faster on large frames, faces under ~80 px missed, and on a
    blurred 540x720 clip other faces found than the read-back finds). ``side_by_side`` / ``html``:
    write those outputs.
    ``reader_check``: one more landmark pass, over the original's :func:`write_reader_copy`.
    """

    embedder: str = setting(
        "dlib", "face recogniser (facenet/arcface need embedder weights)", choices=("dlib", "facenet", "arcface")
    )
    embedder_weights: str | None = setting(None, "TorchScript or ONNX weights of facenet/arcface", metavar="FILE")
    identity_every: int = setting(1, "embed faces on every N-th frame", flag="every", metavar="N")
    max_frames: int | None = setting(None, "evaluate only the first N frames (default: all)", metavar="N")
    face_upsample: int | None = VIEWER_UPSAMPLE
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    holistic: HolisticConfig = field(default_factory=HolisticConfig)
    side_by_side: bool = setting(
        True, "write side_by_side.mp4 (it shows the original signer: keep it private)", flag="video"
    )
    reader_check: bool = setting(
        False, "also read the original as a copy nobody could tell from it (scaled by 0.97, shifted by 1.5%) "
        "and report how far the landmark reader agrees with itself beside each signing figure: a series out "
        "of the goal that the copy misses too is at the reader's limit, not the anonymizer's",
    )  # fmt: skip
    html: bool = True

    def __post_init__(self) -> None:
        if self.identity_every < 1:
            raise InputError(f"identity_every must be 1 or more, got {self.identity_every}")
        if self.max_frames is not None and self.max_frames < 2:
            raise InputError(f"max_frames must be 2 or more, got {self.max_frames}")


@dataclass(frozen=True)
class VideoAnalysis:
    """One video read once: ``data`` float32 (T, 586, 3) and ``conf`` float32 (T, 586) landmarks
    (None when not computed), the sampled face track, and seconds spent per stage."""

    info: VideoInfo
    frames: int
    data: np.ndarray | None
    conf: np.ndarray | None
    faces: FaceTrack
    seconds: dict[str, float]

    def describe(self) -> dict:
        return {
            "path": str(self.info.path),
            "frames": self.frames,
            "width": self.info.width,
            "height": self.info.height,
            "fps": float(self.info.fps),
            "faces_found": int(self.faces.found.sum()),
            "frames_sampled_for_faces": len(self.faces.frames),
        }


def _analysis_key(path: Path, landmarks: bool, config: EvaluationConfig) -> tuple:
    """What an analysis depends on: the file's identity and the reading settings."""
    stat = path.stat()
    settings = (config.identity_every, config.max_frames, config.face_upsample, config.holistic)
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns, landmarks, settings)


READER_COPY_SCALE, READER_COPY_SHIFT = 0.97, 0.015  # as benchmarks/bench_signing.py's read-back ceiling


def write_reader_copy(info: VideoInfo, path: Path, max_frames: int | None = None, progress: bool = False) -> Path:
    """A copy of the video no viewer could tell from it, written to ``path`` as signanon writes an
    output (H.264, the output's quality): each frame scaled by READER_COPY_SCALE about the top-left
    corner and shifted by READER_COPY_SHIFT of the frame (bilinear, edges replicated). Every signing
    measure is invariant to that change, so what the landmark reader reports differently on the
    copy is the reader's own noise, including what an encode adds, as it adds to every output."""
    import cv2

    from ..progress import progress_bar
    from ..video import VideoWriter

    s, k = READER_COPY_SCALE, READER_COPY_SHIFT
    m = np.float32([[s, 0, k * info.width], [0, s, k * info.height]])
    total = info.frame_count if max_frames is None else min(info.frame_count, max_frames)
    with VideoWriter(path, info.width, info.height, info.fps) as writer, \
            progress_bar(total=total, enabled=progress, desc="original, copied") as bar:
        for rgb in _limit(iter_frames(info), max_frames):
            writer.write(cv2.warpAffine(rgb, m, (info.width, info.height), flags=cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_REPLICATE))
            bar.update(1)
    return path


def _limit(frames, max_frames: int | None):
    return frames if max_frames is None else itertools.islice(frames, max_frames)


class Evaluator:
    """Compares originals with anonymized videos; reuse it for many pairs (analyses are cached).

    ``embedder``: a ready :class:`~.identity.FaceEmbedder` (else built from the config on first use).
    """

    def __init__(self, config: EvaluationConfig = EvaluationConfig(), embedder: FaceEmbedder | None = None):
        self.config = config
        self._embedder = embedder
        self._cache: dict[tuple, VideoAnalysis] = {}

    def reconfigured(self, config: EvaluationConfig) -> "Evaluator":
        """A new Evaluator with ``config`` sharing this one's embedder and analysis cache (an
        analysis is reused only when the settings it depends on are the same)."""
        if (config.embedder, config.embedder_weights) != (self.config.embedder, self.config.embedder_weights):
            other = Evaluator(config)
        else:
            other = Evaluator(config, self._embedder)
        other._cache = self._cache
        return other

    @property
    def embedder(self) -> FaceEmbedder:
        if self._embedder is None:
            self._embedder = make_embedder(
                self.config.embedder, self.config.embedder_weights, upsample=self.config.face_upsample
            )
        return self._embedder

    # -- reading -------------------------------------------------------------------------------

    def analyse(
        self, path: str | Path | VideoInfo, *, landmarks: bool = True, progress: bool = False, label: str = ""
    ) -> VideoAnalysis:
        """Read one video (cached): landmarks of every frame if asked, faces of sampled frames.
        ``path`` may be a :class:`VideoInfo` already probed."""
        info = path if isinstance(path, VideoInfo) else probe_video(path)
        key = _analysis_key(info.path, landmarks, self.config)
        if key not in self._cache:
            self._cache[key] = self._read(info, landmarks, progress, label)
        return self._cache[key]

    def _read(self, info: VideoInfo, landmarks: bool, progress: bool, label: str, faces: bool = True) -> VideoAnalysis:
        """One pass over ``info``: landmarks if ``landmarks``, face embeddings if ``faces`` (else an
        empty track); uncached (:meth:`analyse` caches)."""
        from ..landmarks.holistic import HolisticEstimator
        from ..progress import progress_bar

        total = info.frame_count if self.config.max_frames is None else min(info.frame_count, self.config.max_frames)
        track = FaceTrackBuilder(self.embedder, self.config.identity_every)
        seconds = {"landmarks": 0.0, "faces": 0.0}
        data, conf = [], []
        estimator = HolisticEstimator(self.config.holistic) if landmarks else None
        try:
            with progress_bar(total=total, enabled=progress, desc=label or info.path.name) as bar:
                for index, rgb in enumerate(_limit(iter_frames(info), self.config.max_frames)):
                    if estimator is not None:
                        start = time.perf_counter()
                        d, c = estimator(rgb)
                        data.append(d)
                        conf.append(c)
                        seconds["landmarks"] += time.perf_counter() - start
                    if faces:
                        start = time.perf_counter()
                        track.add(index, rgb)
                        seconds["faces"] += time.perf_counter() - start
                    bar.update(1)
        finally:
            if estimator is not None:
                estimator.close()
        return VideoAnalysis(
            info=info,
            frames=total,
            data=np.stack(data) if data else None,
            conf=np.stack(conf) if conf else None,
            faces=track.build(total),
            seconds=seconds,
        )

    # -- one pair -------------------------------------------------------------------------------

    def evaluate(
        self,
        original: str | Path,
        anonymized: str | Path,
        extras: tuple[str | Path, ...] | list[str | Path] = (),
        out_dir: str | Path | None = None,
        *,
        progress: bool = False,
        region=None,
        region_cut: str | Path | None = None,
        staged: StagedFiles | None = None,
    ) -> dict:
        """Compare one pair; write ``report.json`` (+ html, side-by-side video) into ``out_dir``.

        The files are written to temporary names and appear together once the report is complete:
        a failure or an interrupt leaves ``out_dir`` as it was (an old report in it untouched).
        ``staged``: leave them staged there instead, for the caller to commit (a benchmark commits
        every pair's files with its table).

        ``region``: a :class:`~signanon.video.region.Region` of the original to compare (the box
        ``anonymize --region`` was given); it is cut into a temporary video first (or
        ``region_cut`` is, a video of that box already cut by :func:`~signanon.video.region.crop_video`),
        and the report names the original with the box (``inputs.original.region``, x0, y0, x1, y1).
        Returns the report as written to JSON (plain dicts, lists, numbers; NaN as None).
        Raises InputError for unreadable videos, NoPersonError when the original shows no face,
        OutputError when ``out_dir`` cannot be written (checked before any work).
        """
        started = time.perf_counter()
        files = StagedFiles()
        if out_dir is None:
            return self._evaluate(original, anonymized, extras, None, files, progress, started, region, region_cut)
        # the report folder exists only if the report is written: a bad input, Ctrl-C or a full
        # disk removes a folder this run created
        with output_folder(out_dir, "report folder", remove_partial=True) as folder:
            check_output_path(folder / "report.json")
            try:
                report = self._evaluate(original, anonymized, extras, folder, files, progress, started, region,
                                        region_cut)
                if staged is None:
                    files.commit()
                else:
                    staged.adopt(files)
            finally:
                files.discard()  # what a failure or an interrupt left staged
            return report

    def _evaluate(self, original, anonymized, extras, folder: Path | None, files: StagedFiles, progress: bool,
                  started: float, region=None, region_cut=None) -> dict:
        """:meth:`evaluate` once the report folder (or None: no files) is ready; the files are staged
        in ``files``."""
        if region is None:
            return self._evaluate_pair(original, anonymized, extras, folder, files, progress, started, {})
        import tempfile

        from ..video.region import crop_video

        info = probe_video(original)
        described = {"path": str(original), "region": list(region.box(info.width, info.height))}
        if region_cut is not None:
            return self._evaluate_pair(region_cut, anonymized, extras, folder, files, progress, started, described)
        with tempfile.TemporaryDirectory(prefix="signanon-region-") as tmp:
            cut = crop_video(info, region, Path(tmp) / "original_region.mp4", progress=progress)
            return self._evaluate_pair(cut, anonymized, extras, folder, files, progress, started, described)

    def _evaluate_pair(self, original, anonymized, extras, folder: Path | None, files: StagedFiles, progress: bool,
                       started: float, original_as: dict) -> dict:
        """:meth:`_evaluate` on the videos to compare; ``original_as`` overrides the report's
        description of the original (its path and region when a cut stands in for it). The files
        are staged in ``files`` under temporary names (the caller commits them)."""
        from . import report as rpt

        # every input is probed (a bad or truncated file refused) before the slow reading starts
        orig_info, anon_info, *extra_info = (probe_video(p) for p in (original, anonymized, *extras))
        orig = self.analyse(orig_info, progress=progress, label="original")
        where = f" (region {original_as['region']})" if "region" in original_as else ""
        require_face(orig.faces, f"the original video {original_as.get('path', orig.info.path)}{where}")
        anon = self.analyse(anon_info, progress=progress, label="anonymized")
        extra = [self.analyse(i, landmarks=False, progress=progress, label="extra") for i in extra_info]
        identity = identity_report(orig.faces, anon.faces, self.embedder, [e.faces for e in extra])
        fps = float(orig.info.fps)
        compared = compare_signing((orig.data, orig.conf, orig.info.width), (anon.data, anon.conf, anon.info.width), fps)
        if self.config.reader_check:
            add_reader_check(compared, self._reader_check(orig, progress))
        video = folder / "side_by_side.mp4" if folder is not None and self.config.side_by_side else None
        video_temp = files.path(video, ".mp4") if video is not None else None
        if folder is not None and video is None:
            files.remove(folder / "side_by_side.mp4")  # an earlier run's: it would be read as this pair's
        temporal = self._joint_pass(orig, anon, identity, video_temp, progress)
        report = {
            "inputs": {
                "original": {**orig.describe(), **original_as},
                "anonymized": anon.describe(),
                "extras": [e.describe() for e in extra],
            },
            "config": _config_dict(self.config, self.embedder),
            "identity": identity,
            "signing": compared["signing"],
            "face_grammar": compared["face_grammar"],
            "temporal": temporal,
            "series": compared["series"],
            "warnings": _warnings(orig, anon, identity),
            "timing": _timing(orig, anon, extra, started),
            "outputs": {},
        }
        report = rpt.jsonable(report)
        if folder is not None:
            written = video if video_temp is not None and video_temp.exists() else None
            report["outputs"] = rpt.write_report(report, folder, written, files)
        return report

    def _reader_check(self, orig: VideoAnalysis, progress: bool) -> dict:
        """:func:`compare_signing` of the original against its :func:`write_reader_copy` (written to
        a temporary folder, read for landmarks only)."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="signanon-reader-") as tmp:
            path = write_reader_copy(orig.info, Path(tmp) / "copy.mp4", self.config.max_frames, progress)
            copy = self._read(probe_video(path), True, progress, "original, re-read", faces=False)
        return compare_signing((orig.data, orig.conf, orig.info.width), (copy.data, copy.conf, copy.info.width),
                               float(orig.info.fps))

    def _joint_pass(self, orig: VideoAnalysis, anon: VideoAnalysis, identity: dict, video: Path | None, progress: bool) -> dict:
        """Warp error over both videos in step, writing the side-by-side video on the way."""
        from ..progress import progress_bar
        from .landmark_video import LandmarkVideoWriter

        n = min(orig.frames, anon.frames)
        meter = WarpErrorMeter(self.config.temporal)
        per_frame = {p["frame"]: p for p in identity["per_frame"]}
        writer = LandmarkVideoWriter(video, orig.info, anon.info, self.embedder.threshold) if video else None
        frames = zip(iter_frames(orig.info), iter_frames(anon.info))
        try:
            with progress_bar(total=n, enabled=progress, desc="compare") as bar:
                for t, (a, b) in enumerate(itertools.islice(frames, n)):
                    meter.add(a, b)
                    if writer is not None:
                        writer.write(t, a, b, _landmarks_at(orig, t), _landmarks_at(anon, t), per_frame.get(t))
                    bar.update(1)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if writer is not None:
            writer.close()
        return meter.result()

    # -- many pairs ------------------------------------------------------------------------------

    def benchmark(self, pairs_dir: str | Path, out_dir: str | Path, *, progress: bool = False) -> dict:
        """Evaluate every pair under ``pairs_dir`` (see :func:`scan_pairs`); one table for all, and
        the sub-folders left out with their reasons (``skipped``).

        Writes ``out_dir/<pair>/report.json`` (+ html, video as configured) per pair and
        ``out_dir/benchmark.json``, ``benchmark.csv`` and ``benchmark.html``, all at the end and
        together: an interrupt leaves ``out_dir`` as it was. A pair that fails (unreadable video,
        no face) is listed with its error instead of stopping the run.
        """
        from ..errors import SignanonError
        from ..files import remove_empty_folders
        from .benchmark import summary_row, write_benchmark

        pairs, skipped = scan_pairs(pairs_dir)
        with output_folder(out_dir, "report folder") as folder:
            check_output_path(folder / "benchmark.json")
            rows, staged = [], StagedFiles()
            created = [folder / name for name in pairs if not (folder / name).exists()]
            try:
                for name, (original, anonymized, extras) in pairs.items():
                    try:
                        result = self.evaluate(original, anonymized, extras, folder / name, progress=progress,
                                               staged=staged)
                        rows.append(summary_row(name, result))
                    except SignanonError as err:
                        rows.append({"clip": name, "error": str(err)})
                result = write_benchmark(rows, folder, staged, skipped)
                staged.commit()
            except BaseException:
                staged.discard()
                for sub in created:  # pair folders this run made, holding nothing now
                    remove_empty_folders(sub)
                raise
            return result


def _landmarks_at(analysis: VideoAnalysis, t: int):
    if analysis.data is None or t >= len(analysis.data):
        return None
    return analysis.data[t], analysis.conf[t]


def _config_dict(config: EvaluationConfig, embedder: FaceEmbedder) -> dict:
    out = asdict(config)
    out["embedder_weights"] = str(config.embedder_weights) if config.embedder_weights else None
    out["embedder_name"] = embedder.name
    return out


def reidentified_warning(identity: dict) -> str | None:
    """The verdict when the recogniser still finds the signer: how many judged frames (the
    original shows a face) the anonymized face of is within the recogniser's own threshold of the
    original face of that frame (``identity["threshold"]``, dlib's 0.6), or None when none is."""
    judged = [p for p in identity["per_frame"] if p["original_face"]]
    hits = sum(bool(p["reidentified"]) for p in judged)
    if not hits:
        return None
    return (
        f"identity NOT removed: {hits} of {len(judged)} anonymized frames re-identified as the original "
        f"signer ({identity['embedder']} distance <= {identity['threshold']:g})"
    )


def faceless_warning(identity: dict) -> str | None:
    """The warning when the recogniser finds no face in the anonymized video in most judged frames
    (more than half): there the identity was not measured, and a low ``reid_rate`` proves little."""
    missing, judged = identity["anonymized_frames_without_face"], identity["frames_judged"]
    if not judged or 2 * missing <= judged:
        return None
    return f"identity could not be measured on {missing} of {judged} frames: no face found in the anonymized video"


def several_faces_warning(faces: FaceTrack) -> str | None:
    """The warning when sampled frames of the original show more than one face (``faces.counts``):
    the identity measures compare its largest face and the landmark reader follows one person."""
    several = faces.counts[faces.counts > 1]
    if not len(several):
        return None
    low, high = int(several.min()), int(several.max())
    return (
        f"the original shows {low if low == high else f'{low}-{high}'} faces in {len(several)} of "
        f"{len(faces.frames)} sampled frames; identity was measured on the largest face, the signing on "
        "the one person the landmark reader follows"
    )


FPS_TOLERANCE = 0.01  # frame rates further apart than 1% of the original's: frames compared out of step


def frame_rate_warning(original_fps: float, anonymized_fps: float) -> str | None:
    """The warning when the two frame rates (frames per second) differ by more than FPS_TOLERANCE
    of the original's: frames are paired by number, so frame t shows two different moments."""
    a, b = float(original_fps), float(anonymized_fps)
    if abs(a - b) <= FPS_TOLERANCE * a:
        return None
    return (f"frame rates differ (original {a:.4g} fps, anonymized {b:.4g} fps); frames are compared by "
            "number, so the two videos are compared out of step")


def frame_shape_warning(original: tuple[int, int], anonymized: tuple[int, int]) -> str | None:
    """The warning when the two frames' shapes (width, height px) differ by more than 1 %. The same
    shape at another size is not warned about: every measure is in face or frame units, and the
    avatar draws a video under 480 px larger on purpose (192x144 -> 640x480)."""
    (wa, ha), (wb, hb) = original, anonymized
    if abs(wa / ha - wb / hb) <= 0.01 * wa / ha:
        return None
    return (f"frame shapes differ (original {wa}x{ha}, anonymized {wb}x{hb}); the anonymized video is resized "
            "for the temporal measure")


def _warnings(orig: VideoAnalysis, anon: VideoAnalysis, identity: dict) -> list[str]:
    notes = [w for w in (reidentified_warning(identity), faceless_warning(identity),
                         several_faces_warning(orig.faces), frame_rate_warning(orig.info.fps, anon.info.fps)) if w]
    if orig.frames != anon.frames:
        notes.append(
            f"frame counts differ (original {orig.frames}, anonymized {anon.frames}); "
            f"the first {min(orig.frames, anon.frames)} frames are compared"
        )
    shape = frame_shape_warning((orig.info.width, orig.info.height), (anon.info.width, anon.info.height))
    if shape:
        notes.append(shape)
    if identity["original_frames_without_face"]:
        notes.append(
            f"{identity['original_frames_without_face']} sampled original frames show no detectable "
            "face; they are left out of the identity measures"
        )
    if identity["anonymized_frames_with_several_faces"]:
        notes.append("some anonymized frames show several faces; the largest one is compared")
    return notes


def _timing(orig: VideoAnalysis, anon: VideoAnalysis, extras: list[VideoAnalysis], started: float) -> dict:
    sampled = sum(len(a.faces.frames) for a in (orig, anon, *extras))
    face_s = sum(a.seconds["faces"] for a in (orig, anon, *extras))
    lm_frames = orig.frames + anon.frames
    lm_s = orig.seconds["landmarks"] + anon.seconds["landmarks"]
    return {
        "face_ms_per_sampled_frame": 1000 * face_s / sampled if sampled else None,
        "landmarks_ms_per_frame": 1000 * lm_s / lm_frames if lm_frames else None,
        "seconds_total": time.perf_counter() - started,
    }


def prepare_output_dir(out_dir: str | Path) -> Path:
    """Create the report folder if needed and check it can be written (OutputError otherwise)."""
    from ..files import make_folder
    from ..video import check_output_path

    folder = make_folder(out_dir, "report folder")
    check_output_path(folder / "report.json")
    return folder


def _video_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def _named(files: list[Path], stem: str) -> list[Path]:
    """The files whose name before the suffix is ``stem``, in any case (as the suffix is)."""
    return [p for p in files if p.stem.lower() == stem]


def _pair_problem(files: list[Path]) -> str | None:
    """Why a sub-folder holding the video ``files`` is no pair, or None when it is one: a partner
    missing, or two candidates for one role (refused: which one was meant is the user's call)."""
    originals, anonymized = _named(files, "original"), _named(files, "anonymized")
    for role, found in (("original", originals), ("anonymized", anonymized)):
        if len(found) > 1:
            return f"{len(found)} {role} videos ({', '.join(p.name for p in found)}): keep one"
    if originals and anonymized:
        return None
    if originals or anonymized:
        (have,), missing = originals or anonymized, "anonymized" if originals else "original"
        return f"{missing}.<ext> is missing ({have.name} alone)"
    names = ", ".join(p.name for p in files)
    return "no original.<ext> or anonymized.<ext>" + (f" (holds {names})" if names else "")


def scan_pairs(pairs_dir: str | Path) -> tuple[dict[str, tuple[Path, Path, list[Path]]], list[dict[str, str]]]:
    """The pairs of a benchmark folder, and what was left out of them.

    One sub-folder per clip holds ``original.<ext>``, ``anonymized.<ext>`` (any case, any of
    VIDEO_SUFFIXES) and optionally ``extra*.<ext>`` (more clips of the same signer). Returns
    ({sub-folder name: (original, anonymized, extras)} in name order, [{"folder", "reason"}] for
    every sub-folder that is no pair, and every video lying loose beside the sub-folders); hidden
    entries are passed over. InputError when ``pairs_dir`` is no folder or holds no complete pair
    (naming each sub-folder left out, and why).
    """
    root = Path(pairs_dir).expanduser()
    if not root.is_dir():
        raise InputError(f"benchmark folder not found: {root}")
    pairs, skipped = {}, []
    for entry in sorted(p for p in root.iterdir() if not p.name.startswith(".")):
        if not entry.is_dir():
            if entry.suffix.lower() in VIDEO_SUFFIXES:
                skipped.append({"folder": entry.name, "reason": "a video beside the pair sub-folders, in none of them"})
            continue
        files = _video_files(entry)
        problem = _pair_problem(files)
        if problem is not None:
            skipped.append({"folder": entry.name, "reason": problem})
            continue
        pairs[entry.name] = (_named(files, "original")[0], _named(files, "anonymized")[0],
                             [p for p in files if p.stem.lower().startswith("extra")])
    if not pairs:
        left_out = "; ".join(f"{s['folder']}: {s['reason']}" for s in skipped)
        raise InputError(
            f"no clip pairs in {root}: expected sub-folders each holding original.<ext> and anonymized.<ext> "
            "(and optionally extra*.<ext> of the same signer)" + (f"; left out: {left_out}" if left_out else "")
        )
    return pairs, skipped
