"""What a run reports: counts, rates and seconds per stage, written as ``--summary run.json``."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .files import write_text_atomic


class StageTimer:
    """Accumulates wall-clock seconds per named stage: ``with timer("render"): ...``.

    Safe to use from several threads; a stage timed on two threads at once adds up both.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            with self._lock:
                self.seconds[stage] += elapsed

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.seconds.items()}


@dataclass
class RunSummary:
    """The record of one ``signanon anonymize`` run (every count is in frames)."""

    method: str
    input: str
    output: str
    frames_in: int = 0
    frames_out: int = 0
    fps_in: float = 0.0
    fps_out: float = 0.0
    width: int = 0
    height: int = 0
    audio_kept: bool = False
    frames_with: dict[str, int] = field(default_factory=dict)  # raw detections per landmark group
    frames_interpolated: dict[str, int] = field(default_factory=dict)  # short gaps filled per group
    frames_without_person: int = 0  # drawn from the last pose fading to neutral (or neutral)
    # Holistic follows one person: input frames checked for faces (an even sample) and, of those,
    # frames showing more than one face (signanon.video.people)
    frames_checked_for_faces: int = 0
    frames_with_several_faces: int = 0
    seconds_per_stage: dict[str, float] = field(default_factory=dict)
    seconds_total: float = 0.0
    verification: dict[str, Any] | None = None  # the privacy gate's record (signanon.evaluation.verify)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False)

    def write(self, path: str | Path) -> None:
        """Write atomically (temp file + rename) so a reader never sees half a file."""
        write_text_atomic(path, self.to_json() + "\n")
