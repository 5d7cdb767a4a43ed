"""Hard framings of real clips, for measuring the avatar on framings it was not built with.

    python tools/make_framings.py OUT_DIR [--max-frames 120]

Writes one mp4 per framing (H.264, yuv420p, the source's frame rate) from the shared clips
(``../shared/data/video``) and the repo's own clips. Each framing is a per-frame affine warp of the
source onto a new canvas (grey padding), so the signing itself is untouched:

* ``zoom``:      crop factor swinging 1 -> 0.55 -> 1 -> 1.5 (zoomed in, then out with padding).
* ``portrait``:  padded to 720x1280 with the signer small (source scaled to 60% of the width).
* ``approach``:  720x1280, the signer walks toward the camera: scale ramps 0.45 -> 1.35.
* ``down``:      downscaled to a third (small face).
* ``rotate``:    rotated 6 degrees.
* ``mirror``:    flipped left to right: a left-handed signer (not in the default plan; measured with
  ``bench_signing.py --framings``).
* ``wide``:      a wide shot: 1920x1080, the source's height 40% of it, left of centre (the signer
  small in a large frame: many pixels, few on the signer; not in the default plan either).
* ``hd``:        the whole frame scaled so its shorter side is 1080 px (a signer filmed in HD,
  framed as in the source: large hands and face in pixels; not in the default plan either).
* ``uhd``:       the same at 2160 px (a phone's 4K recording; not in the default plan).

Camera and recording conditions (not in the default plan; measured with ``--framings``):

* ``dark``:      a dim room: exposure 0.4, the shadows lifted by gamma 1.3 toward a grey floor of
  10, sensor noise (Gaussian, sigma 4 grey levels, a fixed seed per frame).
* ``soft``:      out of focus: a Gaussian blur of sigma 0.5% of the frame's height (2.4 px at 480).
* ``halfrate``:  every other frame at half the frame rate (a 12.5 or 15 fps recording: twice the
  movement between frames).
* ``lowbit``:    a heavily compressed upload: H.264 at crf 38 instead of 18.
* ``gray``:      monochrome (an archival recording): luma only, in all three channels.
* ``tint``:      a warm colour cast (tungsten light, no white balance): red x1.2, green x0.95, blue x0.65.
* ``tight``:     a tight frame: the top 70% of the frame's height and its middle 60% of the width (the
  hands often at or past the bottom and side edges, as a webcam held close frames a signer).
* ``crown``:     the top 15% of the frame's height cut off (a webcam tilted down or a phone held low: the
  top of the head out of the frame, the brows near the top edge on a close or small framing).
* ``blurfill``:  a landscape video reposted as a 9:16 phone video, the bands above and below filled
  with the same frame zoomed to the full height and blurred (a second, large and blurred copy of
  the signer, face included, around the sharp one). ``blurpillar``: a portrait video posted as
  16:9 the same way, the blurred copy beside the sharp one.
* ``enter``:     the signer slides in from the right edge over the first quarter of the clip (the
  first frames show the empty room: a recording started before the signer stepped in).
* ``leave``:     the signer slides out through the left edge over the last 30% of the clip (the last
  frames show the empty room).
* ``rise``:      the signer rises into the frame from below its bottom edge over the first quarter of
  the clip (sitting down in front of a camera already recording; the head comes in first).
* ``tilt``:      a camera held 20 degrees crooked: the frame turned 20 degrees counter-clockwise about
  its centre, scaled 0.85 so the signer stays in it (``tiltcw``: 20 degrees clockwise).
* ``side``:      the signer off centre: the frame scaled 0.8 with its centre at 28% of the width (the
  signer's far side and the padding fill the right; an interview cut to one of two people).
* ``inset``:     a picture-in-picture interpreter: the frame at 38% of the height in the lower right
  corner of a 1280x720 grey frame (as broadcasts show an interpreter beside the programme).
* ``interlaced``: broadcast or camcorder video stored as two fields (50i / 60i): each frame woven from
  the frame itself (top field, the even lines) and the picture half-way to the next frame (bottom
  field, the odd lines; DIS optical flow), as a camera filming fields half a frame apart records
  them, written as interlaced H.264 (top field first), which decoders flag as interlaced.
* ``doublerate``: a 50 or 60 fps recording: a picture half-way to the next frame (DIS optical flow)
  put between each two frames, at twice the rate (half the movement between frames).
* ``shake``:     a hand-held camera: the frame wobbles (two slow sines and a small per-frame jitter;
  up to ~2.5% of the height sideways, 1.5 degrees of roll), zoomed 1.05 so the edges rarely show.
"""

