"""Loading Stable Diffusion 1.5 + ControlNet weights, offline only.

A weight can be named three ways (``--model``, ``--controlnet``, ``--vae``):

* a **diffusers folder** (``model_index.json`` with ``unet/``, ``vae/``, ``text_encoder/``,
  ``tokenizer/``, ``scheduler/``; or a model folder with ``config.json`` for a ControlNet/VAE);
* a **Hub id already in the local cache** (``stable-diffusion-v1-5/stable-diffusion-v1-5``): resolved
  with ``local_files_only=True``, so nothing is ever fetched, whatever ``HF_HUB_OFFLINE`` says;
* a **single file** (``.safetensors``, ``.ckpt``, ``.pt``, ``.pth``, ``.bin``) in the original
  CompVis/LDM layout (``model.diffusion_model.*``, ``first_stage_model.*``,
  ``cond_stage_model.transformer.*``; ``control_model.*`` for lllyasviel's ControlNets).
  Its architecture comes from ``config`` (a diffusers folder) or, by default, from SD-1.5's configs
  written out by this module; the tokenizer is built from open_clip's bundled BPE vocabulary.

Anything missing raises :class:`MissingWeightError`: one line naming the path or id and the
``hf download`` command to run on a connected machine. fp16 on CUDA/MPS, float32 on CPU; attention
stays on diffusers' default processor, which is PyTorch's SDPA (flash/memory-efficient kernels on GPU).
"""

from __future__ import annotations

import contextlib

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..device import resolve_device  # noqa: F401  (re-exported: the doctor command imports it here)
from ..errors import InputError
from . import INSTALL_HINT

SD15_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
SD15_SINGLE_FILE = "v1-5-pruned-emaonly.safetensors"
CONTROLNET_IDS = {"hed": "lllyasviel/sd-controlnet-hed", "canny": "lllyasviel/sd-controlnet-canny"}
CONTROLNET_SINGLE_FILE_REPO = "lllyasviel/ControlNet"  # models/control_sd15_hed.pth, ..._canny.pth
VAE_ID = "stabilityai/sd-vae-ft-mse"
ANNOTATORS_ID = "lllyasviel/Annotators"
HED_FILE = "ControlNetHED.pth"
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
_SD15_PIPELINE_FILES = '--include "*.json" "*.txt" "*/diffusion_pytorch_model.safetensors" "text_encoder/model.safetensors"'

# SD-1.5's component configurations (facts of the published checkpoint), for single files.
_SD15_UNET = {
    "_class_name": "UNet2DConditionModel", "sample_size": 64, "in_channels": 4, "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2, "cross_attention_dim": 768,
    "attention_head_dim": 8, "norm_num_groups": 32, "norm_eps": 1e-5, "flip_sin_to_cos": True, "freq_shift": 0,
    "downsample_padding": 1, "mid_block_scale_factor": 1, "act_fn": "silu", "center_input_sample": False,
}
_SD15_CONTROLNET = {
    "_class_name": "ControlNetModel", "in_channels": 4, "conditioning_channels": 3,
    "down_block_types": _SD15_UNET["down_block_types"], "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2, "cross_attention_dim": 768, "attention_head_dim": 8, "norm_num_groups": 32,
    "norm_eps": 1e-5, "flip_sin_to_cos": True, "freq_shift": 0, "downsample_padding": 1,
    "mid_block_scale_factor": 1, "act_fn": "silu", "conditioning_embedding_out_channels": [16, 32, 96, 256],
    "controlnet_conditioning_channel_order": "rgb",
}
_SD15_VAE = {
    "_class_name": "AutoencoderKL", "in_channels": 3, "out_channels": 3, "latent_channels": 4,
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "act_fn": "silu", "norm_num_groups": 32,
    "sample_size": 512, "scaling_factor": 0.18215,
}
_SD15_TEXT_ENCODER = {
    "architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "vocab_size": 49408, "hidden_size": 768,
    "intermediate_size": 3072, "projection_dim": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
    "max_position_embeddings": 77, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "bos_token_id": 0,
    "eos_token_id": 2, "pad_token_id": 1,
}
_SD15_SCHEDULER = {
    "_class_name": "DDIMScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1,
    "prediction_type": "epsilon",
}


class MissingWeightError(InputError):
    """A weight file, folder or cached Hub id is not on this machine (one line + the fetch command)."""


