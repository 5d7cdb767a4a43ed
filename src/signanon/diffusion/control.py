"""ControlNet condition images: soft HED edges and Canny edges, cached per frame.

HED: :class:`HEDNetwork` is our own module with the architecture and state-dict key names of the
Apache-2.0 HED re-implementation that ControlNet 1.1 ships as ``lllyasviel/Annotators``
``ControlNetHED.pth`` (an RGB-input VGG-style network: a learned per-channel offset ``norm`` of
shape ``(1, 3, 1, 1)`` and five conv blocks ``block1..block5``; each block has 2, 2, 3, 3, 3
3x3 convolutions ``blockN.convs.i`` followed by ReLU and a 1x1 ``blockN.projection`` to one side
output; blocks 2-5 start with a 2x2 max-pool). ``controlnet_aux`` is not used: it pulls a second
OpenCV distribution that breaks MediaPipe's ``cv2``.

Post-processing follows the annotator: the five side outputs are resized (bilinear) to the frame
size, averaged, passed through a sigmoid, and (with ``safe=True``, our default) quantised with the
annotator's "safe step" to the levels {0, 0.5, 1} (``floor(3 * e) / 2``, clipped to 1). The safe
maps drop the faint, dense edges that carry skin texture and other fine identity detail and that a
soft-edge ControlNet would otherwise reproduce; strong contours (hands, fingers, face outline,
brows, eyes, mouth) survive. ``safe=False`` gives the raw soft map, as ControlNet 1.0's HED
annotator produced. The network runs on the frame at the size it is given (the pipeline passes the
frame already resized to the working resolution).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "ControlMapper",
    "HED_BLOCKS",
    "HED_DOWNLOAD_COMMAND",
    "build_hed_network",
    "hed_state_dict_shapes",
    "load_hed_network",
    "safe_step",
]

HED_DOWNLOAD_COMMAND = "hf download lllyasviel/Annotators ControlNetHED.pth --local-dir DIR"

#: (input channels, output channels, number of 3x3 convolutions) of block1..block5
HED_BLOCKS: tuple[tuple[int, int, int], ...] = (
    (3, 64, 2),
    (64, 128, 2),
    (128, 256, 3),
    (256, 512, 3),
    (512, 512, 3),
)

_INSTALL_HINT = 'HED control maps need PyTorch: pip install -e ".[diffusion]"'


def hed_state_dict_shapes() -> dict[str, tuple[int, ...]]:
    """Every key of ``ControlNetHED.pth`` and its tensor shape (derived from :data:`HED_BLOCKS`)."""
    shapes: dict[str, tuple[int, ...]] = {"norm": (1, 3, 1, 1)}
    for b, (cin, cout, n) in enumerate(HED_BLOCKS, start=1):
        for i in range(n):
            shapes[f"block{b}.convs.{i}.weight"] = (cout, cin if i == 0 else cout, 3, 3)
            shapes[f"block{b}.convs.{i}.bias"] = (cout,)
        shapes[f"block{b}.projection.weight"] = (1, cout, 1, 1)
        shapes[f"block{b}.projection.bias"] = (1,)
    return shapes


def _torch():
    try:
        import torch
    except ImportError as err:  # pragma: no cover - depends on the install
        raise InputError(_INSTALL_HINT) from err
    return torch


def build_hed_network() -> "torch.nn.Module":
    """A randomly initialised :class:`HEDNetwork` (the torch class is defined lazily)."""
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    class HEDBlock(nn.Module):
        """3x3 conv + ReLU stack with a 1x1 side-output projection."""

        def __init__(self, cin: int, cout: int, n: int) -> None:
            super().__init__()
            self.convs = nn.Sequential(
                *[nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1) for i in range(n)]
            )
            self.projection = nn.Conv2d(cout, 1, 1)

        def forward(self, x, pool: bool):
            if pool:
                x = F.max_pool2d(x, kernel_size=2, stride=2)
            for conv in self.convs:
                x = F.relu(conv(x))
            return x, self.projection(x)

    class HEDNetwork(nn.Module):
        """HED with ``ControlNetHED.pth``'s layout.

        ``forward(x)``: ``x`` float ``(B, 3, H, W)`` RGB in [0, 255] -> five side outputs (logits)
        ``(B, 1, H / 2**k, W / 2**k)``, k = 0..4.
        """

        def __init__(self) -> None:
            super().__init__()
            self.norm = nn.Parameter(torch.zeros(1, 3, 1, 1))
            for b, (cin, cout, n) in enumerate(HED_BLOCKS, start=1):
                setattr(self, f"block{b}", HEDBlock(cin, cout, n))

        def forward(self, x):
            h = x - self.norm
            sides = []
            for b in range(1, len(HED_BLOCKS) + 1):
                h, side = getattr(self, f"block{b}")(h, pool=b > 1)
                sides.append(side)
            return sides

    return HEDNetwork()


def load_hed_network(path: Path | str | None, device: str = "cpu") -> "torch.nn.Module":
    """Load ``ControlNetHED.pth`` into a :class:`HEDNetwork` in eval mode.

    Raises:
        InputError: the file is missing (the message gives the download command) or it is not a
            ControlNetHED state dict.
    """
    if path is None:
        raise InputError(
            f"HED control maps need the annotator weights ControlNetHED.pth (pass --hed-weights); "
            f"get them on a connected machine with: {HED_DOWNLOAD_COMMAND}"
        )
    path = Path(path)
    if path.is_dir():
        path = path / "ControlNetHED.pth"
    if not path.is_file():
        raise InputError(
            f"HED weights not found: {path}; get them on a connected machine with: "
            f"{HED_DOWNLOAD_COMMAND}"
        )
    torch = _torch()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling problem is a bad file
        raise InputError(f"cannot read HED weights {path}: {type(err).__name__}") from err
    expected = hed_state_dict_shapes()
    if not isinstance(state, dict) or set(state) != set(expected):
        raise InputError(f"{path} is not a ControlNetHED.pth state dict (unexpected keys)")
    bad = [k for k, shape in expected.items() if tuple(state[k].shape) != shape]
    if bad:
        raise InputError(f"{path} is not a ControlNetHED.pth state dict (wrong shape for {bad[0]})")
    net = build_hed_network()
    net.load_state_dict(state, strict=True)
    return net.float().eval().to(device)


def safe_step(edge: np.ndarray, step: int = 2) -> np.ndarray:
    """Quantise a soft edge map in [0, 1] to ``step + 1`` levels: ``floor(e * (step + 1)) / step``.

    With the default ``step=2`` the levels are 0, 0.5, 1 (values >= 2/3 become 1; the result is
    clipped to [0, 1]). Returns float32 of the input's shape.
    """
    y = np.floor(edge.astype(np.float32) * float(step + 1)) / float(step)
    return np.clip(y, 0.0, 1.0).astype(np.float32)


class ControlMapper:
    """Turns an RGB frame into the ControlNet condition image, with a bounded per-frame cache.

    Args:
        kind: ``"hed"`` (soft edges, needs ``hed_weights``) or ``"canny"`` (no weights).
        hed_weights: path to ``ControlNetHED.pth`` (or the folder holding it); required for HED.
        device: torch device for the HED network.
        low, high: Canny hysteresis thresholds (0-255 gradient units).
        safe: quantise HED maps with the annotator's safe step (see the module docstring).
        cache_size: number of control maps kept. The cache is keyed by a BLAKE2 hash of the frame's
            bytes and shape, so a frame seen again (a resumed run, a second pass, a static shot) is
            not recomputed, whatever its index; the least recently used entry is evicted.

    Raises:
        InputError: unknown kind, or missing/invalid HED weights (raised at construction).
    """

    def __init__(
        self,
        kind: str = "hed",
        hed_weights: Path | str | None = None,
        device: str = "cpu",
        low: int = 100,
        high: int = 200,
        safe: bool = True,
        cache_size: int = 64,
    ) -> None:
        if kind not in ("hed", "canny"):
            raise InputError(f"unknown control type {kind!r}; use hed or canny")
        if kind == "canny" and not (0 <= low <= high):
            raise InputError(f"Canny thresholds must satisfy 0 <= low <= high, got {low}, {high}")
        self.kind = kind
        self.device = device
        self.low, self.high = int(low), int(high)
        self.safe = bool(safe)
        self.cache_size = max(0, int(cache_size))
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self.computed = 0
        self.network = load_hed_network(hed_weights, device) if kind == "hed" else None

    @staticmethod
    def _key(frame: np.ndarray) -> bytes:
        digest = hashlib.blake2b(np.ascontiguousarray(frame).data, digest_size=16)
        digest.update(repr(frame.shape).encode())
        return digest.digest()

    def __call__(self, frame_rgb: np.ndarray) -> np.ndarray:
        """Control image of one frame.

        Args:
            frame_rgb: ``(H, W, 3)`` uint8 RGB.

        Returns:
            ``(H, W, 3)`` uint8, white edges on black (the three channels are equal).
        """
        if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 or frame_rgb.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 frame, got {frame_rgb.shape} {frame_rgb.dtype}")
        key = self._key(frame_rgb)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key].copy()
        edge = self._hed(frame_rgb) if self.kind == "hed" else self._canny(frame_rgb)
        out = np.repeat(edge[..., None], 3, axis=2)
        self.computed += 1
        if self.cache_size:
            self._cache[key] = out
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return out.copy()

    def _canny(self, frame_rgb: np.ndarray) -> np.ndarray:
        return cv2.Canny(np.ascontiguousarray(frame_rgb), self.low, self.high)

    def _hed(self, frame_rgb: np.ndarray) -> np.ndarray:
        torch = _torch()
        h, w = frame_rgb.shape[:2]
        x = torch.from_numpy(np.ascontiguousarray(frame_rgb)).to(self.device, torch.float32)
        x = x.permute(2, 0, 1)[None]
        with torch.inference_mode():
            sides = self.network(x)
            sides = [
                torch.nn.functional.interpolate(s.float(), size=(h, w), mode="bilinear",
                                                align_corners=False)
                for s in sides
            ]
            logits = torch.cat(sides, dim=1).mean(dim=1)[0]
            edge = torch.sigmoid(logits).cpu().numpy().astype(np.float32)
        if self.safe:
            edge = safe_step(edge)
        return (edge * 255.0).clip(0, 255).astype(np.uint8)

    def clear(self) -> None:
        self._cache.clear()
