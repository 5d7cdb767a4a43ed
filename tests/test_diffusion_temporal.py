"""Control maps, optical flow, temporal fusion and key-frame propagation of the diffusion method.

Real frames come from tests/data/asl_house.gif (240x320, a signer; frames 14-18 hold fast hand
motion). The GIF is palette-dithered: the dither pattern is per-frame noise that no warp can
predict and that bilinear resampling smooths away, so photometric errors are measured on frames
blurred with sigma 1.5 px.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from signanon.diffusion.control import (  # noqa: E402
    HED_DOWNLOAD_COMMAND,
    ControlMapper,
    build_hed_network,
    hed_state_dict_shapes,
    safe_step,
)
from signanon.video.flow import (  # noqa: E402
    FlowCache,
    FlowEstimator,
    FlowPair,
    occlusion_mask,
    resize_flow,
    warp,
)
from signanon.diffusion.fusion import FusionConfig, TemporalFusion, adain, channel_stats  # noqa: E402
from signanon.diffusion.propagation import blend_two_keys, propagate_between, propagate_from  # noqa: E402
from signanon.errors import InputError  # noqa: E402
from signanon.video import iter_frames, probe_video  # noqa: E402

# lllyasviel/Annotators ControlNetHED.pth: every key and shape (the Apache-2.0 HED of ControlNet 1.1)
HED_KEYS_AND_SHAPES = {
    "norm": (1, 3, 1, 1),
    "block1.convs.0.weight": (64, 3, 3, 3), "block1.convs.0.bias": (64,),
    "block1.convs.1.weight": (64, 64, 3, 3), "block1.convs.1.bias": (64,),
    "block1.projection.weight": (1, 64, 1, 1), "block1.projection.bias": (1,),
    "block2.convs.0.weight": (128, 64, 3, 3), "block2.convs.0.bias": (128,),
    "block2.convs.1.weight": (128, 128, 3, 3), "block2.convs.1.bias": (128,),
    "block2.projection.weight": (1, 128, 1, 1), "block2.projection.bias": (1,),
    "block3.convs.0.weight": (256, 128, 3, 3), "block3.convs.0.bias": (256,),
    "block3.convs.1.weight": (256, 256, 3, 3), "block3.convs.1.bias": (256,),
    "block3.convs.2.weight": (256, 256, 3, 3), "block3.convs.2.bias": (256,),
    "block3.projection.weight": (1, 256, 1, 1), "block3.projection.bias": (1,),
    "block4.convs.0.weight": (512, 256, 3, 3), "block4.convs.0.bias": (512,),
    "block4.convs.1.weight": (512, 512, 3, 3), "block4.convs.1.bias": (512,),
    "block4.convs.2.weight": (512, 512, 3, 3), "block4.convs.2.bias": (512,),
    "block4.projection.weight": (1, 512, 1, 1), "block4.projection.bias": (1,),
    "block5.convs.0.weight": (512, 512, 3, 3), "block5.convs.0.bias": (512,),
    "block5.convs.1.weight": (512, 512, 3, 3), "block5.convs.1.bias": (512,),
    "block5.convs.2.weight": (512, 512, 3, 3), "block5.convs.2.bias": (512,),
    "block5.projection.weight": (1, 512, 1, 1), "block5.projection.bias": (1,),
}


@pytest.fixture(scope="module")
def house(data_dir):
    return list(iter_frames(probe_video(data_dir / "asl_house.gif")))


def _blur(x):
    return cv2.GaussianBlur(x.astype(np.float32), (0, 0), 1.5)


def _save_hed(path, fill=None, bias=0.0, seed=0):
    """A ControlNetHED.pth with the published keys: random weights, or constant ``fill`` weights
    and projection biases ``bias`` (then every side output is the constant ``bias``)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in HED_KEYS_AND_SHAPES.items():
        if fill is None:
            state[key] = torch.randn(shape, generator=gen) * 0.05
        elif key.endswith("projection.bias"):
            state[key] = torch.full(shape, float(bias))
        else:
            state[key] = torch.full(shape, float(fill))
    torch.save(state, path)
    return state