@dataclass(frozen=True)
class DiffusionComponents:
    """The models one run needs, already on their device and dtype, in eval mode.

    ``unet``: UNet2DConditionModel, ``controlnet``: ControlNetModel, ``vae``: AutoencoderKL,
    ``text_encoder``: CLIPTextModel, ``tokenizer``: CLIPTokenizer, ``scheduler``: DDIMScheduler.
    """

    unet: Any
    controlnet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    scheduler: Any

    @property
    def device(self):
        return self.unet.device

    @property
    def dtype(self):
        return self.unet.dtype

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent cell (8 for SD-1.5)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)


def _torch():
    try:
        import diffusers  # noqa: F401
        import torch
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    return torch


def _hub():
    """``huggingface_hub`` (it comes with diffusers), or the one-line install hint."""
    try:
        import huggingface_hub
        import huggingface_hub.errors
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    return huggingface_hub


def default_dtype(device) -> Any:
    """float16 on a GPU (CUDA or MPS), float32 on CPU."""
    torch = _torch()
    return torch.float16 if torch.device(device).type in ("cuda", "mps") else torch.float32


# ---- naming a weight ------------------------------------------------------------------------


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _is_hub_id(text: str) -> bool:
    return bool(_HUB_ID.match(text)) and not text.lower().endswith(SINGLE_FILE_SUFFIXES)


def _download_command(repo_id: str, filename: str | None = None, local_dir: Path | None = None) -> str:
    parts = ["hf download", repo_id]
    if filename:
        parts.append(filename)
    elif repo_id == SD15_ID:
        parts.append(_SD15_PIPELINE_FILES)
    if local_dir is not None:
        parts += ["--local-dir", str(local_dir)]
    return " ".join(parts)


def _missing_path(
    what: str, path: Path, repo_id: str, single_file: str | None = None, single_file_repo: str | None = None
) -> MissingWeightError:
    if path.suffix.lower() in SINGLE_FILE_SUFFIXES:
        filename = single_file or path.name
        command = _download_command(single_file_repo or repo_id, filename, path.parent)
        lands = path.parent / filename
        if lands != path:
            command += f"; it writes {lands}: pass that path"
    else:
        command = _download_command(repo_id, None, path)
    return MissingWeightError(f"{what} not found: {path} (on a connected machine run: {command})")


def cached_snapshot(repo_id: str) -> Path | None:
    """The local cache folder of Hub repo ``repo_id``, or None; never touches the network."""
    hub = _hub()
    errors = (hub.errors.LocalEntryNotFoundError, hub.errors.HFValidationError, OSError, ValueError)
    try:
        return Path(hub.snapshot_download(repo_id, local_files_only=True))
    except errors:
        return None


def _try(locator, *args) -> tuple[Any, MissingWeightError | None]:
    """``(locator(*args), None)``, or ``(None, the MissingWeightError it raised)``."""
    try:
        return locator(*args), None
    except MissingWeightError as err:
        return None, err


def _user_path_first(errors: list[tuple[str, MissingWeightError]]) -> list[MissingWeightError]:
    """Missing weights ordered for the message: those the user named by a path that does not
    exist first (the likeliest typo), then the cached ids and defaults, each group in the order given."""
    own = [err for spec, err in errors if not _is_hub_id(spec)]
    rest = [err for spec, err in errors if _is_hub_id(spec)]
    return own + rest


def raise_missing(errors: list[tuple[str, MissingWeightError]]) -> None:
    """Raise one MissingWeightError listing every ``(spec, error)`` of ``errors`` (none: return)."""
    if not errors:
        return
    ordered = _user_path_first(errors)
    if len(ordered) == 1:
        raise ordered[0]
    parts = "; ".join(f"({i}) {err}" for i, err in enumerate(ordered, 1))
    raise MissingWeightError(f"{len(ordered)} diffusion weights are missing: {parts}")


def _locate_each(
    model: str | Path, controlnet: str | Path, vae: str | Path | None
) -> tuple[list[Path | None], list[tuple[str, MissingWeightError]]]:
    """:func:`locate` the model, the ControlNet and the optional VAE without stopping at the first
    missing one: ``([model, controlnet, vae] paths (None where missing), [(spec, error), ...])``."""
    cn_repo = _controlnet_repo(controlnet)
    kind = "canny" if cn_repo == CONTROLNET_IDS["canny"] else "hed"
    lookups = [
        (model, ("Stable Diffusion model", SD15_ID, SD15_SINGLE_FILE)),
        (controlnet, ("ControlNet", cn_repo, f"models/control_sd15_{kind}.pth", CONTROLNET_SINGLE_FILE_REPO)),
        (vae, ("VAE", VAE_ID, "vae-ft-mse-840000-ema-pruned.safetensors", "stabilityai/sd-vae-ft-mse-original")),
    ]
    found: list[Path | None] = []
    errors: list[tuple[str, MissingWeightError]] = []
    for spec, details in lookups:
        if spec is None:
            found.append(None)
            continue
        path, err = _try(locate, spec, *details)
        found.append(path)
        if err is not None:
            errors.append((str(spec), err))
    return found, errors


