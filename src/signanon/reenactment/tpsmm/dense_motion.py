"""Dense motion network: K TPS warps + a background affine -> optical flow and occlusion masks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import AntiAliasInterpolation2d, Hourglass, UpBlock2d, coordinate_grid, keypoint_heatmaps
from .tps import KeypointTPS


@dataclass(frozen=True)
class DenseMotion:
    """What the dense motion network predicts, at its working resolution ``(h, w)``.

    Attributes:
        deformation: ``(B, h, w, 2)`` for each driving pixel, where to sample the source (``[-1, 1]``).
        contribution_maps: ``(B, K + 1, h, w)`` softmax weights of the background and K TPS warps.
        occlusion_maps: masks ``(B, 1, h_i, w_i)`` in ``[0, 1]``, coarsest first (1 = visible in source).
        deformed_source: ``(B, K + 1, 3, h, w)`` the downsampled source under each warp.
    """

    deformation: torch.Tensor
    contribution_maps: torch.Tensor
    occlusion_maps: list
    deformed_source: torch.Tensor


class DenseMotionNetwork(nn.Module):
    """Predicts the flow from ``num_tps`` TPS transforms (5 keypoints each) and the background affine.

    Works at ``scale_factor`` of the input size; the hourglass also feeds multi-resolution occlusion
    masks: ``num_blocks``-level masks straight from the last two decoder levels, then up-sampled ones
    until the input resolution (4 masks for ``scale_factor=0.25``).
    """

    def __init__(
        self,
        block_expansion: int,
        num_blocks: int,
        max_features: int,
        num_tps: int,
        num_channels: int = 3,
        scale_factor: float = 0.25,
        kp_variance: float = 0.01,
        num_occlusion_masks: int = 4,
    ):
        super().__init__()
        self.num_tps = num_tps
        self.scale_factor = scale_factor
        self.kp_variance = kp_variance
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)
        in_features = num_channels * (num_tps + 1) + num_tps * 5 + 1
        self.hourglass = Hourglass(block_expansion, in_features, num_blocks, max_features)
        levels = self.hourglass.level_channels
        self.maps = nn.Conv2d(levels[-1], num_tps + 1, kernel_size=(7, 7), padding=(3, 3))
        self.up_nums = int(round(math.log2(1 / scale_factor)))
        self.direct_masks = num_occlusion_masks - self.up_nums
        if not 1 <= self.direct_masks <= len(levels):
            raise ValueError("num_occlusion_masks does not fit scale_factor and num_blocks")
        self.up = nn.ModuleList(
            UpBlock2d(levels[-1] // 2**i, levels[-1] // 2 ** (i + 1)) for i in range(self.up_nums)
        )
        mask_channels = list(levels[len(levels) - self.direct_masks :])
        mask_channels += [levels[-1] // 2 ** (i + 1) for i in range(self.up_nums)]
        self.occlusion = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=(7, 7), padding=(3, 3)) for c in mask_channels)

    def _heatmaps(self, kp_driving: torch.Tensor, kp_source: torch.Tensor, h: int, w: int) -> torch.Tensor:
        heat = keypoint_heatmaps(kp_driving, h, w, self.kp_variance) - keypoint_heatmaps(kp_source, h, w, self.kp_variance)
        return torch.cat([torch.zeros_like(heat[:, :1]), heat], dim=1)

    def _transformations(self, kp_driving, kp_source, bg_param, h: int, w: int) -> torch.Tensor:
        """Sampling grids ``(B, K + 1, h, w, 2)``: background (affine or identity) then K TPS warps."""
        batch = kp_driving.shape[0]
        tps = KeypointTPS(kp_driving.view(batch, -1, 5, 2), kp_source.view(batch, -1, 5, 2))
        tps_grids = tps.grid(h, w)
        identity = coordinate_grid(h, w, device=kp_driving.device, dtype=kp_driving.dtype)
        background = identity.expand(batch, h, w, 2)
        if bg_param is not None:
            homogeneous = torch.cat([background, torch.ones_like(background[..., :1])], dim=-1)
            mapped = homogeneous @ bg_param.to(homogeneous.dtype).transpose(1, 2)[:, None]
            background = mapped[..., :2] / mapped[..., 2:3]
        return torch.cat([background[:, None], tps_grids], dim=1)

    @staticmethod
    def _deform(source: torch.Tensor, grids: torch.Tensor) -> torch.Tensor:
        batch, count, h, w, _ = grids.shape
        repeated = source[:, None].expand(batch, count, *source.shape[1:]).reshape(batch * count, -1, *source.shape[2:])
        warped = F.grid_sample(repeated, grids.reshape(batch * count, h, w, 2), align_corners=True)
        return warped.view(batch, count, -1, h, w)

    @staticmethod
    def _dropout_softmax(logits: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
        """Softmax over warps with each TPS warp (never the background) dropped with probability ``p``."""
        keep = (torch.rand(logits.shape[:2], generator=generator) < (1 - p)).to(logits)
        keep[:, 0] = 1
        weights = torch.exp(logits - logits.max(dim=1, keepdim=True).values) * keep[:, :, None, None]
        return weights / (weights.sum(dim=1, keepdim=True) + 1e-6)

    def _occlusion(self, levels: list[torch.Tensor]) -> list[torch.Tensor]:
        masks = [torch.sigmoid(self.occlusion[i](levels[i - self.direct_masks])) for i in range(self.direct_masks)]
        features = levels[-1]
        for i, up in enumerate(self.up):
            features = up(features)
            masks.append(torch.sigmoid(self.occlusion[self.direct_masks + i](features)))
        return masks

    def forward(
        self,
        source: torch.Tensor,
        kp_driving: torch.Tensor,
        kp_source: torch.Tensor,
        bg_param: torch.Tensor | None = None,
        dropout_p: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> DenseMotion:
        """Source ``(B, 3, H, W)`` in ``[0, 1]``, keypoints ``(B, K*5, 2)``, optional ``(B, 3, 3)`` affine."""
        if self.scale_factor != 1:
            source = self.down(source)
        batch, _, h, w = source.shape
        heatmaps = self._heatmaps(kp_driving, kp_source, h, w)
        grids = self._transformations(kp_driving, kp_source, bg_param, h, w)
        deformed = self._deform(source, grids)
        levels = self.hourglass(torch.cat([heatmaps, deformed.view(batch, -1, h, w)], dim=1))
        logits = self.maps(levels[-1])
        if dropout_p > 0:
            contribution = self._dropout_softmax(logits, dropout_p, generator)
        else:
            contribution = F.softmax(logits, dim=1)
        deformation = (grids * contribution[..., None]).sum(dim=1)
        return DenseMotion(deformation, contribution, self._occlusion(levels), deformed)