from __future__ import annotations

import argparse
import tempfile
from fractions import Fraction
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import av
import cv2
import numpy as np
from signanon.video.writer import x264_options

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "video"
PAD = (118, 118, 118)


def read_frames(path: Path, limit: int) -> tuple[list[np.ndarray], float]:
    """RGB uint8 frames (H, W, 3) of ``path`` (at most ``limit``) and the frame rate (frames/s)."""
    out = []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate or 25)
        for f in c.decode(video=0):
            out.append(np.ascontiguousarray(f.to_ndarray(format="rgb24")))
            if len(out) >= limit:
                break
    return out, fps


def write_frames(path: Path, frames: list[np.ndarray], fps: float, crf: int = 18, exact_rate: bool = False,
                 interlaced: bool = False) -> Path:
    """Write RGB uint8 frames as H.264 mp4 (even sizes) at quality ``crf``. The rate is rounded to
    whole frames per second (as every framing before ``halfrate`` was written) unless ``exact_rate``.
    ``interlaced``: coded as interlaced, top field first (frames from :func:`weave_fields`)."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001) if exact_rate else round(fps))
        s.width, s.height, s.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        options = x264_options(crf, "medium")  # byte-stable cuts (x264's own default preset)
        if interlaced:
            options["flags"] = "+ilme+ildct"
            options["x264-params"] = ":".join(filter(None, (options.get("x264-params"), "tff=1")))
        s.options = options
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: s.height, : s.width]), format="rgb24")))
        c.mux(s.encode())
    return path


def place(frame: np.ndarray, size: tuple[int, int], scale: float, centre: tuple[float, float], angle: float = 0.0) -> np.ndarray:
    """The frame scaled by ``scale`` (and turned ``angle`` degrees) with its centre at ``centre``
    (fractions of the output size (w, h)), on a grey canvas of ``size`` (w, h)."""
    h, w = frame.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[:, 2] += np.array([centre[0] * size[0], centre[1] * size[1]]) - np.array([w / 2, h / 2])
    return cv2.warpAffine(frame, m, size, flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=PAD)


def halfway(frames: list[np.ndarray]) -> list[np.ndarray]:
    """For each frame (RGB uint8, (H, W, 3)), the picture half-way to the next one: the frame moved
    along half of the DIS optical flow between the two (the last frame: itself)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    h, w = frames[0].shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out = []
    for k, frame in enumerate(frames):
        after = frames[min(k + 1, len(frames) - 1)]
        flow = dis.calc(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.cvtColor(after, cv2.COLOR_RGB2GRAY), None)
        out.append(cv2.remap(frame, xs - 0.5 * flow[..., 0], ys - 0.5 * flow[..., 1], cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE))
    return out


def weave_fields(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Interlaced frames (RGB uint8, (H, W, 3)) from progressive ones: frame k's even lines (the top
    field) as they are, its odd lines (the bottom field) from the picture half-way to frame k + 1
    (:func:`halfway`)."""
    out = []
    for frame, half in zip(frames, halfway(frames)):
        woven = frame.copy()
        woven[1::2] = half[1::2]
        out.append(woven)
    return out


def doubled(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Each frame followed by the picture half-way to the next (:func:`halfway`; none after the
    last): twice the frames, for twice the rate."""
    return [f for pair in zip(frames, halfway(frames)) for f in pair][:-1]


@dataclass(frozen=True)
class Framing:
    """A named per-frame transform: (frame, t in [0, 1]) -> frame."""

    name: str
    fn: Callable[[np.ndarray, float], np.ndarray]
    frame_step: int = 1  # keep every frame_step-th frame, at the rate divided by frame_step
    crf: int = 18  # H.264 quality the framing is written at
    interlaced: bool = False  # then woven into fields (weave_fields) and coded interlaced
    doubled: bool = False  # then a half-way picture put between each two frames, at twice the rate


