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


def count_faces(info: VideoInfo, max_checked: int = MAX_CHECKED, min_confidence: float = 0.5) -> FaceCount:
    """Count the faces on up to ``max_checked`` evenly spread frames of the probed video ``info``."""
    import mediapipe as mp

    wanted = sampled_indices(info.frame_count, max_checked)
    checked = several = most = 0
    with mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_confidence) as detector:
        for _, frame in iter_selected_frames(info, wanted):
            faces = len(detector.process(frame).detections or [])
            checked += 1
            several += faces > 1
            most = max(most, faces)
    return FaceCount(checked, several, most)


def several_faces_note(checked: int, several: int, method: str = "avatar") -> str | None:
    """The terminal line for a video in which some checked frames show more than one face."""
    if not several:
        return None
    consequence = (
        "the avatar follows one person, the others are not drawn"
        if method == "avatar"
        else "every person is redrawn, but only the largest face is re-enacted and checked"
    )
    return f"note: {several} of {checked} checked frames show more than one face; {consequence}"