# ---- control maps ----------------------------------------------------------------------------

def test_hed_layout_matches_published_checkpoint():
    assert hed_state_dict_shapes() == HED_KEYS_AND_SHAPES
    net_shapes = {k: tuple(v.shape) for k, v in build_hed_network().state_dict().items()}
    assert net_shapes == HED_KEYS_AND_SHAPES


def test_hed_loads_random_checkpoint(tmp_path, house):
    state = _save_hed(tmp_path / "ControlNetHED.pth")
    mapper = ControlMapper("hed", tmp_path)  # the folder holding the file works too
    for key in ("norm", "block3.convs.2.weight", "block5.projection.bias"):
        assert torch.equal(mapper.network.state_dict()[key], state[key])
    frame = np.ascontiguousarray(house[16][:64, :96])
    out = mapper(frame)
    assert out.shape == (64, 96, 3) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])
    assert set(np.unique(out)) <= {0, 127, 255}  # safe step: three levels


@pytest.mark.parametrize(
    ("bias", "safe", "expected"),
    [(0.0, True, 127), (0.0, False, 127), (2.0, True, 255), (2.0, False, 224), (-3.0, True, 0)],
)
def test_hed_post_processing(tmp_path, bias, safe, expected):
    # zero convolutions: each side output is its projection bias; sigmoid(mean) then safe step
    _save_hed(tmp_path / "hed.pth", fill=0.0, bias=bias)
    out = ControlMapper("hed", tmp_path / "hed.pth", safe=safe)(np.zeros((40, 56, 3), np.uint8))
    assert out.shape == (40, 56, 3)
    assert np.all(out == expected)


def test_safe_step_levels():
    e = np.array([0.0, 0.3, 0.34, 0.66, 0.67, 1.0], np.float32)
    assert safe_step(e).tolist() == [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]


def test_hed_missing_weights_is_one_line_input_error(tmp_path):
    missing = tmp_path / "nope" / "ControlNetHED.pth"
    with pytest.raises(InputError) as err:
        ControlMapper("hed", missing)
    msg = str(err.value)
    assert "\n" not in msg and str(missing) in msg and HED_DOWNLOAD_COMMAND in msg
    with pytest.raises(InputError, match="hf download lllyasviel/Annotators"):
        ControlMapper("hed", None)


