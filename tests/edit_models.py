"""Random-weight flow edit models (Qwen-Image-Edit, Flux.1 Kontext) and the conditioning they take.

Tests of a model patch that has to work on flow edit models need the real architectures as
ComfyUI 0.3.64 loads them, and none can be downloaded here. Each builder instantiates ComfyUI's
own diffusion model class with the config ComfyUI detects for the published file, at reduced
depth (1 transformer block for Qwen-Image; 1 double and 1 single block for Flux), every other
size real, with random weights; it saves the state dict in the ``diffusion_models`` file layout
(no key prefix, bf16), so ``comfy.sd.load_diffusion_model`` / UNETLoader detect and load it.

The text encoders (Qwen2.5-VL 7B, T5-XXL + CLIP-L) are far too large to build, so the
conditioning is made in-process as random tensors in the shapes and dict layout that
``TextEncodeQwenImageEdit`` and ``CLIPTextEncode`` + ``ReferenceLatent`` + ``FluxGuidance``
produce.

Latents, as ComfyUI 0.3.64 hands them to the model:

* Qwen-Image uses the Wan 2.1 latent format (16 channels, ``latent_dimensions = 3``): latents
  are 5-D ``[B, 16, 1, H/8, W/8]``. The Wan VAE encodes one image to ``[1, 16, 1, h, w]``, and
  KSampler / SamplerCustomAdvanced turn a 4-D empty latent into 5-D
  (``comfy.sample.fix_empty_latent_channels``); a reference latent must be 5-D already.
* Flux uses 4-D ``[B, 16, H/8, W/8]`` latents (odd sizes are padded to the 2x2 patch).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .checkpoints import cache_dir

QWEN_FILENAME = "qwen_image_edit_2509_bf16.safetensors"
FLUX_FILENAME = "flux1-kontext-dev.safetensors"

# What comfy.model_detection.detect_unet_config returns for the published files, but for depth.
QWEN_CONFIG = {"image_model": "qwen_image", "in_channels": 64, "num_layers": 1}
FLUX_CONFIG = {
    "image_model": "flux",
    "in_channels": 16,
    "patch_size": 2,
    "out_channels": 16,
    "vec_in_dim": 768,
    "context_in_dim": 4096,
    "hidden_size": 3072,
    "mlp_ratio": 4.0,
    "num_heads": 24,
    "depth": 1,
    "depth_single_blocks": 1,
    "axes_dim": [16, 56, 56],
    "theta": 10000,
    "qkv_bias": True,
    "guidance_embed": True,
}

QWEN_CONTEXT_DIM = 3584  # Qwen2.5-VL 7B hidden size
T5_CONTEXT_DIM = 4096
T5_TOKENS = 256  # ComfyUI pads Flux's T5 prompt to at least 256 tokens
CLIP_POOLED_DIM = 768  # CLIP-L pooled output
FLUX_GUIDANCE = 2.5  # Kontext's usual FluxGuidance


def qwen_image_dit(path: Path | None = None) -> Path:
    """A 1-block Qwen-Image(-Edit) DiT (~380M parameters, ~0.8 GB), built once and then reused."""
    return _dit_file(Path(path or cache_dir() / QWEN_FILENAME), QWEN_CONFIG)


def flux_dit(path: Path | None = None) -> Path:
    """A Flux.1 dev / Kontext DiT with 1 double and 1 single block (~545M parameters, ~1.1 GB)."""
    return _dit_file(Path(path or cache_dir() / FLUX_FILENAME), FLUX_CONFIG)


def _dit_file(path: Path, config: dict, seed: int = 0) -> Path:
    if path.exists():
        return path
    import comfy.model_detection
    import comfy.utils

    sd = _random_state_dict(config, seed)
    detected = comfy.model_detection.detect_unet_config(sd, "")
    assert detected == config, f"ComfyUI would detect {detected}, not {config}"
    bad = [k for k, v in sd.items() if not torch.isfinite(v).all()]
    assert not bad, f"random weights are not finite: {bad[:3]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    comfy.utils.save_torch_file(sd, str(partial))
    os.replace(partial, path)
    return path


@torch.no_grad()
def _random_state_dict(config: dict, seed: int) -> dict[str, torch.Tensor]:
    """ComfyUI's diffusion model for `config`, randomly initialised, as a bf16 state dict."""
    import comfy.model_detection

    model_config = comfy.model_detection.model_config_from_unet_config(dict(config))
    model_config.set_inference_dtype(torch.float32, None)
    model = model_config.get_model({}).diffusion_model  # comfy.ops layers: uninitialised memory
    generator = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if p.ndim > 1:
            p.normal_(0.0, 0.02, generator=generator)
        elif name.endswith("bias"):
            p.zero_()
        else:  # norm weights and Flux's RMSNorm scales
            p.fill_(1.0)
    return {k: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}


def qwen_conditioning(latent_ref: torch.Tensor, seed: int, tokens: int = 32) -> list:
    """What TextEncodeQwenImageEdit gives for a prompt and an image: Qwen2.5-VL hidden states
    ``[1, tokens, 3584]`` (no pooled output) and the image's 5-D Wan latent as ``reference_latents``."""
    if latent_ref.ndim != 5:
        raise ValueError(f"Qwen-Image reference latents are 5-D [B, 16, 1, h, w], got {tuple(latent_ref.shape)}")
    generator = torch.Generator().manual_seed(seed)
    context = torch.randn(1, tokens, QWEN_CONTEXT_DIM, generator=generator)
    return [[context, {"pooled_output": None, "reference_latents": [latent_ref]}]]


def qwen_negative_conditioning(latent_ref: torch.Tensor, seed: int, tokens: int = 24) -> list:
    """The negative of Qwen-Image-Edit's real CFG: the same node with an empty prompt, so it keeps
    the reference latent but has fewer tokens (cond and uncond then run as separate model calls)."""
    return qwen_conditioning(latent_ref, seed, tokens)


def flux_conditioning(latent_ref: torch.Tensor, seed: int, guidance: float = FLUX_GUIDANCE) -> list:
    """CLIPTextEncode (T5 ``[1, 256, 4096]`` + CLIP-L pooled ``[1, 768]``), then ReferenceLatent
    with the image's 4-D latent, then FluxGuidance."""
    if latent_ref.ndim != 4:
        raise ValueError(f"Flux reference latents are 4-D [B, 16, h, w], got {tuple(latent_ref.shape)}")
    generator = torch.Generator().manual_seed(seed)
    context = torch.randn(1, T5_TOKENS, T5_CONTEXT_DIM, generator=generator)
    pooled = torch.randn(1, CLIP_POOLED_DIM, generator=generator)
    return [[context, {"pooled_output": pooled, "reference_latents": [latent_ref], "guidance": guidance}]]


def flux_negative_conditioning(latent_ref: torch.Tensor, seed: int) -> list:
    """Kontext's negative: ConditioningZeroOut of the positive (unused at cfg 1, which Flux dev runs at)."""
    return zero_out(flux_conditioning(latent_ref, seed))


def zero_out(conditioning: list) -> list:
    """ComfyUI's ConditioningZeroOut: zero tensors, every other entry (reference latents too) kept."""
    out = []
    for cond, extra in conditioning:
        extra = dict(extra)
        if extra.get("pooled_output") is not None:
            extra["pooled_output"] = torch.zeros_like(extra["pooled_output"])
        out.append([torch.zeros_like(cond), extra])
    return out
