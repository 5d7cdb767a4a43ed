"""One frame of landmarks, the unit that passes from the landmark stage to every later stage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import geometry, layout


@dataclass(frozen=True)
class LandmarkFrame:
    """One frame of landmarks in the shared layout (:mod:`.layout`).

    index:        0-based frame number in the input stream.
    data:         float32 ``(586, 3)``: x, y image px and MediaPipe z for the image parts, metres
                  for the world body; zeros where missing. Also available as :attr:`points`.
    confidence:   float32 ``(586,)`` in [0, 1]; 0 = missing. Interpolated points carry the lower
                  of the two confidences they were interpolated between.
    interpolated: names of the components (``layout.COMPONENTS``) filled in by gap interpolation.
    size:         ``(width, height)`` of the source frame in pixels, or None when not known.

    The parts (``body``, ``face``, ``left_hand``, ``right_hand``, ``world``) are views of
    ``data``; presence follows the one rule per part of :mod:`.geometry`.
    """

    index: int
    data: np.ndarray
    confidence: np.ndarray
    interpolated: frozenset[str] = frozenset()
    size: tuple[int, int] | None = None

    @classmethod
    def from_arrays(
        cls, data: np.ndarray, confidence: np.ndarray, size: tuple[int, int] | None = None, index: int = 0
    ) -> "LandmarkFrame":
        """A frame from ``(586, 3)`` data and ``(586,)`` confidence (copied to float32)."""
        data = np.array(data, np.float32)
        confidence = np.array(confidence, np.float32)
        if data.shape != (layout.NUM_POINTS, 3) or confidence.shape != (layout.NUM_POINTS,):
            raise ValueError(f"expected (586, 3) and (586,), got {data.shape} and {confidence.shape}")
        return cls(index, data, confidence, size=None if size is None else (int(size[0]), int(size[1])))

    @property
    def points(self) -> np.ndarray:
        """float32 ``(586, 3)``: the same array as :attr:`data`."""
        return self.data

    def _known_size(self) -> tuple[int, int]:
        if self.size is None:
            raise ValueError("this landmark frame does not know its image size")
        return self.size

    @property
    def width(self) -> int:
        """Source frame width in pixels (raises ValueError when :attr:`size` is unknown)."""
        return self._known_size()[0]

    @property
    def height(self) -> int:
        """Source frame height in pixels (raises ValueError when :attr:`size` is unknown)."""
        return self._known_size()[1]

    # parts: views of data, (33, 3), (478, 3), (21, 3), (21, 3), (33, 3)
    @property
    def body(self) -> np.ndarray:
        return self.data[layout.BODY]

    @property
    def face(self) -> np.ndarray:
        return self.data[layout.FACE]

    @property
    def left_hand(self) -> np.ndarray:
        return self.data[layout.LEFT_HAND]

    @property
    def right_hand(self) -> np.ndarray:
        return self.data[layout.RIGHT_HAND]

    @property
    def world(self) -> np.ndarray:
        return self.data[layout.BODY_WORLD]

    def hand(self, side: int) -> np.ndarray:
        """(21, 3) view of one hand: side 0 = the signer's left, 1 = their right."""
        return self.data[geometry.HAND_ROWS[side]]

    @property
    def has_face(self) -> bool:
        return bool(geometry.face_present(self.confidence))

    @property
    def has_body(self) -> bool:
        return bool(geometry.body_present(self.confidence))

    def has_hand(self, side: int) -> bool:
        """Whether hand ``side`` (0 = signer's left, 1 = right) is present."""
        return bool(geometry.hand_present(self.confidence, side))

    def metric(self) -> np.ndarray:
        """float64 ``(586, 3)`` with z in pixels on the image parts (:func:`geometry.to_metric`);
        the world body stays in metres."""
        out = np.array(self.data, np.float64)
        image = slice(0, layout.BODY_WORLD.start)
        out[image] = geometry.to_metric(out[image], self.width)
        return out
