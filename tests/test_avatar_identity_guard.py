"""The avatar's identity guard: no drawn frame is recognised as the signer (issue 11).

Measured with the independent read-back before the guard: on the DGS clip downscaled to a third
(~20 px between the eyes) dlib matched the default-palette avatar to the signer on 75 of 171
frames. The guard picks the palette dlib finds least like the signer, and checks the drawn faces,
drawing a frame whose face is still recognised with a blank face (signanon.avatar.identity_guard).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from conftest import probes_off
from signanon.avatar.animator import AnimatorConfig, AvatarAnimator, has_body
from signanon.avatar.anonymizer import AvatarAnonymizer, AvatarConfig
from signanon.avatar.identity_guard import (
    GuardedRenderer, IdentityGuardConfig, SignerFace, _beats, calmed, choose_look, drawn_face, find_signer, probe_cost,
)  # fmt: skip
from signanon.avatar.renderer import AvatarRenderer
from signanon.avatar.retarget import BodyProportions
from signanon.avatar.canonical import FACE_SHAPES, load_canonical_face
from signanon.avatar.style import PALETTES, UNOFFERED_LOOKS, Look
from signanon.landmarks.holistic import HolisticConfig, HolisticEstimator
from signanon.recognition import DlibEmbedder
from signanon.video import VideoWriter, iter_frames, iter_selected_frames, probe_video
from signanon.video.people import sampled_indices

DATA = Path(__file__).resolve().parent / "data"
DGS = DATA / "dgs_zug_100.mp4"
SAME_PERSON = 0.6


@pytest.fixture(scope="module")
def embedder() -> DlibEmbedder:
    return DlibEmbedder()


def _first_frames(factor: int = 1):
    """The first 40 frames of the DGS clip at 1/``factor`` of its size: ``(rgb, (data,
    confidence))`` per frame with a body, and an animator calibrated on them (a ~20 px face at 3)."""
    info = probe_video(DGS)
    w, h = info.width // factor, info.height // factor
    frames = []
    with HolisticEstimator() as estimate:
        for rgb in itertools.islice(iter_frames(info), 40):
            if factor != 1:
                rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
            row = estimate(rgb)
            if has_body(row[1], row[0]):
                frames.append((rgb, row))
    return frames, AvatarAnimator.calibrate([row for _, row in frames], w, h)


@pytest.fixture(scope="module")
def signing(embedder):
    """The DGS clip's first 40 frames at 640x480 (:func:`_first_frames`)."""
    return _first_frames()


def _poses(signing, step: int = 4):
    frames, animator = signing
    return [p for p in (animator(*row) for _, row in frames[::step]) if p is not None and p.face is not None]


def _drawn_embedding(embedder, frame, pose) -> np.ndarray:
    return drawn_face(embedder, frame, pose).embedding


def test_the_signer_is_found_on_frames_spread_over_the_clip(embedder):
    """20 frames of 100 (one in 5): their mean is the mean the read-back takes over every frame.
    With a Holistic config, ``probe_frames`` of them, spread evenly (so over the whole clip, not its
    first seconds), come back as raw still-image landmarks: the look is chosen on them."""
    info = probe_video(DGS)
    config = IdentityGuardConfig()
    signer = find_signer(info, config, embedder, HolisticConfig())
    assert signer.found and len(signer.samples) == 20  # the signer's face is in every frame
    assert signer.others.shape == (0, 128)  # nobody else
    frames = list(iter_frames(info))
    every = [f[0].embedding for f in (embedder.faces(rgb) for rgb in frames) if f]
    assert len(every) == 100
    assert np.linalg.norm(signer.mean - np.mean(every, axis=0)) < 0.03  # 0.007 when written
    assert np.linalg.norm(signer.samples[0] - every[0]) < 1e-6  # frame 0 is one of them

    assert len(signer.bodies) == config.probe_frames  # a body on every frame
    # the sampled frames 0, 10, 15, ..., 95 (12 of the 20), seen in turn by a still-image Holistic
    sampled = sorted(sampled_indices(info.frame_count, 20))
    picks = sorted({sampled[k] for k in np.linspace(0, 19, 12).round().astype(int)})
    assert picks[0] == 0 and picks[-1] == 95
    with HolisticEstimator(HolisticConfig(static_image_mode=True)) as estimate:
        rows = [estimate(frames[i]) for i in picks]
    for (data, confidence), (want, want_confidence) in zip(signer.bodies, rows, strict=True):
        assert has_body(confidence, data) and data.shape == (586, 3)
        np.testing.assert_allclose(data, want, atol=1e-3)
        np.testing.assert_array_equal(confidence, want_confidence)