def locate_all(model: str | Path, controlnet: str | Path, vae: str | Path | None) -> tuple[Path, Path, Path | None]:
    """:func:`locate` the model, the ControlNet and the optional VAE; one MissingWeightError that
    lists every missing one (the user's own wrong paths first) instead of stopping at the first."""
    found, errors = _locate_each(model, controlnet, vae)
    raise_missing(errors)
    return found[0], found[1], found[2]


def check_weights(config) -> None:
    """Check that every weight a :class:`~.runner.DiffusionConfig` needs is on this machine
    (model, ControlNet, VAE override, HED annotator when ``control`` is hed) without loading any:
    one MissingWeightError listing all that are missing, the user's own wrong paths first."""
    _, errors = _locate_each(config.model, config.controlnet_spec, config.vae)
    if config.control == "hed":
        _, hed_err = _try(resolve_hed_weights, config.hed_weights)
        if hed_err is not None:
            errors.append((str(config.hed_weights or ANNOTATORS_ID), hed_err))
    raise_missing(errors)


def locate(
    spec: str | Path, what: str, repo_id: str, single_file: str | None = None, single_file_repo: str | None = None
) -> Path:
    """Resolve a folder, file or cached Hub id to a local path, or raise :class:`MissingWeightError`.

    The error's command fetches ``repo_id`` (a folder or id), or ``single_file`` from
    ``single_file_repo`` (default ``repo_id``) when ``spec`` names a weights file."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.exists():
        return path
    if isinstance(spec, Path) or not _is_hub_id(text):
        raise _missing_path(what, path, repo_id, single_file, single_file_repo)
    snapshot = cached_snapshot(text)
    if snapshot is None:
        raise MissingWeightError(
            f"{what} {text!r} is not in the local Hugging Face cache and nothing is downloaded at run time "
            f"(on a connected machine run: {_download_command(text)})"
        )
    return snapshot


# ---- loading --------------------------------------------------------------------------------


def _write_sd15_configs(folder: Path) -> Path:
    """Write SD-1.5's diffusers configs and tokenizer into ``folder`` (for single-file loading)."""
    from .tokenizer import sd15_tokenizer

    for name, config in [("unet", _SD15_UNET), ("vae", _SD15_VAE), ("scheduler", _SD15_SCHEDULER),
                         ("text_encoder", _SD15_TEXT_ENCODER), ("controlnet", _SD15_CONTROLNET)]:
        (folder / name).mkdir(parents=True, exist_ok=True)
        filename = "scheduler_config.json" if name == "scheduler" else "config.json"
        (folder / name / filename).write_text(json.dumps(config))
    sd15_tokenizer().save_pretrained(folder / "tokenizer")
    return folder


def _from_folder(cls, folder: Path, subfolder: str | None, dtype, what: str, repo_id: str, root: Path):
    kwargs: dict[str, Any] = {"local_files_only": True}
    if subfolder:
        kwargs["subfolder"] = subfolder
    if dtype is not None:
        kwargs["torch_dtype"] = dtype
    try:
        with _quiet_loaders():
            return cls.from_pretrained(str(folder), **kwargs)
    except (OSError, EnvironmentError) as err:
        where = folder / subfolder if subfolder else folder
        command = _download_command(repo_id, None, root)
        raise MissingWeightError(
            f"{what} weights missing or unreadable in {where} ({_first_line(err)}); "
            f"on a connected machine run: {command}"
        ) from None


