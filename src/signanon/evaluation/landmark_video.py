"""The evaluation's side-by-side video: original | anonymized, landmarks drawn, captioned with the
recogniser's face distance. It shows the original signer: for review, not for publication."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..landmarks import layout
from ..landmarks.regions import HAND_BONES, TORSO_ARM_BONES

COLOURS = {"body": (255, 255, 255), "face": (80, 220, 255), "left": (255, 120, 60), "right": (60, 255, 120)}


def _cv2():
    import cv2

    return cv2


def draw_landmarks(rgb: np.ndarray, data: np.ndarray, conf: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Draw body, hands and face mesh on a copy of ``rgb`` (uint8 (H, W, 3)).

    data: float (586, 3) in the frame's pixels before scaling by ``scale``; conf: (586,).
    """
    cv2 = _cv2()
    out = np.ascontiguousarray(rgb).copy()
    pts = np.round(np.asarray(data)[:, :2] * scale).astype(np.int32)
    h, w = out.shape[:2]
    face = slice(layout.FACE.start, layout.FACE.stop)
    if conf[face.start] > 0:
        xy = pts[face]
        ok = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
        out[xy[ok, 1], xy[ok, 0]] = COLOURS["face"]
    groups = ((layout.BODY, TORSO_ARM_BONES, "body"), (layout.LEFT_HAND, HAND_BONES, "left"),
              (layout.RIGHT_HAND, HAND_BONES, "right"))
    for rows, edges, colour in groups:
        for a, b in edges:
            if conf[rows.start + a] > 0 and conf[rows.start + b] > 0:
                cv2.line(out, tuple(map(int, pts[rows.start + a])), tuple(map(int, pts[rows.start + b])),
                         COLOURS[colour], 1, cv2.LINE_AA)
    return out


def _label(image: np.ndarray, text: str, y: int, colour=(255, 255, 255)) -> None:
    cv2 = _cv2()
    scale = max(0.35, image.shape[0] / 900)
    cv2.putText(image, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


class LandmarkVideoWriter:
    """Writes ``original | anonymized`` frames, landmarks drawn, both at the original's height
    (through :class:`signanon.video.side_by_side.SideBySideWriter`).

    Each frame is captioned with its index and, on sampled frames, the recogniser's distance
    between the two faces (red "SAME PERSON" when within the threshold).
    """

    def __init__(self, path: Path, original, anonymized, threshold: float):
        from ..video.side_by_side import SideBySideWriter

        self.height = original.height
        self.scale = original.height / anonymized.height
        self.threshold = threshold
        self._writer = SideBySideWriter(path, original.fps, height=self.height)
        self._last_caption = ""

    def _caption(self, pair: dict | None) -> tuple[str, tuple[int, int, int]]:
        if pair is None:
            return self._last_caption, (255, 255, 255)
        if not pair["original_face"]:
            text = "no face in original"
        elif not pair["anonymized_face"]:
            text = "no face in anonymized"
        else:
            text = f"face distance {pair['distance']:.2f}" + (" SAME PERSON" if pair["reidentified"] else "")
        self._last_caption = text
        return text, ((255, 60, 60) if pair["reidentified"] else (255, 255, 255))

    def write(self, t: int, original: np.ndarray, anonymized: np.ndarray, lm_o, lm_a, pair: dict | None) -> None:
        """original / anonymized: RGB uint8 frames; lm_o / lm_a: ``(data (586, 3), conf (586,))``
        of each in its own pixels, or None; pair: the identity sample of this frame, or None."""
        from ..video.side_by_side import fit_height

        right = fit_height(anonymized, self.height)
        left = draw_landmarks(original, *lm_o) if lm_o is not None else original.copy()
        right = draw_landmarks(right, *lm_a, scale=self.scale) if lm_a is not None else right.copy()
        _label(left, f"original  #{t}", 18)
        _label(right, "anonymized", 18)
        text, colour = self._caption(pair)
        _label(right, text, self.height - 8, colour)
        self._writer.write([left, right])

    def close(self) -> None:
        self._writer.close()

    def abort(self) -> None:
        self._writer.abort()
