"""Dense optical flow between video frames (OpenCV DIS), occlusion masks and warping.

One implementation for the diffusion method's temporal fusion and propagation
(:mod:`signanon.diffusion`) and the evaluation's warp error (:mod:`signanon.evaluation.temporal`).

Flow convention used everywhere ("backward flow", the one a warp
needs): ``flow = FlowEstimator()(frame_from, frame_to)`` is a ``(H, W, 2)`` float32 array in
pixels, ``flow[y, x] = (dx, dy)``, such that pixel ``(x, y)`` of ``frame_to`` shows what pixel
``(x + dx, y + dy)`` of ``frame_from`` shows. Hence ``warp(frame_from, flow)`` resamples
``frame_from`` onto the pixel grid of ``frame_to`` (it aligns ``frame_from`` with ``frame_to``), and
the same flow warps anything that lives on ``frame_from``'s grid (a generated output, a predicted
latent) onto ``frame_to``'s grid.

Occlusion: with ``flow_bw = estimator(a, b)`` (warps ``a`` onto ``b``) and ``flow_fw =
estimator(b, a)`` (the reverse), :func:`occlusion_mask` flags the pixels of ``b`` that are not seen
in ``a`` (forward-backward consistency check plus pixels whose source lies outside the frame).

The diffusion method computes flow on the *input* frames, never on generated ones, and only ever
uses it to move generated pixels/latents: no source pixel is copied into an output.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "FLOW_PRESETS",
    "FlowCache",
    "FlowEstimator",
    "FlowPair",
    "feather_mask",
    "occlusion_mask",
    "resize_flow",
    "warp",
]

FLOW_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def _grey(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        grey = frame
    elif frame.ndim == 3 and frame.shape[2] == 3:
        grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    else:
        raise ValueError(f"expected an (H, W, 3) RGB or (H, W) grey frame, got shape {frame.shape}")
    if grey.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames, got {grey.dtype}")
    return np.ascontiguousarray(grey)


@dataclass(frozen=True)
class FlowPair:
    """Flow from one frame onto another plus the occlusion mask on the target's grid.

    Attributes:
        flow: ``(H, W, 2)`` float32 backward flow in pixels; ``warp(x_from, flow)`` aligns anything
            on the source frame's grid with the target frame.
        occlusion: ``(H, W)`` float32 in {0, 1}, 1 where the target pixel is not visible in the
            source frame (or the flow is unreliable).
    """

    flow: np.ndarray
    occlusion: np.ndarray


class FlowEstimator:
    """OpenCV DIS optical flow on grey frames.

    Args:
        preset: ``"ultrafast"``, ``"fast"`` or ``"medium"`` (DIS preset; ``medium`` is the most
            accurate, a few tens of milliseconds per 512x512 pair on one core).
    """

    def __init__(self, preset: str = "medium") -> None:
        if preset not in FLOW_PRESETS:
            raise ValueError(f"unknown flow preset {preset!r}; choose from {sorted(FLOW_PRESETS)}")
        self.preset = preset
        self._dis = cv2.DISOpticalFlow_create(FLOW_PRESETS[preset])

    def __call__(self, frame_from: np.ndarray, frame_to: np.ndarray) -> np.ndarray:
        """Backward flow that warps ``frame_from`` onto ``frame_to``.

        Args:
            frame_from, frame_to: ``(H, W, 3)`` RGB (or ``(H, W)`` grey) uint8 frames of equal size.

        Returns:
            ``(H, W, 2)`` float32 flow in pixels (see the module docstring for the convention).
        """
        grey_from, grey_to = _grey(frame_from), _grey(frame_to)
        if grey_from.shape != grey_to.shape:
            raise ValueError(f"frame sizes differ: {grey_from.shape} vs {grey_to.shape}")
        # DIS returns f with I0(p) ~ I1(p + f(p)); I0 = target, I1 = source gives the backward flow.
        flow = self._dis.calc(grey_to, grey_from, None)
        return np.asarray(flow, dtype=np.float32)

    def pair(self, frame_from: np.ndarray, frame_to: np.ndarray) -> FlowPair:
        """Flow ``frame_from -> frame_to`` and the occlusion mask on ``frame_to``'s grid."""
        flow_bw = self(frame_from, frame_to)
        flow_fw = self(frame_to, frame_from)
        return FlowPair(flow=flow_bw, occlusion=occlusion_mask(flow_fw, flow_bw))


