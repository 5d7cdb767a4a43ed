"""Animate a face image with a driving face video (relative, absolute or AVD motion)."""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import torch

from ...errors import InputError
from .model import TPSMM

MODES = ("relative", "absolute", "avd")


def keypoint_hull_area(keypoints: np.ndarray) -> float:
    """Area of the convex hull of ``(K, 2)`` points (normalised units)."""
    import cv2

    hull = cv2.convexHull(np.ascontiguousarray(keypoints, dtype=np.float32))
    return float(cv2.contourArea(hull))


def relative_keypoints(
    kp_source: torch.Tensor, kp_driving: torch.Tensor, kp_reference: torch.Tensor, scale: float
) -> torch.Tensor:
    """Source keypoints moved by the driver's displacement from its reference frame, times ``scale``.

    ``kp_source`` ``(1, K, 2)``, ``kp_driving`` ``(B, K, 2)``, ``kp_reference`` ``(1, K, 2)``.
    """
    return kp_source + (kp_driving - kp_reference) * scale


class TPSMMAnimator:
    """Drive a source face with the motion of a driving face video, frame by frame.

    Args:
        model: a :class:`~.model.TPSMM` (e.g. from :func:`~.model.load_tpsmm`); put in eval mode.
        device: where to run (``"cpu"``, ``"cuda"`` ...); the model is moved there.
        batch_size: driving frames per forward pass.
        adapt_scale: in relative mode, scale the motion by ``sqrt(area(source keypoints) /
            area(reference keypoints))`` as the TPSMM demo does.
    """

    def __init__(self, model: TPSMM, device="cpu", *, batch_size: int = 4, adapt_scale: bool = True):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.size = model.config.image_size
        self.batch_size = max(1, int(batch_size))
        self.adapt_scale = adapt_scale

    # -- conversions -------------------------------------------------------------------------------
    def _to_tensor(self, frames: list[np.ndarray]) -> torch.Tensor:
        """``(S, S, 3)`` uint8 frames -> ``(B, 3, S, S)`` float in ``[0, 1]`` on the device."""
        for frame in frames:
            if frame.shape != (self.size, self.size, 3) or frame.dtype != np.uint8:
                raise InputError(
                    f"face frames must be ({self.size}, {self.size}, 3) uint8 images, got "
                    f"{tuple(frame.shape)} {frame.dtype}"
                )
        batch = torch.from_numpy(np.stack(frames)).to(self.device)
        return batch.permute(0, 3, 1, 2).float() / 255.0

    @staticmethod
    def _to_frames(images: torch.Tensor) -> list[np.ndarray]:
        """``(B, 3, S, S)`` float in ``[0, 1]`` -> list of ``(S, S, 3)`` uint8."""
        out = (images.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return list(out)

    # -- steps -------------------------------------------------------------------------------------
    def _prepare_source(self, source: np.ndarray):
        image = self._to_tensor([source])
        kp = self.model.kp_detector(image)
        return image, kp, self.model.inpainting_network.encode(image)

    def _motion_scale(self, kp_source: torch.Tensor, kp_reference: torch.Tensor) -> float:
        if not self.adapt_scale:
            return 1.0
        source_area = keypoint_hull_area(kp_source[0].cpu().numpy())
        reference_area = keypoint_hull_area(kp_reference[0].cpu().numpy())
        return float(np.sqrt(source_area) / np.sqrt(reference_area)) if reference_area > 0 else 1.0

    def _target_keypoints(self, mode: str, kp_source, kp_driving, kp_reference, scale: float):
        if mode == "absolute":
            return kp_driving
        if mode == "avd":
            return self.model.avd_network(kp_source.expand_as(kp_driving), kp_driving)
        return relative_keypoints(kp_source, kp_driving, kp_reference, scale)

    def _render(self, image, kp_source, encoded, kp_target) -> torch.Tensor:
        batch = kp_target.shape[0]
        source = image.expand(batch, -1, -1, -1)
        kp_src = kp_source.expand(batch, -1, -1)
        motion = self.model.dense_motion_network(source, kp_target, kp_src)
        encoded = [features.expand(batch, -1, -1, -1) for features in encoded]
        return self.model.inpainting_network.decode(source, encoded, motion).prediction

    @staticmethod
    def _batches(frames: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
        batch: list[np.ndarray] = []
        for frame in frames:
            batch.append(frame)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch

    @torch.no_grad()
    def keypoints(self, frame: np.ndarray) -> np.ndarray:
        """The model's ``(K, 2)`` float32 keypoints of one ``(S, S, 3)`` uint8 frame, in ``[-1, 1]``."""
        return self.model.kp_detector(self._to_tensor([frame]))[0].cpu().numpy()

    def animate(
        self,
        source: np.ndarray,
        driving: Iterable[np.ndarray],
        mode: str = "relative",
        reference: np.ndarray | None = None,
    ) -> Iterator[np.ndarray]:
        """Yield the source face moving like ``driving``, one frame per driving frame.

        Args:
            source: ``(S, S, 3)`` uint8 RGB face crop (``S = model.config.image_size``, 256).
            driving: iterable of ``(S, S, 3)`` uint8 RGB face crops (consumed lazily, in batches).
            mode: ``"relative"`` -- the source keypoints move by the driver's displacement from
                ``reference`` (the output starts from the source's own expression); ``"absolute"``
                -- the driver's keypoints are used as they are (the driver's face shape leaks);
                ``"avd"`` -- the AVD network re-mixes source identity and driver pose.
            reference: ``(S, S, 3)`` uint8 driving frame whose expression counts as neutral
                (relative mode); ``None`` takes the first driving frame, as the TPSMM demo does.

        Yields ``(S, S, 3)`` uint8 RGB frames.
        """
        if mode not in MODES:
            raise InputError(f"unknown animation mode {mode!r}; use one of {', '.join(MODES)}")
        self._to_tensor([source] if reference is None else [source, reference])  # checks shapes now
        return self._animate(source, driving, mode, reference)

    @torch.no_grad()
    def _animate_batches(self, source, driving, mode, reference) -> Iterator[list[np.ndarray]]:
        # 1. source: image, keypoints and encoder features, computed once
        image, kp_source, encoded = self._prepare_source(source)
        kp_reference, scale = None, 1.0
        for batch in self._batches(driving, self.batch_size):
            frames = self._to_tensor(batch)
            # 2. driving keypoints (and the reference frame's, from the first batch if not given)
            kp_driving = self.model.kp_detector(frames)
            if mode == "relative" and kp_reference is None:
                kp_reference = kp_driving[:1] if reference is None else self.model.kp_detector(self._to_tensor([reference]))
                scale = self._motion_scale(kp_source, kp_reference)
            # 3. target keypoints for the source, then dense motion and inpainting
            kp_target = self._target_keypoints(mode, kp_source, kp_driving, kp_reference, scale)
            yield self._to_frames(self._render(image, kp_source, encoded, kp_target))

    def _animate(self, source, driving, mode, reference) -> Iterator[np.ndarray]:
        for frames in self._animate_batches(source, driving, mode, reference):
            yield from frames