@contextlib.contextmanager
def _quiet_loaders():
    """diffusers' and transformers' own log lines silenced while a model loads: a folder without
    weights printed "An error occurred while trying to fetch ..." and "Defaulting to unsafe
    serialization ..." before the one-line error that says the same and how to fix it."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    levels = diffusers_logging.get_verbosity(), transformers_logging.get_verbosity()
    diffusers_logging.set_verbosity(diffusers_logging.CRITICAL)  # the fetch message is logged as an error
    transformers_logging.set_verbosity(transformers_logging.CRITICAL)
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(levels[0])
        transformers_logging.set_verbosity(levels[1])


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


def _load_checkpoint(path: Path, what: str):
    from diffusers.loaders.single_file_utils import load_single_file_checkpoint

    try:
        return load_single_file_checkpoint(str(path), local_files_only=True)
    except Exception as err:  # a corrupt or truncated file: torch/safetensors raise many kinds
        raise InputError(f"cannot read {what} file {path}: {_first_line(err)}") from None


def _pipeline_from_folder(folder: Path, dtype, repo_id: str):
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    if not (folder / "unet").is_dir():
        raise MissingWeightError(
            f"{folder} is not a diffusers Stable Diffusion folder (no unet/ inside); "
            f"on a connected machine run: {_download_command(repo_id, None, folder)}"
        )
    unet = _from_folder(UNet2DConditionModel, folder, "unet", dtype, "UNet", repo_id, folder)
    vae = _from_folder(AutoencoderKL, folder, "vae", dtype, "VAE", repo_id, folder)
    text_encoder = _from_folder(CLIPTextModel, folder, "text_encoder", dtype, "text encoder", repo_id, folder)
    if (folder / "tokenizer").is_dir():
        tokenizer = CLIPTokenizer.from_pretrained(str(folder), subfolder="tokenizer", local_files_only=True)
    else:
        from .tokenizer import sd15_tokenizer

        tokenizer = sd15_tokenizer()
    scheduler = DDIMScheduler.from_config(DDIMScheduler.load_config(str(folder), subfolder="scheduler"))
    return unet, vae, text_encoder, tokenizer, scheduler


def _pipeline_from_single_file(path: Path, config: Path, dtype):
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import create_diffusers_clip_model_from_ldm
    from transformers import CLIPTextModel, CLIPTokenizer

    checkpoint = _load_checkpoint(path, "model")
    if not any(k.startswith("model.diffusion_model.") for k in checkpoint):
        raise InputError(f"{path} is not a Stable Diffusion 1.x checkpoint (no model.diffusion_model.* weights)")
    kwargs = {"config": str(config), "local_files_only": True, "torch_dtype": dtype}
    try:
        unet = UNet2DConditionModel.from_single_file(checkpoint, subfolder="unet", **kwargs)
        vae = AutoencoderKL.from_single_file(checkpoint, subfolder="vae", **kwargs)
        text_encoder = create_diffusers_clip_model_from_ldm(
            CLIPTextModel, checkpoint, subfolder="text_encoder", **kwargs
        )
    except (ValueError, KeyError, RuntimeError) as err:
        raise InputError(f"cannot convert {path} as an SD-1.x checkpoint: {_first_line(err)}") from None
    tokenizer = CLIPTokenizer.from_pretrained(str(config), subfolder="tokenizer", local_files_only=True)
    scheduler = DDIMScheduler.from_config(DDIMScheduler.load_config(str(config), subfolder="scheduler"))
    return unet, vae, text_encoder, tokenizer, scheduler


def _folder(config) -> Path:
    """A config folder given as a path, or as a callable that writes one on demand."""
    return config if isinstance(config, Path) else config()


def _controlnet_repo(spec: str | Path) -> str:
    return CONTROLNET_IDS["canny"] if "canny" in str(spec).lower() else CONTROLNET_IDS["hed"]


def _load_controlnet(path: Path, repo_id: str, config, dtype):
    from diffusers import ControlNetModel

    if path.is_dir():
        return _from_folder(ControlNetModel, path, None, dtype, "ControlNet", repo_id, path)
    checkpoint = _load_checkpoint(path, "ControlNet")
    try:
        return ControlNetModel.from_single_file(
            checkpoint, config=str(_folder(config)), subfolder="controlnet", local_files_only=True, torch_dtype=dtype
        )
    except (ValueError, KeyError, RuntimeError) as err:
        raise InputError(f"cannot convert {path} as an SD-1.x ControlNet: {_first_line(err)}") from None


def _load_vae(path: Path, config, dtype):
    from diffusers import AutoencoderKL

    if path.is_dir():
        return _from_folder(AutoencoderKL, path, None, dtype, "VAE", VAE_ID, path)
    checkpoint = _load_checkpoint(path, "VAE")
    return AutoencoderKL.from_single_file(
        checkpoint, config=str(_folder(config)), subfolder="vae", local_files_only=True, torch_dtype=dtype
    )


def load_components(
    model: str | Path = SD15_ID,
    controlnet: str | Path = CONTROLNET_IDS["hed"],
    vae: str | Path | None = None,
    device: str = "auto",
    dtype=None,
    *,
    config: str | Path | None = None,
) -> DiffusionComponents:
    """Load SD-1.x + ControlNet (+ optional VAE override) without touching the network.

    ``model``/``controlnet``/``vae``: a diffusers folder, a cached Hub id or a single file (see the
    module docstring). ``config``: a diffusers folder whose ``unet/``, ``vae/``, ``text_encoder/``,
    ``tokenizer/``, ``scheduler/`` (and ``controlnet/`` or root ``config.json``) describe the
    architecture of single-file weights; default SD-1.5's. ``device``: auto|cpu|cuda|mps.
    ``dtype``: default float16 on GPU, float32 on CPU. Raises MissingWeightError / InputError.
    """
    target = resolve_device(device)
    dtype = dtype if dtype is not None else default_dtype(target)
    # Every weight is located before any is loaded: all missing ones are reported at once.
    model_path, cn_path, vae_path = locate_all(model, controlnet, vae)
    cn_repo = _controlnet_repo(controlnet)
    with tempfile.TemporaryDirectory(prefix="signanon-sd15-config-") as scratch:
        sd15 = _LazyConfigFolder(Path(scratch))
        given = Path(config) if config is not None else None
        if model_path.is_dir():
            repo_id = SD15_ID if Path(str(model)).expanduser().exists() else str(model)
            unet, vae_model, text_encoder, tokenizer, scheduler = _pipeline_from_folder(model_path, dtype, repo_id)
        else:
            unet, vae_model, text_encoder, tokenizer, scheduler = _pipeline_from_single_file(
                model_path, given or sd15(), dtype
            )
        has_cn_config = given is not None and (given / "controlnet").is_dir()
        controlnet_model = _load_controlnet(cn_path, cn_repo, given if has_cn_config else sd15, dtype)
        if vae_path is not None:
            vae_model = _load_vae(vae_path, given or sd15, dtype)
    for module in (unet, controlnet_model, vae_model, text_encoder):
        module.to(target)
        module.eval()
        module.requires_grad_(False)
    return DiffusionComponents(unet, controlnet_model, vae_model, text_encoder, tokenizer, scheduler)


class _LazyConfigFolder:
    """SD-1.5's configs, written to ``folder`` the first time they are asked for."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._written = False

    def __call__(self) -> Path:
        if not self._written:
            _write_sd15_configs(self.folder)
            self._written = True
        return self.folder