def test_hed_wrong_file_is_input_error(tmp_path):
    torch.save({"weight": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(InputError, match="not a ControlNetHED.pth"):
        ControlMapper("hed", tmp_path / "bad.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot read HED weights"):
        ControlMapper("hed", tmp_path / "junk.pth")


def test_canny_map(house):
    frame = house[16]
    out = ControlMapper("canny", low=100, high=200)(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], cv2.Canny(frame, 100, 200))
    assert np.array_equal(out[..., 1], out[..., 2])
    assert set(np.unique(out)) <= {0, 255} and out.any()
    strict = ControlMapper("canny", low=300, high=600)(frame)
    assert (strict > 0).sum() < (out > 0).sum()


def test_control_cache_is_bounded_and_keyed_by_content(house):
    mapper = ControlMapper("canny", cache_size=2)
    a = mapper(house[10])
    a[:] = 7  # callers get copies: the cache cannot be corrupted
    again = mapper(house[10].copy())
    assert mapper.computed == 1 and not np.all(again == 7)
    mapper(house[20])
    mapper(house[30])  # evicts frame 10
    mapper(house[10])
    assert mapper.computed == 4


def test_unknown_control_kind():
    with pytest.raises(InputError, match="unknown control type"):
        ControlMapper("depth")


# ---- optical flow ----------------------------------------------------------------------------

def test_warp_with_zero_flow_is_identity(house):
    frame = house[5]
    zero = np.zeros(frame.shape[:2] + (2,), np.float32)
    assert np.array_equal(warp(frame, zero), frame)
    grey = frame[..., 0].astype(np.float32)
    assert np.array_equal(warp(grey, zero), grey)
    lat = torch.randn(2, 4, 30, 40)
    assert torch.allclose(warp(lat, zero), lat, atol=1e-5)


def test_flow_convention_on_a_shift(house):
    a = house[20]
    b = np.roll(a, 5, axis=1)  # b[:, x] = a[:, x - 5]
    flow = FlowEstimator()(a, b)
    assert flow.shape == a.shape[:2] + (2,) and flow.dtype == np.float32
    assert np.median(flow[..., 0]) == pytest.approx(-5.0, abs=0.2)
    assert np.median(flow[..., 1]) == pytest.approx(0.0, abs=0.2)
    inner = (slice(10, -10), slice(10, -10))
    assert np.abs(warp(a, flow).astype(float) - b)[inner].mean() < 0.3 * np.abs(a.astype(float) - b)[inner].mean()


@pytest.mark.parametrize("t", [14, 15, 16, 17])
def test_warp_reduces_photometric_error_on_real_frames(house, t):
    a, b = house[t], house[t + 1]
    pair = FlowEstimator().pair(a, b)
    visible = pair.occlusion < 0.5
    assert 0.5 < visible.mean() < 1.0  # the moving hands are partly occluded, the rest is not
    before = np.abs(_blur(a) - _blur(b)).mean(axis=2)[visible].mean()
    after = np.abs(_blur(warp(a, pair.flow)) - _blur(b)).mean(axis=2)[visible].mean()
    assert after < 0.5 * before


def test_occlusion_mask_flags_a_synthetic_occluder(house):
    background = house[3]
    rng = np.random.default_rng(0)
    patch = cv2.resize(rng.integers(0, 255, (8, 8, 3)).astype(np.uint8), (48, 48))
    y, x, shift = 100, 120, 12
    a, b = background.copy(), background.copy()
    a[y:y + 48, x:x + 48] = patch
    b[y:y + 48, x + shift:x + shift + 48] = patch  # the patch moves right: its old place reappears
    est = FlowEstimator()
    occ = occlusion_mask(est(b, a), est(a, b))
    assert occ.shape == a.shape[:2] and occ.dtype == np.float32
    assert set(np.unique(occ)) <= {0.0, 1.0}
    uncovered = occ[y + 4:y + 44, x + 2:x + shift - 2]
    assert uncovered.mean() > 0.9
    far = np.ones_like(occ, bool)
    far[y - 30:y + 80, x - 30:x + 100] = False
    assert occ[far].mean() < 0.05


def test_occlusion_mask_flags_pixels_coming_from_outside():
    flow = np.zeros((20, 30, 2), np.float32)
    flow[..., 0] = -4.0  # every pixel comes from 4 px to its left
    occ = occlusion_mask(-flow, flow)
    assert np.all(occ[:, :4] == 1) and np.all(occ[:, 5:] == 0)


def test_flow_resized_to_latent_grid_scales_vectors():
    flow = np.zeros((64, 80, 2), np.float32)
    flow[..., 0], flow[..., 1] = 8.0, -16.0
    small = resize_flow(flow, (8, 10))
    assert small.shape == (8, 10, 2)
    assert np.allclose(small[..., 0], 1.0) and np.allclose(small[..., 1], -2.0)
    lat = torch.randn(1, 4, 8, 10)
    warped = warp(lat, flow)  # out[y, x] = lat[y - 2, x + 1]
    assert torch.allclose(warped[..., 2:, :9], lat[..., :-2, 1:], atol=1e-5)


def test_flow_cache_computes_each_pair_once(house):
    cache = FlowCache(FlowEstimator("ultrafast"), max_items=2)
    p1 = cache.get(0, house[0], 1, house[1])
    assert cache.get(0, house[0], 1, house[1]) is p1 and cache.computed == 1
    same = cache.get(4, house[4], 4, house[4])
    assert not same.flow.any() and not same.occlusion.any() and cache.computed == 1
    cache.get(1, house[1], 2, house[2])
    cache.get(0, house[0], 1, house[1])  # evicted by the bound of 2: computed again
    assert cache.computed == 3 and len(cache) == 2


# ---- fusion ----------------------------------------------------------------------------------

def test_adain_gives_reference_statistics():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 16, 12, generator=gen) * 3 + 1
    ref = torch.randn(2, 4, 9, 7, generator=gen) * torch.tensor([0.5, 2, 1, 4]).view(1, 4, 1, 1) - 2
    out = adain(x, ref)
    assert out.shape == x.shape
    for (m, s), (rm, rs) in [(channel_stats(out), channel_stats(ref))]:
        assert torch.allclose(m, rm, atol=1e-4) and torch.allclose(s, rs, atol=1e-4)
    assert torch.allclose(adain(x, channel_stats(ref)), out)


