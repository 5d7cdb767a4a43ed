"""One video frame through Stable Diffusion + ControlNet: SDEdit from the frame, DDIM, CFG, with the
hooks of zero-shot temporal consistency (cross-frame attention and flow-guided fusion).

With cross-frame attention and fusion off, a frame comes out exactly as diffusers'
``StableDiffusionControlNetImg2ImgPipeline`` makes it from the same components, inputs and seed
(the same preprocessing, prompt encoding, VAE posterior sample, noise, timesteps and DDIM updates).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import setting
from .attention import CrossFrameState, install_cross_frame_attention, remove_cross_frame_attention
from .weights import DiffusionComponents

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ..summary import StageTimer
    from .fusion import TemporalFusion

QUALITY_SUFFIX = ", best quality, extremely detailed"
NEGATIVE_PROMPT = (
    "longbody, lowres, bad anatomy, bad hands, missing fingers, extra digit, fewer digits, cropped, "
    "worst quality, low quality"
)


@dataclass(frozen=True)
class SamplingConfig:
    """How each key frame is sampled (Rerender-A-Video's defaults).

    ``steps``: DDIM steps of the full schedule (``int(steps * strength)`` are run).
    ``guidance``: classifier-free guidance scale (<= 1 disables CFG: one UNet pass per step).
    ``strength``: SDEdit strength, 0-1: how far the input frame's latent is noised.
    ``controlnet_scale``: ControlNet conditioning scale (0.7-1.0 keeps hand shapes).
    ``seed``: the noise seed; every frame gets the same noise. ``eta``: DDIM eta (0 = deterministic).
    ``cross_frame_attention``: decoder self-attention attends to the first and previous key frame.
    """

    steps: int = setting(20, "DDIM steps of the full schedule; strength x steps are run", metavar="N")
    guidance: float = setting(7.5, "classifier-free guidance scale", metavar="G")
    strength: float = setting(0.75, "SDEdit strength in (0, 1]: how much of each frame is redrawn", metavar="S")
    controlnet_scale: float = setting(0.9, "ControlNet conditioning scale (0.7-1.0 keeps hand shapes)", cli=False)
    seed: int = setting(0, "noise seed, the same for every frame", metavar="N")
    eta: float = setting(0.0, "DDIM eta (0 = deterministic)", cli=False)
    cross_frame_attention: bool = setting(
        True, "decoder self-attention attends to the first and previous key frame", cli=False
    )

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"sampling.steps must be at least 1, got {self.steps}")
        if not 0.0 < self.strength <= 1.0:
            raise ValueError(f"sampling.strength must be in (0, 1], got {self.strength}")
        if self.controlnet_scale < 0:
            raise ValueError(f"sampling.controlnet_scale must be >= 0, got {self.controlnet_scale}")

    @property
    def steps_run(self) -> int:
        """Denoising steps actually run per frame (``int(steps * strength)``, as diffusers does)."""
        return min(int(self.steps * self.strength), self.steps)

    @property
    def cfg(self) -> bool:
        return self.guidance > 1.0


@dataclass
class FrameOutput:
    """What :class:`VideoTranslationPipeline` makes of one frame.

    ``decoded``: ``(H, W, 3)`` float32 in [0, 1], the VAE output before pixel-aware fusion (what
    diffusers' ``output_type="np"`` gives). ``image``: ``(H, W, 3)`` uint8, after pixel fusion.
    """

    decoded: np.ndarray
    image: np.ndarray


class VideoTranslationPipeline:
    """Translates video frames one at a time with shared per-video state.

    Args:
        components: the loaded models (:func:`~signanon.diffusion.weights.load_components`).
        config: :class:`SamplingConfig`.
        timer: optional :class:`~signanon.summary.StageTimer`; stages ``text_encoding``, ``unet``
            (UNet + ControlNet), ``vae``, ``flow``, ``fusion``.

    Installs :class:`~signanon.diffusion.attention.CrossFrameAttnProcessor` on the UNet when
    ``config.cross_frame_attention`` (call :meth:`close` to put the default processors back).
    ``unet_evaluations`` counts UNet forward samples (a batched cond+uncond call counts 2).
    """

    def __init__(
        self, components: DiffusionComponents, config: SamplingConfig = SamplingConfig(), timer: "StageTimer | None" = None
    ):
        from diffusers import DDIMScheduler

        self.components = components
        self.config = config
        self.timer = timer
        self.scheduler = DDIMScheduler.from_config(components.scheduler.config)
        self.cross_frame = CrossFrameState()
        self.unet_evaluations = 0
        self._prompt_cache: tuple[tuple[str, str], Any] | None = None
        if config.cross_frame_attention:
            install_cross_frame_attention(components.unet, self.cross_frame)

    # -- public ----------------------------------------------------------------------------

    def __call__(
        self,
        frame: np.ndarray,
        control: np.ndarray,
        prompt: str,
        negative_prompt: str = NEGATIVE_PROMPT,
        *,
        fusion: "TemporalFusion | None" = None,
        index: int = 0,
    ) -> FrameOutput:
        """Translate one frame.

        Args:
            frame: ``(H, W, 3)`` uint8 RGB at the working size (multiples of the VAE factor x 2).
            control: ``(H, W, 3)`` uint8 control image (HED/Canny edges) of the same size.
            prompt, negative_prompt: the text, used as given (add :data:`QUALITY_SUFFIX` before).
            fusion: the video's :class:`~signanon.diffusion.fusion.TemporalFusion`, or None.
            index: the frame's index in the video (flow cache key).
        """
        import torch

        with torch.inference_mode():
            # 1. Text embeddings [negative, positive] (cached: once per video).
            embeds = self.encode_prompt(prompt, negative_prompt)
            # 2. The control image as a tensor, doubled for CFG.
            control_t = self.prepare_control(control)
            # 3. Timesteps for the SDEdit strength.
            timesteps = self.prepare_timesteps()
            # 4. The frame's latent (VAE posterior sample), noised with the seed noise.
            generator = torch.Generator("cpu").manual_seed(self.config.seed)
            latents, noise = self.prepare_latents(frame, timesteps[:1], generator)
            # 5. Temporal state for this frame: flows, references, the pixel-level target.
            target_latents = self.begin_frame(frame, index, fusion)
            # 6. DDIM with ControlNet and CFG; fusion hooks on the latents and x0.
            for step, t in enumerate(timesteps):
                latents = self.denoise_step(
                    latents, t, step, len(timesteps), embeds, control_t, fusion, target_latents, noise
                )
            # 7. Decode.
            decoded = self.decode(latents)
            # 8. Pixel-aware fusion; the frame becomes the previous reference.
            return self.end_frame(decoded, fusion)

    def reset(self) -> None:
        """Forget the references of the previous video (keeps the prompt cache)."""
        self.cross_frame.reset()

    def close(self) -> None:
        """Put the UNet's default attention processors back."""
        if self.config.cross_frame_attention:
            remove_cross_frame_attention(self.components.unet)

    # -- steps -----------------------------------------------------------------------------

    def _stage(self, name: str):
        return self.timer(name) if self.timer is not None else nullcontext()

    @property
    def _device(self):
        return self.components.unet.device

    @property
    def _dtype(self):
        return self.components.unet.dtype

    def _embed(self, texts: list[str]) -> "torch.Tensor":
        tokenizer, encoder = self.components.tokenizer, self.components.text_encoder
        ids = tokenizer(
            texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
        ).input_ids
        mask = None
        if getattr(encoder.config, "use_attention_mask", False):
            mask = (ids != tokenizer.pad_token_id).long().to(encoder.device)
        out = encoder(ids.to(encoder.device), attention_mask=mask)[0]
        return out.to(dtype=self._dtype, device=self._device)

    def encode_prompt(self, prompt: str, negative_prompt: str) -> "torch.Tensor":
        """``(2, 77, D)`` [negative, positive] embeddings with CFG, ``(1, 77, D)`` without; cached."""
        import torch

        key = (prompt, negative_prompt)
        if self._prompt_cache is not None and self._prompt_cache[0] == key:
            return self._prompt_cache[1]
        with self._stage("text_encoding"):
            positive = self._embed([prompt])
            embeds = torch.cat([self._embed([negative_prompt or ""]), positive]) if self.config.cfg else positive
        self._prompt_cache = (key, embeds)
        return embeds

    def prepare_control(self, control: np.ndarray) -> "torch.Tensor":
        """``(B, 3, H, W)`` float in [0, 1] (B = 2 with CFG) from an ``(H, W, 3)`` uint8 image."""
        import torch

        t = torch.from_numpy(np.ascontiguousarray(control)).float().div(255.0).permute(2, 0, 1)[None]
        t = t.to(device=self._device, dtype=self._dtype)
        return torch.cat([t, t]) if self.config.cfg else t

    def prepare_timesteps(self) -> "torch.Tensor":
        """The DDIM timesteps from the SDEdit start to 0 (``steps_run`` of them)."""
        self.scheduler.set_timesteps(self.config.steps, device=self._device)
        start = self.config.steps - self.config.steps_run
        return self.scheduler.timesteps[start * self.scheduler.order :]

    def _encode(self, image_uint8: np.ndarray, generator=None) -> "torch.Tensor":
        import torch

        vae = self.components.vae
        x = torch.from_numpy(np.ascontiguousarray(image_uint8)).float().div(255.0).permute(2, 0, 1)[None]
        x = (x * 2.0 - 1.0).to(device=self._device, dtype=vae.dtype)
        posterior = vae.encode(x).latent_dist
        latents = posterior.sample(generator) if generator is not None else posterior.mode()
        return (latents * vae.config.scaling_factor).to(self._dtype)

    def prepare_latents(self, frame: np.ndarray, start: "torch.Tensor", generator) -> tuple["torch.Tensor", "torch.Tensor"]:
        """Noisy latents at the first timestep and the noise used: both ``(1, 4, H/f, W/f)``."""
        from diffusers.utils.torch_utils import randn_tensor

        with self._stage("vae"):
            init = self._encode(frame, generator)
        noise = randn_tensor(init.shape, generator=generator, device=self._device, dtype=self._dtype)
        return self.scheduler.add_noise(init, noise, start), noise

    def begin_frame(self, frame: np.ndarray, index: int, fusion: "TemporalFusion | None"):
        """Set cross-frame attention's mode; start the fusion's frame. Returns the VAE latent of the
        fusion's pixel-level target (or None): it is noised per step for latent fusion."""
        if self.config.cross_frame_attention:
            self.cross_frame.begin_frame()
        if fusion is None:
            return None
        with self._stage("flow"):
            fusion.begin_frame(index, frame)
        target = fusion.pixel_target()
        if target is None or fusion.config.latent_strength <= 0:
            return None
        with self._stage("vae"):
            return self._encode(target[0])

    def _alpha_prev(self, t) -> float:
        s = self.scheduler
        prev = int(t) - s.config.num_train_timesteps // s.num_inference_steps
        return float(s.alphas_cumprod[prev]) if prev >= 0 else float(s.final_alpha_cumprod)

    def denoise_step(self, latents, t, step, num_steps, embeds, control, fusion, target_latents, noise):
        """One DDIM step: latent fusion, ControlNet + UNet (CFG), x0 fusion, update."""
        import torch

        cfg = self.config
        if fusion is not None and target_latents is not None:
            noisy_target = self.scheduler.add_noise(target_latents, noise, t.reshape(1))
            latents = fusion.fuse_latents(latents, step, num_steps, noisy_target)
        model_input = torch.cat([latents, latents]) if cfg.cfg else latents
        model_input = self.scheduler.scale_model_input(model_input, t)
        self.cross_frame.step = step
        with self._stage("unet"):
            down, mid = self.components.controlnet(
                model_input, t, encoder_hidden_states=embeds, controlnet_cond=control,
                conditioning_scale=cfg.controlnet_scale, guess_mode=False, return_dict=False,
            )
            noise_pred = self.components.unet(
                model_input, t, encoder_hidden_states=embeds, down_block_additional_residuals=down,
                mid_block_additional_residual=mid, return_dict=False,
            )[0]
        self.unet_evaluations += model_input.shape[0]
        if cfg.cfg:
            uncond, text = noise_pred.chunk(2)
            noise_pred = uncond + cfg.guidance * (text - uncond)
        out = self.scheduler.step(noise_pred, t, latents, eta=cfg.eta, return_dict=True)
        if fusion is None:
            return out.prev_sample
        with self._stage("fusion"):
            x0 = out.pred_original_sample
            fused = fusion.fuse_x0(x0, step, num_steps)
            if fused is x0:
                return out.prev_sample
            # DDIM: x_prev = sqrt(a_prev) * x0 + direction(eps); only the x0 term changes.
            return out.prev_sample + self._alpha_prev(t) ** 0.5 * (fused - x0)

    def decode(self, latents) -> np.ndarray:
        """``(H, W, 3)`` float32 in [0, 1] from ``(1, 4, h, w)`` latents."""
        vae = self.components.vae
        with self._stage("vae"):
            image = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]
            image = (image / 2 + 0.5).clamp(0, 1)
            return image[0].permute(1, 2, 0).float().cpu().numpy()

    def end_frame(self, decoded: np.ndarray, fusion: "TemporalFusion | None") -> FrameOutput:
        """Pixel-aware fusion, then register the frame as the previous (and maybe first) reference."""
        image = np.clip(np.nan_to_num(decoded, nan=0.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if fusion is not None:
            with self._stage("fusion"):
                image = fusion.fuse_pixels(image)
                fusion.end_frame(image)
        if self.config.cross_frame_attention:
            self.cross_frame.end_frame()
        return FrameOutput(decoded=decoded, image=image)