def test_every_person_the_clip_shows_is_guarded_against(tmp_path, embedder):
    """Two real signers side by side: the webcam signer (left) and ASL HOUSE's (right, whose face
    dlib boxes larger here). Holistic follows one of them, not necessarily the largest face, so a
    drawn face must be kept from either: the other person's mean comes back in ``others`` and
    counts in the distance, while a stranger stays as far as before."""
    from signanon.avatar.identity_guard import distance_to_signer

    web = [cv2.resize(f, (270, 360), interpolation=cv2.INTER_AREA)
           for f in itertools.islice(iter_frames(probe_video(DATA.parent.parent / "examples" / "asl_webcam.mp4")), 40)]
    house = [cv2.resize(f, (480, 360)) for f in itertools.islice(iter_frames(probe_video(DATA / "asl_house.gif")), 40)]
    path = tmp_path / "two.mp4"
    with VideoWriter(path, 750, 360, 25) as writer:
        for a, b in zip(web, house):
            writer.write(np.concatenate([a, b], axis=1))
    signer = find_signer(probe_video(path), IdentityGuardConfig(), embedder)
    assert len(signer.samples) == 8 and signer.others.shape == (1, 128)
    for frames, alone in ((house, True), (web, False)):
        for rgb in frames[:12:4]:
            (face,) = embedder.faces(rgb)
            to_mean = float(np.linalg.norm(face.embedding - signer.mean))
            assert (to_mean < SAME_PERSON) == alone  # the mean alone would miss the webcam signer (0.69 when written)
            assert distance_to_signer(face.embedding, signer) < 0.4  # either is recognised (0.15-0.27 when written)
    stranger = embedder.faces(cv2.cvtColor(cv2.imread(str(DATA / "faces" / "obama" / "1.jpg")), cv2.COLOR_BGR2RGB))[0]
    assert distance_to_signer(stranger.embedding, signer) > SAME_PERSON


def test_a_cut_from_one_signer_to_another_is_told_apart_from_one_signer(tmp_path, embedder):
    """ASL HOUSE's first 60 frames, then DGS ZUG's first 60 (two real signers, one after the other,
    as a dialogue edited to whoever signs): the largest face belongs to two people in turn, so the
    signer's mean embedding is a blend of them, which the run reports. Each clip alone: one."""
    from signanon.avatar.identity_guard import people_in_turn

    def fitted(path: Path, count: int) -> list[np.ndarray]:
        out = []
        for rgb in itertools.islice(iter_frames(probe_video(path)), count):
            h, w = rgb.shape[:2]
            k = min(640 / w, 480 / h)
            canvas = np.full((480, 640, 3), 118, np.uint8)
            small = cv2.resize(rgb, (round(w * k), round(h * k)))
            y, x = (480 - small.shape[0]) // 2, (640 - small.shape[1]) // 2
            canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
            out.append(canvas)
        return out

    house, zug = fitted(DATA / "asl_house.gif", 60), fitted(DATA / "dgs_zug_100.mp4", 60)
    clips = {"cut": house + zug, "house": house, "zug": zug}
    found = {}
    for name, frames in clips.items():
        path = tmp_path / f"{name}.mp4"
        with VideoWriter(path, 640, 480, 25) as writer:
            for rgb in frames:
                writer.write(rgb)
        found[name] = find_signer(probe_video(path), IdentityGuardConfig(), embedder)
    cut = found["cut"]
    assert cut.in_turn == 2 and len(cut.others) == 2  # both signers are kept from, as before
    first, second = cut.others
    assert np.linalg.norm(first - second) > SAME_PERSON  # two people (0.88 apart when measured)
    assert all(np.linalg.norm(cut.mean - o) < np.linalg.norm(first - second) * 0.75 for o in cut.others)  # the blend
    assert found["house"].in_turn == 1 and found["zug"].in_turn == 1
    # the rule on its own: a crowd of lone faces is nobody in turn, a person on under a fifth is not counted
    rng = np.random.default_rng(1)
    people = [v / np.linalg.norm(v) for v in rng.normal(0, 1, (3, 128))]
    near = lambda v: v + rng.normal(0, 0.01, 128)  # noqa: E731
    assert people_in_turn(np.array([near(people[0])] * 8 + [near(people[1])] * 2), SAME_PERSON) == 2
    assert people_in_turn(np.array([near(people[0])] * 9 + [near(people[1])] * 1), SAME_PERSON) == 1
    assert people_in_turn(np.array([near(p) for p in people]), SAME_PERSON) == 1