def _zoom(frame: np.ndarray, t: float) -> np.ndarray:
    h, w = frame.shape[:2]
    k = 1.0 / float(np.interp(t, [0, 0.3, 0.6, 1.0], [1.0, 0.55, 1.0, 1.5]))  # crop factor -> scale
    return place(frame, (w, h), k, (0.5, 0.5 + 0.15 * (k - 1) / max(k, 1e-6)))


def _portrait(frame: np.ndarray, t: float) -> np.ndarray:
    h, w = frame.shape[:2]
    return place(frame, (720, 1280), 0.6 * 720 / w, (0.5, 0.45))


def _approach(frame: np.ndarray, t: float) -> np.ndarray:
    h, w = frame.shape[:2]
    k = float(np.interp(t, [0, 0.4, 1.0], [0.45, 0.55, 1.35]))
    return place(frame, (720, 1280), k * 720 / w, (0.5, 0.62 - 0.17 * (k - 0.45)))


def _down(frame: np.ndarray, t: float) -> np.ndarray:
    h, w = frame.shape[:2]
    return cv2.resize(frame, (max(2, w // 3), max(2, h // 3)), interpolation=cv2.INTER_AREA)


def _rotate(frame: np.ndarray, t: float) -> np.ndarray:
    h, w = frame.shape[:2]
    return place(frame, (w, h), 1.0, (0.5, 0.5), angle=6.0)


def _mirror(frame: np.ndarray, t: float) -> np.ndarray:
    return np.ascontiguousarray(frame[:, ::-1])


def _wide(frame: np.ndarray, t: float) -> np.ndarray:
    h, w = frame.shape[:2]
    return place(frame, (1920, 1080), 0.4 * 1080 / h, (0.35, 0.55))


def _scaled_to(short_side: int) -> Callable[[np.ndarray, float], np.ndarray]:
    """A framing scaling the whole frame so that its shorter side is ``short_side`` px."""

    def fn(frame: np.ndarray, t: float) -> np.ndarray:
        h, w = frame.shape[:2]
        k = short_side / min(h, w)
        size = (int(round(w * k / 2)) * 2, int(round(h * k / 2)) * 2)
        return cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC if k > 1 else cv2.INTER_AREA)

    return fn


def _dark(frame: np.ndarray, t: float) -> np.ndarray:
    # = 255 * 0.4 * (frame / 255) ** (1 / 1.3): the gamma lift, then the exposure (written this way when
    # session 20 measured it; the short form differs in float rounding on a few pixels)
    x = (frame.astype(np.float32) / 255.0 * 0.4) ** (1 / 1.3) * 255.0 * 0.4 / 0.4 ** (1 / 1.3)
    noise = np.random.default_rng(int(t * 1e6)).normal(0.0, 4.0, frame.shape)
    return np.clip(10.0 + x * (1 - 10.0 / 255.0) + noise, 0, 255).astype(np.uint8)


def _soft(frame: np.ndarray, t: float) -> np.ndarray:
    return cv2.GaussianBlur(frame, (0, 0), 0.005 * frame.shape[0])


def _gray(frame: np.ndarray, t: float) -> np.ndarray:
    y = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return np.repeat(y[:, :, None], 3, axis=2)


def _tint(frame: np.ndarray, t: float) -> np.ndarray:
    return np.clip(frame.astype(np.float32) * np.array([1.2, 0.95, 0.65], np.float32), 0, 255).astype(np.uint8)


def _shake(frame: np.ndarray, t: float) -> np.ndarray:
    h, w = frame.shape[:2]
    jitter = np.random.default_rng(int(t * 1e6)).normal(0.0, 0.003, 2)
    dx = 0.015 * np.sin(2 * np.pi * (3 * t + 0.1)) + 0.008 * np.sin(2 * np.pi * (7 * t + 0.6)) + jitter[0]
    dy = 0.012 * np.sin(2 * np.pi * (4 * t + 0.3)) + 0.006 * np.sin(2 * np.pi * (9 * t + 0.2)) + jitter[1]
    angle = 1.5 * np.sin(2 * np.pi * (2.5 * t + 0.4))
    return place(frame, (w, h), 1.05, (0.5 + dx * h / w, 0.5 + dy), angle=float(angle))


def _tight(frame: np.ndarray, t: float) -> np.ndarray:
    h, w = frame.shape[:2]
    x0 = round(w * 0.2)
    return np.ascontiguousarray(frame[: round(h * 0.7), x0 : w - x0])


def _crown(frame: np.ndarray, t: float) -> np.ndarray:
    h = frame.shape[0]
    return np.ascontiguousarray(frame[round(h * 0.15) :])


def _reposted_size(frame: np.ndarray, wide: bool) -> tuple[int, int]:
    """(w, h) of a 16:9 frame (``wide``) as high as ``frame``, or of a 9:16 one as wide (even sizes)."""
    h, w = frame.shape[:2]
    return (max(w, int(round(h * 16 / 9 / 2)) * 2), h) if wide else (w, max(h, int(round(w * 16 / 9 / 2)) * 2))


def _between_bars(frame: np.ndarray, wide: bool) -> np.ndarray:
    """The frame at full height (``wide``: in a 16:9 frame) or full width (else: 9:16) between black bars."""
    h, w = frame.shape[:2]
    size = _reposted_size(frame, wide)
    out = np.zeros((size[1], size[0], 3), frame.dtype)
    x0, y0 = (size[0] - w) // 2, (size[1] - h) // 2
    out[y0 : y0 + h, x0 : x0 + w] = frame
    return out


def _blurred_bands(frame: np.ndarray, wide: bool) -> np.ndarray:
    """The frame at full height in a 16:9 frame (``wide``) or at full width in a 9:16 one, the bands
    beside it the same frame zoomed to fill the whole and blurred (sigma 4% of the output's shorter
    side), as phone apps and editors repost a video of the other orientation."""
    h, w = frame.shape[:2]
    size = _reposted_size(frame, wide)
    scale = max(size[0] / w, size[1] / h)
    fill = cv2.resize(frame, (int(round(w * scale)), int(round(h * scale))), interpolation=cv2.INTER_LINEAR)
    x0, y0 = (fill.shape[1] - size[0]) // 2, (fill.shape[0] - size[1]) // 2
    fill = cv2.GaussianBlur(np.ascontiguousarray(fill[y0 : y0 + size[1], x0 : x0 + size[0]]), (0, 0), 0.04 * min(size))
    x0, y0 = (size[0] - w) // 2, (size[1] - h) // 2
    fill[y0 : y0 + h, x0 : x0 + w] = frame
    return fill


def _blurfill(frame: np.ndarray, t: float) -> np.ndarray:
    return _blurred_bands(frame, wide=False)  # a landscape video reposted as a 9:16 phone video


def _blurpillar(frame: np.ndarray, t: float) -> np.ndarray:
    return _blurred_bands(frame, wide=True)  # a portrait phone video posted as 16:9, blurred sides


def _pillarbox(frame: np.ndarray, t: float) -> np.ndarray:
    return _between_bars(frame, wide=True)  # a portrait phone video uploaded as 16:9 landscape


def _letterbox(frame: np.ndarray, t: float) -> np.ndarray:
    return _between_bars(frame, wide=False)  # a landscape video posted as a 9:16 phone video


def _enter(frame: np.ndarray, t: float) -> np.ndarray:
    h, w = frame.shape[:2]
    return place(frame, (w, h), 1.0, (float(np.interp(t, [0, 0.25, 1], [1.45, 0.5, 0.5])), 0.5))


def _leave(frame: np.ndarray, t: float) -> np.ndarray:
    h, w = frame.shape[:2]
    return place(frame, (w, h), 1.0, (float(np.interp(t, [0, 0.7, 1], [0.5, 0.5, -0.45])), 0.5))


def _rise(frame: np.ndarray, t: float) -> np.ndarray:
    h, w = frame.shape[:2]
    return place(frame, (w, h), 1.0, (0.5, float(np.interp(t, [0, 0.25, 1], [1.5, 0.5, 0.5]))))


def _tilted(angle: float) -> Callable[[np.ndarray, float], np.ndarray]:
    """A framing turning the frame ``angle`` degrees (counter-clockwise > 0), scaled 0.85."""

    def fn(frame: np.ndarray, t: float) -> np.ndarray:
        h, w = frame.shape[:2]
        return place(frame, (w, h), 0.85, (0.5, 0.5), angle=angle)

    return fn


def _side(frame: np.ndarray, t: float) -> np.ndarray:
    h, w = frame.shape[:2]
    return place(frame, (w, h), 0.8, (0.28, 0.5))


def _inset(frame: np.ndarray, t: float) -> np.ndarray:
    h, w = frame.shape[:2]
    return place(frame, (1280, 720), 0.38 * 720 / h, (0.83, 0.78))


def _same(frame: np.ndarray, t: float) -> np.ndarray:
    return frame


FRAMINGS = {f.name: f for f in (Framing("zoom", _zoom), Framing("portrait", _portrait), Framing("approach", _approach),
                                Framing("down", _down), Framing("rotate", _rotate), Framing("mirror", _mirror),
                                Framing("wide", _wide), Framing("hd", _scaled_to(1080)), Framing("uhd", _scaled_to(2160)),
                                Framing("dark", _dark), Framing("soft", _soft),
                                Framing("halfrate", _same, frame_step=2), Framing("lowbit", _same, crf=38),
                                Framing("gray", _gray), Framing("tint", _tint), Framing("shake", _shake),
                                Framing("tight", _tight), Framing("crown", _crown),
                                Framing("pillarbox", _pillarbox), Framing("letterbox", _letterbox),
                                Framing("blurfill", _blurfill), Framing("blurpillar", _blurpillar),
                                Framing("enter", _enter), Framing("leave", _leave), Framing("rise", _rise),
                                Framing("tilt", _tilted(20.0)), Framing("tiltcw", _tilted(-20.0)), Framing("side", _side),
                                Framing("inset", _inset), Framing("interlaced", _same, interlaced=True),
                                Framing("doublerate", _same, doubled=True))}
# (source clip, framing): each framing on clips with different signers and framings
PLAN = (
    ("dgs_zug.mp4", "zoom"), ("asl_webcam.mp4", "zoom"),
    ("dgs_zug.mp4", "portrait"), ("asl_house.gif", "portrait"),
    ("dgs_zug.mp4", "approach"), ("asl_different.gif", "approach"),
    ("dgs_zug.mp4", "down"), ("asl_house.gif", "rotate"),
)


def make(source: Path, framing: str, out: Path, max_frames: int = 120) -> Path:
    """Write ``framing`` of ``source`` (first ``max_frames`` frames) to ``out``; returns ``out``.
    ``framing`` may compose framings with ``+`` (``blurfill+shake``): each is applied to the last
    one's output, written and read back as a file in between."""
    if "+" in framing:
        first, rest = framing.split("+", 1)
        with tempfile.TemporaryDirectory() as tmp:
            return make(make(source, first, Path(tmp) / "step.mp4", max_frames), rest, out, 10**9)
    frames, fps = read_frames(source, max_frames)
    spec = FRAMINGS[framing]
    frames = frames[:: spec.frame_step]
    n = max(1, len(frames) - 1)
    frames = [spec.fn(f, i / n) for i, f in enumerate(frames)]
    if spec.interlaced:
        frames = weave_fields(frames)
    if spec.doubled:
        frames = doubled(frames)
    rate = fps / spec.frame_step * (2 if spec.doubled else 1)
    return write_frames(out, frames, rate, spec.crf, exact_rate=spec.frame_step > 1 or spec.doubled,
                        interlaced=spec.interlaced)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--max-frames", type=int, default=120)
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for clip, framing in PLAN:
        out = args.out_dir / f"{Path(clip).stem}__{framing}.mp4"
        make(SHARED / clip, framing, out, args.max_frames)
        print(out)


if __name__ == "__main__":
    main()
