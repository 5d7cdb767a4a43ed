"""Thin-Plate Spline Motion Model (Zhao & Zhang, CVPR 2022) for face re-enactment.

Own implementation with the parameter names of the authors' code, so that their published
``vox.pth.tar`` loads unchanged (``strict=True``)::

    from signanon.reenactment.tpsmm import TPSMMAnimator, load_tpsmm

    model = load_tpsmm("vox.pth.tar", device="cuda")
    animator = TPSMMAnimator(model, device="cuda")
    for frame in animator.animate(source_face, driving_faces, mode="relative", reference=neutral):
        ...  # (256, 256, 3) uint8

Importing this package needs PyTorch (``pip install -e ".[diffusion]"``).
"""

from ._torch import require_torch

require_torch()

from .dense_motion import DenseMotion, DenseMotionNetwork  # noqa: E402
from .inference import MODES, TPSMMAnimator, relative_keypoints  # noqa: E402
from .inpainting import Generated, InpaintingNetwork  # noqa: E402
from .model import (  # noqa: E402
    CHECKPOINT_HINT,
    CHECKPOINT_NAME,
    CONFIGS,
    PARTS,
    TINY,
    TPSMM,
    VOX_256,
    TPSMMConfig,
    checkpoint_dict,
    load_parts,
    load_tpsmm,
    read_checkpoint,
)
from .networks import AVDNetwork, BGMotionPredictor, KPDetector  # noqa: E402
from .tps import KeypointTPS, RandomTPS  # noqa: E402

__all__ = [
    "AVDNetwork",
    "BGMotionPredictor",
    "CHECKPOINT_HINT",
    "CHECKPOINT_NAME",
    "CONFIGS",
    "DenseMotion",
    "DenseMotionNetwork",
    "Generated",
    "InpaintingNetwork",
    "KPDetector",
    "KeypointTPS",
    "MODES",
    "PARTS",
    "RandomTPS",
    "TINY",
    "TPSMM",
    "TPSMMAnimator",
    "TPSMMConfig",
    "VOX_256",
    "checkpoint_dict",
    "load_parts",
    "load_tpsmm",
    "read_checkpoint",
    "relative_keypoints",
]
