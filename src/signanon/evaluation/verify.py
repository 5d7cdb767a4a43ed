"""The privacy gate: no output is published in which a face recogniser still finds the signer.

After a run, every ``every``-th output frame's faces are compared with the original's, with the
same recogniser and threshold as ``signanon evaluate`` (dlib's ResNet, Euclidean distance 0.6;
``margin`` makes the gate stricter: refused at distance <= 0.6 + margin). The two videos are
decoded side by side, one frame at a time; only the 128-d embeddings are kept.

Per checked frame, the distance that decides (``nearest_distance``) is that of the output's face
nearest to any face the original shows in any checked frame: every face of both, not only the
largest. A clip may show more than one person (an interpreter beside a speaker, a second signer):
whichever of them the output still shows, and however small, refuses the output. A frame where the
original face was hard to read (a hand over it, a turned head) is covered by that face's other
frames. It is also compared with the mean of the original's largest faces (``mean_distance``), as
the independent read-back measures: that mean takes in the detector's false finds, and on a
blurred clip lies nearer a stranger's face than the signer's own face does.

The per-frame ``distance`` and ``gallery_distance`` are ``evaluate``'s (the largest faces, as the
paper measures), kept beside it so the two reports can be read together.

A frame where the output shows no detectable face although the original does is counted
(``frames_without_face``), not refused: a recogniser that finds no face proves little, so the user
is told how many there were.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from ..config import check_whole_number, setting
from ..errors import InputError
from ..recognition import DlibConfig, viewer_config
from ..progress import ProgressArg, progress_reporter
from ..video import iter_frames, probe_video


@dataclass(frozen=True)
class VerifyConfig:
    """Settings of the privacy gate. ``enabled`` None: on for the diffusion method, off for the
    avatar, which draws no input pixel and checks its own drawn faces against the signer's as it
    draws them (:mod:`signanon.avatar.identity_guard`)."""

    enabled: bool | None = setting(
        None, "check every face of every output frame against every face of the original (dlib, distance "
        "0.6) and write nothing when anyone is recognised in any frame; default: on for --method "
        "diffusion, off for the avatar", flag="verify",
    )  # fmt: skip
    margin: float = setting(0.0, "stricter gate: refuse at a dlib distance <= 0.6 + this", flag="verify-margin", metavar="D")
    every: int = setting(1, "check every N-th frame", flag="verify-every", metavar="N")
    threshold: float = setting(DlibConfig.threshold, "the recogniser's 'same person' distance", cli=False)

    def __post_init__(self) -> None:
        check_whole_number("verify.every", self.every, 1)
        if not self.margin >= 0:  # NaN too: every comparison with it is false, so the gate would never refuse
            raise InputError(f"verify.margin must be 0 or more (a stricter gate), got {self.margin}")
        if not self.threshold > 0:  # NaN or <= 0: no distance is under it, so nobody would be recognised
            raise InputError(f"verify.threshold must be more than 0 (dlib's is 0.6), got {self.threshold}")

    def applies_to(self, method: str) -> bool:
        return self.enabled if self.enabled is not None else method == "diffusion"

    @property
    def limit(self) -> float:
        return self.threshold + self.margin


def skipped_record(config: VerifyConfig) -> dict[str, Any]:
    """The ``verification`` record of a run whose output was not checked."""
    return {
        "skipped": True, "checked_frames": 0, "reidentified_frames": 0, "frames_without_face": 0,
        "min_distance": None, "threshold": config.limit, "seconds_per_frame": None, "frames": [],
    }  # fmt: skip


def verify_video(
    original: str | Path, output: str | Path, config: VerifyConfig = VerifyConfig(), *,
    embedder: Any = None, progress: ProgressArg = None,
) -> dict[str, Any]:
    """Compare ``output`` with ``original`` frame by frame; returns the ``verification`` record.

    Keys: ``skipped`` (False), ``checked_frames``, ``reidentified_frames``, ``frames_without_face``,
    ``min_distance`` (the output's face nearest to anyone of the original, None when no output face
    was found), ``threshold`` (the distance at or under which a frame is refused),
    ``seconds_per_frame`` (the check's cost) and ``frames``: one dict per checked frame with
    ``frame``, ``original_face``, ``output_face`` (bools), ``output_faces`` (how many),
    ``distance``, ``gallery_distance``, ``mean_distance`` (the output's face nearest the mean of the
    original's largest faces), ``nearest_distance`` (the least of those and the nearest to anyone;
    floats or None) and ``reidentified``. Faces are detected upsampled once, as the read-back does.
    ``embedder``: a face embedder to reuse (None: dlib, as ``evaluate``).
    """
    from .identity import DlibEmbedder, FaceTrackBuilder, compare_frames, every_face, nearest_distance

    started = time.perf_counter()
    if embedder is None:
        embedder = DlibEmbedder(viewer_config(config.threshold))
    orig_info, out_info = probe_video(original), probe_video(output)
    orig_track, out_track = FaceTrackBuilder(embedder, config.every), FaceTrackBuilder(embedder, config.every)
    total = min(orig_info.frame_count, out_info.frame_count)
    with progress_reporter(total, progress, desc="verify") as bar:
        for index, (a, b) in enumerate(zip(iter_frames(orig_info), iter_frames(out_info))):
            if orig_track.wants(index):
                orig_track.add(index, a)
                out_track.add(index, b)
            bar.update(1)
    o, y = orig_track.build(), out_track.build()
    everyone = every_face([o])
    mean = o.embeddings[o.found].mean(axis=0, keepdims=True) if o.found.any() else everyone[:0]
    output_row = {int(f): j for j, f in enumerate(y.frames)}
    frames = []
    for pair in compare_frames(o, y, o.embeddings[o.found], embedder):
        j = output_row[pair.frame]
        to_mean = nearest_distance(y.faces_in(j), mean, embedder)
        nearest = min((d for d in (nearest_distance(y.faces_in(j), everyone, embedder), to_mean) if d is not None), default=None)
        frames.append({
            "frame": pair.frame, "original_face": pair.original_face, "output_face": pair.anonymized_face,
            "output_faces": int(y.counts[j]), "distance": pair.distance, "gallery_distance": pair.gallery_distance,
            "mean_distance": to_mean, "nearest_distance": nearest,
            "reidentified": nearest is not None and nearest <= config.limit,
        })  # fmt: skip
    found = [f["nearest_distance"] for f in frames if f["nearest_distance"] is not None]
    return {
        "skipped": False,
        "checked_frames": len(frames),
        "reidentified_frames": sum(f["reidentified"] for f in frames),
        "frames_without_face": sum(f["original_face"] and not f["output_face"] for f in frames),
        "min_distance": min(found) if found else None,
        "threshold": config.limit,
        "seconds_per_frame": round((time.perf_counter() - started) / max(1, len(frames)), 4),
        "frames": frames,
    }


def refusal_message(record: dict[str, Any], output: Path) -> str:
    """The one line a refused run ends with."""
    return (
        f"privacy check failed: the original signer (or another person the original shows) is recognised in "
        f"{record['reidentified_frames']} of "
        f"{record['checked_frames']} checked frames (closest dlib distance {record['min_distance']:.3f}, "
        f"refused at <= {record['threshold']:.2f}); nothing was written to {output}"
    )
