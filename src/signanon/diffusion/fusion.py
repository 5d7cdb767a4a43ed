"""Flow-guided temporal fusion for zero-shot video translation (the ideas of Rerender-A-Video).

One :class:`TemporalFusion` object per video. The pipeline drives it per diffused (key) frame::

    fusion.begin_frame(index, frame_rgb)          # input frame at working size: flows, masks
    for step, t in enumerate(timesteps):           # the DDIM loop
        latents = fusion.fuse_latents(latents, step, n, noisy_target)   # optional, see below
        ... x0 = predicted original sample ...
        x0 = fusion.fuse_x0(x0, step, n)           # shape-aware fusion + AdaIN colour
        ... scheduler step from the fused x0 ...
    image = fusion.fuse_pixels(decoded_rgb)       # pixel-aware blend
    fusion.end_frame(image)                        # becomes "previous" (and "first" at frame 0)

* **Shape-aware fusion** (early steps, ``shape_period``): the first frame's and the previous key
  frame's predicted x0 *at the same step* are warped along the flow (computed on the input frames)
  onto the current frame and replace the current x0 on latent pixels visible in them (the first
  frame wins where both are visible: it anchors the identity and stops drift).
* **AdaIN colour** (late steps, ``adain_period``): the per-channel mean/std of the predicted x0 are
  set to the first frame's x0 statistics at that step, so colours do not wander.
* **Pixel-aware fusion**: the first and previous *outputs* are warped at pixel level (no latent
  resampling blur) and composited with occlusion-aware, feathered masks. Two ways to use it:
  :meth:`pixel_target` gives that composite and its visibility weight, which the pipeline can
  VAE-encode once and pass (noised to the step's timestep) to :meth:`fuse_latents` in the middle
  steps (``latent_period``; Rerender's second-pass fusion, done within the single pass), and
  :meth:`fuse_pixels` blends the decoded output with the composite (``pixel_strength``).

Every blend mixes *generated* images or latents only; source pixels never enter an output. Frames,
outputs and flows are at the pipeline's working resolution; latents are at 1/8 of it (any factor
works: flows are resized with their vectors scaled).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..video.flow import FlowCache, FlowEstimator, FlowPair, feather_mask, warp

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["FusionConfig", "TemporalFusion", "adain", "channel_stats"]


def channel_stats(x: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
    """Per-sample, per-channel mean and (population) std of ``x`` ``(B, C, H, W)``.

    Returns two float32 ``(B, C, 1, 1)`` tensors.
    """
    flat = x.float().flatten(2)
    mean = flat.mean(dim=2)[..., None, None]
    std = flat.var(dim=2, unbiased=False).sqrt()[..., None, None]
    return mean, std


def adain(
    x: "torch.Tensor",
    ref: "torch.Tensor | tuple[torch.Tensor, torch.Tensor]",
    eps: float = 1e-8,
) -> "torch.Tensor":
    """Adaptive instance normalisation: give ``x`` the per-channel mean/std of ``ref``.

    Args:
        x: ``(B, C, H, W)`` tensor (any float dtype; returned in the same dtype).
        ref: a ``(B or 1, C, H', W')`` tensor, or its ``(mean, std)`` from :func:`channel_stats`.
        eps: added to the variance of ``x`` before dividing (a constant channel stays finite).

    Returns:
        ``(x - mean(x)) / sqrt(var(x) + eps) * std(ref) + mean(ref)``, per sample and channel.
    """
    ref_mean, ref_std = ref if isinstance(ref, tuple) else channel_stats(ref)
    flat = x.float().flatten(2)
    mean = flat.mean(dim=2)[..., None, None]
    var = flat.var(dim=2, unbiased=False)[..., None, None]
    out = (x.float() - mean) / (var + eps).sqrt() * ref_std.to(x.device) + ref_mean.to(x.device)
    return out.to(x.dtype)


@dataclass(frozen=True)
class FusionConfig:
    """Settings of :class:`TemporalFusion`; periods are fractions of the steps actually run.

    A step ``s`` of ``n`` is inside period ``(lo, hi)`` when ``lo * n <= s <= hi * n`` (and
    ``lo <= hi``; an empty period such as ``(1, 0)`` switches the feature off).

    Attributes:
        shape_period: steps of shape-aware x0 fusion (Rerender's ``warp_period``, default first 10%).
        shape_strength: weight of the warped reference x0 on visible latent pixels (1 = replace).
        adain_period: steps of AdaIN to the first frame's x0 statistics (the late steps).
        latent_period: steps in which :meth:`TemporalFusion.fuse_latents` pulls the latents towards
            the noised pixel-level composite (Rerender's ``mask_period``).
        latent_strength: weight of that pull on visible latent pixels (Rerender's ``mask_strength``).
        pixel_strength: weight of the warped composite in :meth:`TemporalFusion.fuse_pixels` on
            fully visible pixels (0 = off, 1 = the warped references replace visible pixels).
        use_first, use_previous: which references are warped in.
        feather_dilate, feather_sigma: growth (pixels) and blur sigma (pixels) of occlusion masks
            before blending; a latent pixel's visibility is one minus the largest feathered
            occlusion weight among the frame pixels it covers.
        flow_preset: DIS preset for the flows.
    """

    shape_period: tuple[float, float] = (0.0, 0.1)
    shape_strength: float = 1.0
    adain_period: tuple[float, float] = (0.8, 1.0)
    latent_period: tuple[float, float] = (0.5, 0.8)
    latent_strength: float = 0.5
    pixel_strength: float = 0.5
    use_first: bool = True
    use_previous: bool = True
    feather_dilate: int = 9
    feather_sigma: float = 4.0
    flow_preset: str = "medium"

    def __post_init__(self) -> None:
        for name in ("shape_strength", "latent_strength", "pixel_strength"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


def in_period(period: tuple[float, float], step: int, num_steps: int) -> bool:
    """Whether ``step`` (0-based, of ``num_steps``) lies in ``period`` (see :class:`FusionConfig`)."""
    lo, hi = period
    return lo <= hi and lo * num_steps <= step <= hi * num_steps


@dataclass
class _Reference:
    """A finished key frame: its input frame, per-step x0 and output image."""

    index: int
    frame: np.ndarray
    output: np.ndarray
    x0_steps: list = field(default_factory=list)
    stats: list = field(default_factory=list)


@dataclass
class _Warp:
    """A reference prepared for the current frame: flow, masks (frame and latent grids)."""

    ref: _Reference
    pair: FlowPair
    blend: np.ndarray  # (H, W) float32 weight of NEW content, 1 = occluded (feathered)
    latent_visible: object = None  # torch (1, 1, h, w) float32, 1 = visible, built lazily


class TemporalFusion:
    """Per-video state for shape-aware, colour and pixel-aware fusion (see the module docstring).

    Args:
        config: the :class:`FusionConfig`.
        flows: a :class:`~signanon.video.flow.FlowCache` to share with other stages (e.g.
            key-frame propagation); a new one with ``config.flow_preset`` by default.
    """

    def __init__(self, config: FusionConfig | None = None, flows: FlowCache | None = None) -> None:
        self.config = config if config is not None else FusionConfig()
        self.flows = flows if flows is not None else FlowCache(FlowEstimator(self.config.flow_preset))
        self.first: _Reference | None = None
        self.previous: _Reference | None = None
        self._index: int | None = None
        self._frame: np.ndarray | None = None
        self._warps: list[_Warp] = []
        self._x0_steps: list = []

    # -- per-frame life cycle ---------------------------------------------------------------

    def begin_frame(self, index: int, frame_rgb: np.ndarray) -> None:
        """Start a key frame: compute flows from the references' input frames onto this one.

        Args:
            index: the frame's index in the video (flow cache key).
            frame_rgb: ``(H, W, 3)`` uint8 input frame at the working resolution.
        """
        self._index, self._frame = int(index), frame_rgb
        self._x0_steps = []
        self._warps = []
        refs = []
        if self.config.use_previous and self.previous is not None:
            refs.append(self.previous)  # first in the list: the first frame is applied after it
        if self.config.use_first and self.first is not None and self.first is not self.previous:
            refs.append(self.first)
        for ref in refs:
            if ref.frame.shape != frame_rgb.shape:
                raise ValueError(f"frame size changed: {ref.frame.shape} vs {frame_rgb.shape}")
            pair = self.flows.get(ref.index, ref.frame, self._index, frame_rgb)
            blend = feather_mask(pair.occlusion, self.config.feather_dilate, self.config.feather_sigma)
            self._warps.append(_Warp(ref=ref, pair=pair, blend=blend))

    def end_frame(self, output_rgb: np.ndarray) -> None:
        """Register the finished frame (its final output and the x0 recorded by :meth:`fuse_x0`)."""
        if self._index is None or self._frame is None:
            raise RuntimeError("end_frame() called without begin_frame()")
        self.register(self._index, self._frame, output_rgb, self._x0_steps)
        self._index, self._frame, self._warps, self._x0_steps = None, None, [], []

    def register(self, index: int, frame_rgb: np.ndarray, output_rgb: np.ndarray,
                 x0_steps: list | None = None) -> None:
        """Make a finished key frame the previous reference (and the first one if none yet).

        Args:
            index: frame index; frame_rgb: ``(H, W, 3)`` uint8 input frame at working size.
            output_rgb: ``(H, W, 3)`` uint8 generated output at working size.
            x0_steps: the frame's raw predicted x0 per step (``(1, 4, h, w)`` tensors), as
                :meth:`fuse_x0` records them; empty or None for a frame reloaded on resume (then
                shape-aware fusion and AdaIN have nothing to use from it and are skipped).
        """
        steps = list(x0_steps or [])
        ref = _Reference(index=int(index), frame=frame_rgb, output=output_rgb, x0_steps=steps)
        if self.first is None:
            ref.stats = [channel_stats(x0) for x0 in steps]
            self.first = ref
        self.previous = ref

    # -- fusion -----------------------------------------------------------------------------

    def _latent_visible(self, w: _Warp, like: "torch.Tensor") -> "torch.Tensor":
        """``(1, 1, h, w)`` float32 visibility on the latent grid of ``like``: one minus the largest
        feathered occlusion weight among the frame pixels each latent pixel covers (soft, as the
        feathered mask is; 1 only where all of them are clearly visible)."""
        import torch
        import torch.nn.functional as F

        h, wd = like.shape[-2:]
        if w.latent_visible is None or tuple(w.latent_visible.shape[-2:]) != (h, wd):
            blend = torch.from_numpy(np.ascontiguousarray(w.blend, dtype=np.float32))[None, None]
            w.latent_visible = 1.0 - F.adaptive_max_pool2d(blend, (h, wd))
        return w.latent_visible.to(device=like.device, dtype=torch.float32)

    def fuse_x0(self, x0: "torch.Tensor", step: int, num_steps: int) -> "torch.Tensor":
        """Fuse the predicted original sample of the current frame at one DDIM step.

        Records the incoming (raw) ``x0`` for this frame's reference, then applies shape-aware
        fusion inside ``shape_period`` and AdaIN to the first frame's statistics inside
        ``adain_period``. Identity for the first frame.

        Args:
            x0: ``(B, 4, h, w)`` float latents (B = 1 per frame; any B broadcasts).
            step: 0-based index of this step among the ``num_steps`` steps actually run.

        Returns:
            A tensor like ``x0``.
        """
        self._x0_steps.append(x0.detach().clone())
        cfg = self.config
        out = x0
        if cfg.shape_strength > 0 and in_period(cfg.shape_period, step, num_steps):
            for w in self._warps:
                if step >= len(w.ref.x0_steps):
                    continue
                ref_x0 = w.ref.x0_steps[step].to(device=x0.device)
                warped = warp(ref_x0, w.pair.flow, nearest=True).float()
                m = self._latent_visible(w, x0) * cfg.shape_strength
                out = (out.float() * (1.0 - m) + warped * m).to(x0.dtype)
        first = self.first
        if (first is not None and step < len(first.stats) and self._warps
                and in_period(cfg.adain_period, step, num_steps)):
            out = adain(out, first.stats[step])
        return out

    def _composite(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Warped references composited on the current frame's grid.

        Returns ``(image (H, W, 3) float32 in [0, 255], new_weight (H, W) float32 in [0, 1])``
        where ``new_weight`` is 1 where no reference is visible, or None without references.
        """
        if not self._warps:
            return None
        image = None
        new_weight = None
        for w in self._warps:  # previous first, then the first frame on top
            warped = warp(w.ref.output, w.pair.flow).astype(np.float32)
            if image is None:
                image, new_weight = warped, w.blend.copy()
            else:
                keep = w.blend[..., None]
                image = warped * (1.0 - keep) + image * keep
                new_weight = new_weight * w.blend
        return image, new_weight

    def pixel_target(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The pixel-level composite of the warped references, for latent fusion.

        Returns:
            ``(image, visible)``: ``(H, W, 3)`` uint8 composite (occluded areas hold the border
            of a warp and must not be trusted) and ``(H, W)`` float32 visibility in [0, 1]; or
            None for the first frame. The pipeline VAE-encodes ``image`` once per frame and passes
            it, noised to each step's timestep with the frame's own noise, to :meth:`fuse_latents`.
        """
        comp = self._composite()
        if comp is None:
            return None
        image, new_weight = comp
        return np.clip(image + 0.5, 0, 255).astype(np.uint8), (1.0 - new_weight).astype(np.float32)

    def fuse_latents(self, latents: "torch.Tensor", step: int, num_steps: int,
                     noisy_target: "torch.Tensor | None") -> "torch.Tensor":
        """Pull the noisy latents towards the noised composite on visible latent pixels.

        Args:
            latents: ``(B, 4, h, w)`` current noisy latents x_t.
            noisy_target: the VAE latent of :meth:`pixel_target`'s image, noised to the same
                timestep, ``(1 or B, 4, h, w)``; None makes this a no-op.

        Returns:
            ``latents * (1 - s * v) + noisy_target * s * v`` inside ``latent_period`` (``s`` =
            ``latent_strength``, ``v`` = latent visibility of the composite), else ``latents``.
        """
        import torch

        cfg = self.config
        if (noisy_target is None or not self._warps or cfg.latent_strength <= 0
                or not in_period(cfg.latent_period, step, num_steps)):
            return latents
        visible = None
        for w in self._warps:
            v = self._latent_visible(w, latents)
            visible = v if visible is None else torch.maximum(visible, v)
        m = visible * cfg.latent_strength
        out = latents.float() * (1.0 - m) + noisy_target.to(latents.device).float() * m
        return out.to(latents.dtype)

    def fuse_pixels(self, image: np.ndarray) -> np.ndarray:
        """Blend the decoded output with the warped references (occlusion-aware, feathered).

        Args:
            image: ``(H, W, 3)`` uint8 decoded output of the current frame at working size.

        Returns:
            ``(H, W, 3)`` uint8: ``image * (1 - s * v) + composite * s * v`` with ``s`` =
            ``pixel_strength`` and ``v`` the feathered visibility; ``image`` itself (a copy) for
            the first frame, where everything is occluded, or with ``pixel_strength == 0``.
        """
        comp = self._composite()
        if comp is None or self.config.pixel_strength <= 0:
            return image.copy()
        composite, new_weight = comp
        if composite.shape != image.shape:
            raise ValueError(f"output size {image.shape} differs from the frames' {composite.shape}")
        m = ((1.0 - new_weight) * self.config.pixel_strength)[..., None]
        out = image.astype(np.float32) * (1.0 - m) + composite * m
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)
