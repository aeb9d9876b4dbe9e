"""A random-weight SAM 3.1 checkpoint in ComfyUI's own architecture and the published file's layout.

ComfyUI (0.33.0 and later, ``comfy/ldm/sam3``) recognises SAM 3 / 3.1 by key names alone
(``comfy.model_detection``: a ViTDet trunk block and the detector's query embedding, plus the
propagation convs for 3.1) and always builds the full-size model, so a shallower file would load
with layers left uninitialised: this one is full size, ~520M parameters, ~1.0 GB in fp16.

The keys are those of ``sam3.1_multiplex_fp16.safetensors`` as ComfyUI's loader reads them: the
tracker under ``tracker.model.``, the detector's attention as fused ``in_proj_weight`` /
``in_proj_bias`` and the SAM decoder's two-way transformer with ``mlp.lin1`` / ``mlp.lin2`` /
``norm_final_attn``, which ``SAM3.process_unet_state_dict`` turns back into ComfyUI's names (the
builder checks that round trip). The text encoder is left out: CheckpointLoaderSimple then gives
no CLIP, and prompting SAM 3 with boxes needs none.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .checkpoints import cache_dir

SAM3_FILENAME = "sam3.1_multiplex_fp16.safetensors"  # the name core's SAM3 blueprints load
SAM3_CONFIG = {"image_model": "SAM31"}  # what comfy.model_detection says for that file
_DECODER = "sam_mask_decoder.transformer."  # (interactive_)sam_mask_decoder's TwoWayTransformer
_DECODER_NAMES = ((".mlp.0.", ".mlp.lin1."), (".mlp.2.", ".mlp.lin2."), (".norm_final.", ".norm_final_attn."))


def sam3_checkpoint(folder: Path | None = None) -> Path:
    """`folder/sam3.1_multiplex_fp16.safetensors` (default: its own folder in the test model cache),
    built once (about a minute) and then reused; the folder holds nothing else, for ComfyUI's
    ``checkpoints`` list."""
    path = Path(folder or cache_dir() / "sam3.1-random") / SAM3_FILENAME
    if path.exists():
        return path
    import comfy.model_detection
    import comfy.utils

    model_config = comfy.model_detection.model_config_from_unet_config(dict(SAM3_CONFIG))
    model_config.set_inference_dtype(torch.float32, None)
    native = _random_state_dict(model_config.get_model({}).diffusion_model)
    sd = _published_layout(native)

    assert comfy.model_detection.unet_prefix_from_state_dict(sd) == ""
    detected = comfy.model_detection.detect_unet_config(sd, "")
    assert detected == SAM3_CONFIG, f"ComfyUI would detect {detected}, not {SAM3_CONFIG}"
    loaded = model_config.process_unet_state_dict(dict(sd))
    assert loaded.keys() == native.keys(), sorted(loaded.keys() ^ native.keys())[:5]
    assert all(torch.equal(loaded[k], native[k]) for k in native)
    bad = [k for k, v in sd.items() if not torch.isfinite(v).all()]
    assert not bad, f"random weights are not finite: {bad[:3]}"

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    comfy.utils.save_torch_file(sd, str(partial))
    os.replace(partial, path)
    return path


@torch.no_grad()
def _random_state_dict(model: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """ComfyUI's SAM3Model (comfy.ops layers: uninitialised memory) randomly initialised, in fp16."""
    generator = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if p.ndim > 1:
            p.normal_(0.0, 0.02, generator=generator)
        elif name.endswith("bias"):
            p.zero_()
        else:  # norm weights and the ViTDet blocks' layer scales
            p.fill_(1.0)
    return {k: v.to(torch.float16).contiguous() for k, v in model.state_dict().items()}


def _published_layout(native: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ComfyUI's names back to the published file's (the inverse of SAM3.process_unet_state_dict)."""
    sd = dict(native)
    for q in [k for k in sd if ".q_proj." in k and k.startswith("detector.")]:  # SplitMHA <- nn.MultiheadAttention
        base, suffix = q.split(".q_proj.")
        parts = [sd.pop(f"{base}.{p}_proj.{suffix}") for p in "qkv"]
        sd[f"{base}.in_proj_{suffix}"] = torch.cat(parts)
    for k in [k for k in sd if _DECODER in k]:
        new = k
        for ours, theirs in _DECODER_NAMES:
            new = new.replace(ours, theirs)
        sd[new] = sd.pop(k)
    for k in [k for k in sd if k.startswith("tracker.")]:
        sd["tracker.model." + k[len("tracker.") :]] = sd.pop(k)
    return sd