# ---- annotator weights and the doctor ---------------------------------------------------------


def resolve_hed_weights(spec: str | Path | None) -> Path:
    """The HED annotator's ``ControlNetHED.pth``: the given path, or the copy in the HF cache."""
    if spec is not None:
        path = Path(spec).expanduser()
        if path.is_file():
            return path
        command = _download_command(ANNOTATORS_ID, HED_FILE, path.parent if path.suffix else path)
        raise MissingWeightError(f"HED annotator weights not found: {path} (on a connected machine run: {command})")
    cached = _cached_file(ANNOTATORS_ID, HED_FILE)
    if cached is None:
        raise MissingWeightError(
            f"HED annotator weights {ANNOTATORS_ID}/{HED_FILE} are not in the local Hugging Face cache "
            f"(on a connected machine run: {_download_command(ANNOTATORS_ID, HED_FILE)}; or pass --hed-weights PATH)"
        )
    return cached


def _cached_file(repo_id: str, filename: str) -> Path | None:
    found = _hub().try_to_load_from_cache(repo_id, filename)
    return Path(found) if isinstance(found, str) else None


def _has_weights(folder: Path) -> bool:
    return any(p.suffix in (".safetensors", ".bin") for p in folder.rglob("*") if p.is_file())


MIN_HED_BYTES = 1 << 20  # ControlNetHED.pth is 29 MB: anything under 1 MB is not the annotator


def doctor_report() -> list[tuple[str, bool, str]]:
    """What the diffusion method can find on this machine: ``(name, found, where or fetch command)``.

    Only the local Hugging Face cache is looked at (never the network)."""
    rows: list[tuple[str, bool, str]] = []
    for name, repo_id in [("Stable Diffusion 1.5", SD15_ID), ("ControlNet HED", CONTROLNET_IDS["hed"]),
                          ("ControlNet Canny", CONTROLNET_IDS["canny"]), ("VAE ft-MSE (optional)", VAE_ID)]:
        snapshot = cached_snapshot(repo_id)
        if snapshot is not None and _has_weights(snapshot):
            rows.append((name, True, str(snapshot)))
        else:
            rows.append((name, False, _download_command(repo_id)))
    hed = _cached_file(ANNOTATORS_ID, HED_FILE)
    if hed is not None and hed.stat().st_size < MIN_HED_BYTES:  # a stub or an interrupted download
        rows.append(("HED annotator", False, f"incomplete ({hed.stat().st_size} bytes): {hed}; "
                                             f"{_download_command(ANNOTATORS_ID, HED_FILE)}"))  # fmt: skip
    else:
        rows.append(("HED annotator", hed is not None, str(hed) if hed else _download_command(ANNOTATORS_ID, HED_FILE)))
    return rows

