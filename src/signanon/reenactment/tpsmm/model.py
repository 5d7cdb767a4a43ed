"""TPSMM assembly, the published checkpoint layout and loading it.

The published checkpoint ``vox.pth.tar`` (TPSMM authors, trained on VoxCeleb at 256x256) is a
``torch.save`` dict holding one state dict per sub-network -- ``kp_detector``,
``dense_motion_network``, ``inpainting_network``, ``bg_predictor``, ``avd_network`` -- plus training
state (``optimizer``, ``optimizer_bg_predictor``, ``epoch`` ...). :func:`load_tpsmm` loads each
state dict with ``strict=True`` into :class:`TPSMM` built from :data:`VOX_256`, and ignores the
training state. :func:`checkpoint_dict` writes the same layout, so fine-tuned checkpoints load the
same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ...errors import InputError
from .dense_motion import DenseMotion, DenseMotionNetwork
from .inpainting import Generated, InpaintingNetwork
from .networks import AVDNetwork, BGMotionPredictor, KPDetector

#: the sub-networks stored in a checkpoint, under these keys
PARTS = ("kp_detector", "dense_motion_network", "inpainting_network", "bg_predictor", "avd_network")
#: the parts inference needs; a file without bg_predictor / avd_network still loads (those keep their
#: initial weights: the identity background affine, a random AVD network)
REQUIRED_PARTS = PARTS[:3]
#: the file the TPSMM authors publish for faces
CHECKPOINT_NAME = "vox.pth.tar"
CHECKPOINT_HINT = (
    "download vox.pth.tar on a connected machine from the 'Pre-trained models' links in the README of "
    "https://github.com/yoyo-nb/Thin-Plate-Spline-Motion-Model (Google Drive, Yandex or Baidu folders "
    "of the TPSMM authors), copy it here and pass --face-model PATH"
)


@dataclass(frozen=True)
class TPSMMConfig:
    """Sizes of the networks; :data:`VOX_256` is the published configuration (config/vox-256.yaml).

    ``image_size`` is the side of the square frames the model works on (pixels). Any other values
    build a model that will not load the published checkpoint (used for toy models in tests).
    """

    num_tps: int = 10
    num_channels: int = 3
    image_size: int = 256
    generator_block_expansion: int = 64
    generator_max_features: int = 512
    generator_down_blocks: int = 3
    motion_block_expansion: int = 64
    motion_max_features: int = 1024
    motion_blocks: int = 5
    motion_scale_factor: float = 0.25
    kp_variance: float = 0.01
    avd_id_bottle_size: int = 128
    avd_pose_bottle_size: int = 128
    resnet_blocks: tuple[int, int, int, int] = (2, 2, 2, 2)

    def __post_init__(self):
        if self.image_size % (2**self.generator_down_blocks) or self.image_size * self.motion_scale_factor % (
            2**self.motion_blocks
        ):
            raise ValueError("image_size must be divisible by the down-sampling factors of both networks")


VOX_256 = TPSMMConfig()
#: a tiny configuration (64x64 frames, 2 TPS transforms, narrow networks, one block per ResNet stage) for tests and smoke runs
TINY = TPSMMConfig(
    num_tps=2,
    image_size=64,
    generator_block_expansion=8,
    generator_max_features=32,
    motion_block_expansion=8,
    motion_max_features=32,
    motion_blocks=3,
    avd_id_bottle_size=8,
    avd_pose_bottle_size=8,
    resnet_blocks=(1, 1, 1, 1),
)
#: named configurations (``--model-size``)
CONFIGS = {"vox-256": VOX_256, "tiny": TINY}


class TPSMM(nn.Module):
    """The five TPSMM sub-networks under the checkpoint's names.

    :meth:`forward` animates a batch: source and driving ``(B, 3, S, S)`` in ``[0, 1]`` ->
    :class:`~.inpainting.Generated`, with the driving keypoints taken as they are (absolute motion).
    """

    def __init__(self, config: TPSMMConfig = VOX_256):
        super().__init__()
        self.config = config
        self.kp_detector = KPDetector(config.num_tps, config.resnet_blocks)
        self.dense_motion_network = DenseMotionNetwork(
            block_expansion=config.motion_block_expansion,
            num_blocks=config.motion_blocks,
            max_features=config.motion_max_features,
            num_tps=config.num_tps,
            num_channels=config.num_channels,
            scale_factor=config.motion_scale_factor,
            kp_variance=config.kp_variance,
            num_occlusion_masks=config.generator_down_blocks + 1,
        )
        self.inpainting_network = InpaintingNetwork(
            num_channels=config.num_channels,
            block_expansion=config.generator_block_expansion,
            max_features=config.generator_max_features,
            num_down_blocks=config.generator_down_blocks,
        )
        self.bg_predictor = BGMotionPredictor(config.resnet_blocks)
        self.avd_network = AVDNetwork(config.num_tps, config.avd_id_bottle_size, config.avd_pose_bottle_size)

    def motion(self, source, kp_source, kp_driving, bg_param=None) -> DenseMotion:
        return self.dense_motion_network(source, kp_driving, kp_source, bg_param)

    def forward(self, source: torch.Tensor, driving: torch.Tensor) -> Generated:
        kp_source = self.kp_detector(source)
        kp_driving = self.kp_detector(driving)
        return self.inpainting_network(source, self.motion(source, kp_source, kp_driving))

    def part_state_dicts(self) -> dict[str, dict]:
        """``{part name: state dict}`` for the five parts (the published layout)."""
        return {name: getattr(self, name).state_dict() for name in PARTS}


def checkpoint_dict(model: TPSMM, **extra) -> dict:
    """A dict in the published layout: the five state dicts plus ``extra`` entries (epoch, optimizers)."""
    state = model.part_state_dicts()
    state.update(extra)
    return state


def _bad_checkpoint(path: Path, problem: str) -> InputError:
    return InputError(f"face model {path} {problem}; {CHECKPOINT_HINT}")


def read_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint file into a dict on the CPU; InputError if missing or not a TPSMM checkpoint."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise _bad_checkpoint(path, "not found" if not path.exists() else "is not a file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged or foreign file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise _bad_checkpoint(path, f"cannot be read as a PyTorch checkpoint ({reason[:120]})") from None
    if not isinstance(state, dict) or any(part not in state for part in REQUIRED_PARTS):
        raise _bad_checkpoint(path, f"is not a TPSMM checkpoint (it needs entries {', '.join(REQUIRED_PARTS)})")
    return state


def load_parts(model: TPSMM, state: dict, path: str | Path = "checkpoint") -> None:
    """Load each part's state dict into ``model`` with ``strict=True`` (optional parts if present)."""
    for part in PARTS:
        if part not in state:
            continue  # only bg_predictor / avd_network may be absent (read_checkpoint checks the others)
        try:
            getattr(model, part).load_state_dict(state[part], strict=True)
        except (RuntimeError, TypeError, AttributeError) as err:
            first = str(err).strip().splitlines()
            detail = (first[1].strip() if len(first) > 1 else first[0])[:160] if first else ""
            raise _bad_checkpoint(Path(path), f"does not match the TPSMM {part} layout ({detail})") from None


def load_tpsmm(path: str | Path, device="cpu", config: TPSMMConfig = VOX_256) -> TPSMM:
    """Build :class:`TPSMM` from ``config`` and load the checkpoint at ``path`` unchanged.

    Args:
        path: ``vox.pth.tar`` or a checkpoint written by ``signanon train-face``.
        device: where the model goes (``"cpu"``, ``"cuda"``, a :class:`torch.device`).
        config: the network sizes; the published file needs :data:`VOX_256`.

    Returns the model in eval mode. Raises :class:`~signanon.errors.InputError` (one line, naming the
    file and how to get it) when the file is missing, unreadable or of another layout.
    """
    state = read_checkpoint(path)
    model = TPSMM(config)
    load_parts(model, state, path)
    return model.to(device).eval()
