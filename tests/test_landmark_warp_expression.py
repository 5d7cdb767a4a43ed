"""How the landmark warp moves a face: lids, irises, the mouth cap and the gain calibration (issue 11).

Driver: tests/data/talking_face_open_mouth.mp4 (90 frames; the mouth opens wide in the last
third). The face it drives is its own first frame, cropped as the re-enactment crops a photo.

* ``cap_mouth_opening``: a photo's closed lips warped open wider than ~0.5 inter-ocular distances
  read back as a closed mouth (open_mouth's yawn, 0.57 in the driver, read back at 0.03-0.18 on a
  warped photo), so the target's inner-lip gap is capped; the upper face is left alone.
* Lids with a gain: the gain acts on the eye's opening, not on where the eye goes. A driver who
  looks down with closed eyes moves both lids down; gained as a whole, that dragged the lower lid
  into the cheek, and the blink (more closing than the photo's eye has) pushed it further, since
  the lids met halfway. The iris of a closing eye is a detector's guess (one driver's "dropped"
  0.07 inter-ocular distances in every blink) and steered the warp: it now stays.
* ``calibrate_gains`` on a read-back whose response is known exactly and not linear in the gain
  (the lids': a spline squeezes the eye, then the lid slides over it; one photo's read-back slope
  went 0.62 -> 1.28 for gain 1.6 -> 2.3). Two rounds must land within 8 % of the aimed slope; a
  plain ``gain * aim / slope`` step stops 14 % short on this one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from signanon.reenactment.face_track import crop, detect_faces, face_box, mesh_in_crop
from signanon.landmarks.regions import IRIS_L, IRIS_R, LID_LOWER_R, LID_UPPER_R, LIP_INNER_LOWER, LIP_INNER_UPPER
from signanon.reenactment.landmark_warp import (
    AIM_SLOPE, BROW_POINTS, LID_POINTS, LIP_POINTS, LandmarkAnimator, LandmarkWarpConfig, calibrate_gains,
    face_axes, inner_mouth_opening, point_gains, scale_expression, steady_irises, transfer_motion, uncross,
)  # fmt: skip
from signanon.video import iter_frames, probe_video

DRIVER = Path(__file__).resolve().parent / "data" / "talking_face_open_mouth.mp4"


@pytest.fixture(scope="module")
def driver():
    frames = list(iter_frames(probe_video(DRIVER)))
    meshes, found = detect_faces(frames)
    assert found.all()
    box = face_box(meshes[0])
    source = mesh_in_crop(meshes[0], box, 320)
    return crop(frames[0], box), source, np.asarray(meshes, np.float64)


def test_the_mouth_cap_closes_only_wide_openings_and_only_the_lower_face(driver):
    _, source, meshes = driver
    wide = int(np.argmax([inner_mouth_opening(m) for m in meshes]))
    free, _ = transfer_motion(source, meshes[wide], meshes[0])
    assert inner_mouth_opening(free) > 0.3  # the driver opens wide: the cap below has work to do
    capped, _ = transfer_motion(source, meshes[wide], meshes[0], max_mouth_opening=0.25)
    assert inner_mouth_opening(capped) == pytest.approx(0.25, abs=0.01)
    upper = list(BROW_POINTS) + list(LID_POINTS)
    assert np.allclose(capped[upper], free[upper])  # brows and lids as the driver has them
    small = int(np.argmin([abs(inner_mouth_opening(m) - 0.1) for m in meshes]))
    free, _ = transfer_motion(source, meshes[small], meshes[0])
    assert inner_mouth_opening(free) < 0.25
    capped, _ = transfer_motion(source, meshes[small], meshes[0], max_mouth_opening=0.25)
    assert np.allclose(capped, free)  # under the cap nothing moves


def _steep_readback(warper: LandmarkAnimator, rest: np.ndarray, c: float, p: float):
    """A read-back whose mouth-width slope is ``c * gain ** p`` (gain: the warper's current mouth
    width gain): the lips' displacement from the face at rest is scaled by ``c * gain ** (p - 1)``.
    (The repository's driver moves its mouth only; the lids' response is the one found steep.)"""
    lips = list(LIP_POINTS)

    def read(mesh: np.ndarray) -> np.ndarray:
        gain = float(warper._gains[lips[0], 0])
        out = np.array(mesh, np.float64)
        out[lips] = rest[lips] + c * gain ** (p - 1) * (out[lips] - rest[lips])
        return out

    return read


@pytest.mark.parametrize("p", [1.0, 2.0])
def test_two_calibration_rounds_reach_the_aimed_slope_on_a_steep_response(driver, p):
    image, source, meshes = driver
    reference = meshes[0]
    warper = LandmarkAnimator(LandmarkWarpConfig())
    warper.prepare(image, source)
    rest = transfer_motion(source, reference, reference)[0]
    config = LandmarkWarpConfig(mouth_width_gain=1.2, calibration_passes=2)
    read = _steep_readback(warper, rest, 0.45 / 1.2**p, p)  # slope ~0.45 at the starting gain 1.2
    show = lambda mesh: warper.target(mesh, reference)[0]  # noqa: E731 - the "frame" is the mesh itself
    gains, record = calibrate_gains(warper, meshes, reference, show, read, config)
    first = record["mouth_width"][0]["slope"]
    assert 0.3 < first < 0.6  # the read-back was weak to start with
    # one more round at the calibrated gains: the slope a viewer now sees
    check = LandmarkWarpConfig(mouth_width_gain=gains["mouth_width"], calibration_passes=1, gain_limits=(0.1, 10.0))
    _, again = calibrate_gains(warper, meshes, reference, show, read, check)
    assert again["mouth_width"][0]["slope"] == pytest.approx(AIM_SLOPE, rel=0.08)


def test_a_plain_step_stops_short_on_the_steep_response(driver, monkeypatch):
    """What the response estimate is for: without it, two rounds on p = 2 stop short of the aim
    (measured 0.77 vs 0.93 with it; the aim is 0.9)."""
    import signanon.reenactment.landmark_warp as warp

    monkeypatch.setattr(warp, "_response", lambda rounds: 1.0)
    image, source, meshes = driver
    reference = meshes[0]
    warper = LandmarkAnimator(LandmarkWarpConfig())
    warper.prepare(image, source)
    rest = transfer_motion(source, reference, reference)[0]
    read = _steep_readback(warper, rest, 0.45 / 1.2**2, 2.0)
    show = lambda mesh: warper.target(mesh, reference)[0]  # noqa: E731
    gains, _ = calibrate_gains(warper, meshes, reference, show, read, LandmarkWarpConfig(mouth_width_gain=1.2))
    check = LandmarkWarpConfig(mouth_width_gain=gains["mouth_width"], calibration_passes=1, gain_limits=(0.1, 10.0))
    _, again = calibrate_gains(warper, meshes, reference, show, read, check)
    assert again["mouth_width"][0]["slope"] < 0.88 * AIM_SLOPE  # measured 0.77: 14 % short



def _down(mesh: np.ndarray) -> np.ndarray:
    return face_axes(mesh)[1]


def test_a_lid_gain_opens_and_closes_the_eye_but_does_not_move_it(driver):
    _, source, _ = driver
    down = _down(source)
    upper, lower = list(LID_UPPER_R), list(LID_LOWER_R)
    expression = np.zeros((478, 3))
    expression[list(LID_POINTS), :2] += 2.0 * down  # the eye looks down: both lids 2 px lower
    expression[upper, :2] += 1.5 * down  # ... and closes by 1.5 px
    gains = point_gains({"eye_openness": 2.0})
    out = scale_expression(expression, source, gains)
    assert np.allclose(out[lower, :2] @ down, 2.0)  # the lower lid as the driver's
    assert np.allclose((out[upper, :2] - out[lower, :2]) @ down, 2.0 * 1.5)  # twice the closing
    brows = list(BROW_POINTS)
    assert np.allclose(out[brows], 0.0)


def test_an_upper_lid_closing_past_the_lower_stops_on_it_and_lips_meet_halfway(driver):
    _, source, _ = driver
    down = source[152, :2] - source[10, :2]  # forehead -> chin: uncross's "down"
    down /= np.linalg.norm(down)
    moved = np.array(source, np.float64)
    upper, lower = LID_UPPER_R[3], LID_LOWER_R[3]
    gap = float((source[lower, :2] - source[upper, :2]) @ down)
    moved[upper, :2] += (gap + 3.0) * down  # 3 px past the lower lid
    lip_up, lip_lo = LIP_INNER_UPPER[4], LIP_INNER_LOWER[4]
    lip_gap = float((source[lip_lo, :2] - source[lip_up, :2]) @ down)
    moved[lip_up, :2] += (lip_gap + 4.0) * down  # 4 px past the lower lip
    out = uncross(moved, source)
    assert np.allclose(out[lower], moved[lower])  # the lower lid stays
    assert float((out[lower, :2] - out[upper, :2]) @ down) == pytest.approx(0.0, abs=1e-9)
    assert float((out[lip_lo, :2] - moved[lip_lo, :2]) @ down) == pytest.approx(2.0)  # halfway
    assert float((out[lip_lo, :2] - out[lip_up, :2]) @ down) == pytest.approx(0.0, abs=1e-9)


def test_the_iris_of_a_closed_eye_stays_and_an_open_eye_looks_around(driver):
    _, source, _ = driver
    down = _down(source)
    gap = np.mean((source[list(LID_LOWER_R), :2] - source[list(LID_UPPER_R), :2]) @ down)
    expression = np.zeros((478, 3))
    expression[list(IRIS_R) + list(IRIS_L), :2] = 3.0 * down  # both irises "drop" 3 px
    expression[list(LID_UPPER_R), :2] += gap * down  # the right eye closes
    out = steady_irises(expression, source)
    assert np.allclose(out[list(IRIS_R)], 0.0)  # closed: no gaze
    assert np.allclose(out[list(IRIS_L)], expression[list(IRIS_L)])  # open: as the driver
