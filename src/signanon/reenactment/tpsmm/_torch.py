"""Import PyTorch with a one-line install hint when the ``diffusion`` extra is missing."""

from __future__ import annotations

from ...errors import SignanonError

INSTALL_HINT = 'pip install -e ".[diffusion]"'


def require_torch():
    """Return the ``torch`` module, or raise SignanonError naming the install command."""
    try:
        import torch
        import torchvision  # noqa: F401  (the networks use its ResNet-18)
    except ImportError as err:  # pragma: no cover - the dev install always has torch
        raise SignanonError(
            f"the face re-enactment model needs PyTorch and torchvision ({err.name} is missing); "
            f"install them with: {INSTALL_HINT}"
        ) from None
    return torch
