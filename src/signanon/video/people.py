"""How many frames of a video show more than one face: MediaPipe Holistic follows one person, so a
second signer (or a bystander) is silently left out of the landmarks; a run reports it instead.

The count is cheap: MediaPipe's full-range face detector (faces up to ~5 m away, ~20 ms a frame on
one core) on at most ``max_checked`` frames spread evenly over the video. Only counts leave this
module; no pixel is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from .reader import VideoInfo, iter_selected_frames

# Checked frames per video: enough to see a second person who is there for a while, and a fixed
# cost (about a second) whatever the length.
MAX_CHECKED = 40


@dataclass(frozen=True)
class FaceCount:
    """``checked``: frames looked at; ``several``: of those, frames with two or more faces;
    ``most``: the largest number of faces seen in one frame."""

    checked: int
    several: int
    most: int


def sampled_indices(frame_count: int, max_checked: int = MAX_CHECKED) -> set[int]:
    """At most ``max_checked`` frame indices spread evenly over ``frame_count`` frames (all if fewer)."""
    if frame_count <= max_checked:
        return set(range(frame_count))
    step = frame_count / max_checked
    return {int(i * step) for i in range(max_checked)}


class FaceCounter:
    """Counts the faces on the sampled frames (:func:`sampled_indices`) of a ``frame_count``-frame
    video that lie in ``frames`` (default: all), as a pipeline that decodes them anyway passes them
    by: ``offer(index, rgb)`` for each decoded frame, in any order; other indices cost nothing.
    The detector is loaded at the first wanted frame; ``close()`` releases it."""

    def __init__(self, frame_count: int, frames: range | None = None, max_checked: int = MAX_CHECKED, min_confidence: float = 0.5):
        sampled = sampled_indices(frame_count, max_checked)
        self.wanted = sampled if frames is None else {i for i in sampled if i in frames}
        self._min_confidence = float(min_confidence)
        self._seen: set[int] = set()
        self._several = self._most = 0
        self._detector = None

    def offer(self, index: int, rgb) -> None:
        """Look at frame ``index`` (RGB uint8 ``(H, W, 3)``) if it is wanted and not seen yet."""
        if index not in self.wanted or index in self._seen:
            return
        if self._detector is None:
            import mediapipe as mp

            self._detector = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=self._min_confidence)
        faces = len(self._detector.process(rgb).detections or [])
        self._seen.add(index)
        self._several += faces > 1
        self._most = max(self._most, faces)

    @property
    def count(self) -> FaceCount:
        return FaceCount(len(self._seen), self._several, self._most)

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None


def count_faces(info: VideoInfo, max_checked: int = MAX_CHECKED, min_confidence: float = 0.5) -> FaceCount:
    """Count the faces on up to ``max_checked`` evenly spread frames of the probed video ``info``
    (decoding it for this alone; the avatar counts on the frames it decodes, see :class:`FaceCounter`)."""
    counter = FaceCounter(info.frame_count, max_checked=max_checked, min_confidence=min_confidence)
    try:
        for index, frame in iter_selected_frames(info, counter.wanted):
            counter.offer(index, frame)
    finally:
        counter.close()
    return counter.count


def several_faces_note(checked: int, several: int, method: str = "avatar") -> str | None:
    """The terminal line for a video in which some checked frames show more than one face."""
    if not several:
        return None
    consequence = (
        "the avatar follows one person, the others are not drawn (its face is kept from being recognised as any of them)"
        if method == "avatar"
        else "every person is redrawn, but only the largest face is re-enacted (the privacy check compares every face)"
    )
    return f"note: {several} of {checked} checked frames show more than one face; {consequence}"
