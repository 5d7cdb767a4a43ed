"""The brow furrow's gain chosen per signer by reading the avatar's own drawing back
(:mod:`signanon.avatar.furrow_choice`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from signanon.avatar.furrow_choice import FurrowChoiceConfig, choose_furrow, pick_furrow, with_furrow_gain

DATA = Path(__file__).parent / "data"
OWN = 1.6  # FaceConfig's furrow_gain


def test_the_gain_reading_nearest_the_signer_is_picked_where_the_configured_one_does_not_follow():
    """What the probe read (gain, r of the read furrow against the signer's) on whole clips:
    expressive_man's furrow, drawn at the configured gain, reads 0.80-0.96 of the signer's at r
    0.44-0.52 (it does not follow him), doubled 1.17-1.27 at r 0.73-0.77."""
    assert pick_furrow({OWN: (0.80, 0.52), 3.2: (1.17, 0.74)}, OWN) == 3.2
    assert pick_furrow({OWN: (0.96, 0.49), 3.2: (1.27, 0.73)}, OWN) == 3.2
    # the configured gain reads well (talking_woman 1.14, r 0.80): kept, nothing else compared
    assert pick_furrow({OWN: (1.14, 0.80)}, OWN) == OWN
    assert pick_furrow({OWN: (1.14, 0.80), 3.2: (1.0, 0.9)}, OWN) == OWN
    # a candidate that follows but reads past the goal's band is not taken (expressive_man's first
    # 75 frames after the first 75: 0.98 at r 0.60, doubled 1.49 at r 0.78)
    assert pick_furrow({OWN: (0.98, 0.60), 3.2: (1.49, 0.78)}, OWN) == OWN
    # a candidate that does not follow is never taken, however near 1 its gain
    assert pick_furrow({OWN: (0.6, 0.5), 3.2: (1.0, 0.5)}, OWN) == OWN
    # the configured gain follows but is damped: another is taken only where clearly nearer 1
    assert pick_furrow({OWN: (0.7, 0.8), 3.2: (0.95, 0.8)}, OWN) == 3.2
    assert pick_furrow({OWN: (0.78, 0.8), 3.2: (0.85, 0.8)}, OWN) == OWN
    # too few frames read at the configured gain: a following candidate within the band is taken
    assert pick_furrow({OWN: None, 3.2: (1.1, 0.8)}, OWN) == 3.2
    with pytest.raises(ValueError, match="gains"):
        FurrowChoiceConfig(gains=())
    with pytest.raises(ValueError, match="accept"):
        FurrowChoiceConfig(accept=0.9)


def _signer(path: Path, limit: int):
    """The raw Holistic frames with a body of a real clip, and the calibrated animator."""
    from signanon.avatar.animator import AvatarAnimator, has_body
    from signanon.landmarks.holistic import HolisticEstimator
    from signanon.video import iter_frames, probe_video

    info = probe_video(path)
    with HolisticEstimator() as holistic:
        bodies = [holistic(f) for _, f in zip(range(limit), iter_frames(info))]
    bodies = [(d, c) for d, c in bodies if has_body(c, d)]
    return bodies, AvatarAnimator.calibrate(bodies, info.width, info.height), info


def test_the_furrow_is_read_back_off_the_drawing_and_the_chosen_gain_drawn():
    """On a real talking face (talking_woman's first 90 frames, whose brows move) both gains are
    drawn, as the output would be, and read by a fresh MediaPipe: a furrow drawn twice as far reads
    further, both reads follow the signer, and the animator handed back draws the chosen gain.
    Off, nothing is drawn; a signer whose furrow hardly moves keeps the configured gain unread."""
    from signanon.avatar.renderer import AvatarRenderer
    from signanon.video.writer import as_encoded

    bodies, animator, info = _signer(DATA / "talking_woman_90.mp4", 90)
    renderer = AvatarRenderer(info.width, info.height)
    draw = lambda pose: as_encoded(renderer.render(pose))  # noqa: E731
    both = FurrowChoiceConfig(settle=(1.0, 1.0), probe_frames=24)  # the configured gain never settles
    chosen, record = choose_furrow(animator, bodies, draw, both)
    assert record["own"] == OWN and record["probe_frames"] == 24 and record["signer_std"] >= both.min_series_std, record
    (own_gain, own_r), (double_gain, double_r) = record["read"][f"{OWN:g}"], record["read"]["3.2"]
    assert double_gain > own_gain * 1.1 and min(own_r, double_r) >= 0.6, record
    assert chosen.face.config.furrow_gain == record["chosen"] == pick_furrow({OWN: (own_gain, own_r), 3.2: (double_gain, double_r)}, OWN, both)
    assert chosen.face.neutral is animator.face.neutral  # the same calibrated signer
    assert choose_furrow(animator, bodies, draw, FurrowChoiceConfig(enabled=False)) == (animator, {})

    bodies, animator, info = _signer(DATA / "ngt_numbers_small.mp4", 60)
    kept, record = choose_furrow(animator, bodies, lambda pose: pytest.fail("nothing is drawn"))
    assert kept is animator and "read" not in record and record["signer_std"] < FurrowChoiceConfig().min_series_std, record
    assert with_furrow_gain(animator, 3.2).face.config.furrow_gain == 3.2 and animator.face.config.furrow_gain == OWN