def test_other_people_are_groups_of_faces_away_from_the_signer():
    """The grouping rule on its own: the signer's faces (however many), a second person seen twice,
    and a lone face (a detector's false find) that is not taken for a person."""
    from signanon.avatar.identity_guard import other_people

    rng = np.random.default_rng(0)
    signer, second, junk = (rng.normal(0, 1, 128) for _ in range(3))
    signer, second, junk = (v / np.linalg.norm(v) for v in (signer, second, junk))  # ~1.4 apart
    near = lambda v: v + rng.normal(0, 0.01, 128)  # noqa: E731  (one face of that person)
    faces = [near(signer) for _ in range(6)] + [near(second), near(junk), near(second)]
    others = other_people(faces, signer, SAME_PERSON)
    assert others.shape == (1, 128) and np.linalg.norm(others[0] - second) < 0.15  # two faces 0.11 off it
    assert other_people([near(signer) for _ in range(4)], signer, SAME_PERSON).shape == (0, 128)


def test_a_drawn_face_recognised_as_the_signer_is_hidden_from_the_recogniser(signing, embedder):
    """Fail closed: make the "signer" the avatar itself (its own drawn face's embeddings), so every
    checked frame is within the limit; each must come out with a face dlib does not match, the
    rest of the frame untouched."""
    poses = _poses(signing)
    renderer = AvatarRenderer(640, 480, PALETTES["default"])
    own = np.array([_drawn_embedding(embedder, renderer.render(p), p) for p in poses])
    config = IdentityGuardConfig()
    guard = GuardedRenderer(renderer, SignerFace(own), config, DlibEmbedder)
    out = [guard.render(p) for p in poses]
    c = guard.counts
    assert c.checked == len(poses)  # near the limit: every frame checked
    assert c.calmed + c.blanked + c.blurred == len(poses)  # and every one redrawn
    assert c.min_distance < 0.3
    mean = own.mean(axis=0)
    for frame, pose in zip(out, poses):
        found = embedder.faces(frame)
        if found:  # a blank face: dlib finds none, or one that is not the "signer"
            assert np.linalg.norm(found[0].embedding - mean) > config.limit
        assert np.linalg.norm(_drawn_embedding(embedder, frame, pose) - mean) > config.limit
        # the body and hands are drawn as before: only the head changed (the blank face, and
        # where that was still recognised, the blur over the square twice the face's size)
        plain = renderer.render(pose)
        ys, xs = np.nonzero(np.abs(frame.astype(int) - plain).sum(axis=2) > 0)
        lo, hi = pose.face[:, :2].min(axis=0), pose.face[:, :2].max(axis=0)
        centre, extent = (lo + hi) / 2, (hi - lo).max() + 2
        assert len(xs) and (np.abs(xs - centre[0]) <= extent).all() and (np.abs(ys - centre[1]) <= extent).all()
    # against itself even the calm and the blank face (same skin, hair and head) are within the
    # limit: blurred
    assert c.blurred == len(poses)


def test_a_face_far_from_the_signer_is_checked_on_fewer_frames(signing, embedder):
    """A stranger's face (a real photo) far from the avatar: no frame blanked, and the frames
    between checks only where the last distance leaves room for the drift."""
    poses = _poses(signing, step=1)
    photo = sorted((DATA / "faces").glob("*/*.jpg"))[0]
    rgb = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
    stranger = embedder.faces(rgb)[0].embedding[None]
    config = IdentityGuardConfig()
    guard = GuardedRenderer(AvatarRenderer(640, 480, PALETTES["default"]), SignerFace(stranger), config, DlibEmbedder)
    for pose in poses:
        guard.render(pose)
    c = guard.counts
    assert c.calmed == c.blanked == c.blurred == 0 and c.min_distance > config.limit + 0.1
    assert c.checked < len(poses) and c.checked >= len(poses) / (config.max_stride + 1)


