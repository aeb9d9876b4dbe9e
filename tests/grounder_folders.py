"""Random-weight MM-Grounding-DINO and OWLv2 folders laid out as their Hugging Face repositories.

`mm_gdino_folder(size)` is `openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det`'s layout
(config.json, model.safetensors, preprocessor_config.json, BERT's tokenizer files, here from the
vocabulary the pack ships); `owlv2_folder(size)` is `google/owlv2-base-patch16-ensemble`'s
(config.json, model.safetensors, preprocessor_config.json, the CLIP tokenizer as tokenizer.json and
as vocab.json + merges.txt). Models come from transformers' own config classes; "tiny" ones are a
few MB, "full" ones the released architectures (MM-GDINO Swin-T with BERT-base; OWLv2 ViT-B/16 at
960 px) for the load benchmark. OWLv2's CLIP vocabulary is a small one built here: byte tokens and
the merges spelling TEST_WORDS, with CLIP's special tokens (its real 49408-entry vocabulary is not
needed to exercise the format). Folders are cached under the test model cache, named by a digest
of their recipe.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch

from .checkpoints import cache_dir

TEST_WORDS = ("red", "car", "tree", "small", "dog", "house", "a", "photo", "of")
MM_GDINO_SIZES = {
    "tiny": dict(
        backbone_config=dict(
            model_type="swin", embed_dim=32, depths=[1, 1, 2, 1], num_heads=[1, 2, 4, 8], out_indices=[2, 3, 4]
        ),
        text_config=dict(
            model_type="bert", hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
        ),
        d_model=64,
        encoder_layers=1,
        decoder_layers=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_queries=30,
    ),
    "full": dict(backbone_config=dict(model_type="swin", out_indices=[2, 3, 4]), text_config=dict(model_type="bert")),
}
OWLV2_SIZES = {
    "tiny": dict(
        text=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2),
        vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=64),
        projection_dim=32,
    ),
    "full": dict(  # google/owlv2-base-patch16's config
        text=dict(vocab_size=49408),
        vision=dict(image_size=960),
        projection_dim=512,
    ),
}


def _cached(kind: str, recipe, build) -> Path:
    """The folder built by `build(folder)` for this recipe, built once (renamed into place whole)."""
    digest = hashlib.sha256(repr(recipe).encode()).hexdigest()[:10]
    folder = cache_dir() / f"{kind}-{digest}"
    if folder.is_dir():
        return folder
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        build(partial)
    os.replace(partial, folder)
    return folder


def _byte_unicode() -> list[str]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return list(bytes_to_unicode().values())


def clip_vocabulary(words=TEST_WORDS) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A CLIP BPE vocabulary (byte tokens, byte tokens ending a word, the merges that spell `words`,
    then <|startoftext|> and <|endoftext|>) and its merges, in CLIP's order."""
    chars = _byte_unicode()
    vocab: dict[str, int] = {}
    for token in chars + [c + "</w>" for c in chars]:
        vocab.setdefault(token, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in words:
        parts = [*word[:-1], word[-1] + "</w>"]
        while len(parts) > 1:
            if (parts[0], parts[1]) not in merges:
                merges.append((parts[0], parts[1]))
            vocab.setdefault(parts[0] + parts[1], len(vocab))
            parts = [parts[0] + parts[1], *parts[2:]]
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    return vocab, merges


def clip_tokenizer(words=TEST_WORDS):
    """OWLv2's tokenizer settings (pad "!", 16 tokens) on the small vocabulary."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocabulary(words)
    return CLIPTokenizer(vocab=vocab, merges=merges, pad_token="!", model_max_length=16)


def _save_clip_vocabulary(folder: Path, words=TEST_WORDS) -> None:
    """vocab.json and merges.txt, as the hub's CLIP tokenizers have them beside tokenizer.json."""
    vocab, merges = clip_vocabulary(words)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    lines = ["#version: 0.2", *(f"{a} {b}" for a, b in merges)]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def mm_gdino_config(size: str = "tiny"):
    from transformers import MMGroundingDinoConfig

    return MMGroundingDinoConfig(**MM_GDINO_SIZES[size])


def owlv2_config(size: str = "tiny"):
    from transformers import Owlv2Config

    recipe = OWLV2_SIZES[size]
    tokenizer = clip_tokenizer()
    text = {
        "vocab_size": len(tokenizer),
        "max_position_embeddings": 16,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        **recipe["text"],
    }
    vision = {"patch_size": 16, **recipe["vision"]}
    return Owlv2Config(text_config=text, vision_config=vision, projection_dim=recipe["projection_dim"])


def mm_gdino_folder(size: str = "tiny") -> Path:
    """A random-weight MM-Grounding-DINO folder (see the module)."""

    def build(folder: Path) -> None:
        from grounded_ip2p.grounding.gdino import VOCAB, bert_tokenizer
        from transformers import GroundingDinoImageProcessor, MMGroundingDinoForObjectDetection

        MMGroundingDinoForObjectDetection(mm_gdino_config(size)).save_pretrained(folder)
        GroundingDinoImageProcessor().save_pretrained(folder)
        bert_tokenizer().save_pretrained(folder)
        shutil.copyfile(VOCAB, folder / "vocab.txt")

    return _cached(f"mm-gdino-{size}", (MM_GDINO_SIZES[size], 2), build)


def owlv2_folder(size: str = "tiny") -> Path:
    """A random-weight OWLv2 folder (see the module)."""

    def build(folder: Path) -> None:
        from transformers import Owlv2ForObjectDetection, Owlv2ImageProcessor

        config = owlv2_config(size)
        Owlv2ForObjectDetection(config).save_pretrained(folder)
        side = config.vision_config.image_size
        Owlv2ImageProcessor(size={"height": side, "width": side}).save_pretrained(folder)
        clip_tokenizer().save_pretrained(folder)
        _save_clip_vocabulary(folder)

    return _cached(f"owlv2-{size}", (OWLV2_SIZES[size], TEST_WORDS, 1), build)


def copy_folder(source: Path, dest: Path, leave_out: tuple[str, ...] = ()) -> Path:
    """A copy of a cached folder (weights hard-linked) without the files named in `leave_out`."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.name in leave_out:
            continue
        try:
            os.link(item, dest / item.name)
        except OSError:
            shutil.copyfile(item, dest / item.name)
    return dest
