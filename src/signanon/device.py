"""Which torch device a run uses: one resolver for diffusion, re-enactment and training.

PyTorch is imported lazily (the avatar and the evaluation never need it); without it,
:func:`resolve_device` raises a one-line :class:`~signanon.errors.SignanonError` with the install
command. Messages name the ``device`` setting, not a command-line flag.
"""

from __future__ import annotations

from typing import Any

from .errors import InputError

INSTALL_HINT = 'pip install -e ".[diffusion]"'
DEVICES = ("auto", "cpu", "cuda", "mps")


def require_torch() -> Any:
    """The ``torch`` module, or a one-line :class:`~signanon.errors.InputError` (a SignanonError)
    naming the install command."""
    try:
        import torch
    except ImportError:
        raise InputError(f"this needs PyTorch, which is not installed; install it with: {INSTALL_HINT}") from None
    return torch


def _mps_available(torch) -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | None = "auto") -> Any:
    """The ``torch.device`` for a ``device`` setting.

    ``None``/``""``/``"auto"``: CUDA when available, else Apple's MPS, else the CPU. ``"cpu"``,
    ``"cuda"``, ``"cuda:N"`` and ``"mps"`` are taken as given; one that is not available (or an
    unknown name) raises :class:`~signanon.errors.InputError`.
    """
    torch = require_torch()
    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available(torch):
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r}: no CUDA GPU is available to PyTorch on this machine")
    if resolved.type == "mps" and not _mps_available(torch):
        raise InputError(f"device {device!r}: Apple's Metal (MPS) backend is not available on this machine")
    return resolved
