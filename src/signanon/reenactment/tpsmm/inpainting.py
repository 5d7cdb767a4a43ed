"""Inpainting network: encode the source, warp its features by the dense motion, decode the frame."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .dense_motion import DenseMotion
from .layers import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d


@dataclass(frozen=True)
class Generated:
    """The generator's output.

    Attributes:
        prediction: ``(B, 3, H, W)`` float in ``[0, 1]``, the animated frame.
        deformed: ``(B, 3, H, W)`` the source warped by the flow alone.
        warped_encoder_maps: feature maps for the warp loss, coarsest first (empty unless asked).
    """

    prediction: torch.Tensor
    deformed: torch.Tensor
    warped_encoder_maps: list


def warp(features: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
    """Sample ``features`` ``(B, C, H, W)`` at ``deformation`` ``(B, h, w, 2)``, resized to ``(H, W)``."""
    height, width = features.shape[2:]
    if deformation.shape[1:3] != (height, width):
        deformation = F.interpolate(
            deformation.permute(0, 3, 1, 2), size=(height, width), mode="bilinear", align_corners=True
        ).permute(0, 2, 3, 1)
    return F.grid_sample(features, deformation, align_corners=True)


class InpaintingNetwork(nn.Module):
    """U-Net whose skip connections are warped by the flow and masked by the occlusion maps.

    Needs ``num_down_blocks + 1`` occlusion masks, coarsest first, the last at full resolution.
    """

    def __init__(self, num_channels: int, block_expansion: int, max_features: int, num_down_blocks: int):
        super().__init__()
        self.num_channels = num_channels
        self.num_down_blocks = num_down_blocks
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=(7, 7), padding=(3, 3))
        down, up, res = [], [], []
        for i in range(num_down_blocks):
            cin = min(max_features, block_expansion * 2**i)
            cout = min(max_features, block_expansion * 2 ** (i + 1))
            down.append(DownBlock2d(cin, cout, kernel_size=(3, 3), padding=(1, 1)))
            decoder_in = cout if i == num_down_blocks - 1 else 2 * cout
            up.append(UpBlock2d(decoder_in, cin, kernel_size=(3, 3), padding=(1, 1)))
            res += [ResBlock2d(decoder_in, kernel_size=(3, 3), padding=(1, 1)) for _ in range(2)]
        self.down_blocks = nn.ModuleList(down)
        self.up_blocks = nn.ModuleList(up[::-1])
        self.resblock = nn.ModuleList(res[::-1])
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=(7, 7), padding=(3, 3))

    def encode(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Encoder features, finest first: ``num_down_blocks + 1`` maps."""
        maps = [self.first(image)]
        for block in self.down_blocks:
            maps.append(block(maps[-1]))
        return maps

    def decode(
        self, source: torch.Tensor, encoded: list[torch.Tensor], motion: DenseMotion, *, warp_maps: bool = False
    ) -> Generated:
        """Decode the driving frame from the source's ``encoded`` features (from :meth:`encode`).

        ``warp_maps=True`` also returns the warped, occluded encoder maps for the warp loss (computed
        from detached features and masks, so that loss trains only the flow).
        """
        masks, flow = motion.occlusion_maps, motion.deformation
        loss_maps = []
        if warp_maps:
            loss_maps.append(warp(encoded[-1].detach(), flow) * masks[0].detach())
        out = warp(encoded[-1], flow) * masks[0]
        for i in range(self.num_down_blocks):
            out = self.up_blocks[i](self.resblock[2 * i + 1](self.resblock[2 * i](out)))
            skip = encoded[-(i + 2)]
            if warp_maps:
                loss_maps.append(warp(skip.detach(), flow) * masks[i + 1].detach())
            skip = warp(skip, flow) * masks[i + 1]
            if i < self.num_down_blocks - 1:
                out = torch.cat([out, skip], dim=1)
        deformed = warp(source, flow)
        visible = masks[-1]
        out = torch.sigmoid(self.final(out * (1 - visible) + skip))
        prediction = out * (1 - visible) + deformed * visible
        return Generated(prediction, deformed, loss_maps)

    def forward(self, source: torch.Tensor, motion: DenseMotion, *, warp_maps: bool = False) -> Generated:
        return self.decode(source, self.encode(source), motion, warp_maps=warp_maps)

    def encode_driving(self, driving: torch.Tensor, occlusion_maps: list) -> list[torch.Tensor]:
        """The driving frame's encoder maps masked like :meth:`decode`'s, coarsest first (all detached)."""
        with torch.no_grad():
            maps = self.encode(driving)
        count = len(maps)
        return [maps[count - 1 - i] * occlusion_maps[i].detach() for i in range(count)]