def _static_pair(h, w, occluded):
    return FlowPair(np.zeros((h, w, 2), np.float32), np.full((h, w), float(occluded), np.float32))


def _fusion_with_first(frame, x0_steps, output, pair, config):
    fusion = TemporalFusion(config)
    fusion.register(0, frame, output, x0_steps)
    fusion.flows.put(0, 1, pair)
    fusion.begin_frame(1, frame)
    return fusion


def test_first_frame_fusion_is_identity(house):
    fusion = TemporalFusion(FusionConfig(pixel_strength=1.0))
    fusion.begin_frame(0, house[0])
    x0 = torch.randn(1, 4, 30, 40)
    assert torch.equal(fusion.fuse_x0(x0, 0, 4), x0)
    assert fusion.pixel_target() is None
    img = house[40]
    assert np.array_equal(fusion.fuse_pixels(img), img)
    fusion.end_frame(img)
    assert fusion.first is fusion.previous and len(fusion.first.x0_steps) == 1


def test_shape_fusion_with_all_occluded_mask_is_identity(house):
    frame = house[0]
    ref_steps = [torch.randn(1, 4, 30, 40) for _ in range(4)]
    cfg = FusionConfig(shape_period=(0.0, 1.0), adain_period=(1.0, 0.0), pixel_strength=1.0)
    fusion = _fusion_with_first(frame, ref_steps, house[50], _static_pair(240, 320, True), cfg)
    x0 = torch.randn(1, 4, 30, 40)
    assert torch.equal(fusion.fuse_x0(x0, 0, 4), x0)
    img = house[40]
    assert np.array_equal(fusion.fuse_pixels(img), img)


def test_shape_fusion_with_identity_flow_returns_reference_x0(house):
    frame = house[0]
    ref_steps = [torch.randn(1, 4, 30, 40) for _ in range(10)]
    cfg = FusionConfig(shape_period=(0.0, 0.2), shape_strength=1.0, adain_period=(1.0, 0.0))
    fusion = _fusion_with_first(frame, ref_steps, house[50], _static_pair(240, 320, False), cfg)
    x0 = torch.randn(1, 4, 30, 40)
    assert torch.allclose(fusion.fuse_x0(x0, 1, 10), ref_steps[1], atol=1e-6)  # in the period
    assert torch.equal(fusion.fuse_x0(x0, 5, 10), x0)  # after it
    half = _fusion_with_first(frame, ref_steps, house[50], _static_pair(240, 320, False),
                              FusionConfig(shape_strength=0.5, adain_period=(1.0, 0.0)))
    assert torch.allclose(half.fuse_x0(x0, 0, 10), 0.5 * (x0 + ref_steps[0]), atol=1e-6)


def test_shape_fusion_follows_the_flow(house):
    """A reference x0 moved by the flow lands where the flow says, on visible latent pixels only."""
    frame = house[0]
    ref = torch.randn(1, 4, 30, 40)
    flow = np.zeros((240, 320, 2), np.float32)
    flow[..., 0] = -16.0  # the current frame shows the reference 16 px (2 latent px) to the left
    occ = np.zeros((240, 320), np.float32)
    occ[:, :16] = 1.0  # those come from outside the reference
    cfg = FusionConfig(shape_period=(0.0, 1.0), adain_period=(1.0, 0.0), feather_dilate=1, feather_sigma=0)
    fusion = _fusion_with_first(frame, [ref], house[50], FlowPair(flow, occ), cfg)
    x0 = torch.randn(1, 4, 30, 40)
    out = fusion.fuse_x0(x0, 0, 1)
    assert torch.allclose(out[..., 2:], ref[..., :-2], atol=1e-6)
    assert torch.equal(out[..., :2], x0[..., :2])


