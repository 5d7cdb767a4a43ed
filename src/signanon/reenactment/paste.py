"""Paste a re-enacted 256x256 face crop back into a full frame.

Steps (:func:`paste_face`): map the crop into frame pixels (inverse of the crop,
:func:`~.face_track.uncrop_matrix`); build a soft mask from the destination face's outline
(:func:`face_oval_mask`); match the crop's colours to the frame inside the mask (mean and standard
deviation per channel in CIE Lab, :func:`match_colour`); blend, feathered or Poisson
(``cv2.seamlessClone``); and finally restore every pixel under the *protect* mask, the hands in
front of the face (:func:`hand_mask`), from the frame: the face never overwrites a hand.

Frames are RGB uint8 ``(H, W, 3)``; masks are float32 ``(H, W)`` in [0, 1] or bool ``(H, W)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..landmarks import geometry
from ..landmarks.regions import FACE_OVAL, HAND_BONES
from .face_track import uncrop_matrix


@dataclass(frozen=True)
class PasteConfig:
    """How a face is put back.

    oval_scale: the outline is scaled about its centre by this factor (1 = the mesh outline);
    feather: blur of the mask edge as a fraction of the face size; colour_match: match Lab
    mean/std inside the mask; blend: "feather" (alpha) or "poisson" (cv2.seamlessClone, then the
    feathered edge); hand_width: skeleton thickness as a fraction of the hand's size; hand_margin:
    dilation of the hand mask in pixels per 100 pixels of hand size.
    """

    oval_scale: float = 1.0
    feather: float = 0.06
    colour_match: bool = True
    blend: str = "feather"
    hand_width: float = 0.16
    hand_margin: float = 6.0


def face_oval_mask(mesh: np.ndarray, shape: tuple[int, int], scale: float = 1.0, feather: float = 0.06) -> np.ndarray:
    """Soft mask of a face: the FACE_OVAL polygon of ``mesh`` ((478, 2+) frame pixels), scaled by
    ``scale`` about its centre, eroded and blurred by ``feather`` x the face size so the mask is 1
    inside and falls to 0 at the outline. Returns float32 ``(H, W)`` in [0, 1] (shape = (H, W))."""
    import cv2

    oval = np.asarray(mesh, np.float64)[list(FACE_OVAL), :2]
    centre = oval.mean(0)
    oval = centre + scale * (oval - centre)
    size = float(np.ptp(oval, axis=0).max())
    sigma = max(feather * size, 0.5)
    out = np.zeros(shape, np.float32)
    pad = int(np.ceil(3 * sigma)) + 2
    x0, y0 = np.maximum(np.floor(oval.min(0)).astype(int) - pad, 0)
    x1, y1 = np.minimum(np.ceil(oval.max(0)).astype(int) + pad, [shape[1], shape[0]])
    if x1 <= x0 or y1 <= y0:
        return out
    step = max(1, int(sigma // 3))  # a wide blur is computed at 1/step resolution, then upsampled
    small = (max(1, -(-(x1 - x0) // step)), max(1, -(-(y1 - y0) // step)))
    mask = np.zeros(small[::-1], np.uint8)
    pts = np.round((oval - [x0, y0]) / step * 16).astype(np.int32)
    cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA, 4)
    radius = int(round(sigma / step))
    if radius > 0:
        mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))
    mask = cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), sigma / step)
    if step > 1:
        mask = cv2.resize(mask, (small[0] * step, small[1] * step), interpolation=cv2.INTER_LINEAR)
    out[y0:y1, x0:x1] = mask[: y1 - y0, : x1 - x0]
    return out


def hand_mask(
    data: np.ndarray, confidence: np.ndarray, shape: tuple[int, int], config: PasteConfig = PasteConfig()
) -> np.ndarray:
    """Pixels covered by the hands of one frame's landmarks.

    data: float ``(586, 3)``, confidence ``(586,)`` (shared layout, x, y in pixels); shape: (H, W).
    Each present hand contributes the convex hull of its 21 points and its bones drawn thick,
    dilated by a margin proportional to the hand's size. Returns bool ``(H, W)``.
    """
    import cv2

    mask = np.zeros(shape, np.uint8)
    data = np.asarray(data, np.float64)
    conf = np.asarray(confidence)
    for side, rows in enumerate(geometry.HAND_ROWS):
        if not geometry.hand_present(conf, side, data):
            continue
        points = data[rows, :2]
        size = float(np.ptp(points, axis=0).max()) + 1.0
        pts = np.round(points).astype(np.int32)
        one = np.zeros(shape, np.uint8)
        cv2.fillConvexPoly(one, cv2.convexHull(pts), 255)
        width = max(2, int(round(config.hand_width * size)))
        for a, b in HAND_BONES:
            cv2.line(one, tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b]), 255, width)
        margin = int(round(config.hand_margin * size / 100)) + 2
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2)
        mask = np.maximum(mask, cv2.dilate(one, kernel))
    return mask > 0


def match_colour(image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shift ``image``'s colours so that inside ``mask`` its Lab mean and std equal ``reference``'s.

    image, reference: RGB uint8 ``(H, W, 3)`` of the same size; mask: float/bool ``(H, W)``
    (weights > 0.5 count). Returns RGB uint8 ``(H, W, 3)``; unchanged when the mask is nearly empty.
    """
    import cv2

    region = np.asarray(mask) > 0.5
    if region.sum() < 16:
        return image
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    ref = cv2.cvtColor(reference, cv2.COLOR_RGB2LAB).astype(np.float32)
    mu_i, sd_i = lab[region].mean(0), lab[region].std(0) + 1e-3
    mu_r, sd_r = ref[region].mean(0), ref[region].std(0) + 1e-3
    gain = np.clip(sd_r / sd_i, 0.5, 2.0)
    out = (lab - mu_i) * gain + mu_r
    return cv2.cvtColor(np.clip(out + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def uncrop(face: np.ndarray, box: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A ``(S, S, 3)`` crop of ``box`` mapped back to frame pixels.

    Returns the RGB uint8 ``(H, W, 3)`` image and float32 ``(H, W)`` coverage (1 where the crop
    covers the pixel, 0 outside the box).
    """
    import cv2

    size = face.shape[0]
    height, width = shape
    matrix = uncrop_matrix(box, size)
    image = cv2.warpAffine(face, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    cover = cv2.warpAffine(np.full((size, size), 255, np.uint8), matrix, (width, height), flags=cv2.INTER_LINEAR)
    return image, cover.astype(np.float32) / 255


def blend(frame: np.ndarray, face: np.ndarray, alpha: np.ndarray, mode: str = "feather") -> np.ndarray:
    """Alpha-blend (or Poisson-clone, then alpha-blend the edge) ``face`` into ``frame``.

    frame, face: RGB uint8 ``(H, W, 3)``; alpha: float32 ``(H, W)`` in [0, 1]. Returns uint8.
    """
    import cv2

    if mode == "poisson":
        binary = (alpha > 0.5).astype(np.uint8) * 255
        ys, xs = np.nonzero(binary)
        if len(xs) > 16 and xs.min() > 0 and ys.min() > 0 and xs.max() < frame.shape[1] - 1 and ys.max() < frame.shape[0] - 1:
            centre = ((int(xs.min()) + int(xs.max()) + 1) // 2, (int(ys.min()) + int(ys.max()) + 1) // 2)
            face = cv2.seamlessClone(face, frame, binary, centre, cv2.NORMAL_CLONE)
    elif mode != "feather":
        raise ValueError(f"blend must be 'feather' or 'poisson', got {mode!r}")
    a = alpha[..., None]
    return np.clip(frame.astype(np.float32) * (1 - a) + face.astype(np.float32) * a + 0.5, 0, 255).astype(np.uint8)


def _roi(alpha: np.ndarray, pad: int = 4) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) of ``alpha > 0`` padded by ``pad``, clipped; None if empty."""
    rows = np.nonzero(alpha.any(axis=1))[0]
    cols = np.nonzero(alpha.any(axis=0))[0]
    if len(rows) == 0:
        return None
    height, width = alpha.shape
    return (max(int(cols[0]) - pad, 0), max(int(rows[0]) - pad, 0),
            min(int(cols[-1]) + 1 + pad, width), min(int(rows[-1]) + 1 + pad, height))  # fmt: skip


def paste_face(
    frame: np.ndarray,
    face: np.ndarray,
    box: np.ndarray,
    mask: np.ndarray,
    protect: np.ndarray | None = None,
    config: PasteConfig = PasteConfig(),
) -> np.ndarray:
    """Put a face crop back into ``frame``.

    frame: RGB uint8 ``(H, W, 3)`` (not modified); face: RGB uint8 ``(S, S, 3)``, the crop of
    ``box`` (float ``(4,)`` x0, y0, x1, y1); mask: float32 ``(H, W)`` in [0, 1] where the face goes
    (e.g. :func:`face_oval_mask`); protect: bool ``(H, W)`` pixels that must keep the frame's values
    (hands). Returns a new RGB uint8 ``(H, W, 3)`` frame; pixels under ``protect`` equal ``frame``'s.
    Only the region where the mask is non-zero is processed.
    """
    out = frame.copy()
    roi = _roi(np.asarray(mask) > 0)
    if roi is None:
        return out
    x0, y0, x1, y1 = roi
    shifted = np.asarray(box, np.float64) - [x0, y0, x0, y0]
    placed, cover = uncrop(face, shifted, (y1 - y0, x1 - x0))
    alpha = np.clip(mask[y0:y1, x0:x1], 0, 1).astype(np.float32) * cover
    region = frame[y0:y1, x0:x1]
    keep = None if protect is None else protect[y0:y1, x0:x1]
    if keep is not None:
        alpha[keep] = 0.0
    if config.colour_match:
        placed = match_colour(placed, region, alpha)
    blended = blend(region, placed, alpha, config.blend)
    if keep is not None:
        blended[keep] = region[keep]
    out[y0:y1, x0:x1] = blended
    return out
