"""The avatar's expression gains, measured on each clip by reading the drawn face back.

A fixed mouth gain read back at 2.1 times the signer's mouth movement on the DGS clip (the drawn
face is large and the signer's mouthing wide) while other clips needed more; the calibration
(:mod:`signanon.avatar.face_gains`, opt-in for now: see FaceGainCalibration.enabled) measures it
per clip. The loop is checked on a read-back whose response is known exactly, then end to end on
the real clip.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import probes_off

os.environ.setdefault("GLOG_minloglevel", "2")

from signanon.avatar import expression as E
from signanon.avatar.face_gains import (
    SERIES_GAINS, FaceGainCalibration, _config_with, _gains_of, calibrate_face_gains,
)  # fmt: skip
from signanon.avatar.identity_guard import IdentityGuardConfig
from signanon.landmarks import geometry, layout
from signanon.landmarks.grammar import mouth_opening
from signanon.landmarks.regions import INNER_LIP_CENTRE

DGS = Path(__file__).resolve().parent / "data" / "dgs_zug_100.mp4"
#: the probes that read the drawing back for other things than the expression gains, off (the
#: brows' probe chooses an expression gain: left as it is, and skipped where the gains are measured)
WITHOUT_OTHER_PROBES = {**probes_off(but="furrow_choice"), "guard": IdentityGuardConfig(enabled=False)}
ON = FaceGainCalibration(enabled=True)  # off by default for now (see FaceGainCalibration.enabled)


def test_gains_round_trip_through_the_face_config():
    config = E.FaceConfig(brow_gain=1.3, furrow_gain=1.5, mouth_gain=0.9)
    gains = _gains_of(config)
    assert gains["brow_furrow"] == pytest.approx(1.3 * 1.5)  # both act on the furrow
    assert _config_with(E.FaceConfig(), gains) == config
    assert set(gains) == set(SERIES_GAINS)


# -- the loop, on a read-back whose response is known ------------------------------------------


def signer_frames(n: int = 40, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Frames whose face is the canonical face in pixels, the lower inner lip moving (mouthing)."""
    canon = E.load_canonical_face().points.astype(np.float64)
    rng = np.random.default_rng(seed)
    frames = []
    for t in range(n):
        data = np.zeros((586, 3), np.float32)
        face = canon * 100.0 + [320.0, 240.0, 0.0]
        face[INNER_LIP_CENTRE[1], 1] += 12.0 * (0.5 + 0.5 * np.sin(t / 3.0)) + rng.normal(0, 0.3)
        data[layout.FACE] = face
        frames.append((data, np.ones(586, np.float32)))
    return frames


def affine_read_back(intercept: float, rate: float, noise: float = 0.0, seed: int = 1):
    """(draw, read): the drawn face's mouth opening reads back at ``intercept + rate * mouth_gain``
    times the signer's (plus ``noise`` IOD of noise); everything else exactly as the signer's."""
    rng = np.random.default_rng(seed)

    def draw(face: E.FaceAnimator, data: np.ndarray, confidence: np.ndarray):
        return face.config.mouth_gain, data[layout.FACE].astype(np.float64)

    def read(frame):
        gain, mesh = frame
        out = mesh.copy()
        iod = geometry.inter_ocular(mesh)
        upper, lower = INNER_LIP_CENTRE
        opening = mouth_opening(mesh) * (intercept + rate * gain) + rng.normal(0, noise)
        out[lower, 1] = out[upper, 1] + opening * iod
        return out

    return draw, read


def calibrated_animator(frames) -> E.FaceAnimator:
    return E.FaceAnimator.calibrate([(d[layout.FACE], c[layout.FACE]) for d, c in frames], 640, 480)


def test_each_round_corrects_the_gain_towards_the_aim():
    frames = signer_frames()
    intercept, rate = 0.3, 0.35  # from the start (gain 1) read back at 0.65; slope 1 needs a gain of 2
    draw, read = affine_read_back(intercept, rate)
    start = calibrated_animator(frames)
    landed = {}
    for rounds in (1, 3):
        face, record = calibrate_face_gains(start, frames, draw, read, FaceGainCalibration(enabled=True, rounds=rounds))
        landed[rounds] = intercept + rate * face.config.mouth_gain  # the slope the final gain reads back at
        measured = record["rounds"]["mouth_opening"]
        assert len(measured) == rounds
        assert measured[0]["gain"] == pytest.approx(FaceGainCalibration().start)
        assert measured[0]["slope"] == pytest.approx(intercept + rate * 1.0, abs=0.01)
        assert record["gains"]["mouth_opening"] == pytest.approx(face.config.mouth_gain, abs=1e-3)
        # series the signer does not move keep their gains
        assert set(record["rounds"]) == {"mouth_opening"}
        assert face.config.brow_gain == E.FaceConfig().brow_gain
    assert abs(landed[1] - 1.0) > 0.15  # one division overshoots: the slope is not proportional
    assert abs(landed[3] - 1.0) < 0.05


def test_a_noisy_read_back_is_aimed_between_its_slope_and_its_movement():
    """With a read-back that carries noise of its own (r below 1), slope 1 would make it move 1/r
    as much as the signer; the gain is set for slope sqrt(r) instead."""
    frames = signer_frames()
    draw, read = affine_read_back(intercept=0.0, rate=1.0, noise=0.02)  # read back at exactly the gain, plus noise
    face, record = calibrate_face_gains(calibrated_animator(frames), frames, draw, read, ON)
    last = record["rounds"]["mouth_opening"][-1]
    assert all(0.7 < m["r"] < 0.99 for m in record["rounds"]["mouth_opening"])  # noisy, but followed
    # the final gain aims the last round's slope at sqrt(r), not at 1
    aimed = last["gain"] * np.sqrt(last["r"]) / last["slope"]
    assert face.config.mouth_gain == pytest.approx(aimed, rel=0.01)
    assert abs(face.config.mouth_gain - last["gain"] / last["slope"]) > 0.005