def occlusion_mask(
    flow_fw: np.ndarray, flow_bw: np.ndarray, alpha: float = 0.01, beta: float = 0.5
) -> np.ndarray:
    """Forward-backward consistency occlusion mask.

    Args:
        flow_fw: ``(H, W, 2)`` float32, ``estimator(b, a)``: for pixels of ``a``, where they are in
            ``b``.
        flow_bw: ``(H, W, 2)`` float32, ``estimator(a, b)``: for pixels of ``b``, where they are in
            ``a`` (the flow that warps ``a`` onto ``b``).
        alpha, beta: the check flags ``|bw + fw(p + bw)|^2 > alpha * (|bw|^2 + |fw(p + bw)|^2) +
            beta`` (Sundaram et al. 2010; the values are the usual ones).

    Returns:
        ``(H, W)`` float32 in {0, 1} on ``b``'s grid; 1 = occluded (not visible in ``a``, the
        round trip disagrees, or the source position falls outside the frame).
    """
    if flow_fw.shape != flow_bw.shape or flow_bw.ndim != 3 or flow_bw.shape[2] != 2:
        raise ValueError(f"flows must both be (H, W, 2), got {flow_fw.shape} and {flow_bw.shape}")
    h, w = flow_bw.shape[:2]
    fw_at_target = warp(flow_fw, flow_bw)
    round_trip = flow_bw + fw_at_target
    err = np.sum(round_trip**2, axis=2)
    bound = alpha * (np.sum(flow_bw**2, axis=2) + np.sum(fw_at_target**2, axis=2)) + beta
    xs = np.arange(w, dtype=np.float32)[None, :] + flow_bw[..., 0]
    ys = np.arange(h, dtype=np.float32)[:, None] + flow_bw[..., 1]
    outside = (xs < 0) | (xs > w - 1) | (ys < 0) | (ys > h - 1)
    return ((err > bound) | outside).astype(np.float32)


