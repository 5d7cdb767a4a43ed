"""The ``extract-faces`` and ``train-face`` sub-commands (TPSMM fine-tuning data and training).

Wired into :mod:`signanon.cli.main` with :func:`add_extract_faces_parser` / :func:`run_extract_faces`
and :func:`add_train_face_parser` / :func:`run_train_face`. PyTorch is imported only when a command
runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..cli.options import add_command, add_settings, config_from_args
from ..config import setting
from ..errors import InputError, NoPersonError, OutputError
from ..files import output_folder, write_text_atomic

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".gif")

EPILOG_EXTRACT = """examples:
  signanon extract-faces sign_videos/ -o faces/sign
  signanon extract-faces vox_videos/ -o faces/talking --min-frames 32 --format png

Every video of VIDEO_DIR (mp4, mov, webm, mkv, avi, gif) is face-tracked with the MediaPipe face
mesh (square box with margin, smoothed over time) and cropped to 256x256. Each stretch of frames
with a face (gaps up to --max-gap frames bridged) of at least --min-frames frames becomes one clip:
DIR/<video>_<k>/00000.jpg, ... DIR/extract_faces.json records what was found per video.
"""

EPILOG_TRAIN = """examples:
  signanon train-face --data talking_heads=faces/talking --data sign_faces=faces/sign \\
      --init vox.pth.tar --vgg19-weights vgg19-dcbb9e9d.pth --epochs 40 -o runs/face
  signanon train-face ... -o runs/face --resume          # continue after an interruption

