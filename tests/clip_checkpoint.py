"""Tiny random-weight CLIP checkpoints in the layouts users have, for the CLIP-score filter.

- `clip_checkpoint`: an OpenAI/open_clip state dict (`visual.*`, `transformer.resblocks.*`, ...) as
  `clip-vit-large-patch14.safetensors` (a realistic name; the loader reads sizes from the shapes);
- `hf_clip_folder` / `hf_clip_file`: Hugging Face transformers CLIP, as a `save_pretrained` folder
  (optionally with tokenizer files) or as a single `model.safetensors`.

The towers are tiny (width 64, 2 layers, patch 14 at 224 px, 32-d embeddings) but have OpenAI
CLIP's vocabulary (49408) and context length (77), so the real tokenizers apply. Existing files
are reused as they are.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import torch

CLIP_FILENAME = "clip-vit-large-patch14.safetensors"
WIDTH, LAYERS, PATCH, IMAGE_SIZE, EMBED_DIM = 64, 2, 14, 224, 32
VOCAB, CONTEXT = 49408, 77


def _randomise(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """LayerNorms 1/0, every other weight N(0, 0.1): wide enough that different crops and phrases
    get clearly different embeddings (at CLIP's own init, random towers embed everything alike), and
    independent of how a library version initialises a directly built model."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    ones, zeros = {id(m.weight) for m in norms}, {id(m.bias) for m in norms}
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if id(p) in ones or id(p) in zeros:
                p.fill_(1.0 if id(p) in ones else 0.0)
            elif name != "logit_scale":
                p.copy_(torch.randn(p.shape, generator=generator) * 0.1)
    return model.eval()


def tiny_open_clip(seed: int = 0):
    """An open_clip CLIP in OpenAI's layout (QuickGELU)."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    model = CLIP(
        EMBED_DIM,
        CLIPVisionCfg(layers=LAYERS, width=WIDTH, patch_size=PATCH, image_size=IMAGE_SIZE),
        CLIPTextCfg(context_length=CONTEXT, vocab_size=VOCAB, width=WIDTH, heads=WIDTH // 64, layers=LAYERS),
        quick_gelu=True,
    )
    return _randomise(model, seed)


def tiny_hf_clip(seed: int = 0):
    """A transformers CLIPModel of the same sizes."""
    from transformers import CLIPConfig, CLIPModel

    common = dict(
        hidden_size=WIDTH,
        intermediate_size=4 * WIDTH,
        num_hidden_layers=LAYERS,
        num_attention_heads=WIDTH // 64,
        hidden_act="quick_gelu",
    )
    config = CLIPConfig(
        text_config=dict(common, vocab_size=VOCAB, max_position_embeddings=CONTEXT),
        vision_config=dict(common, image_size=IMAGE_SIZE, patch_size=PATCH),
        projection_dim=EMBED_DIM,
    )
    return _randomise(CLIPModel(config), seed)


def _atomic_save(state_dict: dict, path: Path) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    save_file({k: v.detach().contiguous() for k, v in state_dict.items()}, str(partial))
    os.replace(partial, path)
    return path


def clip_checkpoint(dest_dir) -> Path:
    """`dest_dir/clip-vit-large-patch14.safetensors`: a tiny open_clip-layout CLIP."""
    path = Path(dest_dir) / CLIP_FILENAME
    return path if path.exists() else _atomic_save(tiny_open_clip().state_dict(), path)


def hf_clip_file(dest_dir) -> Path:
    """`dest_dir/model.safetensors`: a tiny CLIP in transformers' key layout, with no config.json."""
    path = Path(dest_dir) / "model.safetensors"
    return path if path.exists() else _atomic_save(tiny_hf_clip().state_dict(), path)


def write_clip_tokenizer(folder) -> None:
    """OpenAI CLIP's tokenizer files (vocab.json, merges.txt), made from the BPE merges open_clip
    ships, so a Hugging Face folder has its own tokenizer without any download."""
    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    folder = Path(folder)
    merges = gzip.open(default_bpe()).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    byte_tokens = list(bytes_to_unicode().values())
    vocab = byte_tokens + [t + "</w>" for t in byte_tokens] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "CLIPTokenizer", "model_max_length": CONTEXT})
    )


def hf_clip_folder(dest_dir, tokenizer: bool = True) -> Path:
    """`dest_dir`, a `save_pretrained` folder of the same tiny transformers CLIP as `hf_clip_file`."""
    folder = Path(dest_dir)
    if not (folder / "config.json").exists():
        tiny_hf_clip().save_pretrained(str(folder))
    if tokenizer and not (folder / "vocab.json").exists():
        write_clip_tokenizer(folder)
    return folder
