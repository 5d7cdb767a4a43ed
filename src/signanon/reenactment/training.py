"""Fine-tuning TPSMM on a mix of face-crop clip collections with balanced sampling.

Data: each source is a folder of clips; a clip is a sub-folder of frames (``.png``/``.jpg``, sorted
by name, as written by ``signanon extract-faces``) or a video file. A training item is two frames of
one clip (source and driving), resized to the model's size, flipped / swapped / colour-jittered
together.

Batches (:class:`BalancedBatchSampler`) draw the same number of items from every source, whatever
their sizes. Everything random in a step (clips, frames, augmentation, the equivariance warp, TPS
dropout) is derived from ``(seed, epoch, step)``, so a run resumed from a checkpoint continues
exactly as the uninterrupted run would.

Losses (TPSMM, Sec. 3.3): multi-scale VGG19 perceptual loss (weights from a local file in
torchvision's ``vgg19`` layout, see :func:`load_vgg19`), equivariance, warp and background losses.

Checkpoints (one per epoch, ``RUN_DIR/00000012-checkpoint.pth.tar``) use the published layout plus
the training state, so ``--face-model`` loads them directly. ``RUN_DIR/metrics.jsonl`` logs one
record per step and per epoch.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..device import resolve_device  # noqa: F401  (re-exported for train_cli)
from ..errors import InputError
from ..files import atomic_path
from .tpsmm.layers import AntiAliasInterpolation2d
from .tpsmm.model import PARTS, TPSMM, checkpoint_dict, load_parts, read_checkpoint
from .tpsmm.tps import RandomTPS
from .train_config import LossWeights, TrainConfig  # noqa: F401  (re-exported: the trainer's settings)
from .train_files import (  # noqa: F401  (re-exported: the torch-free part of training)
    CHECKPOINT_SUFFIX,
    IMAGE_SUFFIXES,
    VGG19_HINT,
    VIDEO_SUFFIXES,
    FaceClipFolder,
    check_run_dir,
    latest_checkpoint,
)

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "train_config.json"


def _seed(*parts: int) -> int:
    """A 63-bit seed derived from integers (stable across runs, processes and platforms)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0]) >> 1


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------
class MixedFaceDataset(torch.utils.data.Dataset):
    """Pairs of frames from several :class:`FaceClipFolder` sources.

    Indexed by ``(source, clip, item_seed)`` tuples from :class:`BalancedBatchSampler`; returns
    ``{"source": (3, S, S), "driving": (3, S, S)}`` float32 in ``[0, 1]`` and ``"origin"`` (the source
    index). The seed fixes which two frames are taken and the augmentation.
    """

    def __init__(self, sources: Sequence[FaceClipFolder], image_size: int, augment: bool = True):
        self.sources = list(sources)
        self.image_size = image_size
        self.augment = augment

    def __len__(self) -> int:
        return sum(len(s) for s in self.sources)

    def _resize(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        if frame.shape[:2] != (self.image_size, self.image_size):
            frame = cv2.resize(frame, (self.image_size, self.image_size), interpolation=cv2.INTER_AREA)
        return frame.astype(np.float32) / 255.0

    @staticmethod
    def _jitter(frames: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        brightness, contrast, saturation = 1 + rng.uniform(-0.1, 0.1, size=3)
        out = []
        for frame in frames:
            frame = frame * brightness
            frame = (frame - frame.mean()) * contrast + frame.mean()
            grey = frame.mean(axis=2, keepdims=True)
            out.append(np.clip((frame - grey) * saturation + grey, 0.0, 1.0).astype(np.float32))
        return out

    def __getitem__(self, key) -> dict:
        origin, clip, item_seed = key
        source = self.sources[origin]
        rng = np.random.default_rng(item_seed)
        count = source.frame_count(clip)
        first, second = np.sort(rng.choice(count, size=2, replace=count < 2))
        frames = [self._resize(source.frame(clip, int(first))), self._resize(source.frame(clip, int(second)))]
        if self.augment:
            if rng.random() < 0.5:
                frames = [f[:, ::-1] for f in frames]
            if rng.random() < 0.5:
                frames = frames[::-1]
            frames = self._jitter(frames, rng)
        tensors = [torch.from_numpy(np.ascontiguousarray(f.transpose(2, 0, 1))) for f in frames]
        return {"source": tensors[0], "driving": tensors[1], "origin": origin}


class BalancedBatchSampler(torch.utils.data.Sampler):
    """Batches of ``(source, clip, item_seed)`` with the same count from every source.

    Each batch takes ``batch_size // n`` items from each of the ``n`` sources; when ``batch_size``
    is not a multiple of ``n``, the remaining places rotate over the sources from batch to batch,
    so counts over an epoch differ by at most one. Within a source, clips are drawn without
    replacement from a fresh permutation each pass, so small sources repeat and large ones are
    covered evenly. Batches depend only on ``(seed, epoch, step)``.
    """

    def __init__(self, source_sizes: Sequence[int], batch_size: int, steps_per_epoch: int, seed: int = 0):
        if not source_sizes or min(source_sizes) < 1:
            raise ValueError("every source needs at least one clip")
        if batch_size < len(source_sizes):
            raise InputError(f"--batch-size {batch_size} is smaller than the number of data sources ({len(source_sizes)})")
        self.sizes = list(source_sizes)
        self.batch_size = batch_size
        self.steps = steps_per_epoch
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps

    def _clip_stream(self, source: int) -> Iterator[int]:
        rng = np.random.default_rng(_seed(self.seed, self.epoch, source, 1))
        while True:
            yield from rng.permutation(self.sizes[source]).tolist()

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        n = len(self.sizes)
        streams = [self._clip_stream(s) for s in range(n)]
        base, extra = divmod(self.batch_size, n)
        for step in range(self.steps):
            counts = [base] * n
            for j in range(extra):
                counts[(step * extra + j) % n] += 1
            batch = []
            for source, count in enumerate(counts):
                for k in range(count):
                    batch.append((source, next(streams[source]), _seed(self.seed, self.epoch, step, source, k)))
            yield batch


# ------------------------------------------------------------------------------------------------
# losses
# ------------------------------------------------------------------------------------------------
# torchvision's vgg19 "features": conv layer indices (each followed by a ReLU) and max-pool indices
_VGG19_CONVS = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28)
_VGG19_POOLS = (4, 9, 18, 27)
_VGG19_SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))  # up to relu1_1 .. relu5_1