Each batch draws the same number of pairs from every --data source, whatever their sizes. After
every epoch RUN_DIR/<epoch>-checkpoint.pth.tar is written in the layout of vox.pth.tar (use it with
--face-model); RUN_DIR/metrics.jsonl has one JSON record per step and per epoch. The perceptual loss
needs torchvision's VGG19 ImageNet weights (vgg19-dcbb9e9d.pth): get them on a connected machine
with python -c "import torchvision; torchvision.models.vgg19(weights='IMAGENET1K_V1')" (the file is
then in ~/.cache/torch/hub/checkpoints/).
"""


# ------------------------------------------------------------------------------------------------
# extract-faces
# ------------------------------------------------------------------------------------------------
HELP_EXTRACT = 'cut the videos of a folder into 256x256 face-crop clips (training data for train-face)'
DESCRIPTION_EXTRACT = """\
Face-track every video of a folder and write square face crops, one folder of frames per clip, for
fine-tuning the face re-enactment model.
"""

HELP_TRAIN = 'fine-tune the face re-enactment model (TPSMM) on face-crop clips'
DESCRIPTION_TRAIN = """\
Fine-tune the Thin-Plate Spline Motion Model on a balanced mix of face-crop clip folders (from
extract-faces), with the TPSMM losses: multi-scale VGG19 perceptual, equivariance, warp and
background.
"""


@dataclass(frozen=True)
class ExtractConfig:
    """How face clips are cut: ``min_frames`` per clip, gaps of up to ``max_gap`` undetected frames
    bridged, crops of ``size`` pixels written as ``fmt`` (``jpg`` quality 95 or ``png``)."""

    min_frames: int = setting(16, "shortest clip, in frames", metavar="N")
    max_gap: int = setting(5, "frames without a face bridged inside a clip", metavar="N")
    size: int = setting(256, "crop side in pixels (256: the model's size)", metavar="PX")
    fmt: str = setting("jpg", "frame files (jpg: quality 95)", flag="format", choices=("jpg", "png"))

    def __post_init__(self) -> None:
        if self.min_frames < 2 or self.max_gap < 0 or self.size < 16:
            raise ValueError(
                f"min_frames must be at least 2, max_gap 0 or more, size at least 16; got "
                f"{self.min_frames}, {self.max_gap}, {self.size}"
            )


def face_segments(found: np.ndarray, min_frames: int, max_gap: int) -> list[tuple[int, int]]:
    """``[start, stop)`` frame ranges of bool ``found`` ``(T,)``: runs of detections joined over gaps of
    at most ``max_gap`` frames, trimmed to detected ends, at least ``min_frames`` long."""
    hits = np.nonzero(np.asarray(found, bool))[0]
    segments: list[tuple[int, int]] = []
    if len(hits) == 0:
        return segments
    start = prev = int(hits[0])
    for t in hits[1:]:
        t = int(t)
        if t - prev - 1 > max_gap:
            segments.append((start, prev + 1))
            start = t
        prev = t
    segments.append((start, prev + 1))
    return [(a, b) for a, b in segments if b - a >= min_frames]


def _write_clip(folder: Path, frames: list[np.ndarray], fmt: str) -> None:
    """Write frames to ``folder`` atomically (a ``.partial`` folder renamed at the end)."""
    import cv2

    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if fmt == "jpg" else []
    try:
        partial.mkdir(parents=True)
        for i, frame in enumerate(frames):
            # encoded here and written by Python: cv2.imwrite crashed the process (SIGSEGV) on a
            # folder name that is not valid UTF-8 (a video named in Latin-1, M\xfcller.mp4)
            ok, data = cv2.imencode(f".{fmt}", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params)
            if not ok:
                raise OutputError(f"cannot encode face crops as {fmt}: {folder}")
            (partial / f"{i:05d}.{fmt}").write_bytes(data.tobytes())
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(partial, folder)
    except OSError as err:
        raise OutputError(f"cannot write face crops ({err.strerror or err}): {folder}") from None
    finally:  # an error or Ctrl-C half-way leaves no partial clip
        shutil.rmtree(partial, ignore_errors=True)


def extract_video_faces(video: Path, out_dir: Path, config: ExtractConfig = ExtractConfig(), prefix: str | None = None) -> dict:
    """Cut one video into face-crop clips ``<prefix>_000``, ``_001``, ... under ``out_dir``
    (prefix: the video's stem unless given); returns a record of what was found.

    Raises InputError (unreadable video) or NoPersonError (no face in any frame).
    """
    from ..video import iter_frames, probe_video
    from .face_track import crop, track_faces

    info = probe_video(video)
    track = track_faces(video)
    segments = face_segments(track.found, config.min_frames, config.max_gap)
    starts = {a: k for k, (a, _) in enumerate(segments)}
    clips, current, buffer = [], None, []
    for t, frame in enumerate(iter_frames(info)):
        if t in starts:
            current, buffer = starts[t], []
        if current is not None:
            buffer.append(crop(frame, track.boxes[t], config.size))
            if t + 1 == segments[current][1]:
                folder = out_dir / f"{prefix or video.stem}_{current:03d}"
                _write_clip(folder, buffer, config.fmt)
                clips.append(folder.name)
                current, buffer = None, []
    return {"video": video.name, "frames": len(track), "frames_with_face": int(track.found.sum()),
            "clips": clips, "clip_frames": [b - a for a, b in segments]}


def extract_faces(video_dir: Path, out_dir: Path, config: ExtractConfig = ExtractConfig(), progress: bool = True) -> dict:
    """Run :func:`extract_video_faces` on every video of ``video_dir``; write ``extract_faces.json``.

    Videos that cannot be read or show no face are skipped and listed. Returns the summary dict.
    """
    from ..progress import progress_bar

    video_dir, out_dir = Path(video_dir).expanduser(), Path(out_dir).expanduser()
    if video_dir.is_file():
        raise InputError(f"VIDEO_DIR must be a folder of videos, got the file {video_dir}")
    if not video_dir.is_dir():
        raise InputError(f"video folder {video_dir} not found")
    videos = sorted(p for p in video_dir.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise InputError(f"video folder {video_dir} holds no videos ({', '.join(VIDEO_SUFFIXES)})")
    if out_dir.resolve() == video_dir.resolve():
        raise OutputError(f"output folder {out_dir} must differ from the video folder")
    if not out_dir.parent.is_dir():
        raise OutputError(f"cannot create {out_dir}: {out_dir.parent} does not exist")
    # a folder this run creates goes again if nothing usable comes out (or on Ctrl-C)
    prefixes = clip_prefixes(videos)
    # a folder this run creates goes again if nothing usable comes out (or on Ctrl-C); in one that
    # exists, the clips are cut into a staging folder and moved in only once every video is done
    with output_folder(out_dir, "output folder", remove_partial=True) as out_dir:
        staging = out_dir / STAGING
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staging.mkdir()
            records, skipped = [], []
            with progress_bar(len(videos), enabled=progress, desc="extract-faces", unit="video") as bar:
                for video in videos:
                    try:
                        records.append(extract_video_faces(video, staging, config, prefixes[video]))
                    except (InputError, NoPersonError) as err:
                        skipped.append({"video": video.name, "reason": str(err)})
                    bar.update(1)
            clips = sum(len(r["clips"]) for r in records)
            if clips == 0:
                raise NoPersonError(_no_clips_message(video_dir, len(videos), skipped, config.min_frames))
            summary = {"videos": len(videos), "clips": clips, "per_video": records, "skipped": skipped,
                       "min_frames": config.min_frames, "max_gap": config.max_gap, "size": config.size}
            _publish_clips(staging, out_dir, prefixes.values())
            write_text_atomic(out_dir / "extract_faces.json", json.dumps(summary, indent=1) + "\n")
        except OSError as err:
            raise OutputError(f"cannot write face clips in {out_dir} ({err.strerror or err})") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return summary


STAGING = ".extract-faces.partial"  # where one run's clips are cut before they are moved in


def clip_prefixes(videos: list[Path]) -> dict[Path, str]:
    """The clip folder prefix of each video: its stem, or stem and suffix where two videos share a
    stem (a.mp4 and a.mov both cut into a_000, the second overwriting the first's crops)."""
    stems = [v.stem for v in videos]
    return {v: v.stem if stems.count(v.stem) == 1 else f"{v.stem}_{v.suffix[1:].lower()}" for v in videos}


def _publish_clips(staging: Path, out_dir: Path, prefixes) -> None:
    """Move the clips cut into ``staging`` into ``out_dir``, first removing the clips an earlier
    run cut there from the same videos (``<prefix>_NNN``): train-face reads every sub-folder, and
    a clip the new settings no longer cut must not stay beside the new ones."""
    import re

    pattern = re.compile("(" + "|".join(re.escape(p) for p in prefixes) + r")_\d{3}")
    for old in out_dir.iterdir():
        if old.is_dir() and pattern.fullmatch(old.name):
            shutil.rmtree(old)
    for clip in sorted(staging.iterdir()):
        os.replace(clip, out_dir / clip.name)


def _no_clips_message(video_dir: Path, videos: int, skipped: list[dict], min_frames: int) -> str:
    """One line: no video of ``video_dir`` gave a face clip, with the first reason a video was skipped."""
    text = f"no face clip of at least {min_frames} frames in any of the {videos} videos of {video_dir}"
    if skipped:
        text += f" ({len(skipped)} skipped; first: {skipped[0]['reason']})"
    return text


def add_extract_faces_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``extract-faces`` to the ``signanon`` sub-commands."""
    p = add_command(subparsers, "extract-faces", HELP_EXTRACT, DESCRIPTION_EXTRACT, EPILOG_EXTRACT)
    p.add_argument("video_dir", type=Path, metavar="VIDEO_DIR", help="folder of videos")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="folder for the clips (created)")
    add_settings(p, ExtractConfig)
    return p


def run_extract_faces(args: argparse.Namespace) -> None:
    """Run a parsed ``extract-faces`` command line (errors propagate as SignanonError)."""
    config = config_from_args(ExtractConfig, args)
    summary = extract_faces(args.video_dir, args.output, config, progress=not args.quiet)
    if not args.quiet:
        print(f"wrote {summary['clips']} clips from {summary['videos']} videos to {args.output} "
              f"({len(summary['skipped'])} skipped)", file=sys.stderr)


# ------------------------------------------------------------------------------------------------
# train-face
# ------------------------------------------------------------------------------------------------
def parse_data_sources(values: list[str]) -> list[tuple[str, Path]]:
    """``["name=DIR", ...]`` -> ``[(name, Path)]``; InputError on bad or repeated names."""
    sources, names = [], set()
    for value in values or []:
        name, sep, folder = value.partition("=")
        if not sep or not name.strip() or not folder.strip():
            raise InputError(f"--data must look like NAME=DIR (e.g. sign_faces=faces/sign), got {value!r}")
        if name in names:
            raise InputError(f"--data name {name!r} given twice")
        names.add(name)
        sources.append((name.strip(), Path(folder).expanduser()))
    if not sources:
        raise InputError("give at least one --data NAME=DIR")
    return sources


def add_train_face_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``train-face`` to the ``signanon`` sub-commands."""
    p = add_command(subparsers, "train-face", HELP_TRAIN, DESCRIPTION_TRAIN, EPILOG_TRAIN)
    p.add_argument("--data", action="append", metavar="NAME=DIR", required=True,
                   help="a clip folder and its name; repeat for each source (batches are balanced over sources)")
    p.add_argument("--init", type=Path, metavar="PATH", help="checkpoint to start from (vox.pth.tar); required unless --resume")
    p.add_argument("--vgg19-weights", type=Path, metavar="PATH", help="torchvision VGG19 weights (vgg19-dcbb9e9d.pth)")
    from .train_config import TrainConfig

    add_settings(p, TrainConfig)
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N (default auto: cuda if present)")
    p.add_argument("--model-size", choices=["vox-256", "tiny"], default="vox-256",
                   help="network sizes (default vox-256, the published model; tiny: a small model for smoke tests)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in RUN_DIR (same settings)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="RUN_DIR", help="folder for checkpoints and metrics")
    return p


def _train_config(args: argparse.Namespace, run_dir: Path):
    """The TrainConfig of the command line; on --resume, the saved one with the flags given now
    applied (typically a new --epochs)."""
    from .train_config import TrainConfig
    from .training import latest_checkpoint, read_saved_config

    config = config_from_args(TrainConfig, args)
    if args.resume:
        if not run_dir.is_dir() or latest_checkpoint(run_dir) is None:
            raise InputError(f"--resume: no checkpoint in {run_dir}")
        saved = read_saved_config(run_dir)
        if saved is not None:
            config = config_from_args(saved, args)
    return config


def run_train_face(args: argparse.Namespace) -> None:
    """Run a parsed ``train-face`` command line (errors propagate as SignanonError)."""
    from .train_files import VGG19_HINT, FaceClipFolder, check_run_dir, latest_checkpoint

    # 1. check every path first, before PyTorch loads: sources, run folder, checkpoint, VGG19 file
    sources = [FaceClipFolder(folder, name) for name, folder in parse_data_sources(args.data)]
    run_dir = check_run_dir(args.output, args.resume, [source.root for source in sources])
    if args.init is not None and not args.resume and not Path(args.init).expanduser().is_file():
        raise InputError(f"--init checkpoint not found: {args.init} (the published vox.pth.tar)")
    if args.vgg19_weights is None:
        raise InputError(f"the perceptual loss needs VGG19 weights (--vgg19-weights PATH); {VGG19_HINT}")
    if not Path(args.vgg19_weights).expanduser().is_file():
        raise InputError(f"VGG19 weights {args.vgg19_weights} not found; {VGG19_HINT}")
    existed = run_dir.exists()
    try:
        _train(args, sources, run_dir)
    except BaseException:
        # a run folder this command created, failing or interrupted before its first checkpoint,
        # holds nothing to resume from: it goes (a folder with a checkpoint stays for --resume)
        if not existed and run_dir.is_dir() and latest_checkpoint(run_dir) is None:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _train(args: argparse.Namespace, sources: list, run_dir: Path) -> None:
    """:func:`run_train_face` once the sources and the run folder are checked."""
    from ..progress import progress_bar
    from .tpsmm.model import CONFIGS
    from .training import Trainer, build_model_for_training, load_vgg19, resolve_device

    config = _train_config(args, run_dir)
    if not args.resume and args.init is None:
        raise InputError("--init PATH is required (the published vox.pth.tar) unless --resume")
    device = resolve_device(args.device)
    vgg = load_vgg19(args.vgg19_weights, device)
    # 2. the model: from --init, or (resume) from the last checkpoint of RUN_DIR
    model = build_model_for_training(None if args.resume else args.init, CONFIGS[args.model_size])
    trainer = Trainer(model, sources, vgg, run_dir, config, device)
    if args.resume:
        trainer.resume()
    # 3. train, one checkpoint per epoch
    total = max(0, config.epochs - trainer.start_epoch) * trainer.steps_per_epoch()
    with progress_bar(total, enabled=not args.quiet, desc="train-face", unit="step") as bar:
        written = trainer.fit(progress=bar)
    if not args.quiet:
        last = written[-1] if written else "nothing (all epochs already done)"
        print(f"trained epochs {trainer.start_epoch - len(written)}..{config.epochs - 1} on {device}; "
              f"last checkpoint: {last}; metrics: {trainer.metrics_path}", file=sys.stderr)