def test_adain_late_steps_match_first_frame_statistics(house):
    frame = house[0]
    ref_steps = [torch.randn(1, 4, 30, 40) * (i + 1) + i for i in range(5)]
    cfg = FusionConfig(shape_period=(1.0, 0.0), adain_period=(0.8, 1.0))
    fusion = _fusion_with_first(frame, ref_steps, house[50], _static_pair(240, 320, False), cfg)
    x0 = torch.randn(1, 4, 30, 40) * 0.3 - 5
    out = fusion.fuse_x0(x0, 4, 5)
    m, s = channel_stats(out)
    rm, rs = channel_stats(ref_steps[4])
    assert torch.allclose(m, rm, atol=1e-4) and torch.allclose(s, rs, atol=1e-4)
    assert torch.equal(fusion.fuse_x0(x0, 1, 5), x0)  # early steps untouched (shape period off)


def test_pixel_fusion_on_static_scene_returns_previous_output(house):
    frame = house[3]  # a real frame, seen twice: the flow is estimated, not given
    previous_out = np.ascontiguousarray(255 - house[60])
    fusion = TemporalFusion(FusionConfig(pixel_strength=1.0))
    fusion.begin_frame(0, frame)
    fusion.end_frame(previous_out)
    fusion.begin_frame(1, frame.copy())
    new = house[40]
    out = fusion.fuse_pixels(new)
    assert np.abs(out.astype(int) - previous_out).mean() < 1.0
    image, visible = fusion.pixel_target()
    assert visible.mean() > 0.99 and np.abs(image.astype(int) - previous_out).mean() < 1.0


def test_pixel_fusion_keeps_new_content_where_occluded(house):
    occ = np.zeros((240, 320), np.float32)
    occ[100:140, 100:160] = 1.0
    reference_out = np.full((240, 320, 3), 200, np.uint8)
    cfg = FusionConfig(pixel_strength=1.0, feather_dilate=9, feather_sigma=4.0)
    fusion = _fusion_with_first(house[0], [], reference_out,
                                FlowPair(np.zeros((240, 320, 2), np.float32), occ), cfg)
    new = np.zeros((240, 320, 3), np.uint8)
    out = fusion.fuse_pixels(new)
    assert np.all(out[100:140, 100:160] == 0)  # occluded: the new pixels
    assert np.all(out[:60] == 200) and np.all(out[:, 200:] == 200)  # far away: the reference
    seam = out[120, 160:190, 0].astype(int)  # feathered: a monotone ramp from new to reference
    assert seam[0] < 100 and seam[-1] == 200 and np.all(np.diff(seam) >= 0)
    assert ((seam > 0) & (seam < 200)).sum() >= 5


def test_fuse_latents_pulls_visible_pixels_in_its_period(house):
    frame = house[0]
    cfg = FusionConfig(latent_period=(0.5, 0.8), latent_strength=0.5)
    fusion = _fusion_with_first(frame, [], house[50], _static_pair(240, 320, False), cfg)
    lat, target = torch.randn(1, 4, 30, 40), torch.randn(1, 4, 30, 40)
    assert torch.allclose(fusion.fuse_latents(lat, 6, 10, target), 0.5 * (lat + target), atol=1e-6)
    assert torch.equal(fusion.fuse_latents(lat, 1, 10, target), lat)
    assert torch.equal(fusion.fuse_latents(lat, 6, 10, None), lat)


def test_fusion_config_is_frozen_and_checked():
    cfg = FusionConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.shape_strength = 0.3  # type: ignore[misc]
    with pytest.raises(ValueError):
        FusionConfig(pixel_strength=1.5)


# ---- key-frame propagation -------------------------------------------------------------------

