"""The five TPSMM sub-networks, with the parameter names of the published checkpoint.

* :class:`KPDetector` -- ResNet-18 regressing ``num_tps * 5`` keypoints in ``[-1, 1]``.
* :class:`BGMotionPredictor` -- ResNet-18 on (source, driving) regressing a background affine.
* :class:`AVDNetwork` -- Animation-via-Disentanglement MLP (keypoint identity / pose re-mixing).

The dense motion network and the inpainting network are in :mod:`.dense_motion` and
:mod:`.inpainting`. Images are float ``(B, 3, H, W)`` in ``[0, 1]``; keypoints ``(B, K, 2)``.
"""

from __future__ import annotations

import torch
from torch import nn


def _resnet18(in_channels: int, outputs: int, blocks: tuple[int, ...] = (2, 2, 2, 2)) -> nn.Module:
    """torchvision's ResNet-18 (``blocks`` per stage; other counts only for toy models)."""
    from torchvision.models.resnet import BasicBlock, ResNet

    net = ResNet(BasicBlock, list(blocks))
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)
    net.fc = nn.Linear(net.fc.in_features, outputs)
    return net


class KPDetector(nn.Module):
    """Image ``(B, 3, H, W)`` in ``[0, 1]`` -> keypoints ``(B, num_tps * 5, 2)`` in ``(-1, 1)``."""

    def __init__(self, num_tps: int, resnet_blocks: tuple[int, ...] = (2, 2, 2, 2)):
        super().__init__()
        self.num_tps = num_tps
        self.fg_encoder = _resnet18(3, num_tps * 5 * 2, resnet_blocks)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        raw = self.fg_encoder(image)
        return (torch.sigmoid(raw) * 2 - 1).view(image.shape[0], self.num_tps * 5, 2)


class BGMotionPredictor(nn.Module):
    """(source, driving) images -> ``(B, 3, 3)`` affine mapping driving to source coordinates.

    Initialised to predict the identity (zero weights, identity bias in the last layer).
    """

    def __init__(self, resnet_blocks: tuple[int, ...] = (2, 2, 2, 2)):
        super().__init__()
        self.bg_encoder = _resnet18(6, 6, resnet_blocks)
        with torch.no_grad():
            self.bg_encoder.fc.weight.zero_()
            self.bg_encoder.fc.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))

    def forward(self, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
        batch = source.shape[0]
        top = self.bg_encoder(torch.cat([source, driving], dim=1)).view(batch, 2, 3)
        bottom = torch.tensor([0.0, 0.0, 1.0], dtype=top.dtype, device=top.device).expand(batch, 1, 3)
        return torch.cat([top, bottom], dim=1)


def _mlp(sizes: list[int], inplace: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (cin, cout) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(cin, cout))
        if i < len(sizes) - 2:
            layers += [nn.BatchNorm1d(cout), nn.ReLU(inplace=inplace)]
    return nn.Sequential(*layers)


class AVDNetwork(nn.Module):
    """Keypoints of the source (identity) and of the driver (pose) -> re-mixed keypoints ``(B, K, 2)``."""

    def __init__(self, num_tps: int, id_bottle_size: int = 128, pose_bottle_size: int = 128):
        super().__init__()
        size = num_tps * 5 * 2
        self.num_tps = num_tps
        self.id_encoder = _mlp([size, 256, 512, 1024, id_bottle_size], inplace=True)
        self.pose_encoder = _mlp([size, 256, 512, 1024, pose_bottle_size], inplace=True)
        self.decoder = _mlp([pose_bottle_size + id_bottle_size, 1024, 512, 256, size], inplace=False)

    def forward(self, kp_source: torch.Tensor, kp_driving: torch.Tensor) -> torch.Tensor:
        batch = kp_source.shape[0]
        pose = self.pose_encoder(kp_driving.reshape(batch, -1))
        identity = self.id_encoder(kp_source.reshape(batch, -1))
        return self.decoder(torch.cat([pose, identity], dim=1)).view(batch, self.num_tps * 5, 2)
