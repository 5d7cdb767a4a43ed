"""Building blocks shared by the TPSMM networks.

All images are float tensors ``(B, C, H, W)``; coordinates are normalised to ``[-1, 1]`` with ``x``
first (the convention of :func:`torch.nn.functional.grid_sample` with ``align_corners=True``).
Parameter names (``conv``, ``norm``, ``conv1``, ``norm1`` ...) follow the published checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def coordinate_grid(height: int, width: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """A ``(height, width, 2)`` grid of ``(x, y)`` pixel-centre coordinates spanning ``[-1, 1]``."""
    xs = torch.linspace(-1.0, 1.0, width, device=device, dtype=dtype)
    ys = torch.linspace(-1.0, 1.0, height, device=device, dtype=dtype)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx, yy], dim=-1)


def keypoint_heatmaps(keypoints: torch.Tensor, height: int, width: int, variance: float) -> torch.Tensor:
    """Gaussian blobs ``(B, K, height, width)`` in ``(0, 1]`` centred on keypoints ``(B, K, 2)``."""
    grid = coordinate_grid(height, width, device=keypoints.device, dtype=keypoints.dtype)
    offset = grid.view(1, 1, height, width, 2) - keypoints.view(*keypoints.shape[:2], 1, 1, 2)
    return torch.exp(-0.5 * offset.pow(2).sum(-1) / variance)


class AntiAliasInterpolation2d(nn.Module):
    """Gaussian blur followed by nearest subsampling by ``scale`` (band-limited downsampling).

    The blur kernel is stored as the buffer ``weight`` ``(channels, 1, k, k)``, as in the checkpoint.
    """

    def __init__(self, channels: int, scale: float):
        super().__init__()
        self.scale = float(scale)
        self.groups = channels
        if self.scale == 1.0:
            kernel = torch.ones(channels, 1, 1, 1)
        else:
            sigma = (1.0 / self.scale - 1.0) / 2.0
            size = 2 * round(sigma * 4) + 1
            taps = torch.arange(size, dtype=torch.float32) - (size - 1) / 2.0
            profile = torch.exp(-(taps**2) / (2.0 * sigma**2))
            kernel = profile[:, None] * profile[None, :]
            kernel = (kernel / kernel.sum()).expand(channels, 1, size, size).clone()
        self.register_buffer("weight", kernel)
        size = kernel.shape[-1]
        self.pad_before = size // 2
        self.pad_after = self.pad_before - 1 if size % 2 == 0 else self.pad_before

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self.scale == 1.0:
            return image
        pad = (self.pad_before, self.pad_after, self.pad_before, self.pad_after)
        blurred = F.conv2d(F.pad(image, pad), self.weight, groups=self.groups)
        return F.interpolate(blurred, scale_factor=(self.scale, self.scale))


class ResBlock2d(nn.Module):
    """Pre-activation residual block (instance norm, ReLU, conv) x 2; keeps size and channels."""

    def __init__(self, features: int, kernel_size=3, padding=1):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, kernel_size=kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(features, features, kernel_size=kernel_size, padding=padding)
        self.norm1 = nn.InstanceNorm2d(features, affine=True)
        self.norm2 = nn.InstanceNorm2d(features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class UpBlock2d(nn.Module):
    """Nearest 2x upsampling, conv, instance norm, ReLU."""

    def __init__(self, in_features: int, out_features: int, kernel_size=3, padding=1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding)
        self.norm = nn.InstanceNorm2d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(F.interpolate(x, scale_factor=2))))


class DownBlock2d(nn.Module):
    """Conv, instance norm, ReLU, 2x2 average pooling."""

    def __init__(self, in_features: int, out_features: int, kernel_size=3, padding=1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding)
        self.norm = nn.InstanceNorm2d(out_features, affine=True)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.relu(self.norm(self.conv(x))))


class SameBlock2d(nn.Module):
    """Conv, instance norm, ReLU; keeps the spatial size."""

    def __init__(self, in_features: int, out_features: int, kernel_size=3, padding=1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding)
        self.norm = nn.InstanceNorm2d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


def _level_features(block_expansion: int, max_features: int, level: int) -> int:
    return min(max_features, block_expansion * (2**level))


class HourglassEncoder(nn.Module):
    """``num_blocks`` down blocks; returns the input and every block's output (finest first)."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int):
        super().__init__()
        blocks = []
        for i in range(num_blocks):
            cin = in_features if i == 0 else _level_features(block_expansion, max_features, i)
            cout = _level_features(block_expansion, max_features, i + 1)
            blocks.append(DownBlock2d(cin, cout))
        self.down_blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class HourglassDecoder(nn.Module):
    """Up blocks with skip connections; returns the concatenated map after every up block.

    ``level_channels[i]`` is the channel count of the ``i``-th returned map (coarsest first).
    """

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int):
        super().__init__()
        blocks, channels = [], []
        for i in reversed(range(num_blocks)):
            deeper = _level_features(block_expansion, max_features, i + 1)
            cin = deeper if i == num_blocks - 1 else 2 * deeper
            cout = _level_features(block_expansion, max_features, i)
            blocks.append(UpBlock2d(cin, cout))
            skip = in_features if i == 0 else _level_features(block_expansion, max_features, i)
            channels.append(cout + skip)
        self.up_blocks = nn.ModuleList(blocks)
        self.level_channels = channels

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        features = list(features)
        out = features.pop()
        outs = []
        for block in self.up_blocks:
            out = torch.cat([block(out), features.pop()], dim=1)
            outs.append(out)
        return outs


class Hourglass(nn.Module):
    """U-Net style encoder-decoder returning every decoder level (coarsest first)."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int):
        super().__init__()
        self.encoder = HourglassEncoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = HourglassDecoder(block_expansion, in_features, num_blocks, max_features)
        self.level_channels = self.decoder.level_channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.decoder(self.encoder(x))
