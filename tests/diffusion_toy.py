"""Tiny randomly initialised Stable Diffusion + ControlNet components for tests and benchmarks.

The architecture follows SD-1.5's pattern at toy size (as diffusers' own tests do): 2 UNet blocks
(cross-attention down block first, plain up block first), 32/64 channels, a 3-block VAE (one
latent cell is 4x4 pixels), a 2-layer CLIP text encoder with hidden size 32, a 525-token tokenizer
vocabulary made here, and SD-1.5's DDIM scheduler settings. A 64x64 frame (16x16 latents) costs about 0.1 s per step on one CPU core.

    components = toy_components(seed=0)            # DiffusionComponents, float32, CPU
    save_toy_model_folder(tmp / "sd")              # a diffusers pipeline folder
    save_toy_single_file(tmp / "sd.safetensors")   # the original (CompVis/LDM) single-file layout
    save_toy_controlnet(tmp / "cn")                # a diffusers ControlNet folder
"""

from __future__ import annotations

import re
from pathlib import Path

from signanon.diffusion.tokenizer import tiny_tokenizer
from signanon.diffusion.weights import DiffusionComponents

TOY_RESOLUTION = 64  # short side; the VAE divides it by 4, the UNet halves it once more
_BLOCKS = (32, 64)
_LAYERS = 2
_CROSS_DIM = 32


