"""Thin-plate spline transforms on normalised ``[-1, 1]`` coordinates (``x`` first).

:class:`KeypointTPS` fits, for each group of control points, the spline that maps driving keypoints
onto source keypoints (Eq. 2 of the TPSMM paper); :class:`RandomTPS` draws random smooth warps for
the equivariance loss. The radial basis is ``U(r) = r^2 log r^2``.
"""

from __future__ import annotations

import torch

from .layers import coordinate_grid

_EPS = 1e-9


def _radial(squared_distance: torch.Tensor) -> torch.Tensor:
    return squared_distance * torch.log(squared_distance + _EPS)


class KeypointTPS:
    """TPS warps fitted to ``G`` groups of ``N`` point pairs.

    Args:
        driving: ``(B, G, N, 2)`` control points in the driving frame.
        source: ``(B, G, N, 2)`` where those points are in the source frame.
        regularization: added to the diagonal of the system matrix (``0.01`` in TPSMM).

    :meth:`warp` maps driving-frame coordinates to source-frame coordinates, one result per group.
    """

    def __init__(self, driving: torch.Tensor, source: torch.Tensor, regularization: float = 0.01):
        batch, groups, n, _ = driving.shape
        kernel = _radial((driving[:, :, :, None] - driving[:, :, None, :]).pow(2).sum(-1))
        ones = torch.ones(batch, groups, n, 1, dtype=driving.dtype, device=driving.device)
        affine_basis = torch.cat([driving, ones], dim=-1)  # (B, G, N, 3)
        zeros = torch.zeros(batch, groups, 3, 3, dtype=driving.dtype, device=driving.device)
        system = torch.cat(
            [torch.cat([kernel, affine_basis], dim=-1), torch.cat([affine_basis.transpose(-1, -2), zeros], dim=-1)],
            dim=-2,
        )
        system = system + regularization * torch.eye(n + 3, dtype=driving.dtype, device=driving.device)
        target = torch.cat([source, torch.zeros(batch, groups, 3, 2, dtype=source.dtype, device=source.device)], -2)
        params = torch.linalg.solve(system, target)  # (B, G, N + 3, 2)
        self.control_points = driving
        self.weights = params[:, :, :n]  # (B, G, N, 2)
        self.affine = params[:, :, n:]  # (B, G, 3, 2): rows x, y, 1

    def warp(self, points: torch.Tensor) -> torch.Tensor:
        """Map ``points`` ``(1 or B, P, 2)`` -> ``(B, G, P, 2)``."""
        linear = points[:, None] @ self.affine[:, :, :2] + self.affine[:, :, 2:]
        offsets = points[:, None, :, None, :] - self.control_points[:, :, None, :, :]  # (B, G, P, N, 2)
        return linear + _radial(offsets.pow(2).sum(-1)) @ self.weights

    def grid(self, height: int, width: int) -> torch.Tensor:
        """Sampling grids ``(B, G, height, width, 2)``: for each driving pixel, where to read the source."""
        grid = coordinate_grid(height, width, device=self.weights.device, dtype=self.weights.dtype)
        warped = self.warp(grid.view(1, -1, 2))
        return warped.view(*warped.shape[:2], height, width, 2)


class RandomTPS:
    """Random affine + TPS warps, one per batch element, for the equivariance loss.

    Args:
        batch: number of warps.
        sigma_affine: std of the affine perturbation around the identity (``0.05`` in TPSMM).
        sigma_tps: std of the spline weights (``0.005``).
        points_tps: the control points form a ``points_tps x points_tps`` grid (``5``).
        generator: a seeded :class:`torch.Generator` (CPU) for reproducible warps.
    """

    def __init__(
        self,
        batch: int,
        *,
        sigma_affine: float = 0.05,
        sigma_tps: float = 0.005,
        points_tps: int = 5,
        generator: torch.Generator | None = None,
        device=None,
    ):
        affine = torch.eye(2, 3).expand(batch, 2, 3) + sigma_affine * torch.randn(batch, 2, 3, generator=generator)
        weights = sigma_tps * torch.randn(batch, points_tps * points_tps, 2, generator=generator)
        self.affine = affine.to(device)  # (B, 2, 3)
        self.weights = weights.to(device)  # (B, M, 2)
        self.control_points = coordinate_grid(points_tps, points_tps, device=device).view(1, -1, 2)

    def warp(self, points: torch.Tensor) -> torch.Tensor:
        """Map ``points`` ``(B, P, 2)`` -> ``(B, P, 2)``."""
        points = points.to(self.affine.dtype)
        linear = points @ self.affine[:, :, :2].transpose(1, 2) + self.affine[:, None, :, 2]
        offsets = points[:, :, None, :] - self.control_points[:, None, :, :]  # (B, P, M, 2)
        return linear + _radial(offsets.pow(2).sum(-1)) @ self.weights

    def grid(self, height: int, width: int) -> torch.Tensor:
        """Sampling grids ``(B, height, width, 2)``."""
        grid = coordinate_grid(height, width, device=self.affine.device).view(1, -1, 2)
        warped = self.warp(grid.expand(self.affine.shape[0], -1, -1))
        return warped.view(-1, height, width, 2)
