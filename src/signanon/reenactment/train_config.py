"""The settings of TPSMM fine-tuning (``signanon train-face``), importable without torch so the
command line can build its flags from them."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import setting


@dataclass(frozen=True)
class LossWeights:
    """TPSMM's loss weights (config/vox-256.yaml)."""

    perceptual: tuple[float, ...] = (10.0, 10.0, 10.0, 10.0, 10.0)
    equivariance: float = 10.0
    warp: float = 10.0
    background: float = 10.0


@dataclass(frozen=True)
class TrainConfig:
    """Fine-tuning settings; defaults follow TPSMM's vox-256 training, adapted to fine-tuning.

    ``milestones`` are epochs where the learning rate drops 10x (TPSMM: 70 and 90 of 100 epochs; here
    the same fractions of ``epochs`` when left empty). ``bg_start``: first epoch using the
    background predictor (0: the initial checkpoint already has a trained one). TPS dropout
    (``dropout_epochs`` > 0) helps training from scratch and is off by default when fine-tuning.
    ``steps_per_epoch`` 0: every clip of the largest source is drawn ``repeats`` times per epoch.
    """

    epochs: int = setting(40, "epochs in all (DiffSLVA fine-tunes for 40)", metavar="N")
    batch_size: int = setting(8, "pairs per step", metavar="N")
    lr: float = setting(2e-4, "learning rate", metavar="LR")
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 1e-4
    milestones: tuple[int, ...] = ()
    scales: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)
    loss_weights: LossWeights = field(default_factory=LossWeights)
    sigma_affine: float = 0.05
    sigma_tps: float = 0.005
    points_tps: int = 5
    bg_start: int = 0
    dropout_epochs: int = 0
    dropout_startp: float = 0.1
    dropout_maxp: float = 0.3
    dropout_inc_epoch: int = 10
    grad_clip: float = 10.0
    steps_per_epoch: int = setting(0, "steps per epoch (0: every clip of the largest source once per epoch)", metavar="N")
    repeats: int = 1
    augment: bool = True
    seed: int = setting(0, "random seed", metavar="N")
    num_workers: int = setting(0, "data-loading processes (0: load in the training process)", flag="workers", metavar="N")
    keep_checkpoints: int = setting(0, "keep only the last N epoch checkpoints (0: keep all)", metavar="N")

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be at least 1, got {self.epochs} and {self.batch_size}")
        if self.lr <= 0 or self.num_workers < 0 or self.steps_per_epoch < 0 or self.keep_checkpoints < 0:
            raise ValueError("lr must be positive; num_workers, steps_per_epoch and keep_checkpoints 0 or more")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Rebuild a config saved with :func:`dataclasses.asdict` (lists back to tuples)."""
        values = dict(values)
        weights = dict(values.pop("loss_weights", {}))
        if "perceptual" in weights:
            weights["perceptual"] = tuple(weights["perceptual"])
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known}
        return cls(loss_weights=LossWeights(**weights), **kwargs)

    def lr_milestones(self) -> list[int]:
        if self.milestones:
            return list(self.milestones)
        return [max(1, round(self.epochs * 0.7)), max(1, round(self.epochs * 0.9))]

    def dropout_p(self, epoch: int) -> float:
        if epoch >= self.dropout_epochs:
            return 0.0
        return min(epoch / self.dropout_inc_epoch * self.dropout_maxp + self.dropout_startp, self.dropout_maxp)