class Vgg19Features(nn.Module):
    """The first 30 layers of torchvision's ``vgg19().features``, returning relu1_1 ... relu5_1.

    ``widths`` are the output channels of the 13 convolutions (the real VGG19: 64, 64, 128, 128,
    256 x4, 512 x5); smaller widths give a toy network with the same layout (for tests). Input:
    ``(B, 3, H, W)`` in ``[0, 1]``; ImageNet normalisation is applied inside. Frozen.
    """

    def __init__(self, widths: Sequence[int]):
        super().__init__()
        layers: list[nn.Module] = []
        convs = iter(widths)
        channels = 3
        index = 0
        while index < 30:
            if index in _VGG19_CONVS:
                width = next(convs)
                layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                channels = width
                index += 2
            else:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                index += 1
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.requires_grad_(False)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = (image - self.mean) / self.std
        outs = []
        for start, stop in _VGG19_SLICES:
            for layer in self.features[start:stop]:
                x = layer(x)
            outs.append(x)
        return outs


def load_vgg19(path: str | Path | None, device="cpu") -> Vgg19Features:
    """Load VGG19 weights saved in torchvision's layout (``features.N.weight``; ``vgg19-dcbb9e9d.pth``).

    Also accepts a state dict of ``vgg19().features`` alone (keys ``N.weight``). Layer widths are
    read from the file, so a toy network saved in the same layout loads through this same path.
    Raises a one-line InputError naming the file and how to get it.
    """
    if path is None:
        raise InputError(f"the perceptual loss needs VGG19 weights (--vgg19-weights PATH); {VGG19_HINT}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"VGG19 weights {path} not found; {VGG19_HINT}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise InputError(f"VGG19 weights {path} cannot be read as a PyTorch state dict; {VGG19_HINT}") from None
    if isinstance(state, dict) and any(k.startswith("features.") for k in state):
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    needed = [f"{i}.{p}" for i in _VGG19_CONVS for p in ("weight", "bias")]
    if not isinstance(state, dict) or any(k not in state for k in needed):
        raise InputError(f"VGG19 weights {path} are not in torchvision's vgg19 layout; {VGG19_HINT}")
    widths = [int(state[f"{i}.weight"].shape[0]) for i in _VGG19_CONVS]
    net = Vgg19Features(widths)
    try:
        net.features.load_state_dict({k: state[k] for k in needed}, strict=True)
    except RuntimeError:
        raise InputError(f"VGG19 weights {path} have inconsistent layer shapes; {VGG19_HINT}") from None
    return net.to(device).eval()


class ImagePyramid(nn.Module):
    """``(B, C, H, W)`` -> list of anti-aliased downscaled copies, one per scale."""

    def __init__(self, scales: Sequence[float], channels: int = 3):
        super().__init__()
        self.downs = nn.ModuleList(AntiAliasInterpolation2d(channels, s) for s in scales)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        return [down(image) for down in self.downs]


class TPSMMLosses(nn.Module):
    """The TPSMM generator objective for one batch; returns ``{loss name: scalar tensor}``.

    Terms: ``perceptual`` (L1 between VGG19 features of prediction and driving frame at every
    pyramid scale), ``equivariance`` (keypoints of a randomly TPS-warped driving frame, warped back,
    match the driving keypoints), ``warp`` (warped source features match the driving frame's own
    encoder features where visible), ``background`` (the background affines source->driving and
    driving->source compose to the identity; from ``bg_start`` on).
    """

    def __init__(self, model: TPSMM, vgg: Vgg19Features, config: TrainConfig):
        super().__init__()
        self.model = model
        self.vgg = vgg
        self.config = config
        # VGG19 pools 4 times before relu5_1: scales that leave less than 16 pixels are skipped
        # (only small models hit this; at 256 px TPSMM's scales go down to 32 px)
        scales = [s for s in config.scales if model.config.image_size * s >= 16]
        self.pyramid = ImagePyramid(scales, model.config.num_channels)

    def _perceptual(self, prediction: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
        total = prediction.new_zeros(())
        for fake, real in zip(self.pyramid(prediction), self.pyramid(driving)):
            for weight, f, r in zip(self.config.loss_weights.perceptual, self.vgg(fake), self.vgg(real)):
                total = total + weight * (f - r.detach()).abs().mean()
        return total

    def _equivariance(self, driving, kp_driving, generator) -> torch.Tensor:
        cfg = self.config
        warp = RandomTPS(driving.shape[0], sigma_affine=cfg.sigma_affine, sigma_tps=cfg.sigma_tps,
                         points_tps=cfg.points_tps, generator=generator, device=driving.device)
        warped = F.grid_sample(driving, warp.grid(*driving.shape[2:]), padding_mode="reflection", align_corners=True)
        back = warp.warp(self.model.kp_detector(warped))
        return cfg.loss_weights.equivariance * (kp_driving - back).abs().mean()

    def forward(self, source: torch.Tensor, driving: torch.Tensor, epoch: int, generator=None) -> dict:
        """``source``/``driving`` ``(B, 3, S, S)`` in ``[0, 1]``; ``generator`` seeds the random parts."""
        cfg, model, weights = self.config, self.model, self.config.loss_weights
        kp_source = model.kp_detector(source)
        kp_driving = model.kp_detector(driving)
        use_bg = epoch >= cfg.bg_start
        bg_param = model.bg_predictor(source, driving) if use_bg else None
        motion = model.dense_motion_network(source, kp_driving, kp_source, bg_param, cfg.dropout_p(epoch), generator)
        generated = model.inpainting_network(source, motion, warp_maps=weights.warp != 0)
        losses = {"perceptual": self._perceptual(generated.prediction, driving)}
        if weights.equivariance:
            losses["equivariance"] = self._equivariance(driving, kp_driving, generator)
        if weights.warp:
            target = model.inpainting_network.encode_driving(driving, motion.occlusion_maps)
            value = sum((t - w).abs().mean() for t, w in zip(target, generated.warped_encoder_maps))
            losses["warp"] = weights.warp * value
        if use_bg and weights.background:
            composed = bg_param @ model.bg_predictor(driving, source)
            eye = torch.eye(3, dtype=composed.dtype, device=composed.device)
            losses["background"] = weights.background * (composed - eye).abs().mean()
        return losses


# ------------------------------------------------------------------------------------------------
# trainer
# ------------------------------------------------------------------------------------------------
def checkpoint_path(run_dir: Path, epoch: int) -> Path:
    return run_dir / f"{epoch:08d}{CHECKPOINT_SUFFIX}"


class Trainer:
    """Fine-tunes a :class:`TPSMM` on :class:`FaceClipFolder` sources, one checkpoint per epoch.

    Args:
        model: the model to train (e.g. built with :class:`TPSMM` and loaded from ``--init``).
        sources: the data sources (balanced in every batch).
        vgg: the perceptual network (:func:`load_vgg19`).
        run_dir: where checkpoints and ``metrics.jsonl`` go (created).
        config: :class:`TrainConfig`.
        device: a :class:`torch.device`.

    Use :meth:`resume` to continue from the last checkpoint in ``run_dir``, then :meth:`fit`.
    """

    def __init__(self, model: TPSMM, sources: Sequence[FaceClipFolder], vgg: Vgg19Features, run_dir: str | Path,
                 config: TrainConfig = TrainConfig(), device=torch.device("cpu")):
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.sources = list(sources)
        self.config = config
        self.run_dir = Path(run_dir)
        self.losses = TPSMMLosses(self.model, vgg.to(self.device), config).to(self.device)
        self.start_epoch = 0
        self._build_optimizers()
        self.dataset = MixedFaceDataset(self.sources, model.config.image_size, config.augment)
        self.sampler = BalancedBatchSampler([len(s) for s in self.sources], config.batch_size,
                                            self.steps_per_epoch(), config.seed)

    def steps_per_epoch(self) -> int:
        if self.config.steps_per_epoch > 0:
            return self.config.steps_per_epoch
        largest = max(len(s) for s in self.sources)
        return max(1, math.ceil(len(self.sources) * largest * self.config.repeats / self.config.batch_size))

    def _build_optimizers(self) -> None:
        cfg, model = self.config, self.model
        generator = (list(model.inpainting_network.parameters()) + list(model.dense_motion_network.parameters())
                     + list(model.kp_detector.parameters()))
        self.optimizer = torch.optim.Adam(generator, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        self.optimizer_bg = torch.optim.Adam(model.bg_predictor.parameters(), lr=cfg.lr, betas=cfg.betas,
                                             weight_decay=cfg.weight_decay)
        milestones = cfg.lr_milestones()
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, milestones, gamma=0.1)
        self.scheduler_bg = torch.optim.lr_scheduler.MultiStepLR(self.optimizer_bg, milestones, gamma=0.1)

    # -- checkpoints -------------------------------------------------------------------------------
    def save_checkpoint(self, epoch: int) -> Path:
        """Write ``RUN_DIR/<epoch>-checkpoint.pth.tar`` atomically (published layout + training state)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = checkpoint_dict(
            self.model,
            epoch=epoch,
            optimizer=self.optimizer.state_dict(),
            optimizer_bg_predictor=self.optimizer_bg.state_dict(),
            scheduler=self.scheduler.state_dict(),
            scheduler_bg_predictor=self.scheduler_bg.state_dict(),
            signanon_train={"config": json.loads(json.dumps(asdict(self.config))),
                            "sources": [s.name for s in self.sources]},
        )
        path = checkpoint_path(self.run_dir, epoch)
        with atomic_path(path) as partial:
            torch.save(state, partial)
        self._prune_checkpoints(epoch)
        return path

    def _prune_checkpoints(self, epoch: int) -> None:
        keep = self.config.keep_checkpoints
        if keep > 0:
            for old in range(0, epoch - keep + 1):
                checkpoint_path(self.run_dir, old).unlink(missing_ok=True)

    def resume(self) -> int:
        """Load the latest checkpoint of ``run_dir`` (model, optimizers, schedulers); return next epoch."""
        path = latest_checkpoint(self.run_dir)
        if path is None:
            raise InputError(f"--resume: no checkpoint (*{CHECKPOINT_SUFFIX}) in {self.run_dir}")
        state = read_checkpoint(path)
        load_parts(self.model, state, path)
        if "optimizer" not in state or "epoch" not in state:
            raise InputError(f"--resume: {path} holds no training state (optimizer, epoch)")
        self.optimizer.load_state_dict(state["optimizer"])
        if "optimizer_bg_predictor" in state:
            self.optimizer_bg.load_state_dict(state["optimizer_bg_predictor"])
        if "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
            self.scheduler_bg.load_state_dict(state["scheduler_bg_predictor"])
        self.start_epoch = int(state["epoch"]) + 1
        self._truncate_metrics(self.start_epoch)
        return self.start_epoch

    # -- metrics -----------------------------------------------------------------------------------
    @property
    def metrics_path(self) -> Path:
        return self.run_dir / METRICS_FILE

    def _truncate_metrics(self, next_epoch: int) -> None:
        """Drop records of epochs after the checkpoint (a run that stopped mid-epoch logs them again)."""
        if not self.metrics_path.exists():
            return
        kept = [line for line in self.metrics_path.read_text().splitlines()
                if line.strip() and json.loads(line).get("epoch", 0) < next_epoch]
        self.metrics_path.write_text("".join(line + "\n" for line in kept))

    def _log(self, record: dict) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a") as handle:
            handle.write(json.dumps(record) + "\n")

    # -- training ----------------------------------------------------------------------------------
    def train_step(self, batch: dict, epoch: int, step: int) -> dict[str, float]:
        """One optimisation step; returns the loss terms and ``loss`` (their sum) as floats."""
        cfg, model = self.config, self.model
        generator = torch.Generator().manual_seed(_seed(cfg.seed, epoch, step, 2))
        source = batch["source"].to(self.device)
        driving = batch["driving"].to(self.device)
        losses = self.losses(source, driving, epoch, generator)
        total = sum(losses.values())
        total.backward()
        use_bg = epoch >= cfg.bg_start
        for part in (model.kp_detector, model.dense_motion_network) + ((model.bg_predictor,) if use_bg else ()):
            torch.nn.utils.clip_grad_norm_(part.parameters(), max_norm=cfg.grad_clip, norm_type=math.inf)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if use_bg:
            self.optimizer_bg.step()
        self.optimizer_bg.zero_grad(set_to_none=True)
        values = {name: float(value.detach()) for name, value in losses.items()}
        values["loss"] = float(total.detach())
        return values

    def _loader(self, epoch: int):
        self.sampler.set_epoch(epoch)
        return torch.utils.data.DataLoader(self.dataset, batch_sampler=self.sampler, num_workers=self.config.num_workers,
                                           pin_memory=self.device.type == "cuda")

    def train_epoch(self, epoch: int, progress=None) -> dict[str, float]:
        """Run one epoch, log every step, step the schedulers; returns the epoch's mean losses."""
        self.model.train()
        self.model.avd_network.eval()  # not fine-tuned: keeps the initial checkpoint's network
        totals: dict[str, float] = {}
        lr = self.optimizer.param_groups[0]["lr"]
        steps = 0
        for step, batch in enumerate(self._loader(epoch)):
            started = time.perf_counter()
            values = self.train_step(batch, epoch, step)
            counts = np.bincount(batch["origin"].numpy(), minlength=len(self.sources)).tolist()
            self._log({"type": "step", "epoch": epoch, "step": step, "lr": lr, **values,
                       "per_source": counts, "seconds": round(time.perf_counter() - started, 4)})
            for name, value in values.items():
                totals[name] = totals.get(name, 0.0) + value
            steps += 1
            if progress is not None:
                progress.update(1)
                progress.set_postfix_str(f"epoch {epoch} loss {values['loss']:.3f}")
        self.scheduler.step()
        self.scheduler_bg.step()
        return {name: value / max(steps, 1) for name, value in totals.items()}

    def write_config(self) -> Path:
        """Write ``RUN_DIR/train_config.json`` (the settings and source names; read back on resume)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / CONFIG_FILE
        record = {"config": asdict(self.config), "sources": {s.name: str(s.root) for s in self.sources},
                  "model": asdict(self.model.config)}
        path.write_text(json.dumps(record, indent=1) + "\n")
        return path

    def fit(self, epochs: int | None = None, progress=None) -> list[Path]:
        """Train from :attr:`start_epoch` to ``epochs`` (default ``config.epochs``); a checkpoint per epoch."""
        epochs = self.config.epochs if epochs is None else epochs
        self.write_config()
        self._truncate_metrics(self.start_epoch)  # records of an interrupted epoch are logged again
        written = []
        for epoch in range(self.start_epoch, epochs):
            means = self.train_epoch(epoch, progress)
            path = self.save_checkpoint(epoch)
            self._log({"type": "epoch", "epoch": epoch, "steps": len(self.sampler), **means, "checkpoint": path.name})
            written.append(path)
            self.start_epoch = epoch + 1
        return written


def read_saved_config(run_dir: str | Path) -> "TrainConfig | None":
    """The :class:`TrainConfig` saved in ``RUN_DIR/train_config.json``, or None."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        return TrainConfig.from_dict(json.loads(path.read_text())["config"])
    except (ValueError, KeyError, TypeError):
        raise InputError(f"--resume: {path} is damaged; start a new run folder") from None


def build_model_for_training(init: str | Path | None, config=None) -> TPSMM:
    """A :class:`TPSMM` (``config``, default vox-256) with the weights of ``init`` if given."""
    from .tpsmm.model import VOX_256

    model = TPSMM(config or VOX_256)
    if init is not None:
        load_parts(model, read_checkpoint(init), init)
    return model


__all__ = [
    "BalancedBatchSampler",
    "FaceClipFolder",
    "ImagePyramid",
    "LossWeights",
    "MixedFaceDataset",
    "PARTS",
    "TPSMMLosses",
    "TrainConfig",
    "Trainer",
    "Vgg19Features",
    "read_saved_config",
    "build_model_for_training",
    "check_run_dir",
    "latest_checkpoint",
    "load_vgg19",
    "resolve_device",
]