def feather_mask(occlusion: np.ndarray, dilate: int = 9, sigma: float = 4.0) -> np.ndarray:
    """Grow and soften an occlusion mask so blends have no seams.

    Args:
        occlusion: ``(H, W)`` float32 in [0, 1], 1 = occluded.
        dilate: side of the square max-filter (pixels) that grows the occluded area first.
        sigma: Gaussian blur sigma in pixels applied after the dilation.

    Returns:
        ``(H, W)`` float32 in [0, 1], >= ``occlusion`` everywhere: the weight of *new* content
        (1 = use the freshly generated pixel, 0 = use the warped reference).
    """
    occ = np.clip(occlusion.astype(np.float32), 0.0, 1.0)
    grown = cv2.dilate(occ, np.ones((dilate, dilate), np.uint8)) if dilate > 1 else occ
    soft = cv2.GaussianBlur(grown, (0, 0), sigma) if sigma > 0 else grown
    return np.clip(np.maximum(soft, occ), 0.0, 1.0)


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resample a flow field to ``size = (height, width)`` and scale its vectors to the new grid.

    Args:
        flow: ``(H, W, 2)`` float32 flow in pixels of the ``(H, W)`` grid.

    Returns:
        ``(h, w, 2)`` float32 flow in pixels of the ``(h, w)`` grid (``dx * w / W``, ``dy * h / H``).
    """
    h, w = size
    big_h, big_w = flow.shape[:2]
    if (h, w) == (big_h, big_w):
        return flow.astype(np.float32, copy=False)
    interp = cv2.INTER_AREA if h < big_h and w < big_w else cv2.INTER_LINEAR
    small = cv2.resize(flow.astype(np.float32), (w, h), interpolation=interp)
    small[..., 0] *= w / big_w
    small[..., 1] *= h / big_h
    return small


def _warp_numpy(image: np.ndarray, flow: np.ndarray, nearest: bool) -> np.ndarray:
    h, w = image.shape[:2]
    if flow.shape[:2] != (h, w):
        flow = resize_flow(flow, (h, w))
    grid_x = np.arange(w, dtype=np.float32)[None, :] + flow[..., 0]
    grid_y = np.arange(h, dtype=np.float32)[:, None] + flow[..., 1]
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    src = np.ascontiguousarray(image)
    if src.ndim == 3 and src.shape[2] > 4:  # remap handles up to 4 channels at once
        chans = [cv2.remap(src[..., c], grid_x, grid_y, interp, borderMode=cv2.BORDER_REPLICATE)
                 for c in range(src.shape[2])]
        return np.stack(chans, axis=2)
    out = cv2.remap(src, grid_x, grid_y, interp, borderMode=cv2.BORDER_REPLICATE)
    if src.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return out


def _warp_torch(image: "torch.Tensor", flow: Any, nearest: bool) -> "torch.Tensor":
    import torch
    import torch.nn.functional as F

    if image.ndim != 4:
        raise ValueError(f"expected a (B, C, h, w) tensor, got shape {tuple(image.shape)}")
    h, w = image.shape[-2:]
    if isinstance(flow, torch.Tensor):
        flow = flow.detach().cpu().numpy()
    flow = resize_flow(np.asarray(flow, dtype=np.float32), (h, w))
    flow_t = torch.from_numpy(flow).to(device=image.device, dtype=torch.float32)
    ys, xs = torch.meshgrid(
        torch.arange(h, device=image.device, dtype=torch.float32),
        torch.arange(w, device=image.device, dtype=torch.float32),
        indexing="ij",
    )
    # pixel index -> [-1, 1] with align_corners=True (pixel centres at the ends)
    gx = (xs + flow_t[..., 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow_t[..., 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)[None].expand(image.shape[0], h, w, 2)
    out = F.grid_sample(
        image.float(), grid, mode="nearest" if nearest else "bilinear",
        padding_mode="border", align_corners=True,
    )
    return out.to(image.dtype)


def warp(image: Any, flow: Any, nearest: bool = False) -> Any:
    """Resample ``image`` (on the source frame's grid) onto the target frame's grid.

    Args:
        image: a numpy ``(H, W)`` or ``(H, W, C)`` array of any dtype (returned in the same dtype),
            or a torch ``(B, C, h, w)`` tensor (e.g. latents at 1/8 of the frame size).
        flow: ``(H, W, 2)`` float32 backward flow (numpy or torch) at frame resolution; when the
            image is smaller or larger, the flow is resized and its vectors are scaled to the
            image's grid (see :func:`resize_flow`).
        nearest: nearest-neighbour instead of bilinear sampling.

    Returns:
        The warped image, same type, shape and dtype as ``image``. Samples that fall outside the
        frame take the nearest border value (the occlusion mask flags them).
    """
    if isinstance(image, np.ndarray):
        if isinstance(flow, np.ndarray):
            return _warp_numpy(image, flow.astype(np.float32, copy=False), nearest)
        return _warp_numpy(image, flow.detach().cpu().numpy().astype(np.float32), nearest)
    return _warp_torch(image, flow, nearest)


class FlowCache:
    """Bounded cache of :class:`FlowPair` objects keyed by ``(index_from, index_to)``.

    The keys are frame indices in the video being processed (one cache per video), so the same pair
    is never computed twice (e.g. the flow from the first frame is reused by shape-aware and
    pixel-aware fusion, and flows between key frames by propagation). The least recently used pair
    is evicted beyond ``max_items``.
    """

    def __init__(self, estimator: FlowEstimator | None = None, max_items: int = 32) -> None:
        self.estimator = estimator if estimator is not None else FlowEstimator()
        self.max_items = max(1, int(max_items))
        self._pairs: OrderedDict[tuple[int, int], FlowPair] = OrderedDict()
        self.computed = 0

    def get(self, index_from: int, frame_from: np.ndarray, index_to: int,
            frame_to: np.ndarray) -> FlowPair:
        """The :class:`FlowPair` warping frame ``index_from`` onto frame ``index_to``."""
        key = (int(index_from), int(index_to))
        if key in self._pairs:
            self._pairs.move_to_end(key)
            return self._pairs[key]
        if key[0] == key[1]:
            h, w = frame_to.shape[:2]
            pair = FlowPair(np.zeros((h, w, 2), np.float32), np.zeros((h, w), np.float32))
        else:
            pair = self.estimator.pair(frame_from, frame_to)
            self.computed += 1
        self._pairs[key] = pair
        while len(self._pairs) > self.max_items:
            self._pairs.popitem(last=False)
        return pair

    def put(self, index_from: int, index_to: int, pair: FlowPair) -> None:
        """Store a pair computed elsewhere (or a known one, e.g. in tests)."""
        key = (int(index_from), int(index_to))
        self._pairs[key] = pair
        self._pairs.move_to_end(key)
        while len(self._pairs) > self.max_items:
            self._pairs.popitem(last=False)

    def clear(self) -> None:
        self._pairs.clear()

    def __len__(self) -> int:
        return len(self._pairs)
