"""Random-weight model files in the real architectures and formats, built by the tests.

No weights can be downloaded here and none go into the repository: each builder makes a file
with the layout users have (so ComfyUI's own loaders detect and load it) and random values.
Files are cached under ``GIP2P_TEST_MODELS`` (default ``<repo>/.cache/test-models``) and rebuilt
when missing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
IP2P_CHECKPOINT = "instruct-pix2pix-00-22000.safetensors"


def cache_dir() -> Path:
    path = Path(os.environ.get("GIP2P_TEST_MODELS", REPO / ".cache" / "test-models"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@torch.no_grad()
def _init_clip_text(model: torch.nn.Module) -> None:
    """CLIP's own initialisation (transformers 5 leaves a directly built model's memory uninitialised)."""
    for name, p in model.named_parameters():
        if "norm" in name:
            p.fill_(1.0 if name.endswith("weight") else 0.0)
        elif name.endswith("bias"):
            p.zero_()
        else:
            p.normal_(0.0, 0.02)


def _save_diffusers_parts(folder: Path, seed: int = 0) -> None:
    """SD1.5-InstructPix2Pix in diffusers' layout: full-size UNet (8 input channels), VAE and CLIP-L text encoder."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(  # the SD1.5 UNet; InstructPix2Pix widens conv_in to 8 channels
        sample_size=64,
        in_channels=8,
        out_channels=4,
        layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280),
        cross_attention_dim=768,
        attention_head_dim=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        layers_per_block=2,
        sample_size=512,
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
    )
    text = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
            projection_dim=768,
        )
    )
    _init_clip_text(text)
    for name, module, filename in (
        ("unet", unet, "diffusion_pytorch_model.safetensors"),
        ("vae", vae, "diffusion_pytorch_model.safetensors"),
        ("text_encoder", text, "model.safetensors"),
    ):
        (folder / name).mkdir()
        sd = {k: v.detach().half().contiguous() for k, v in module.state_dict().items()}
        bad = [k for k, v in sd.items() if not torch.isfinite(v).all()]
        assert not bad, f"random {name} weights are not finite: {bad[:3]}"
        save_file(sd, str(folder / name / filename))


def ip2p_checkpoint(path: Path | None = None) -> Path:
    """A single-file SD1.5 InstructPix2Pix checkpoint (the original LDM key layout), random weights.

    Needs ComfyUI imported: its own key maps turn the diffusers parts into the single-file layout
    (ComfyUI's diffusers loader knows no 8-channel SD1.5 UNet, so the UNet keys are mapped with
    the SD1.5 config it detects for the 4-channel slice).
    """
    path = Path(path or cache_dir() / IP2P_CHECKPOINT)
    if path.exists():
        return path
    import comfy.model_detection
    import comfy.sd
    import comfy.supported_models
    import comfy.utils

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _save_diffusers_parts(folder)
        unet_sd = comfy.utils.load_torch_file(str(folder / "unet" / "diffusion_pytorch_model.safetensors"))
        probe = dict(unet_sd, **{"conv_in.weight": unet_sd["conv_in.weight"][:, :4]})
        unet_config = comfy.model_detection.unet_config_from_diffusers_unet(probe)
        unet_config["in_channels"] = 8
        key_map = comfy.utils.unet_to_diffusers(unet_config)
        sd = {f"model.diffusion_model.{key_map[k]}": v for k, v in unet_sd.items()}
        # The SD1.5 single file keeps the text encoder in transformers' own key layout.
        text_sd = comfy.utils.load_torch_file(str(folder / "text_encoder" / "model.safetensors"))
        sd.update({f"cond_stage_model.transformer.{k}": v for k, v in text_sd.items() if "position_ids" not in k})
        vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(folder / "vae" / "diffusion_pytorch_model.safetensors")))
        sd.update(comfy.supported_models.SD15(unet_config).process_vae_state_dict_for_saving(vae.get_sd()))
        del vae
    sd = {k: v.to(torch.float16).contiguous() for k, v in sd.items()}
    bad = [k for k, v in sd.items() if not torch.isfinite(v).all()]
    assert not bad, f"the checkpoint has non-finite weights: {bad[:3]}"
    partial = path.with_suffix(".partial")
    comfy.utils.save_torch_file(sd, str(partial))
    os.replace(partial, path)
    return path


@torch.no_grad()
def reduced_ip2p(model_patcher, model_channels: int = 32, seed: int = 0):
    """The SD1.5-InstructPix2Pix model of ``model_patcher``, reduced, with random weights.

    The same ComfyUI classes (``SD15_instructpix2pix``, its UNet blocks, model sampling and latent
    format) at ``model_channels`` wide with two levels of one block each, for test matrices that
    run hundreds of samplings: a model call then costs milliseconds instead of a second on a CPU.
    ComfyUI's detection only knows the full size, so this is built in-process, not as a file.
    """
    import comfy.model_management
    import comfy.model_patcher
    import comfy.supported_models

    config = dict(
        model_patcher.model.model_config.unet_config,
        model_channels=model_channels,
        channel_mult=[1, 2],
        num_res_blocks=[1, 1],
        transformer_depth=[1, 1],
        transformer_depth_output=[1, 1, 1, 1],
    )
    model_config = comfy.supported_models.SD15_instructpix2pix(config)
    model_config.set_inference_dtype(torch.float32, None)
    model = model_config.get_model({})
    generator = torch.Generator().manual_seed(seed)
    for name, p in model.diffusion_model.named_parameters():  # comfy.ops layers start uninitialised
        if p.ndim > 1:
            p.normal_(0.0, 0.05, generator=generator)
        elif name.endswith("bias"):
            p.zero_()
        else:
            p.fill_(1.0)
    model.requires_grad_(False)
    device = comfy.model_management.get_torch_device()
    return comfy.model_patcher.ModelPatcher(
        model, load_device=device, offload_device=comfy.model_management.unet_offload_device()
    )
