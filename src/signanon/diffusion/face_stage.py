"""The facial-expression enhancement stage of the diffusion anonymizer (DiffSLVA's module).

Diffusion flattens faces. After a frame has been diffused and resized to the output size, this
stage re-enacts its face with the original signer's facial motion
(:class:`~signanon.reenactment.enhance.FaceEnhancer`): the source face is the anonymized face of
the most neutral, frontal frame among the first ``window`` frames with a face; every frame's face
then follows the original's brows, lids, gaze and mouth, and is pasted back under the hands.

Streaming: until the source frame is chosen, up to ``window`` output frames wait in memory (with
the originals' landmarks, and the original frames only when a TPSMM model needs driving crops).
Privacy: only anonymized pixels are pasted; a frame the enhancer cannot handle is passed on
unchanged (it is already anonymized).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..landmarks.holistic import HolisticEstimator


@dataclass
class _Pending:
    anonymized: np.ndarray  # (H, W, 3) uint8, output size
    landmarks: np.ndarray  # (586, 3) float32, the original frame's
    confidence: np.ndarray  # (586,) float32
    original: np.ndarray | None  # (H, W, 3) uint8, kept only for a TPSMM model


class FaceStage:
    """Per-video state: ``push(original, anonymized)`` yields the enhanced frames that are ready,
    in order; :meth:`finish` yields the rest. Use as a context manager (closes MediaPipe)."""

    def __init__(self, face_model: str | None, device: str = "cpu", window: int = 45):
        from ..reenactment.enhance import FaceEnhanceConfig, FaceEnhancer

        animator = None
        if face_model is not None:
            from ..reenactment.tpsmm import TPSMMAnimator, load_tpsmm

            animator = TPSMMAnimator(load_tpsmm(face_model, device), device)
        self.enhancer = FaceEnhancer(FaceEnhanceConfig(), animator)
        self.needs_original = animator is not None
        self.window = max(1, int(window))
        self.source_index: int | None = None
        self._estimator = HolisticEstimator()
        self._pending: list[_Pending] = []
        self._seen = 0
        self._passed_through = 0  # frames emitted before any source face could be chosen

    def __enter__(self) -> "FaceStage":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._estimator.close()

    def push(self, original: np.ndarray, anonymized: np.ndarray) -> Iterator[np.ndarray]:
        """original / anonymized: RGB uint8 ``(H, W, 3)`` of the same frame, at the output size."""
        data, conf = self._estimator(original)
        item = _Pending(anonymized, data, conf, original if self.needs_original else None)
        self._seen += 1
        if self.source_index is not None:
            yield self._enhance(item)
            return
        self._pending.append(item)
        if len(self._pending) >= self.window:
            yield from self._choose_and_flush()

    def finish(self) -> Iterator[np.ndarray]:
        if self._pending:
            yield from self._choose_and_flush()

    @property
    def stats(self) -> dict:
        s = self.enhancer.stats
        return {
            "source_frame": self.source_index,
            "enhanced": s.enhanced,
            "no_face": s.no_face + self._passed_through,
            "failed": s.failed,
        }

    def _enhance(self, item: _Pending) -> np.ndarray:
        return self.enhancer(item.anonymized, item.landmarks, item.confidence, item.original)

    def _choose_and_flush(self) -> Iterator[np.ndarray]:
        from ..errors import NoPersonError
        from ..reenactment.enhance import most_neutral_index

        pending, self._pending = self._pending, []
        data = np.stack([p.landmarks for p in pending])
        conf = np.stack([p.confidence for p in pending])
        width = pending[0].anonymized.shape[1]
        try:
            best = most_neutral_index(data, conf, width)
            chosen = pending[best]
            self.enhancer.prepare(
                chosen.anonymized, chosen.landmarks, chosen.confidence, reference_frame=chosen.original
            )
        except NoPersonError:
            # no face in this window: these frames go out as diffused; look again in the next
            self._passed_through += len(pending)
            for p in pending:
                yield p.anonymized
            return
        self.source_index = self._seen - len(pending) + best
        for p in pending:
            yield self._enhance(p)