@pytest.mark.parametrize(("a", "b"), [(14, 18), (28, 32)])
def test_propagation_beats_the_nearer_key_frame(house, a, b):
    mids = propagate_between(house[a], house[b], house[a:b + 1])
    assert len(mids) == b - a - 1
    for k, mid in enumerate(mids, start=1):
        t = a + k
        nearer = house[a] if k <= (b - a) / 2 else house[b]
        err = np.abs(_blur(mid) - _blur(house[t])).mean()
        err_nearer = np.abs(_blur(nearer) - _blur(house[t])).mean()
        assert mid.shape == house[t].shape and mid.dtype == np.uint8
        assert err < 0.7 * err_nearer


def test_propagation_falls_back_to_nearer_key_where_both_occluded():
    h, w = 24, 32
    key_a = np.full((h, w, 3), 40, np.uint8)
    key_b = np.full((h, w, 3), 200, np.uint8)
    blind = _static_pair(h, w, True)
    assert np.all(blend_two_keys(key_a, key_b, blind, blind, 0.25) == 40)
    assert np.all(blend_two_keys(key_a, key_b, blind, blind, 0.75) == 200)
    seen = _static_pair(h, w, False)
    assert np.all(blend_two_keys(key_a, key_b, seen, seen, 0.25) == 80)  # 0.75 * 40 + 0.25 * 200
    # only b sees the pixel: b's warp, whatever the distance
    assert np.all(blend_two_keys(key_a, key_b, blind, seen, 0.25) == 200)


def test_propagation_output_comes_from_keys_not_source():
    """Privacy fails closed: with keys that differ from every source frame, no source pixel leaks."""
    rng = np.random.default_rng(1)
    src = [rng.integers(0, 255, (32, 48, 3)).astype(np.uint8) for _ in range(4)]
    key = np.zeros((32, 48, 3), np.uint8)
    mids = propagate_between(key, key, src)
    assert len(mids) == 2 and all(not m.any() for m in mids)


def test_propagation_with_adjacent_keys_is_empty(house):
    assert propagate_between(house[0], house[1], house[0:2]) == []


def test_one_sided_propagation_beats_the_key_frame(house):
    mids = propagate_from(house[14], house[14:17])
    assert len(mids) == 2
    for k, mid in enumerate(mids, start=1):
        err = np.abs(_blur(mid) - _blur(house[14 + k])).mean()
        assert err < 0.6 * np.abs(_blur(house[14]) - _blur(house[14 + k])).mean()


# ---- fusion inside the pipeline (tiny random components) -------------------------------------

def _toy_module(repo_root):
    import importlib.util

    spec = importlib.util.spec_from_file_location("diffusion_toy", repo_root / "tests" / "diffusion_toy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fusion_makes_consecutive_outputs_follow_the_motion(house, data_dir):
    """Real moving frames through the toy pipeline: with pixel-aware fusion, each output agrees
    better with the previous output warped along the input's flow than without fusion.

    Latent fusion is off here: it VAE-encodes a decoded image, which only round-trips with a
    trained VAE, not with the random toy one.
    """
    pipeline_mod = pytest.importorskip("signanon.diffusion.pipeline")
    toy = _toy_module(data_dir.parents[1])
    frames = [cv2.resize(f[:, 40:280], (64, 64), interpolation=cv2.INTER_AREA) for f in house[14:18]]
    components = toy.toy_components(seed=0)
    mapper = ControlMapper("canny")
    est = FlowEstimator()

    def consistency(fusion):
        pipe = pipeline_mod.VideoTranslationPipeline(
            components, pipeline_mod.SamplingConfig(steps=4, cross_frame_attention=False)
        )
        try:
            outs = [pipe(f, mapper(f), "a person", fusion=fusion, index=i).image for i, f in enumerate(frames)]
        finally:
            pipe.close()
        errs = []
        for i in range(1, len(frames)):
            pair = est.pair(frames[i - 1], frames[i])
            visible = pair.occlusion < 0.5
            errs.append(np.abs(warp(outs[i - 1], pair.flow).astype(float) - outs[i]).mean(axis=2)[visible].mean())
        return np.mean(errs)

    plain = consistency(None)
    fused = consistency(TemporalFusion(FusionConfig(latent_strength=0.0, pixel_strength=1.0)))
    assert fused < 0.8 * plain
