"""Frames between two key frames, propagated from both key outputs along optical flow.

With a key-frame interval K > 1 only every K-th frame is diffused. Each frame ``t`` strictly between
key frames ``a`` and ``b`` is built from the two key *outputs*: each is warped onto ``t`` with the
flow computed on the *input* frames (``a -> t`` and ``b -> t``), and the two warps are blended with
weights ``(b - t) / (b - a)`` and ``(t - a) / (b - a)`` (temporal distance) times each warp's
feathered visibility (forward-backward occlusion check). Where both are occluded the nearer key
frame's warp is used: an output pixel always comes from a generated key frame, never from the
source video (privacy fails closed).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..video.flow import FlowEstimator, FlowPair, feather_mask, warp

__all__ = ["blend_two_keys", "propagate_between", "propagate_from"]


def blend_two_keys(
    out_a: np.ndarray,
    out_b: np.ndarray,
    pair_a: FlowPair,
    pair_b: FlowPair,
    position: float,
    feather_dilate: int = 5,
    feather_sigma: float = 2.0,
) -> np.ndarray:
    """One in-between frame from two key outputs.

    Args:
        out_a, out_b: ``(H, W, 3)`` uint8 key outputs (frames ``a`` and ``b``).
        pair_a, pair_b: flows warping frame ``a`` (resp. ``b``) onto the in-between frame, with
            the occlusion masks on its grid (:meth:`FlowEstimator.pair` on the input frames).
        position: ``(t - a) / (b - a)`` in (0, 1).
        feather_dilate, feather_sigma: softening of the occlusion masks (pixels).

    Returns:
        ``(H, W, 3)`` uint8.
    """
    warped_a = warp(out_a, pair_a.flow).astype(np.float32)
    warped_b = warp(out_b, pair_b.flow).astype(np.float32)
    vis_a = 1.0 - feather_mask(pair_a.occlusion, feather_dilate, feather_sigma)
    vis_b = 1.0 - feather_mask(pair_b.occlusion, feather_dilate, feather_sigma)
    w_a = (1.0 - position) * vis_a
    w_b = position * vis_b
    total = w_a + w_b
    nearer = warped_a if position <= 0.5 else warped_b
    eps = 1e-3
    blended = (warped_a * w_a[..., None] + warped_b * w_b[..., None]) / np.maximum(total, eps)[..., None]
    # fade to the nearer key's warp where neither key sees the pixel
    trust = np.clip(total / eps, 0.0, 1.0)[..., None]
    out = blended * trust + nearer * (1.0 - trust)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def propagate_between(
    key_a_out: np.ndarray,
    key_b_out: np.ndarray,
    source_frames: Sequence[np.ndarray],
    flows_from_a: Sequence[FlowPair] | None = None,
    flows_from_b: Sequence[FlowPair] | None = None,
    estimator: FlowEstimator | None = None,
) -> list[np.ndarray]:
    """The frames strictly between two key frames.

    Args:
        key_a_out, key_b_out: ``(H, W, 3)`` uint8 outputs of key frames ``a`` and ``b``.
        source_frames: the input frames ``a, a + 1, ..., b`` (inclusive, so ``n + 2`` frames for
            ``n`` in-between frames), ``(H, W, 3)`` uint8 at the outputs' size; only used for flow.
        flows_from_a, flows_from_b: optional precomputed :class:`FlowPair` per in-between frame
            (``a -> t`` and ``b -> t``), e.g. from a shared :class:`FlowCache`.
        estimator: flow estimator when flows are not given (DIS ``medium`` by default).

    Returns:
        ``n`` frames, ``(H, W, 3)`` uint8, in order ``a + 1 .. b - 1``; empty when ``b = a + 1``.
    """
    frames = list(source_frames)
    if len(frames) < 2:
        raise ValueError("source_frames must hold at least the two key frames")
    shape = frames[0].shape
    if key_a_out.shape != shape or key_b_out.shape != shape:
        raise ValueError(f"key outputs {key_a_out.shape}, {key_b_out.shape} differ from frames {shape}")
    n = len(frames) - 2
    for name, given in (("flows_from_a", flows_from_a), ("flows_from_b", flows_from_b)):
        if given is not None and len(given) != n:
            raise ValueError(f"{name} must hold {n} flow pairs, got {len(given)}")
    est = estimator if estimator is not None else FlowEstimator()
    span = n + 1
    out = []
    for k in range(1, n + 1):
        frame_t = frames[k]
        pair_a = flows_from_a[k - 1] if flows_from_a is not None else est.pair(frames[0], frame_t)
        pair_b = flows_from_b[k - 1] if flows_from_b is not None else est.pair(frames[-1], frame_t)
        out.append(blend_two_keys(key_a_out, key_b_out, pair_a, pair_b, k / span))
    return out


def propagate_from(
    key_out: np.ndarray,
    source_frames: Sequence[np.ndarray],
    flows: Sequence[FlowPair] | None = None,
    estimator: FlowEstimator | None = None,
) -> list[np.ndarray]:
    """Frames after (or before) a single key frame, warped from its output alone.

    For a video's tail after the last key frame when it is shorter than the key-frame interval
    (as EbSynth-style propagation does): each frame is the key output warped along the flow from the
    key's input frame. Occluded pixels keep the warp's value (generated pixels, never the source).

    Args:
        key_out: ``(H, W, 3)`` uint8 output of the key frame.
        source_frames: the key's input frame first, then the frames to build (``(H, W, 3)`` uint8).
        flows: optional precomputed :class:`FlowPair` per frame to build (key -> frame).
        estimator: flow estimator when flows are not given.

    Returns:
        ``len(source_frames) - 1`` frames, ``(H, W, 3)`` uint8, in order.
    """
    frames = list(source_frames)
    if not frames:
        raise ValueError("source_frames must start with the key frame's input frame")
    if key_out.shape != frames[0].shape:
        raise ValueError(f"key output {key_out.shape} differs from frames {frames[0].shape}")
    if flows is not None and len(flows) != len(frames) - 1:
        raise ValueError(f"flows must hold {len(frames) - 1} flow pairs, got {len(flows)}")
    est = estimator if estimator is not None else FlowEstimator()
    out = []
    for k, frame in enumerate(frames[1:]):
        flow = flows[k].flow if flows is not None else est(frames[0], frame)
        out.append(warp(key_out, flow))
    return out
