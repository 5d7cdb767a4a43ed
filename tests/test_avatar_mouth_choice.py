"""The lips' rest parting chosen per signer by reading the avatar's own drawing back
(:mod:`signanon.avatar.mouth_choice`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from signanon.avatar.mouth_choice import MouthChoiceConfig, pick_parting

DATA = Path(__file__).parent / "data"
NGT = DATA / "ngt_numbers_small.mp4"
SHIPPED = 0.0175  # the default palette's and dark-skin's own parting


def test_the_parting_reading_nearest_the_signer_is_picked():
    """What the probe read on the NGT clip padded to portrait (gain, r of the read mouth opening
    against the signer's): the look's own parting reads 1.63 times the signer's movement, no
    parting (1.26, r 0.90) reads nearest; larger partings read further off or correlate under
    ``min_r``."""
    read = {SHIPPED: (1.63, 0.72), 0.0: (1.26, 0.90), 0.035: (1.90, 0.56), 0.05: (1.42, 0.53)}
    assert pick_parting(read, SHIPPED) == 0.0
    # a damped read counts as far as an exaggerated one: 0.45 is further from 1 than 1.31
    assert pick_parting({SHIPPED: (1.31, 0.85), 0.0: (0.45, 0.75)}, 0.0) == SHIPPED
    # a parting whose read does not follow the signer is never picked, however near 1 its gain
    assert pick_parting({SHIPPED: (1.6, 0.7), 0.05: (1.0, 0.3)}, SHIPPED) == SHIPPED
    # none follows the signer, or too few frames were read: the look's own
    assert pick_parting({SHIPPED: (1.6, 0.5), 0.0: (1.2, 0.4), 0.05: None}, SHIPPED) == SHIPPED
    # the look's own reads well: kept, though another would read nearer 1
    assert pick_parting({SHIPPED: (1.16, 0.86), 0.0: (1.0, 0.9)}, SHIPPED) == SHIPPED
    # another reads only a little nearer (DGS ZUG at a third, whose output read the other way:
    # 1.34 with the look's own, 1.49 with 0.035): within the probe's noise, the look's own is kept
    assert pick_parting({SHIPPED: (1.52, 0.96), 0.035: (1.38, 0.94), 0.05: (1.39, 0.94)}, SHIPPED) == SHIPPED
    # the look's own correlating under min_r is still kept where nothing reads nearer
    assert pick_parting({SHIPPED: (1.36, 0.69), 0.0: (0.70, 0.72)}, SHIPPED) == SHIPPED
    # where the look's own follows the signer (r >= min_r), a parting at r 0.6-0.7 may be taken: the
    # NGT clip zoomed in and out (output read back 0.71 / 1.41 with the look's own, 0.75 / 0.82 with 0)
    zoomed = {SHIPPED: (1.95, 0.76), 0.0: (0.95, 0.65), 0.035: (2.23, 0.76), 0.05: (2.23, 0.78)}
    assert pick_parting(zoomed, SHIPPED) == 0.0
    assert pick_parting(zoomed, SHIPPED, MouthChoiceConfig(min_r_trusted=0.7)) == SHIPPED
    # ... but not where the look's own does not (ASL DIFFERENT: the probe read 1.69 at r 0.64, the
    # output 0.96; the parting at r 0.60 damped the output to 0.68)
    different = {0.0: (1.69, 0.64), SHIPPED: (1.6, 0.53), 0.035: (1.23, 0.53), 0.05: (1.2, 0.6)}
    assert pick_parting(different, 0.0) == 0.0
    with pytest.raises(ValueError, match="settle"):
        MouthChoiceConfig(settle=(1.1, 1.3))
    with pytest.raises(ValueError, match="partings"):
        MouthChoiceConfig(partings=(0.0, -0.01))


def _portrait_copy(source: Path, path: Path) -> Path:
    """``source`` placed in a 720x1280 portrait frame at 2.25 times its size (its face ~49 px
    between the eyes where the 192x144 clip's output draws it at 92), as a phone would frame it."""
    import cv2

    from signanon.video import VideoWriter, iter_frames, probe_video

    info = probe_video(source)
    scale = 0.6 * 720 / info.width
    w, h = round(info.width * scale), round(info.height * scale)
    x0, y0 = (720 - w) // 2, round(0.45 * 1280 - h / 2)
    with VideoWriter(path, 720, 1280, info.fps) as writer:
        for frame in iter_frames(info):
            canvas = np.full((1280, 720, 3), 128, np.uint8)
            canvas[y0 : y0 + h, x0 : x0 + w] = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)
            writer.write(canvas)
    return path


def test_a_small_mouth_framed_smaller_reads_nearer_the_signers_strength(tmp_path):
    """The NGT signer mouths numbers with small openings (std 0.009-0.011 inter-ocular distances).
    In a portrait copy the look's own parting puts the drawn rest mouth at the edge where
    MediaPipe starts to read it open, and the read flickers between closed and open by more than
    the signer's mouth moves. The probe reads that and draws another parting. Measured as
    `evaluate` measures (the read-back's figures, tests/test_evaluation_readback.py), mouth
    opening r / gain: this copy in the default look with the other probes off 0.79 / 1.72 without
    the choice, 0.77 / 1.03 with it (with the look chosen and the other probes on, 0.49 / 1.75 ->
    0.87 / 1.53, three times as long); the shared data's portrait copy (tools/make_framings.py)
    0.65 / 1.66 -> 0.89 / 1.22."""
    from conftest import probes_off
    from signanon.avatar.anonymizer import AvatarAnonymizer, AvatarConfig, IdentityGuardConfig
    from signanon.evaluation.evaluate import EvaluationConfig, Evaluator
    from signanon.evaluation.signing import compare_signing

    clip = _portrait_copy(NGT, tmp_path / "ngt_portrait.mp4")
    # only the parting is chosen: the look pinned, the hands', the furrow's and the guard's probes off
    others = {"palette": "default", "face_shape": "average", "guard": IdentityGuardConfig(enabled=False),
              **probes_off(but="mouth_choice")}  # fmt: skip
    outs, records = {}, {}
    for on in (True, False):
        outs[on] = tmp_path / f"choice_{on}.mp4"
        config = AvatarConfig(mouth_choice=MouthChoiceConfig(enabled=on), **others)
        summary = AvatarAnonymizer(config)(clip, outs[on], progress=False)
        records[on] = summary.extra.get("mouth_parting")
    assert records[False] is None
    record = records[True]
    assert record["probe_frames"] >= 30 and record["signer_std"] >= 0.006, record
    own, chosen = record["own"], record["chosen"]
    assert own == SHIPPED and chosen != own, record
    read = {float(p): v for p, v in record["read"].items()}
    assert abs(np.log(read[chosen][0])) < abs(np.log(read[own][0])), record

    evaluator = Evaluator(EvaluationConfig(identity_every=10**6))  # landmarks only
    original = evaluator.analyse(clip)
    mouth = {}
    for on, out in outs.items():
        drawn = evaluator.analyse(out)
        figures = compare_signing((original.data, original.conf, original.info.width),
                                  (drawn.data, drawn.conf, drawn.info.width))  # fmt: skip
        mouth[on] = figures["face_grammar"]["mouth_opening"]
    with_choice, without = mouth[True], mouth[False]
    # the gain brought nearer the signer's without losing the correlation
    assert with_choice["r"] >= 0.6 and with_choice["r"] >= without["r"] - 0.05, mouth
    assert abs(np.log(with_choice["gain"])) < abs(np.log(without["gain"])), mouth


def test_probe_frames_are_drawn_ahead_in_order_off_the_callers_thread():
    """The hand and mouth probes draw the next frames on a worker thread while MediaPipe reads the
    last one: the frames come in the poses' order, a drawing's error reaches the caller, and a
    probe that stops early leaves no drawing running."""
    import threading

    from signanon.avatar.renderer import drawn_ahead

    threads, calls = set(), []

    def draw(k: int) -> np.ndarray:
        threads.add(threading.get_ident())
        calls.append(k)
        if k == 7:
            raise ValueError("frame 7 cannot be drawn")
        return np.full((2, 2, 3), k, np.uint8)

    got = [(k, int(image[0, 0, 0])) for k, image in drawn_ahead(range(7), draw)]
    assert got == [(k, k) for k in range(7)] and calls == list(range(7))
    assert threading.get_ident() not in threads
    with pytest.raises(ValueError, match="frame 7"):
        list(drawn_ahead(range(10), draw))
    calls.clear()
    ahead = drawn_ahead(range(100), draw, depth=2)
    next(ahead)
    ahead.close()  # waits for what was submitted; nothing more is drawn
    assert calls == [0, 1, 2], calls