def test_auto_avoids_the_look_that_resembles_the_signer(signing, embedder):
    """The "signer" is the avatar drawn in the default palette on the average face: auto must pick
    another look, the first safe one in order (every palette on the average face, then on each
    other face shape)."""
    frames, animator = signing
    poses = _poses(signing)
    default = AvatarRenderer(640, 480, PALETTES["default"])
    own = np.array([_drawn_embedding(embedder, default.render(p), p) for p in poses])
    looks = AvatarConfig().looks
    order = [Look(p, PALETTES[p], s).name for s in FACE_SHAPES for p in PALETTES if (p, s) not in UNOFFERED_LOOKS]
    assert [look.name for look in looks] == order and order[0] == "default" and "light-skin/short" in order
    assert "dark-skin/short" not in order  # within 0.6 of a real face
    config = IdentityGuardConfig()
    chosen, record = choose_look(
        animator, [row for _, row in frames], looks, lambda look: AvatarRenderer(640, 480, look.style, look.canonical()),
        SignerFace(own), config, embedder,
    )  # fmt: skip
    cost = {name: c for name, (c, _) in record["scores"].items()}
    nearest = {name: d for name, (_, d) in record["scores"].items()}
    assert chosen.name != "default" and record["chosen"] == chosen.name
    # every probe of the default look is the signer's own face: each costs 1
    assert nearest["default"] < config.limit and cost["default"] == record["probe_frames"] == len(frames[:: len(frames) // 12][:12])
    # high-contrast shares the default's skin and hair: it may score as near. Every look is within
    # the limit of the avatar's own face here (all cost the same): the furthest nearest face decides
    assert nearest[chosen.name] > nearest["default"] + 0.1
    # drawn in order up to the first safe look, which is kept; none safe: the one that came near the limit least
    drawn = list(record["scores"])
    assert drawn == order[: len(drawn)]
    safe = [n for n in drawn if nearest[n] >= config.limit + config.near]
    best = drawn[0]  # a later look wins only by config.tie of cost, or tie_distance further at a like cost
    for n in drawn[1:]:
        if _beats((cost[n], -nearest[n]), (cost[best], -nearest[best]), config):
            best = n
    assert safe in ([chosen.name], []) and (safe or chosen.name == best)


def test_a_near_tie_between_looks_keeps_the_earlier_one():
    """Looks come in order of preference; a later one is drawn only where it is clearly further from
    the signer. On the 192x144 NGT clip mirrored, light-skin/short (cost 0.092, nearest 0.6908)
    took it from dark-skin (0.097, 0.6923): noise, and the mouth opening read back at gain 0.23."""
    config = IdentityGuardConfig()
    earlier = (0.097, -0.6923)
    assert not _beats((0.092, -0.6908), earlier, config)  # 0.005 cheaper, nearer: the earlier is kept
    assert not _beats((0.092, -0.6950), earlier, config)  # 0.0027 further: noise too
    assert _beats((0.03, -0.60), earlier, config)  # 0.067 cheaper
    assert _beats((0.12, -0.75), earlier, config)  # a like cost, nearest face 0.058 further
    assert not _beats((0.20, -0.90), earlier, config)  # further, but dearer by more than the tie
    assert _beats((0.092, -0.6908), earlier, IdentityGuardConfig(tie=0.0, tie_distance=0.0))  # no tie: the cheaper
    with pytest.raises(ValueError, match="tie"):
        IdentityGuardConfig(tie=-0.1)
    with pytest.raises(ValueError, match="margin"):
        IdentityGuardConfig(margin=float("nan"))  # every comparison with nan is false: no face would be redrawn
    with pytest.raises(ValueError, match="threshold"):
        IdentityGuardConfig(threshold=float("nan"))  # likewise: no drawn face would ever come near the signer


def test_on_a_small_face_the_first_look_is_kept_unless_clearly_further_and_the_face_not_squeezed(monkeypatch, signing):
    """On a face under ``small_face_px`` the guard's look choice is noise (the 192x144 NGT clip
    re-encoded moved the looks' probe costs by up to 0.83) and the looks read the mouth
    differently: there a later palette must cost a whole probe face less, and the shorter face,
    whose squeezed mouth read at r -0.05 there, is not drawn. dlib's distances are given here (one
    probe face per look near the limit, the rest far); the probe poses are real, of both sizes."""
    from signanon.avatar import identity_guard

    looks = [Look("default", PALETTES["default"]), Look("dark-skin", PALETTES["dark-skin"]),
             Look("light-skin", PALETTES["light-skin"], "short")]  # fmt: skip
    near = {"default": 0.687, "dark-skin": 0.696, "light-skin/short": 0.9}  # probe cost 0.13, 0.04, 0
    drawn: list[str] = []

    class Drawn:  # "draws" a look's probe faces at these distances from the signer (at 0, below)
        scale = 1.0

        def __init__(self, look):
            drawn.append(look.name)
            self.distances = iter([near[look.name]])

        def render(self, pose):
            e = np.zeros(128)
            e[0] = next(self.distances, 0.9)
            return e

    monkeypatch.setattr(identity_guard, "drawn_face", lambda embedder, frame, pose, scale: SimpleNamespace(embedding=frame))
    signer = SignerFace(np.zeros((1, 128)))
    config = IdentityGuardConfig()
    frames, animator = signing
    large, record = choose_look(animator, [row for _, row in frames], looks, Drawn, signer, config, None)
    assert large.name == "light-skin/short" and not record["small_face"], record  # nothing far enough before it
    assert drawn == ["default", "dark-skin", "light-skin/short"]

    drawn.clear()
    small_frames, small_animator = _first_frames(3)
    small, record = choose_look(small_animator, [row for _, row in small_frames], looks, Drawn, signer, config, None)
    assert record["small_face"] and record["face_px"] < config.small_face_px, record
    assert small.name == "default", record  # dark-skin 0.09 cheaper: not by a whole probe face
    assert drawn == ["default", "dark-skin"]  # the shorter face not drawn at all
    assert _beats((0.04, -0.696), (0.13, -0.687), config) and not _beats((0.04, -0.696), (0.13, -0.687), config, small=True)
    assert _beats((0.1, -0.70), (1.2, -0.68), config, small=True)  # a whole probe face cheaper
    assert _beats((0.13, -0.72), (0.13, -0.687), config, small=True)  # as dear, 0.033 further
    assert not _beats((0.5, -0.75), (0.13, -0.687), config, small=True)  # further, but dearer by more than tie


def test_a_look_near_the_signer_on_one_probe_beats_one_near_on_several():
    """The look is scored by how often its probe faces come near the limit, not by its nearest one
    (one frame's noise): three probes just past the limit cost more than one just within it."""
    config = IdentityGuardConfig()
    assert config.limit == pytest.approx(0.65)
    many = sum(probe_cost(d, config) for d in [0.66, 0.66, 0.67] + [0.9] * 9)
    once = sum(probe_cost(d, config) for d in [0.64] + [0.9] * 11)
    assert once < many  # nearest 0.64 < 0.66, and yet
    assert probe_cost(config.limit + config.near, config) == 0 and probe_cost(config.limit - config.near, config) == 1
    assert probe_cost(config.limit, config) == pytest.approx(0.5) and probe_cost(0.2, config) == 1
    with pytest.raises(ValueError, match="near"):
        IdentityGuardConfig(near=0.0)


def test_another_face_shape_moves_the_avatar_away_from_a_face_like_it(signing, embedder):
    """The "signer" is the avatar on the average face (default palette): the same poses on the
    short face, same colours, lie further from it by dlib; the expression is carried as before
    (the mouth opening in face units), and calming goes to the short face's neutral."""
    frames, animator = signing
    default = AvatarRenderer(640, 480, PALETTES["default"])
    poses = _poses(signing)
    own = np.array([_drawn_embedding(embedder, default.render(p), p) for p in poses])
    short_face = Look("default", PALETTES["default"], "short").canonical()
    short = AvatarAnimator(animator.retargeter, animator.face.with_canonical(short_face))
    short_poses = [p for p in (short(*row) for _, row in frames[::4]) if p is not None and p.face is not None]
    assert len(short_poses) == len(poses)
    renderer = AvatarRenderer(640, 480, PALETTES["default"], short_face)
    mean = own.mean(axis=0)
    before = [float(np.linalg.norm(e - mean)) for e in own]
    after = [float(np.linalg.norm(_drawn_embedding(embedder, renderer.render(p), p) - mean)) for p in short_poses]
    assert np.mean(after) > np.mean(before) + 0.025, (np.mean(before), np.mean(after))  # 0.116 -> 0.158 when written

    # the expression (the face minus its neutral in the same head pose) is the same on both faces
    average_face = load_canonical_face()
    largest = 0.0
    for p, q in zip(poses, short_poses):
        expression = p.face[:, :2] - calmed(p, 1.0, average_face).face[:, :2]
        on_short = q.face[:, :2] - calmed(q, 1.0, short_face).face[:, :2]
        size = np.linalg.norm(p.face[263, :2] - p.face[33, :2])
        largest = max(largest, np.abs(expression).max() / size)
        assert np.abs(on_short - expression).max() < 0.01 * size
    assert largest > 0.02  # there was an expression to carry
    # fully calmed: the short face's neutral in the pose's head pose, not the average face's
    still = calmed(short_poses[0], 1.0, short_face).face.astype(np.float64)
    chin = still[152, 1] - still[168, 1]
    average_still = calmed(short_poses[0], 1.0, average_face).face.astype(np.float64)
    assert chin < 0.95 * (average_still[152, 1] - average_still[168, 1])


def _downscaled(source: Path, path: Path) -> Path:
    """``source`` at a third of its size (tools/make_framings.py's ``down``: a ~20 px face)."""
    info = probe_video(source)
    with VideoWriter(path, info.width // 3, info.height // 3, info.fps) as writer:
        for rgb in iter_frames(info):
            writer.write(cv2.resize(rgb, (info.width // 3, info.height // 3), interpolation=cv2.INTER_AREA))
    return path


def _faces(embedder, path: Path, step: int = 1) -> list[np.ndarray | None]:
    """dlib's embedding of the largest face on every ``step``-th frame (as the read-back finds it)."""
    frames = itertools.islice(iter_frames(probe_video(path)), 0, None, step)
    return [f[0].embedding if f else None for f in (embedder.faces(rgb, upsample=1) for rgb in frames)]


def _recognised(embedder, signer_mean: np.ndarray, output: Path, step: int = 1) -> tuple[int, float]:
    """Output frames (every ``step``-th) within dlib's 0.6 of the original signer's mean face (over
    every frame, as the read-back takes it), and the nearest distance."""
    d = [float(np.linalg.norm(e - signer_mean)) for e in _faces(embedder, output, step) if e is not None]
    return sum(x <= SAME_PERSON for x in d), min(d)


def test_the_small_faced_signer_is_no_longer_recognised(tmp_path, embedder):
    """The defect on a real clip: the DGS clip downscaled to a third, whose default-palette avatar
    dlib took for the signer. With palette and face shape auto and the guard on, no frame is.

    Drawn at its own size (``min_output_side`` 0) as it was then: the face a small signer is drawn
    with now (up to 1.25x bigger, retarget.BodyProportions.min_face_px; and by default the whole
    avatar at 480 px, three times the clip's 160) was not recognised in the default palette on this
    clip (0 of 34 frames looked at), so the guard is tested on the face that was; and then as drawn
    by default, three times larger, where it checks the larger faces."""
    clip = _downscaled(DGS, tmp_path / "small.mp4")
    signer_mean = np.mean([e for e in _faces(embedder, clip) if e is not None], axis=0)
    as_drawn_before = AnimatorConfig(proportions=BodyProportions(max_small_face_boost=1.0))
    # the hands', the lips' and the brows' probes off in all three runs (~26 s a run): they change
    # no more of the face than a parting or a furrow, and the figures below were measured without them
    no_probes = probes_off()
    before = tmp_path / "before.mp4"
    unguarded = AvatarConfig(palette="default", face_shape="average", animator=as_drawn_before,
                             guard=IdentityGuardConfig(enabled=False), min_output_side=0, **no_probes)  # fmt: skip
    AvatarAnonymizer(unguarded)(clip, before, progress=False)
    recognised_before, _ = _recognised(embedder, signer_mean, before, step=3)
    assert recognised_before > 0  # the defect is there to fix (28 of 100 frames when written; 5 of 34 looked at now)

    after = tmp_path / "after.mp4"
    summary = AvatarAnonymizer(AvatarConfig(animator=as_drawn_before, min_output_side=0, **no_probes))(clip, after, progress=False)
    recognised_after, nearest = _recognised(embedder, signer_mean, after)
    guard = summary.extra["identity_guard"]
    assert recognised_after == 0, (nearest, guard)  # nearest 0.673 (0.652 when written; 8 frames calmed, 7 blank)
    assert guard["checked"] > 0 and guard["unchecked"] == 0
    assert guard["look"]["chosen"] != "default" and guard["look"]["probed_on"] == "frames spread over the video"
    assert summary.frames_out == probe_video(clip).frame_count
    larger = tmp_path / "larger.mp4"
    summary = AvatarAnonymizer(AvatarConfig(**no_probes))(clip, larger, progress=False)
    assert probe_video(larger).height == 480
    recognised_larger, nearest = _recognised(embedder, signer_mean, larger, step=2)  # 640x480: dlib 0.4 s a frame
    assert recognised_larger == 0 and summary.extra["identity_guard"]["checked"] > 0, (nearest, summary.extra)


def _blurred_off_centre(source: Path, path: Path) -> Path:
    """``source`` scaled 0.8 with its centre at 28% of the width, on grey, then blurred with a
    sigma of 0.5% of the height (tools/make_framings.py's 'side' then 'soft': a signer off centre
    and out of focus)."""
    info = probe_video(source)
    w, h = info.width, info.height
    place = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, 0.8)
    place[0, 2] += 0.28 * w - w / 2
    with VideoWriter(path, w, h, info.fps) as writer:
        for rgb in iter_frames(info):
            side = cv2.warpAffine(rgb, place, (w, h), flags=cv2.INTER_AREA, borderValue=(118, 118, 118))
            writer.write(cv2.GaussianBlur(side, (0, 0), 0.005 * h))
    return path


def test_the_signer_is_also_guarded_against_as_a_viewers_recogniser_reads_them(tmp_path, embedder):
    """The sample clip off centre and out of focus (540x720). dlib's detector upsampled once, as
    face_recognition and the independent read-back run it at any frame size, misses the blurred
    face on most frames and takes false finds for the largest face on some (a 36 px box among the
    lights, a box over the chest), so the mean such a recogniser compares with lies 0.16 from the
    face the guard finds (its detector not upsampled at 540 px). Guarded against the face alone,
    the guard put its nearest drawn face 0.72 from the signer while the read-back's measure put
    one 0.55 from its mean: recognised (the same framing made by the tool, 1 of 58 frames). The
    guard now reads the signer both ways and keeps each drawn face from both means; what it
    reports is then what a viewer's recogniser measures, within its margin."""
    clip = _blurred_off_centre(DATA.parent.parent / "examples" / "asl_webcam.mp4", tmp_path / "soft.mp4")
    config = IdentityGuardConfig()
    signer = find_signer(probe_video(clip), config, embedder, viewer=DlibEmbedder(config.viewer))
    assert signer.found and len(signer.viewed) >= 5  # 7 of 30 frames when written
    gap = float(np.linalg.norm(signer.mean - signer.viewed.mean(axis=0)))
    assert gap > 0.1  # 0.156 when written
    viewer = DlibEmbedder(config.viewer)  # the read-back's embedder (tests/test_evaluation_readback.py)

    def read(path: Path) -> list[np.ndarray]:  # the largest face of every other frame, as the read-back finds it
        faces = (viewer.faces(rgb) for rgb in itertools.islice(iter_frames(probe_video(path)), 0, None, 2))
        return [f[0].embedding for f in faces if f]

    their_mean = np.mean(read(clip), axis=0)
    assert np.linalg.norm(their_mean - signer.viewed.mean(axis=0)) < 0.6 * np.linalg.norm(their_mean - signer.mean)

    out = tmp_path / "out.mp4"
    guard = AvatarAnonymizer()(clip, out, progress=False).extra["identity_guard"]
    nearest = min(float(np.linalg.norm(e - their_mean)) for e in read(out))
    assert nearest > SAME_PERSON  # 0.715 when written (the guard on the face alone: 0.651, 0.546 on the tool's copy)
    assert nearest >= guard["min_distance"] - config.margin, (nearest, guard)  # 0.715 vs 0.748 (alone: 0.651 vs 0.716)


def test_the_viewers_reading_on_two_threads_is_the_reading_on_one():
    """The viewer's reading of the signer runs on two threads beside the guard's own (it took 6.2
    of 7.5 s on the sample clip); each thread has its own detector, and the faces come back in
    frame order: the same embeddings, in the same order, as one embedder reading the frames in
    turn (a shared detector, or an out-of-order result, would change them)."""
    from signanon.avatar.identity_guard import _ViewerReading

    viewer = DlibEmbedder(IdentityGuardConfig().viewer)
    info = probe_video(DATA.parent.parent / "examples" / "asl_webcam.mp4")
    frames = [rgb for _, rgb in iter_selected_frames(info, range(0, info.frame_count, 6))]
    frames.insert(3, np.zeros_like(frames[0]))  # no face: skipped, the order of the rest kept
    alone = [f.embedding for f in map(viewer.largest, frames) if f is not None]
    with _ViewerReading(viewer, threads=2) as reading:
        for rgb in frames:
            reading.add(rgb)
        together = reading.result()
    assert len(alone) == len(frames) - 1
    assert together.shape == (len(alone), 128)
    np.testing.assert_array_equal(together, np.array(alone))
    assert min(np.linalg.norm(a - b) for a, b in itertools.pairwise(alone)) > 0  # the order is tested


def test_a_signer_only_a_viewers_recogniser_finds_is_still_guarded_against():
    """Where the guard's own reading finds no face on its frames but dlib's defaults find one on
    theirs (more frames, the detector upsampled once), the signer counts as found and each drawn
    face is measured against that reading: the frames are checked, not left unchecked."""
    from signanon.avatar.identity_guard import distance_to_signer

    rng = np.random.default_rng(0)
    seen = rng.normal(0.0, 0.1, (3, 128))
    signer = SignerFace(np.zeros((0, 128)), viewed=seen)
    assert signer.found and not SignerFace(np.zeros((0, 128))).found
    face = seen.mean(axis=0) + 0.01
    assert distance_to_signer(face, signer) == pytest.approx(np.linalg.norm(face - seen.mean(axis=0)))
    both = SignerFace(seen[:1] + 1.0, viewed=seen)  # the nearer mean decides
    assert distance_to_signer(face, both) == pytest.approx(np.linalg.norm(face - seen.mean(axis=0)))


def test_the_run_says_what_the_guard_did():
    from signanon.outcome import guard_line

    acted = {"checked": 90, "unchecked": 0, "calmed": 13, "blanked": 1, "blurred": 0, "min_distance": 0.598,
             "look": {"chosen": "dark-skin/short", "scores": {"default": [4.5, 0.59], "dark-skin/short": [1.2, 0.623]}}}  # fmt: skip
    line = guard_line(acted)
    assert "look dark-skin/short" in line and "0.62 from the signer's" in line and "looks tried: 2" in line
    assert "13 recognised as the signer and drawn with a calmer expression" in line and "1 drawn with a blank face" in line
    quiet = guard_line({**acted, "calmed": 0, "blanked": 0, "look": {"chosen": "default", "scores": {}}})
    assert "calmer" not in quiet and "blank" not in quiet and "look" not in quiet
    assert "not checked" in guard_line({**acted, "unchecked": 5})
    assert "--no-identity-guard" in guard_line({})
    assert "checked against the signer," in line  # nobody else in the input
    assert "checked against the signer and 2 other people the input shows," in guard_line({**acted, "other_people": 2})
    # two signers in turn (a cut): the redrawn faces come with what to do about them
    turns = guard_line({**acted, "signers_in_turn": 2})
    assert "2 people in turn" in turns and "each shot on its own" in turns
    assert "in turn" not in guard_line({**acted, "calmed": 0, "blanked": 0, "signers_in_turn": 2})  # nothing was lost


def test_the_guard_checks_the_same_frames_on_every_run(tmp_path):
    """The guard skips a check where the last one leaves room for drift, so which frames it checks
    follows from the checks before. Drawn on two threads, that depended on which check finished
    first: five runs of this 64-frame clip checked 11-15 faces and wrote two different files. The
    guard now draws one frame at a time: the same checks and the same file on every run.
    The look is fixed and the per-signer choices are off (20 s a run instead of 47): the default
    look comes nearer this signer than the one auto picks, so the guard checks 59 frames and calms
    or blanks 8 of them (auto's look: 18 checked, none redrawn), more decisions to repeat."""
    from conftest import first_frames_clip

    clip = first_frames_clip(DATA / "asl_different.gif", 64, tmp_path / "different.mp4")
    config = AvatarConfig(palette="default", face_shape="average", **probes_off())
    runs = []
    for k in range(2):  # the threaded guard wrote a different file on most runs (11-15 faces checked over five)
        out = tmp_path / f"out{k}.mp4"
        guard = AvatarAnonymizer(config)(clip, out, progress=False).extra["identity_guard"]
        runs.append((guard["checked"], guard["calmed"], guard["blanked"], out.read_bytes()))
    assert runs[0][0] > 20 and runs[0][1] + runs[0][2] > 0  # 59 checked, 6 calmed, 2 blanked when written
    assert all(run == runs[0] for run in runs[1:]), [run[:3] for run in runs]


def test_the_look_is_chosen_on_faces_drawn_at_the_outputs_size(tmp_path, monkeypatch):
    """A 320x240 clip is drawn at 640x480 (``min_output_side``); the look choice's probe faces must
    be drawn at that size too, and found where the drawing put them, so that dlib judges the faces
    the output will show: the probe's nearest face of the chosen look then lands where the guard's
    checks of the written frames land. Until session 26 the probes were drawn at the input's size."""
    from conftest import first_frames_clip

    from signanon.avatar import chunk, identity_guard

    seen: dict = {"shapes": set(), "scales": set()}
    choose, drawn = chunk.choose_look, identity_guard.drawn_face

    def spy_drawn(embedder, frame, pose, scale=1.0):
        seen["shapes"].add(frame.shape)
        seen["scales"].add(scale)
        return drawn(embedder, frame, pose, scale)

    def spy_choose(*args):
        monkeypatch.setattr(identity_guard, "drawn_face", spy_drawn)
        try:
            return choose(*args)
        finally:
            monkeypatch.setattr(identity_guard, "drawn_face", drawn)

    monkeypatch.setattr(chunk, "choose_look", spy_choose)
    clip = first_frames_clip(DATA / "asl_different.gif", 24, tmp_path / "different.mp4")
    config = AvatarConfig()
    guard = AvatarAnonymizer(config)(clip, tmp_path / "out.mp4", progress=False).extra["identity_guard"]
    out_w, out_h = config.output_size(320, 240)
    assert (out_w, out_h) != (320, 240)  # drawn larger: the check is not vacuous
    assert seen["shapes"] == {(out_h, out_w, 3)}
    assert seen["scales"] == {config.draw_scale(320, 240)}
    probe_nearest = guard["look"]["scores"][guard["look"]["chosen"]][1]
    assert abs(probe_nearest - guard["min_distance"]) < 0.1, guard