def test_a_weak_read_back_raises_the_gain_within_its_limit():
    frames = signer_frames()
    draw, read = affine_read_back(intercept=0.0, rate=0.2)  # would need a gain of 5
    face, _ = calibrate_face_gains(calibrated_animator(frames), frames, draw, read, FaceGainCalibration(enabled=True, gain_limits=(0.6, 3.0)))
    assert face.config.mouth_gain == pytest.approx(3.0)


def test_a_read_back_that_does_not_follow_the_signer_leaves_the_gain():
    frames = signer_frames()
    draw, read = affine_read_back(intercept=0.0, rate=0.05, noise=0.05)  # noise, no signal
    face, record = calibrate_face_gains(calibrated_animator(frames), frames, draw, read, ON)
    assert record["rounds"]["mouth_opening"][0]["r"] < 0.5
    assert face.config.mouth_gain == E.FaceConfig().mouth_gain  # the default, not the start


def test_nothing_is_measured_without_a_neutral_face_or_when_disabled():
    frames = signer_frames()
    draw, read = affine_read_back(0.4, 0.95)
    few = E.FaceAnimator.calibrate([], 640, 480)
    assert calibrate_face_gains(few, frames, draw, read, ON) == (few, {})
    face = calibrated_animator(frames)
    assert calibrate_face_gains(face, frames, draw, read, FaceGainCalibration(enabled=False)) == (face, {})


# -- the real clip, end to end ---------------------------------------------------------------------


def mouth_gain_and_r(source: Path, output: Path) -> tuple[float, float]:
    """The output's mouth-opening std over the source's, and their correlation, both read back by
    a fresh MediaPipe Holistic (frames where both show a face)."""
    from test_anonymize import face_series, landmarks_of

    s = face_series(*landmarks_of(source), "mouth_opening")
    o = face_series(*landmarks_of(output), "mouth_opening")
    keep = np.isfinite(s) & np.isfinite(o)
    assert keep.mean() > 0.9
    return float(o[keep].std() / s[keep].std()), float(np.corrcoef(s[keep], o[keep])[0, 1])


@pytest.fixture(scope="module")
def dgs_runs(tmp_path_factory):
    from signanon.avatar.animator import AnimatorConfig
    from signanon.avatar.anonymizer import AvatarAnonymizer, AvatarConfig

    folder = tmp_path_factory.mktemp("face_gains")
    runs = {}
    for name, calibration in (("fixed", FaceGainCalibration()), ("measured", ON)):
        out = folder / f"{name}.mp4"
        # the look auto chooses on this clip pinned, and what reads the drawing back for other
        # things than the expression gains off (the look, the hands, the parting and the guard:
        # 2 x 30 s): only the gains are measured here
        config = AvatarConfig(palette="dark-skin", face_shape="average", animator=AnimatorConfig(face_gains=calibration),
                              **WITHOUT_OTHER_PROBES)  # fmt: skip
        summary = AvatarAnonymizer(config)(DGS, out, progress=False)
        runs[name] = (summary, *mouth_gain_and_r(DGS, out))
    return runs


def test_the_measured_gain_brings_the_mouth_to_the_signers_strength(dgs_runs):
    # measured: the fixed gain read back 1.26 (r 0.96; 2.09 when mouth_gain was 1.7 over a median
    # neutral mouth), the measured one 0.89 (r 0.95; gain 0.64); with the other probes off (session
    # 47) 1.13 (r 0.93) and 0.98 (r 0.93; gain 0.74)
    _, fixed_gain, fixed_r = dgs_runs["fixed"]
    summary, gain, r = dgs_runs["measured"]
    assert 0.7 <= fixed_gain <= 1.4, f"fixed gains: mouth opening read back at {fixed_gain:.2f} of the signer's"
    assert 0.75 <= gain <= 1.3, f"mouth opening read back at {gain:.2f} of the signer's"
    assert r >= 0.85 and fixed_r >= 0.85
    record = summary.extra["face_gains"]
    assert record["gains"]["mouth_opening"] < 1.2
    assert "face_gains" not in dgs_runs["fixed"][0].extra


def test_the_face_gains_are_measured_at_the_outputs_size(tmp_path, monkeypatch):
    """A clip under ``min_output_side`` is drawn larger; the face-gain calibration drew its frames
    at the input's 192x144 (NGT), where the face reads differently from the 640x480 output."""
    from conftest import first_frames_clip
    from signanon.avatar import chunk
    from signanon.avatar.anonymizer import AvatarAnonymizer, AvatarConfig

    seen = {}

    def spy(animator, frames, renderer, config):
        seen["size"] = (round(renderer.width * renderer.scale), round(renderer.height * renderer.scale))
        return animator, {}

    monkeypatch.setattr(chunk, "tune_avatar_face", spy)
    config = AvatarConfig(palette="default", face_shape="average", **WITHOUT_OTHER_PROBES)  # only the size is looked at
    config = dataclasses.replace(config, animator=dataclasses.replace(config.animator, face_gains=ON))
    clip = first_frames_clip(DGS.parent / "ngt_numbers_small.mp4", 24, tmp_path / "ngt.mp4")
    AvatarAnonymizer(config)(clip, tmp_path / "out.mp4", progress=False)
    assert config.output_size(192, 144) != (192, 144)  # drawn larger: the check is not vacuous
    assert seen["size"] == config.output_size(192, 144)
