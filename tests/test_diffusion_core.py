"""The diffusion anonymizer's core: weights loading, cross-frame attention, the frame pipeline, the
video runner with resume, and the CLI glue. Everything runs on tiny random models (tests/diffusion_toy.py)
on one CPU thread; HF_HUB_OFFLINE=1 (conftest)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

import diffusion_toy as toy
from conftest import first_frames_clip  # noqa: E402

from signanon.diffusion.attention import (  # noqa: E402
    CrossFrameAttnProcessor,
    CrossFrameState,
    cross_frame_layer_names,
    install_cross_frame_attention,
    remove_cross_frame_attention,
)
from signanon.diffusion.pipeline import NEGATIVE_PROMPT, SamplingConfig, VideoTranslationPipeline  # noqa: E402
from signanon.diffusion.runner import (  # noqa: E402
    DiffusionAnonymizer,
    DiffusionConfig,
    KeyFrameCache,
    working_size,
)
from signanon.diffusion.weights import MissingWeightError, load_components  # noqa: E402
from signanon.errors import InputError  # noqa: E402
from signanon.video import iter_frames, probe_video  # noqa: E402

STEPS = SamplingConfig(steps=2, strength=1.0)  # 2 DDIM steps run per frame
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    """Two shared cores: OpenMP spinning on two threads makes tiny models 10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy_weights")
    toy.save_toy_model_folder(root / "sd")
    toy.save_toy_controlnet(root / "cn")
    toy.save_toy_single_file(root / "sd.safetensors")
    return root


@pytest.fixture(scope="module")
def clip4(tmp_path_factory, data_dir) -> Path:
    """The first 5 frames of tests/data/asl_house.gif (320x240, 25 fps) as an mp4."""
    return first_frames_clip(data_dir / "asl_house.gif", 5, tmp_path_factory.mktemp("clip") / "house5.mp4")


def _frame_and_control(data_dir, size=(64, 64)):
    import cv2

    frame = next(iter_frames(probe_video(data_dir / "asl_house.gif")))
    frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    control = np.repeat(cv2.Canny(frame, 100, 200)[..., None], 3, axis=2)
    return frame, control


def _state_diff(a, b) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    assert set(sa) == set(sb)
    return max(float((sa[k].float() - sb[k].float()).abs().max()) for k in sa)


# ---- cross-frame attention ------------------------------------------------------------------


def test_cross_frame_processor_with_itself_as_reference_equals_default():
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    torch.manual_seed(0)
    attn = Attention(query_dim=32, heads=4, dim_head=8).eval()
    hidden = torch.randn(2, 64, 32)  # (CFG halves, tokens, channels)
    other = torch.randn(2, 64, 32)
    with torch.no_grad():
        default = AttnProcessor2_0()(attn, hidden)
        state = CrossFrameState()
        proc = CrossFrameAttnProcessor(state, "layer")
        state.begin_frame()
        assert state.mode == "write"
        written = proc(attn, hidden)
        state.end_frame()
        state.begin_frame()
        assert state.mode == "read"
        read = proc(attn, hidden)
        # a different reference frame changes the output: the processor does read the cache
        state.reset()
        state.begin_frame()
        proc(attn, other)
        state.end_frame()
        state.begin_frame()
        crossed = proc(attn, hidden)
    assert torch.allclose(written, default, atol=1e-5)
    assert torch.allclose(read, default, atol=1e-5)
    assert float((crossed - default).abs().max()) > 1e-2


def _read_after(proc, state, attn, first, previous, current):
    """The processor's output for ``current`` after ``first`` and ``previous`` were generated."""
    state.reset()
    for frame in (first, previous):
        state.begin_frame()
        proc(attn, frame)
        state.end_frame()
    state.begin_frame()
    return proc(attn, current)