def toy_scheduler():
    """DDIM with SD-1.5's settings (scaled-linear betas, no clipping, steps offset 1)."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        clip_sample=False, set_alpha_to_one=False, steps_offset=1,
    )


def _unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=_BLOCKS, layers_per_block=_LAYERS, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=_CROSS_DIM, attention_head_dim=8, norm_num_groups=8,
    )


def _controlnet():
    from diffusers import ControlNetModel

    return ControlNetModel(
        block_out_channels=_BLOCKS, layers_per_block=_LAYERS, in_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), cross_attention_dim=_CROSS_DIM,
        attention_head_dim=8, conditioning_embedding_out_channels=(16, 32, 32), norm_num_groups=8,
    )


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[16, 32, 32], in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=8,
        down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3, sample_size=64,
    )


def _text_encoder(tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        hidden_size=_CROSS_DIM, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
        vocab_size=len(tokenizer), max_position_embeddings=77, layer_norm_eps=1e-5,
    )
    return CLIPTextModel(config)


def toy_components(seed: int = 0) -> DiffusionComponents:
    """Fresh toy components, float32 on CPU, in eval mode; the same ``seed`` gives the same weights."""
    import torch

    torch.manual_seed(seed)
    unet = _unet()
    torch.manual_seed(seed + 1)
    controlnet = _controlnet()
    torch.manual_seed(seed + 2)
    vae = _vae()
    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed + 3)
    text_encoder = _text_encoder(tokenizer)
    for model in (unet, controlnet, vae, text_encoder):
        model.eval()
    return DiffusionComponents(unet, controlnet, vae, text_encoder, tokenizer, toy_scheduler())


def save_toy_model_folder(path: str | Path, seed: int = 0) -> Path:
    """Write a diffusers StableDiffusionPipeline folder (model_index.json, unet/, vae/, ...)."""
    from diffusers import StableDiffusionPipeline

    c = toy_components(seed)
    pipe = StableDiffusionPipeline(
        vae=c.vae, text_encoder=c.text_encoder, tokenizer=c.tokenizer, unet=c.unet, scheduler=c.scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(path)
    return Path(path)


def save_toy_controlnet(path: str | Path, seed: int = 0) -> Path:
    """Write a diffusers ControlNet folder (config.json + diffusion_pytorch_model.safetensors)."""
    toy_components(seed).controlnet.save_pretrained(path)
    return Path(path)


# ---- diffusers -> original (CompVis / LDM) key names, for the single-file checkpoint -------------

_RESNET = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
           ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection")]


def _ldm_unet_key(key: str, unet) -> str:
    step = _LAYERS + 1
    fixed = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    for new, old in fixed.items():
        if key.startswith(new + "."):
            return old + key[len(new):]
    patterns = [
        (r"down_blocks\.(\d+)\.resnets\.(\d+)\.", lambda i, j: f"input_blocks.{step * i + j + 1}.0."),
        (r"down_blocks\.(\d+)\.attentions\.(\d+)\.", lambda i, j: f"input_blocks.{step * i + j + 1}.1."),
        (r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.", lambda i: f"input_blocks.{step * (i + 1)}.0.op."),
        (r"up_blocks\.(\d+)\.resnets\.(\d+)\.", lambda i, j: f"output_blocks.{step * i + j}.0."),
        (r"up_blocks\.(\d+)\.attentions\.(\d+)\.", lambda i, j: f"output_blocks.{step * i + j}.1."),
        (r"up_blocks\.(\d+)\.upsamplers\.0\.",
         lambda i: f"output_blocks.{step * i + _LAYERS}.{2 if hasattr(unet.up_blocks[i], 'attentions') else 1}."),
        (r"mid_block\.attentions\.0\.", lambda: "middle_block.1."),
        (r"mid_block\.resnets\.(\d+)\.", lambda j: f"middle_block.{2 * j}."),
    ]
    for pattern, make in patterns:
        m = re.match(pattern, key)
        if m:
            rest = key[m.end():]
            if "resnets" in pattern:
                for new, old in _RESNET:
                    if rest.startswith(new + "."):
                        rest = old + rest[len(new):]
            return make(*map(int, m.groups())) + rest
    raise KeyError(key)


def _ldm_vae_key(key: str, n_blocks: int) -> str:
    sub = [
        (r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.", lambda i, j: f"encoder.down.{i}.block.{j}."),
        (r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", lambda i: f"encoder.down.{i}.downsample."),
        (r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.", lambda i, j: f"decoder.up.{n_blocks - 1 - i}.block.{j}."),
        (r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.", lambda i: f"decoder.up.{n_blocks - 1 - i}.upsample."),
        (r"(en|de)coder\.mid_block\.resnets\.(\d+)\.", lambda p, j: f"{p}coder.mid.block_{int(j) + 1}."),
        (r"(en|de)coder\.mid_block\.attentions\.0\.", lambda p: f"{p}coder.mid.attn_1."),
    ]
    for pattern, make in sub:
        m = re.match(pattern, key)
        if m:
            groups = [int(g) if g.isdigit() else g for g in m.groups()]
            key = make(*groups) + key[m.end():]
            break
    for new, old in [("conv_norm_out", "norm_out"), ("conv_shortcut", "nin_shortcut"), ("group_norm", "norm"),
                     ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")]:
        key = key.replace(f".{new}.", f".{old}.")
    return key


def toy_ldm_state_dict(seed: int = 0) -> dict:
    """The toy UNet, VAE and text encoder as one state dict in the original SD-1.x layout."""
    c = toy_components(seed)
    state = {}
    for key, value in c.unet.state_dict().items():
        state["model.diffusion_model." + _ldm_unet_key(key, c.unet)] = value
    n_blocks = len(c.vae.config.block_out_channels)
    for key, value in c.vae.state_dict().items():
        new = _ldm_vae_key(key, n_blocks)
        if re.search(r"mid\.attn_1\.(q|k|v|proj_out)\.weight$", new):
            value = value[:, :, None, None]  # the original VAE attention uses 1x1 convolutions
        state["first_stage_model." + new] = value
    for key, value in c.text_encoder.state_dict().items():
        # transformers >= 5.6 flattened CLIPTextModel; the original checkpoints keep "text_model."
        key = key if key.startswith("text_model.") else "text_model." + key
        state["cond_stage_model.transformer." + key] = value
    return {k: v.contiguous() for k, v in state.items()}


def save_toy_single_file(path: str | Path, seed: int = 0) -> Path:
    """Write the toy model as one ``.safetensors`` in the original SD layout (``model.diffusion_model.*``,
    ``first_stage_model.*``, ``cond_stage_model.transformer.*``). Loading it needs the toy configs:
    pass a folder from :func:`save_toy_model_folder` as ``config``."""
    from safetensors.torch import save_file

    save_file(toy_ldm_state_dict(seed), str(path))
    return Path(path)

