"""The brow furrow's and the eyes' gains chosen per signer by reading the avatar's own drawing
back (:mod:`signanon.avatar.furrow_choice`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from signanon.avatar.furrow_choice import (
    EyeChoiceConfig,
    FurrowChoiceConfig,
    choose_brows_and_eyes,
    choose_furrow,
    pick_gain,
    with_furrow_gain,
)

DATA = Path(__file__).parent / "data"
OWN = 1.6  # FaceConfig's furrow_gain
OWN_EYES = 1.15  # FaceConfig's eye_gain


def test_the_gain_reading_nearest_the_signer_is_picked_where_the_configured_one_does_not_follow():
    """What the probe read (gain, r of the read furrow against the signer's) on whole clips:
    expressive_man's furrow, drawn at the configured gain, reads 0.80-0.96 of the signer's at r
    0.44-0.52 (it does not follow him), doubled 1.17-1.27 at r 0.73-0.77."""
    assert pick_gain({OWN: (0.80, 0.52), 3.2: (1.17, 0.74)}, OWN) == 3.2
    assert pick_gain({OWN: (0.96, 0.49), 3.2: (1.27, 0.73)}, OWN) == 3.2
    # the configured gain reads well (talking_woman 1.14, r 0.80): kept, nothing else compared
    assert pick_gain({OWN: (1.14, 0.80)}, OWN) == OWN
    assert pick_gain({OWN: (1.14, 0.80), 3.2: (1.0, 0.9)}, OWN) == OWN
    # a candidate that follows but reads past the goal's band is not taken (expressive_man's first
    # 75 frames after the first 75: 0.98 at r 0.60, doubled 1.49 at r 0.78)
    assert pick_gain({OWN: (0.98, 0.60), 3.2: (1.49, 0.78)}, OWN) == OWN
    # a candidate that does not follow is never taken, however near 1 its gain
    assert pick_gain({OWN: (0.6, 0.5), 3.2: (1.0, 0.5)}, OWN) == OWN
    # the configured gain follows but is damped: another is taken only where clearly nearer 1
    assert pick_gain({OWN: (0.7, 0.8), 3.2: (0.95, 0.8)}, OWN) == 3.2
    assert pick_gain({OWN: (0.78, 0.8), 3.2: (0.85, 0.8)}, OWN) == OWN
    # too few frames read at the configured gain: a following candidate within the band is taken
    assert pick_gain({OWN: None, 3.2: (1.1, 0.8)}, OWN) == 3.2
    with pytest.raises(ValueError, match="gains"):
        FurrowChoiceConfig(gains=())
    with pytest.raises(ValueError, match="accept"):
        FurrowChoiceConfig(accept=0.9)


def test_the_eye_gain_reading_nearest_the_signer_is_picked_on_either_side():
    """What the probe read (gain, r) of the eyes on whole clips: the webcam signer's softened copy
    reads 0.75 at the configured gain and 1.19 at 1.5, ASL DIFFERENT's eyes 1.41 and at 0.9 1.03.
    The eyes' margin is smaller than the furrow's: at the furrow's the webcam copy keeps its 0.75
    (read back 0.66 whole, out of the goal)."""
    eyes = EyeChoiceConfig()
    assert pick_gain({OWN_EYES: (0.75, 0.83), 1.5: (1.19, 0.90)}, OWN_EYES, eyes) == 1.5
    assert pick_gain({OWN_EYES: (0.75, 0.83), 1.5: (1.19, 0.90)}, OWN_EYES, FurrowChoiceConfig(gains=(1.5,))) == OWN_EYES
    assert pick_gain({OWN_EYES: (1.41, 0.97), 0.9: (1.03, 0.95)}, OWN_EYES, eyes) == 0.9
    # within 0.8-1.25 at r >= 0.7 the configured gain is kept (talking_woman: 0.98 at r 0.98)
    assert pick_gain({OWN_EYES: (0.98, 0.98), 0.9: (0.93, 0.98), 1.5: (1.06, 0.98)}, OWN_EYES, eyes) == OWN_EYES
    # nearer 1 by more than the margin is taken (ASL DIFFERENT widened, low bitrate: 1.52 -> 1.40,
    # 0.08 in log ratio); only a little nearer is not (1.47: 0.03)
    assert pick_gain({OWN_EYES: (1.52, 0.94), 0.9: (1.40, 0.94)}, OWN_EYES, eyes) == 0.9
    assert pick_gain({OWN_EYES: (1.52, 0.94), 0.9: (1.47, 0.94)}, OWN_EYES, eyes) == OWN_EYES
    with pytest.raises(ValueError, match="settle"):
        EyeChoiceConfig(settle=(1.1, 1.3))


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


@pytest.fixture(scope="module")
def talking_woman():
    """talking_woman's first 90 frames: raw Holistic frames with a body, the calibrated animator,
    draw(pose) as the output would be (encoded), and the list of poses drawn so far."""
    from signanon.avatar.renderer import AvatarRenderer
    from signanon.video.writer import as_encoded

    bodies, animator, info = _signer(DATA / "talking_woman_90.mp4", 90)
    renderer = AvatarRenderer(info.width, info.height)
    drawn: list = []

    def draw(pose):
        drawn.append(pose)
        return as_encoded(renderer.render(pose))

    return bodies, animator, draw, drawn


def test_the_furrow_is_read_back_off_the_drawing_and_the_chosen_gain_drawn(talking_woman):
    """On a real talking face (talking_woman's first 90 frames, whose brows move) both gains are
    drawn, as the output would be, and read by a fresh MediaPipe: a furrow drawn twice as far reads
    further, both reads follow the signer, and the animator handed back draws the chosen gain.
    Off, nothing is drawn; a signer whose furrow hardly moves keeps the configured gain unread."""
    bodies, animator, draw, _ = talking_woman
    # the configured gain neither settles nor counts as following: the other is drawn too
    both = FurrowChoiceConfig(settle=(1.0, 1.0), probe_frames=24, min_r=0.99)
    chosen, record = choose_furrow(animator, bodies, draw, both)
    assert record["own"] == OWN and record["probe_frames"] == 24 and record["signer_std"] >= both.min_series_std, record
    (own_gain, own_r), (double_gain, double_r) = record["read"][f"{OWN:g}"], record["read"]["3.2"]
    assert double_gain > own_gain * 1.1 and min(own_r, double_r) >= 0.6, record
    assert chosen.face.config.furrow_gain == record["chosen"] == pick_gain({OWN: (own_gain, own_r), 3.2: (double_gain, double_r)}, OWN, both)
    assert chosen.face.neutral is animator.face.neutral  # the same calibrated signer
    assert choose_furrow(animator, bodies, draw, FurrowChoiceConfig(enabled=False)) == (animator, {})

    bodies, animator, info = _signer(DATA / "ngt_numbers_small.mp4", 60)
    kept, record = choose_furrow(animator, bodies, lambda pose: pytest.fail("nothing is drawn"))
    assert kept is animator and "read" not in record and record["signer_std"] < FurrowChoiceConfig().min_series_std, record
    assert with_furrow_gain(animator, 3.2).face.config.furrow_gain == 3.2 and animator.face.config.furrow_gain == OWN


def test_one_drawing_is_read_for_the_furrow_and_the_eyes(talking_woman):
    """On talking_woman's first 90 frames (her eyes and brows move), both choices on and both
    reading well at the configured gains: the probe frames are drawn once, read for both series,
    and nothing else is drawn."""
    bodies, animator, draw, drawn = talking_woman
    drawn.clear()
    wide = (0.01, 100.0)  # any read settles
    kept, records = choose_brows_and_eyes(
        animator, bodies, draw, FurrowChoiceConfig(settle=wide, min_r=-1.0, probe_frames=16),
        EyeChoiceConfig(settle=wide, min_r=-1.0, probe_frames=16),
    )  # fmt: skip
    assert len(drawn) == 16 and kept is animator, records
    assert set(records["furrow_gain"]["read"]) == {f"{OWN:g}"} and set(records["eye_gain"]["read"]) == {f"{OWN_EYES:g}"}
    assert records["eye_gain"]["signer_std"] >= EyeChoiceConfig().min_series_std, records


def test_the_eyes_are_judged_on_the_drawing_with_the_furrow_chosen(talking_woman):
    """On talking_woman's first 90 frames, her furrow set far too weak (0.3) so that the doubled
    candidate is drawn and taken: the eyes' configured gain is then read off that candidate's
    drawing, not the first one, so what they are judged on is what the output draws, and nothing
    more is drawn for it. The two drawings read the eyes differently (the lids are drawn under
    the brows), so the read taken is the one the chosen furrow gives."""
    bodies, animator, draw, drawn = talking_woman
    weak = with_furrow_gain(animator, 0.3)
    eyes_kept = EyeChoiceConfig(settle=(0.01, 100.0), min_r=-1.0, probe_frames=16)  # any read settles
    taken = FurrowChoiceConfig(settle=(1.0, 1.0), min_r=-1.0, margin=-10.0, probe_frames=16)  # a candidate drawn wins
    drawn.clear()
    chosen, records = choose_brows_and_eyes(weak, bodies, draw, taken, eyes_kept)
    assert records["furrow_gain"]["chosen"] == 3.2 == chosen.face.config.furrow_gain and len(drawn) == 32, records

    def eyes_read(animator):
        return choose_brows_and_eyes(animator, bodies, draw, FurrowChoiceConfig(enabled=False), eyes_kept)[1]["eye_gain"]["read"]

    assert records["eye_gain"]["read"] == eyes_read(with_furrow_gain(animator, 3.2)), records
    assert records["eye_gain"]["read"] != eyes_read(weak), records


def test_eyes_read_too_wide_are_drawn_weaker_and_only_weaker():
    """ASL DIFFERENT's eyes, drawn at the configured gain, read back wider-moving than hers (1.41
    in the product's probe): only the weaker candidate is drawn, it reads nearer her movement, and
    the animator handed back draws it, with the furrow's gain untouched."""
    from signanon.avatar.anonymizer import AvatarConfig
    from signanon.avatar.renderer import AvatarRenderer
    from signanon.video.writer import as_encoded

    bodies, animator, info = _signer(DATA / "asl_different.gif", 120)
    # at the output's size, as the run draws (the small GIF is drawn larger)
    renderer = AvatarRenderer(info.width, info.height, scale=AvatarConfig().draw_scale(info.width, info.height))
    chosen, records = choose_brows_and_eyes(
        animator, bodies, lambda pose: as_encoded(renderer.render(pose)), FurrowChoiceConfig(enabled=False)
    )  # fmt: skip
    eyes = records["eye_gain"]
    assert records["furrow_gain"] == {} and set(eyes["read"]) == {f"{OWN_EYES:g}", "0.9"}, records
    (own_gain, own_r), (weak_gain, weak_r) = eyes["read"][f"{OWN_EYES:g}"], eyes["read"]["0.9"]
    assert own_gain > EyeChoiceConfig().settle[1] and min(own_r, weak_r) >= 0.7, records
    assert abs(np.log(weak_gain)) < abs(np.log(own_gain)) - EyeChoiceConfig().margin, records
    assert eyes["chosen"] == 0.9 == chosen.face.config.eye_gain and chosen.face.config.furrow_gain == OWN, records