def test_cross_frame_processor_attends_to_first_and_previous_key_frame():
    """Three frames: the third attends to the first and the second (its previous key frame), which
    differ. Its output is attention over both references' tokens, and changing either changes it."""
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    torch.manual_seed(0)
    attn = Attention(query_dim=32, heads=4, dim_head=8).eval()
    first, previous, current, other = (torch.randn(2, 64, 32) for _ in range(4))
    state = CrossFrameState()
    proc = CrossFrameAttnProcessor(state, "layer")
    with torch.no_grad():
        out = _read_after(proc, state, attn, first, previous, current)
        expected = AttnProcessor2_0()(attn, current, torch.cat([first, previous], dim=1))
        new_first = _read_after(proc, state, attn, other, previous, current)
        new_previous = _read_after(proc, state, attn, first, other, current)
        only_first = AttnProcessor2_0()(attn, current, first)
        only_previous = AttnProcessor2_0()(attn, current, previous)
    assert torch.allclose(out, expected, atol=1e-5)
    # neither reference alone explains the output: both are read
    assert float((out - only_first).abs().max()) > 1e-2
    assert float((out - only_previous).abs().max()) > 1e-2
    assert float((new_first - out).abs().max()) > 1e-2
    assert float((new_previous - out).abs().max()) > 1e-2


def _toy_unet_frames(unet, state, latents, timestep, text):
    """Run the UNet on frames one after another as the pipeline does (one step per frame); the
    last frame's noise prediction."""
    state.reset()
    for i, x in enumerate(latents):
        state.begin_frame()
        state.step = 0
        out = unet(x, timestep, encoder_hidden_states=text).sample
        if i < len(latents) - 1:
            state.end_frame()
    return out


def test_cross_frame_unet_first_and_previous_key_frames_both_matter():
    """The toy UNet with cross-frame attention on a third frame: a different first frame or a
    different previous key frame (first frame kept) changes its prediction; with both references
    equal to the frame itself it equals the UNet with its default attention. (Here the first frame
    also shapes what the second recorded; the processor test above separates the two.)"""
    unet = toy.toy_components().unet
    torch.manual_seed(1)
    a, b, c, d = (torch.randn(2, 4, 8, 8) for _ in range(4))  # CFG halves, 8x8 latents
    text = torch.randn(2, 8, 32)
    t = torch.tensor(500)
    with torch.no_grad():
        default = unet(c, t, encoder_hidden_states=text).sample
        state = CrossFrameState()
        install_cross_frame_attention(unet, state)
        try:
            out = _toy_unet_frames(unet, state, [a, b, c], t, text)
            new_first = _toy_unet_frames(unet, state, [d, b, c], t, text)
            new_previous = _toy_unet_frames(unet, state, [a, d, c], t, text)
            itself = _toy_unet_frames(unet, state, [c, c, c], t, text)
        finally:
            remove_cross_frame_attention(unet)
    assert torch.allclose(itself, default, atol=1e-5)
    assert float((out - default).abs().max()) > 1e-3
    assert float((new_first - out).abs().max()) > 1e-3
    assert float((new_previous - out).abs().max()) > 1e-3


def test_cross_frame_installed_on_decoder_self_attention_only():
    unet = toy.toy_components().unet
    before = {k: type(v) for k, v in unet.attn_processors.items()}
    names = install_cross_frame_attention(unet, CrossFrameState())
    assert names == cross_frame_layer_names(unet) and names
    for name, proc in unet.attn_processors.items():
        wrapped = name.startswith("up_blocks.") and ".attn1." in name
        assert isinstance(proc, CrossFrameAttnProcessor) == wrapped, name
    remove_cross_frame_attention(unet)
    assert {k: type(v) for k, v in unet.attn_processors.items()} == before


# ---- the frame pipeline ---------------------------------------------------------------------


def test_one_frame_equals_diffusers_controlnet_img2img(data_dir):
    from diffusers import StableDiffusionControlNetImg2ImgPipeline
    from PIL import Image

    c = toy.toy_components()
    frame, control = _frame_and_control(data_dir, (96, 64))
    reference = StableDiffusionControlNetImg2ImgPipeline(
        vae=c.vae, text_encoder=c.text_encoder, tokenizer=c.tokenizer, unet=c.unet, controlnet=c.controlnet,
        scheduler=c.scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    reference.set_progress_bar_config(disable=True)
    expected = reference(
        prompt="the man", negative_prompt=NEGATIVE_PROMPT, image=Image.fromarray(frame),
        control_image=Image.fromarray(control), height=64, width=96, num_inference_steps=4, strength=0.75,
        guidance_scale=7.5, controlnet_conditioning_scale=0.9, generator=torch.Generator("cpu").manual_seed(3),
        output_type="np", eta=0.0,
    ).images[0]
    config = SamplingConfig(steps=4, strength=0.75, guidance=7.5, controlnet_scale=0.9, seed=3,
                            cross_frame_attention=False)
    pipe = VideoTranslationPipeline(c, config)
    out = pipe(frame, control, "the man", NEGATIVE_PROMPT)
    assert out.decoded.shape == expected.shape == (64, 96, 3)
    assert float(np.abs(out.decoded - expected).max()) <= 1e-4
    assert pipe.unet_evaluations == 3 * 2  # int(4 * 0.75) steps, cond + uncond
    # a different seed gives a different frame (the comparison above can fail)
    other = VideoTranslationPipeline(c, SamplingConfig(steps=4, strength=0.75, seed=4, cross_frame_attention=False))
    assert float(np.abs(other(frame, control, "the man").decoded - expected).max()) > 1e-3


def test_static_video_gives_equal_frames_with_cross_frame_attention_and_fusion(data_dir):
    from signanon.diffusion.fusion import FusionConfig, TemporalFusion

    c = toy.toy_components()
    frame, control = _frame_and_control(data_dir)
    plain = VideoTranslationPipeline(c, SamplingConfig(steps=4, strength=1.0, cross_frame_attention=False))
    alone = plain(frame, control, "the man").decoded
    pipe = VideoTranslationPipeline(c, SamplingConfig(steps=4, strength=1.0))
    fusion = TemporalFusion(FusionConfig(shape_period=(0.0, 1.0), adain_period=(0.0, 1.0)))
    outs = [pipe(frame, control, "the man", fusion=fusion, index=i) for i in range(4)]
    pipe.close()
    assert pipe.cross_frame.has_reference and fusion.first is not None
    # frame 0 has no reference: it is exactly the plain frame
    assert float(np.abs(outs[0].decoded - alone).max()) == 0.0
    # measured: decoded frames 1-3 differ from frame 0 by <= 1.0e-3 (AdaIN re-normalisation and
    # warps at zero flow), uint8 outputs by <= 1 level
    for out in outs[1:]:
        assert float(np.abs(out.decoded - outs[0].decoded).max()) <= 5e-3
        assert int(np.abs(out.image.astype(int) - outs[0].image).max()) <= 2
    assert pipe.unet_evaluations == 4 * 4 * 2


def test_prompt_is_encoded_once_per_video(data_dir):
    c = toy.toy_components()
    frame, control = _frame_and_control(data_dir)
    pipe = VideoTranslationPipeline(c, SamplingConfig(steps=1, strength=1.0, cross_frame_attention=False))
    calls = []
    original = c.text_encoder.forward
    c.text_encoder.forward = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        pipe(frame, control, "the man")
        pipe(frame, control, "the man")
    finally:
        del c.text_encoder.forward
    assert len(calls) == 2  # positive + negative, once


# ---- weights --------------------------------------------------------------------------------


def test_model_folder_single_file_and_controlnet_folder_load(toy_dir):
    from diffusers.models.attention_processor import AttnProcessor2_0

    reference = toy.toy_components()
    folder = load_components(toy_dir / "sd", toy_dir / "cn", device="cpu")
    single = load_components(str(toy_dir / "sd.safetensors"), str(toy_dir / "cn"), device="cpu", config=toy_dir / "sd")
    for loaded in (folder, single):
        assert loaded.dtype == torch.float32 and loaded.device.type == "cpu"
        for name in ("unet", "controlnet", "vae", "text_encoder"):
            assert _state_diff(getattr(loaded, name), getattr(reference, name)) == 0.0, name
        assert type(loaded.scheduler).__name__ == "DDIMScheduler"
        assert loaded.tokenizer("the man").input_ids == reference.tokenizer("the man").input_ids
        assert all(isinstance(p, AttnProcessor2_0) for p in loaded.unet.attn_processors.values())
    # a VAE override from a folder (here the toy VAE subfolder)
    with_vae = load_components(toy_dir / "sd", toy_dir / "cn", vae=toy_dir / "sd" / "vae", device="cpu")
    assert _state_diff(with_vae.vae, reference.vae) == 0.0


@pytest.mark.parametrize(
    "model, controlnet, named",
    [
        ("{d}/missing_sd", "{d}/cn", "missing_sd"),
        ("{d}/v1-5-pruned-emaonly.safetensors", "{d}/cn", "v1-5-pruned-emaonly.safetensors"),
        ("signanon-test/no-such-model", "{d}/cn", "signanon-test/no-such-model"),
        ("{d}/sd", "lllyasviel/sd-controlnet-hed-not-cached", "lllyasviel/sd-controlnet-hed-not-cached"),
        ("{d}/sd", "{d}/missing_cn", "missing_cn"),
    ],
)
def test_missing_weights_one_line_with_the_download_command(toy_dir, model, controlnet, named):
    with pytest.raises(MissingWeightError) as err:
        load_components(model.format(d=toy_dir), controlnet.format(d=toy_dir), device="cpu")
    message = str(err.value)
    assert "\n" not in message and named in message and "hf download " in message
    assert isinstance(err.value, InputError)


def test_sd15_tokenizer_is_built_offline_with_clip_ids():
    from signanon.diffusion.tokenizer import sd15_tokenizer

    tok = sd15_tokenizer()
    assert len(tok) == 49408 and tok.model_max_length == 77
    # CLIP ViT-L/14's ids: <|startoftext|> a man in ... <|endoftext|>
    assert tok("a man in").input_ids == [49406, 320, 786, 530, 49407]


def test_doctor_lists_every_weight(capsys):
    from signanon.diffusion.cli import run_doctor
    from signanon.diffusion.weights import doctor_report

    rows = doctor_report()
    names = [r[0] for r in rows]
    assert any("Stable Diffusion" in n for n in names) and any("HED annotator" in n for n in names)
    run_doctor(argparse.Namespace())
    printed = capsys.readouterr().out
    for name, found, where in rows:
        assert name in printed and where in printed


# ---- the video runner -----------------------------------------------------------------------


def _config(**kw) -> DiffusionConfig:
    return DiffusionConfig(**{"control": "canny", "resolution": 64, "sampling": STEPS, **kw})


def test_working_size_rounds_to_64():
    assert working_size(320, 240, 512) == (704, 512)
    assert working_size(240, 320, 512) == (512, 704)
    assert working_size(1920, 1080, 500) == (896, 512)
    assert working_size(320, 240, 64) == (64, 64)


def test_end_to_end_on_a_real_clip(clip4, tmp_path):
    out = tmp_path / "anon.mp4"
    summary = DiffusionAnonymizer(_config(), toy.toy_components())(clip4, out, progress=False)
    info, got = probe_video(clip4), probe_video(out)
    assert got.frame_count == info.frame_count == summary.frames_out == 5
    assert got.fps == info.fps and (got.width, got.height) == (info.width, info.height)
    assert summary.unet_evaluations == 5 * STEPS.steps_run * 2
    assert '"unet_evaluations": 20' in summary.to_json()
    for stage in ("control_maps", "text_encoding", "unet", "vae", "io"):
        assert stage in summary.seconds_per_stage
    assert not (tmp_path / f".{out.name}.signanon-cache").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anon.mp4"]
    # the output is not the source: generated frames differ strongly from the input frames
    first_in = next(iter_frames(info)).astype(int)
    first_out = next(iter_frames(got)).astype(int)
    assert np.abs(first_in - first_out).mean() > 20


def test_keyframe_interval_propagates_between_key_frames(clip4, tmp_path):
    out = tmp_path / "anon.mp4"
    summary = DiffusionAnonymizer(_config(keyframe_interval=2), toy.toy_components())(clip4, out, progress=False)
    assert summary.frames_out == 5 and probe_video(out).frame_count == 5
    assert summary.key_frames == 3 and summary.frames_propagated == 2  # keys 0, 2, 4
    assert summary.unet_evaluations == 3 * STEPS.steps_run * 2


def test_tail_after_the_last_key_frame_is_propagated_not_diffused(clip4, tmp_path):
    out = tmp_path / "anon.mp4"
    summary = DiffusionAnonymizer(_config(keyframe_interval=4), toy.toy_components())(clip4, out, progress=False)
    assert summary.frames_out == 5 and probe_video(out).frame_count == 5
    assert summary.key_frames == 2 and summary.frames_propagated == 3  # keys 0 and 4
    summary = DiffusionAnonymizer(_config(keyframe_interval=3), toy.toy_components())(clip4, out, progress=False)
    assert summary.key_frames == 2 and summary.frames_propagated == 3  # keys 0, 3; 4 is the tail
    assert summary.unet_evaluations == 2 * STEPS.steps_run * 2


def test_flows_computed_ahead_on_a_thread_give_the_same_video(clip4, tmp_path):
    """The flow thread (``flow_ahead``) computes the in-between frames' flows while the next key
    frame diffuses; the frames come out exactly as with the flows computed in line."""
    components = toy.toy_components()
    runs = {}
    for ahead in (False, True):
        out = tmp_path / f"{ahead}.mp4"
        summary = DiffusionAnonymizer(_config(keyframe_interval=2, flow_ahead=ahead), components)(clip4, out, progress=False)
        runs[ahead] = (summary, np.stack(list(iter_frames(probe_video(out)))))
    assert runs[True][0].flow_pairs_ahead == 4  # frames 1 and 3, each from the key frame before and after
    assert runs[False][0].flow_pairs_ahead == 0
    assert runs[True][0].frames_propagated == runs[False][0].frames_propagated == 2
    assert np.array_equal(runs[True][1], runs[False][1])


def test_the_flow_thread_is_on_by_default_where_the_models_run_on_a_gpu():
    """``flow_ahead`` None: the thread where the models run on CUDA, not on the CPU (whose cores run
    the models); True/False decide it anywhere; with no frames between key frames there is none."""
    import torch

    def thread(device, **config):
        ahead = DiffusionAnonymizer(_config(keyframe_interval=4, **config))._flow_ahead(torch.device(device))
        if ahead is not None:
            ahead.close()
        return ahead is not None

    assert thread("cuda:0") and not thread("cpu")
    assert thread("cpu", flow_ahead=True) and not thread("cuda:0", flow_ahead=False)
    assert not DiffusionAnonymizer(_config(keyframe_interval=1))._flow_ahead(torch.device("cuda:0"))


def test_resume_skips_finished_key_frames(clip4, tmp_path, monkeypatch):
    out = tmp_path / "anon.mp4"
    components = toy.toy_components()
    original = VideoTranslationPipeline.__call__
    calls = []

    def crash_after_three(self, *args, **kwargs):
        if len(calls) == 3:
            raise RuntimeError("simulated crash")
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(VideoTranslationPipeline, "__call__", crash_after_three)
    with pytest.raises(RuntimeError, match="simulated crash"):
        DiffusionAnonymizer(_config(), components)(clip4, out, progress=False)
    monkeypatch.setattr(VideoTranslationPipeline, "__call__", original)
    cache = tmp_path / f".{out.name}.signanon-cache"
    assert not out.exists()
    assert sorted(p.name for p in cache.glob("key_*.png")) == ["key_000000.png", "key_000001.png", "key_000002.png"]

    summary = DiffusionAnonymizer(_config(), components)(clip4, out, progress=False)
    assert summary.key_frames_resumed == 3
    # frames 3 and 4, plus frame 0 re-diffused once to rebuild the attention/fusion references
    assert summary.key_frames == 3
    assert summary.unet_evaluations == 3 * STEPS.steps_run * 2  # a full run costs 5 * 2 * 2
    assert probe_video(out).frame_count == 5
    assert not cache.exists()


def test_resume_cache_with_other_settings_is_discarded(tmp_path):
    out = tmp_path / "anon.mp4"
    first = KeyFrameCache(out, "key-a")
    first.save(0, np.full((64, 64, 3), 7, np.uint8))
    assert KeyFrameCache(out, "key-a").load(0, (64, 64)) is not None
    assert KeyFrameCache(out, "key-b").load(0, (64, 64)) is None


def test_a_frame_that_cannot_be_produced_is_written_black(clip4, tmp_path, monkeypatch):
    out = tmp_path / "anon.mp4"
    monkeypatch.setattr(VideoTranslationPipeline, "decode", lambda self, latents: np.full((64, 64, 3), np.nan, np.float32))
    config = _config(sampling=SamplingConfig(steps=1, strength=1.0))
    summary = DiffusionAnonymizer(config, toy.toy_components())(clip4, out, progress=False)
    assert summary.frames_blank == 5
    for frame in iter_frames(probe_video(out)):
        assert frame.max() <= 3  # black (codec noise aside), never the source


# ---- CLI ------------------------------------------------------------------------------------


def _anonymize_parser():
    from signanon.cli.main import build_parser

    return build_parser()._subparsers._group_actions[0].choices["anonymize"]


def test_cli_options_default_to_the_config():
    from signanon.cli.anonymize import method_config_from_args

    parser = _anonymize_parser()
    assert method_config_from_args(parser.parse_args(["in.mp4", "-o", "o.mp4", "--method", "diffusion"])) == DiffusionConfig()
    args = parser.parse_args(["in.mp4", "-o", "o.mp4", "--method", "diffusion", "--steps", "30", "--strength", "0.5",
                              "--keyframe-interval", "4", "--control", "canny", "--model", "x.safetensors", "--seed", "7",
                              "--prompt", "a woman"])
    config = method_config_from_args(args)
    assert (config.sampling.steps, config.sampling.strength, config.sampling.seed) == (30, 0.5, 7)
    assert (config.keyframe_interval, config.control, config.model, config.prompt) == (4, "canny", "x.safetensors", "a woman")
    for bad in (["--strength", "1.5"], ["--keyframe-interval", "0"]):
        with pytest.raises(InputError):
            method_config_from_args(parser.parse_args(["in.mp4", "-o", "o.mp4", "--method", "diffusion", *bad]))


def test_missing_weights_through_run_job_write_nothing(clip4, tmp_path):
    from signanon.job import AnonymizeJob, run_job

    config = DiffusionConfig(model=str(tmp_path / "nope"), control="canny", device="cpu")
    with pytest.raises(MissingWeightError, match="hf download"):
        run_job(AnonymizeJob(clip4, tmp_path / "o.mp4", config))
    assert list(tmp_path.iterdir()) == []


def test_missing_weights_through_the_command_line(clip4, tmp_path):
    from signanon.cli.main import build_parser

    anonymize = build_parser()._subparsers._group_actions[0].choices["anonymize"]
    method = next(a for a in anonymize._actions if "--method" in a.option_strings)
    if "diffusion" not in (method.choices or []):
        pytest.skip("--method diffusion is not wired into signanon.cli.main yet")
    out = tmp_path / "o.mp4"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "signanon.cli.main", "anonymize", str(clip4), "-o", str(out), "--method", "diffusion",
         "--model", str(tmp_path / "nope"), "--control", "canny", "--device", "cpu", "-q"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "hf download" in lines[0] and "Traceback" not in proc.stderr
    assert not out.exists()


def test_wrong_model_path_is_named_first_among_every_missing_weight(clip4, tmp_path):
    """Issue 12: ``--model /path/that/does/not/exist`` with the default HED control and an empty
    Hugging Face cache names the user's wrong path first, then the ControlNet and the HED
    annotator, all in one line."""
    wrong = tmp_path / "path" / "that" / "does" / "not" / "exist"
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "empty_hf_home"))
    env.pop("HF_HUB_CACHE", None)
    env.pop("HUGGINGFACE_HUB_CACHE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "signanon.cli.main", "anonymize", str(clip4), "-o", str(out / "o.mp4"),
         "--method", "diffusion", "--model", str(wrong)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    line = lines[0]
    assert "3 diffusion weights are missing" in line, line
    where = [line.find(str(wrong)), line.find("sd-controlnet-hed"), line.find("ControlNetHED.pth")]
    assert -1 not in where and where == sorted(where), (where, line)
    assert list(out.iterdir()) == []


# ---- resume equals an uninterrupted run; the run key; documented defaults ---------------------


def _decoded(path: Path) -> np.ndarray:
    return np.stack(list(iter_frames(probe_video(path)))).astype(int)


def test_crashed_then_resumed_run_equals_an_uninterrupted_one(clip4, tmp_path, monkeypatch):
    components = toy.toy_components()
    whole = tmp_path / "whole.mp4"
    DiffusionAnonymizer(_config(), components)(clip4, whole, progress=False)
    original = VideoTranslationPipeline.__call__
    calls = []

    def crash_after_two(self, *args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C half-way
        calls.append(1)
        return original(self, *args, **kwargs)

    out = tmp_path / "resumed.mp4"
    monkeypatch.setattr(VideoTranslationPipeline, "__call__", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        DiffusionAnonymizer(_config(), components)(clip4, out, progress=False)
    monkeypatch.setattr(VideoTranslationPipeline, "__call__", original)
    assert not out.exists()
    summary = DiffusionAnonymizer(_config(), components)(clip4, out, progress=False)
    assert summary.key_frames_resumed == 2
    a, b = _decoded(whole), _decoded(out)
    assert a.shape == b.shape
    # the same frames, up to the H.264 encoder (which is not bit-exact across runs)
    assert np.abs(a - b).mean() < 1.0, np.abs(a - b).mean()
    assert np.abs(a - _decoded(clip4)).mean() > 20  # and both are really the diffused video


def test_run_key_follows_prompt_seed_strength_and_input_not_device(clip4, tmp_path):
    import dataclasses

    components = toy.toy_components()
    info = probe_video(clip4)
    base = DiffusionAnonymizer(_config(), components).run_key(info, components)

    def key(config=None, video=info):
        return DiffusionAnonymizer(config or _config(), components).run_key(video, components)

    assert key() == base  # stable
    assert key(_config(device="cpu")) == base == key(_config(device="auto"))  # the device setting: no
    assert key(_config(prompt="a woman with short red hair")) != base
    assert key(_config(sampling=dataclasses.replace(STEPS, seed=STEPS.seed + 1))) != base
    assert key(_config(sampling=dataclasses.replace(STEPS, strength=0.5))) != base
    other = tmp_path / "other.mp4"
    data = bytearray(clip4.read_bytes())
    data[-1] ^= 0xFF  # one byte of the input
    other.write_bytes(bytes(data))
    assert key(video=dataclasses.replace(info, path=other)) != base


def test_documented_defaults_are_the_published_ones():
    # README / DiffSLVA / Rerender-A-Video: literals, not the code's own defaults read back
    sampling = SamplingConfig()
    assert sampling.steps == 20
    assert sampling.guidance == 7.5
    assert sampling.strength == 0.75
    assert sampling.controlnet_scale == 0.9
    config = DiffusionConfig()
    assert config.keyframe_interval == 1
    assert config.full_prompt == config.prompt + ", best quality, extremely detailed"
    assert config.control == "hed" and config.resolution == 512


def test_doctor_calls_a_stub_hed_file_incomplete(tmp_path, monkeypatch):
    """A 5-byte ControlNetHED.pth in the cache (an interrupted download) was listed as found."""
    from signanon.diffusion import weights

    stub = tmp_path / "ControlNetHED.pth"
    stub.write_bytes(b"junk\n")
    monkeypatch.setattr(weights, "_cached_file", lambda repo, name: stub)
    (row,) = [r for r in weights.doctor_report() if r[0] == "HED annotator"]
    assert row[1] is False and "incomplete (5 bytes)" in row[2] and "hf download" in row[2]


def test_a_model_folder_without_weights_is_one_line_with_no_library_log(tmp_path, sample_clip):
    """A Stable Diffusion folder with its configs but no weights: diffusers logged "An error
    occurred while trying to fetch ..." and "Defaulting to unsafe serialization ..." before
    signanon's one-line error, which says the same and how to get the weights."""
    import os
    import subprocess
    import sys

    folder = tmp_path / "sd"
    toy._unet().save_config(folder / "unet")
    toy._controlnet().save_pretrained(tmp_path / "controlnet")  # a whole one: the UNet is what is missing
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-m", "signanon.cli.main", "anonymize", str(sample_clip), "-o", str(tmp_path / "o.mp4"),
                          "--method", "diffusion", "--prompt", "a man", "--model", str(folder), "--control", "canny",
                          "--controlnet", str(tmp_path / "controlnet")],
                         capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 1 and len(lines) == 1, run.stderr
    assert lines[0].startswith("signanon: error: ") and "weights missing" in lines[0]
