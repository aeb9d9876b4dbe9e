"""GroundingDINO: text-prompted boxes, run on transformers' implementation from the original files.

Users have the original IDEA-Research checkpoints (`groundingdino_swint_ogc.pth` with
`GroundingDINO_SwinT_OGC.cfg.py`, `groundingdino_swinb_cogcoor.pth` with `GroundingDINO_SwinB.cfg.py`)
in ComfyUI's `models/grounding-dino` folder. The original package cannot build its model under
transformers 5, so this module builds transformers' own `GroundingDinoForObjectDetection` from the
`.cfg.py` and converts the original weights to it on load (a Hugging Face-format folder loads as is).

Nothing is ever downloaded: the cfg file is parsed, never executed; BERT's configuration comes from
the checkpoint's own tensor shapes; the tokenizer is built from the vocabulary shipped in
`grounding/data`.

`GroundingDino.detect` asks for every phrase of an image in one forward pass, with GroundingDINO's
multi-class prompt ("p1 . p2 . p3 ."), and attributes each box to the phrase whose tokens it
scores highest.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .detections import Detections

log = logging.getLogger(__name__)

VOCAB = Path(__file__).resolve().parent / "data" / "bert-base-uncased-vocab.txt"
MODELS_FOLDER = "models/grounding-dino"
EXPECTED = (
    "Expected an original IDEA-Research GroundingDINO checkpoint (groundingdino_swint_ogc.pth or "
    "groundingdino_swinb_cogcoor.pth, with its GroundingDINO_SwinT_OGC.cfg.py / GroundingDINO_SwinB.cfg.py "
    "next to it) or a Hugging Face GroundingDINO folder (config.json + model.safetensors), in ComfyUI's "
    f"{MODELS_FOLDER} folder."
)
# The token ids transformers' GroundingDINO treats as phrase delimiters ([CLS], [SEP], ".", "?").
SPECIAL_TOKENS = {"[CLS]": 101, "[SEP]": 102, ".": 1012, "?": 1029}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class GroundingDinoLoadError(RuntimeError):
    """A GroundingDINO file that cannot be loaded; the message names the file and what was expected."""


# ---------------------------------------------------------------------------------------------
# The original .cfg.py
# ---------------------------------------------------------------------------------------------

# GroundingDINO_SwinT_OGC.cfg.py (SwinB's differs only in `backbone`): the values used for every key
# a cfg leaves out, and for everything the checkpoint's shapes cannot tell when there is no cfg.
DEFAULT_CFG = {
    "backbone": "swin_T_224_1k",
    "position_embedding": "sine",
    "pe_temperatureH": 20,
    "pe_temperatureW": 20,
    "return_interm_indices": [1, 2, 3],
    "enc_layers": 6,
    "dec_layers": 6,
    "pre_norm": False,
    "dim_feedforward": 2048,
    "hidden_dim": 256,
    "dropout": 0.0,
    "nheads": 8,
    "num_queries": 900,
    "query_dim": 4,
    "num_patterns": 0,
    "num_feature_levels": 4,
    "enc_n_points": 4,
    "dec_n_points": 4,
    "two_stage_type": "standard",
    "two_stage_bbox_embed_share": False,
    "transformer_activation": "relu",
    "dec_pred_bbox_embed_share": True,
    "embed_init_tgt": True,
    "max_text_len": 256,
    "text_encoder_type": "bert-base-uncased",
    "use_text_enhancer": True,
    "use_fusion_layer": True,
    "use_text_cross_attention": True,
    "text_dropout": 0.0,
    "fusion_dropout": 0.0,
    "fusion_droppath": 0.1,
    "sub_sentence_present": True,
}

# Settings transformers' implementation has no other choice for: a cfg asking otherwise describes a
# model it cannot run.
REQUIRED_CFG = {
    "position_embedding": "sine",
    "pre_norm": False,
    "query_dim": 4,
    "num_patterns": 0,
    "text_encoder_type": "bert-base-uncased",
    "use_text_enhancer": True,
    "use_fusion_layer": True,
    "use_text_cross_attention": True,
    "sub_sentence_present": True,
}


def read_original_cfg(path: str | Path) -> dict:
    """The assignments of an original `.cfg.py`, read with `ast` (the file is never executed).

    The real files hold only `name = literal` lines; anything else is reported, not run.
    """
    path = Path(path)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        raise GroundingDinoLoadError(f"{path.name}: cannot read it as a GroundingDINO .cfg.py ({exc})") from exc
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue  # a docstring
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise GroundingDinoLoadError(
                f"{path.name}, line {node.lineno}: only `name = value` lines are read from a GroundingDINO .cfg.py"
            )
        try:
            values[node.targets[0].id] = ast.literal_eval(node.value)
        except (ValueError, TypeError) as exc:
            raise GroundingDinoLoadError(
                f"{path.name}, line {node.lineno}: `{node.targets[0].id}` is not a plain value "
                "(the file is read, never executed)"
            ) from exc
    return values


# The .cfg.py that comes with each released checkpoint (the names other ComfyUI packs use too).
CFG_NAMES = {
    "groundingdino_swint_ogc": ("GroundingDINO_SwinT_OGC.cfg.py", "GroundingDINO_SwinT_OGC.py"),
    "groundingdino_swinb_cogcoor": ("GroundingDINO_SwinB.cfg.py", "GroundingDINO_SwinB_cfg.py"),
}


def find_cfg(checkpoint: Path) -> Path | None:
    """The `.cfg.py` next to `checkpoint`: `<stem>.cfg.py`, or the released cfg's name for a released
    checkpoint. Other cfg files in the folder are not guessed at (the checkpoint itself is read then)."""
    stem = checkpoint.stem
    wanted = [f"{stem}.cfg.py", f"{stem}.py", *CFG_NAMES.get(stem.lower(), ())]
    present = {p.name.lower(): p for p in checkpoint.parent.iterdir() if p.is_file()}
    return next((present[name.lower()] for name in wanted if name.lower() in present), None)


# ---------------------------------------------------------------------------------------------
# What the checkpoint's shapes tell
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SwinGeometry:
    """What distinguishes GroundingDINO's Swin backbones (image_size: the pretraining size)."""

    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    window_size: int
    image_size: int


# The backbones the original code knows (groundingdino/models/GroundingDINO/backbone/swin_transformer.py).
SWIN_BACKBONES = {
    "swin_T_224_1k": SwinGeometry(96, (2, 2, 6, 2), (3, 6, 12, 24), 7, 224),
    "swin_B_224_22k": SwinGeometry(128, (2, 2, 18, 2), (4, 8, 16, 32), 7, 224),
    "swin_B_384_22k": SwinGeometry(128, (2, 2, 18, 2), (4, 8, 16, 32), 12, 384),
    "swin_L_224_22k": SwinGeometry(192, (2, 2, 18, 2), (6, 12, 24, 48), 7, 224),
    "swin_L_384_22k": SwinGeometry(192, (2, 2, 18, 2), (6, 12, 24, 48), 12, 384),
}
VARIANTS = {"swin_T_224_1k": "swint_ogc", "swin_B_384_22k": "swinb_cogcoor"}

# Keys every original GroundingDINO checkpoint has (what tells one from another model's file).
SIGNATURE_KEYS = (
    "backbone.0.patch_embed.proj.weight",
    "transformer.level_embed",
    "bert.embeddings.word_embeddings.weight",
)
NOT_GDINO_HINTS = (
    ("image_encoder.", "it looks like a Segment Anything (SAM) checkpoint"),
    ("model.text_backbone.", ("it looks like the weights of a Hugging Face-format GroundingDINO: select the "
                              "folder that holds them with their config.json")),
)


def _indices(sd: dict, pattern: str) -> list[int]:
    """The distinct integers the first group of `pattern` matches among the keys, sorted."""
    found = {int(m.group(1)) for m in map(re.compile(pattern).match, sd) if m}
    return sorted(found)


def swin_geometry(sd: dict) -> SwinGeometry:
    """The Swin backbone's geometry from the original checkpoint's shapes.

    The relative position table of each block is ((2 * window - 1) ** 2, heads), so it gives both
    the window and the heads of each stage. The pretraining image size only matters for absolute
    position embeddings, which GroundingDINO's Swin has none of: it follows the window (12 went
    with 384 pixels, 7 with 224) as in every released backbone.
    """
    stages = _indices(sd, r"backbone\.0\.layers\.(\d+)\.")
    depths = tuple(len(_indices(sd, rf"backbone\.0\.layers\.{s}\.blocks\.(\d+)\.")) for s in stages)
    tables = [sd[f"backbone.0.layers.{s}.blocks.0.attn.relative_position_bias_table"].shape for s in stages]
    window = (round(tables[0][0] ** 0.5) + 1) // 2
    return SwinGeometry(
        embed_dim=sd["backbone.0.patch_embed.proj.weight"].shape[0],
        depths=depths,
        num_heads=tuple(t[1] for t in tables),
        window_size=window,
        image_size=384 if window == 12 else 224,
    )


def backbone_name(geometry: SwinGeometry) -> str | None:
    """The original backbone name with this geometry, or None for another Swin."""
    return next((name for name, g in SWIN_BACKBONES.items() if g == geometry), None)


def variant_name(geometry: SwinGeometry) -> str:
    """"swint_ogc" / "swinb_cogcoor" for the released models' backbones, the backbone's name for
    the other known ones, "custom" otherwise."""
    name = backbone_name(geometry)
    return VARIANTS.get(name, name.lower() if name else "custom")


def sizes_from_state_dict(sd: dict) -> dict:
    """The cfg values that the original checkpoint's shapes determine, under the cfg's key names."""
    sizes = {
        "hidden_dim": sd["transformer.level_embed"].shape[1],
        "num_feature_levels": sd["transformer.level_embed"].shape[0],
        "enc_layers": len(_indices(sd, r"transformer\.encoder\.layers\.(\d+)\.")),
        "dec_layers": len(_indices(sd, r"transformer\.decoder\.layers\.(\d+)\.")),
        "return_interm_indices": _indices(sd, r"backbone\.0\.norm(\d+)\."),
        "two_stage_type": "standard" if "transformer.enc_output.weight" in sd else "no",
        "embed_init_tgt": "transformer.tgt_embed.weight" in sd,
    }
    if "transformer.encoder.layers.0.linear1.weight" in sd:
        sizes["dim_feedforward"] = sd["transformer.encoder.layers.0.linear1.weight"].shape[0]
    if "transformer.tgt_embed.weight" in sd:
        sizes["num_queries"] = sd["transformer.tgt_embed.weight"].shape[0]
    return sizes


def bert_config(sd: dict):
    """bert-base-uncased's configuration with the sizes of the checkpoint's text encoder.

    Built in code (never fetched). For the released checkpoints this is exactly bert-base-uncased;
    other sizes keep BERT's 64-wide heads.
    """
    from transformers import BertConfig

    words = sd["bert.embeddings.word_embeddings.weight"].shape
    hidden = words[1]
    return BertConfig(
        vocab_size=words[0],
        hidden_size=hidden,
        num_hidden_layers=len(_indices(sd, r"bert\.encoder\.layer\.(\d+)\.")),
        num_attention_heads=max(1, hidden // 64),
        intermediate_size=sd["bert.encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=sd["bert.embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=sd["bert.embeddings.token_type_embeddings.weight"].shape[0],
        hidden_act="gelu",
        layer_norm_eps=1e-12,
    )


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


def _check_cfg(values: dict, name: str) -> None:
    wrong = {k: values[k] for k, v in REQUIRED_CFG.items() if values[k] != v}
    if values["pe_temperatureH"] != values["pe_temperatureW"]:
        wrong["pe_temperatureW"] = values["pe_temperatureW"]
    if values["two_stage_type"] not in ("standard", "no"):
        wrong["two_stage_type"] = values["two_stage_type"]
    if wrong:
        raise GroundingDinoLoadError(
            f"{name} asks for settings transformers' GroundingDINO does not implement: {wrong} "
            f"(the released models use {({k: REQUIRED_CFG.get(k, DEFAULT_CFG[k]) for k in wrong})})"
        )


def _resolve_values(cfg: dict | None, sd: dict, name: str) -> tuple[dict, SwinGeometry]:
    """The cfg values to build from, and the backbone's geometry.

    Sizes come from the checkpoint where the cfg is silent; where the cfg gives one, it must agree
    with the checkpoint (a disagreement means the .cfg.py belongs to another model).
    """
    cfg = cfg or {}
    sizes = sizes_from_state_dict(sd)
    values = {**DEFAULT_CFG, **sizes, **cfg}
    geometry = swin_geometry(sd)
    mismatches = {k: (cfg[k], v) for k, v in sizes.items() if k in cfg and cfg[k] != v}
    if "backbone" in cfg:
        expected = SWIN_BACKBONES.get(cfg["backbone"])
        if expected is None:
            raise GroundingDinoLoadError(
                f"{name} names the backbone {cfg['backbone']!r}; GroundingDINO's are {sorted(SWIN_BACKBONES)}"
            )
        if expected != geometry:
            mismatches["backbone"] = (cfg["backbone"], backbone_name(geometry) or geometry)
        geometry = expected
    if mismatches:
        detail = ", ".join(f"{k}: cfg {a!r}, checkpoint {b!r}" for k, (a, b) in mismatches.items())
        raise GroundingDinoLoadError(
            f"{name} does not describe this checkpoint ({detail}); is it the cfg of another model?"
        )
    _check_cfg(values, name)
    return values, geometry


def original_config(cfg: dict | None, sd: dict, name: str = "the .cfg.py"):
    """transformers' `GroundingDinoConfig` for an original checkpoint and its cfg values (or None).

    Returns (config, variant) (see `variant_name`).
    """
    from transformers import GroundingDinoConfig, SwinConfig

    values, geometry = _resolve_values(cfg, sd, name)
    swin = SwinConfig(
        image_size=geometry.image_size,
        embed_dim=geometry.embed_dim,
        depths=list(geometry.depths),
        num_heads=list(geometry.num_heads),
        window_size=geometry.window_size,
        # The original numbers Swin's stages from 0, transformers from 1 (its stage 0 is the stem).
        out_indices=[i + 1 for i in values["return_interm_indices"]],
    )
    config = GroundingDinoConfig(
        backbone_config=swin,
        text_config=bert_config(sd),
        num_queries=values["num_queries"],
        d_model=values["hidden_dim"],
        encoder_layers=values["enc_layers"],
        decoder_layers=values["dec_layers"],
        encoder_ffn_dim=values["dim_feedforward"],
        decoder_ffn_dim=values["dim_feedforward"],
        encoder_attention_heads=values["nheads"],
        decoder_attention_heads=values["nheads"],
        activation_function=values["transformer_activation"],
        num_feature_levels=values["num_feature_levels"],
        encoder_n_points=values["enc_n_points"],
        decoder_n_points=values["dec_n_points"],
        two_stage=values["two_stage_type"] == "standard",
        embedding_init_target=values["embed_init_tgt"],
        decoder_bbox_embed_share=values["dec_pred_bbox_embed_share"],
        two_stage_bbox_embed_share=values["two_stage_bbox_embed_share"],
        positional_embedding_temperature=values["pe_temperatureH"],
        max_text_len=values["max_text_len"],
        dropout=values["dropout"],
        text_enhancer_dropout=values["text_dropout"],
        fusion_dropout=values["fusion_dropout"],
        fusion_droppath=values["fusion_droppath"],
        layer_norm_eps=1e-5,  # torch's LayerNorm default, which the original uses throughout
    )
    return config, variant_name(geometry)


# ---------------------------------------------------------------------------------------------
# Weight conversion
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fused:
    """A fused q/k/v projection (one matrix in the original) that transformers keeps as three:
    `template` holds `{}` for the part; the original stacks the parts in this order."""

    template: str
    parts: tuple[str, str, str]


_MHA = ("query", "key", "value")
_SWIN = "model.backbone.conv_encoder.model."
Target = str | _Fused | Callable[[re.Match], str]

# (original key prefix as a regex, transformers prefix, {original suffix start: transformers suffix
# start}). The first matching prefix wins; the rest of the key is kept. From transformers'
# convert_grounding_dino_to_hf.py, updated for transformers 5's module names.
_BLOCKS: list[tuple[str, Target, dict[str, Target]]] = [
    (r"backbone\.0\.patch_embed\.", _SWIN + "swin.embeddings.",
     {"proj.": "patch_embeddings.projection.", "norm.": "norm."}),
    (r"backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.", _SWIN + r"swin.encoder.layers.\1.blocks.\2.",
     {"norm1.": "layernorm_before.", "norm2.": "layernorm_after.", "mlp.": "mlp.",
      "attn.qkv.": _Fused("attention.{}.", ("q_proj", "k_proj", "v_proj")),
      "attn.proj.": "attention.o_proj.",
      "attn.relative_position_bias_table": "attention.relative_position_bias.relative_position_bias_table"}),
    (r"backbone\.0\.layers\.(\d+)\.downsample\.", _SWIN + r"swin.encoder.layers.\1.downsample.", {"": ""}),
    (r"backbone\.0\.norm(\d+)\.", lambda m: f"{_SWIN}hidden_states_norms.stage{int(m.group(1)) + 1}.", {"": ""}),
    (r"bert\.", "model.text_backbone.", {"": ""}),
    (r"feat_map\.", "model.text_projection.", {"": ""}),
    (r"input_proj\.", "model.input_proj_vision.", {"": ""}),
    (r"transformer\.level_embed", "model.level_embed", {"": ""}),
    (r"transformer\.tgt_embed\.", "model.query_position_embeddings.", {"": ""}),
    (r"transformer\.refpoint_embed\.", "model.reference_points.", {"": ""}),
    (r"transformer\.enc_output", "model.enc_output", {"": ""}),  # also enc_output_norm
    (r"transformer\.enc_out_bbox_embed\.", "model.encoder_output_bbox_embed.", {"": ""}),
    (r"transformer\.encoder\.layers\.(\d+)\.", r"model.encoder.layers.\1.deformable_layer.",
     {"self_attn.": "self_attn.", "norm1.": "self_attn_layer_norm.", "linear1.": "fc1.", "linear2.": "fc2.",
      "norm2.": "final_layer_norm."}),
    (r"transformer\.encoder\.text_layers\.(\d+)\.", r"model.encoder.layers.\1.text_enhancer_layer.",
     {"self_attn.in_proj_": _Fused("self_attn.{}.", _MHA), "self_attn.out_proj.": "self_attn.out_proj.",
      "linear1.": "fc1.", "linear2.": "fc2.", "norm1.": "layer_norm_before.", "norm2.": "layer_norm_after."}),
    (r"transformer\.encoder\.fusion_layers\.(\d+)\.", r"model.encoder.layers.\1.fusion_layer.",
     {"gamma_v": "vision_param", "gamma_l": "text_param", "layer_norm_v.": "layer_norm_vision.",
      "layer_norm_l.": "layer_norm_text.", "attn.v_proj.": "attn.vision_proj.", "attn.l_proj.": "attn.text_proj.",
      "attn.values_v_proj.": "attn.values_vision_proj.", "attn.values_l_proj.": "attn.values_text_proj.",
      "attn.out_v_proj.": "attn.out_vision_proj.", "attn.out_l_proj.": "attn.out_text_proj."}),
    (r"transformer\.decoder\.layers\.(\d+)\.", r"model.decoder.layers.\1.",
     {"cross_attn.": "encoder_attn.", "norm1.": "encoder_attn_layer_norm.",
      "ca_text.in_proj_": _Fused("encoder_attn_text.{}.", _MHA), "ca_text.out_proj.": "encoder_attn_text.out_proj.",
      "catext_norm.": "encoder_attn_text_layer_norm.",
      "self_attn.in_proj_": _Fused("self_attn.{}.", _MHA), "self_attn.out_proj.": "self_attn.out_proj.",
      "norm2.": "self_attn_layer_norm.", "linear1.": "fc1.", "linear2.": "fc2.", "norm3.": "final_layer_norm."}),
    (r"transformer\.decoder\.norm\.", "model.decoder.layer_norm.", {"": ""}),
    (r"transformer\.decoder\.ref_point_head\.", "model.decoder.reference_points_head.", {"": ""}),
    (r"transformer\.decoder\.bbox_embed\.", "model.decoder.bbox_embed.", {"": ""}),
    (r"bbox_embed\.", "bbox_embed.", {"": ""}),
]
_BLOCKS_COMPILED = [(re.compile(p), t, s) for p, t, s in _BLOCKS]

# Original keys with no counterpart, each provably unused by the converted model:
UNUSED_KEYS = (
    # Swin's relative position index: a constant buffer that follows from the window size;
    # transformers rebuilds it (and does not save it).
    re.compile(r"backbone\.0\.layers\.\d+\.blocks\.\d+\.attn\.relative_position_index$"),
    # BERT's pooler: GroundingDINO reads only the token states (transformers builds no pooler).
    re.compile(r"bert\.pooler\."),
    # arange / zeros buffers that older transformers saved with BERT; rebuilt identically.
    re.compile(r"bert\.embeddings\.(position_ids|token_type_ids)$"),
)
# transformers-only keys with no original counterpart, each provably unused by detection: Swin's
# final layer norm, applied to the last stage's output that the backbone wrapper never returns (it
# returns the per-stage `hidden_states_norms` instead). Filled with the identity.
UNUSED_TARGET_KEYS = {_SWIN + "swin.layernorm.weight": 1.0, _SWIN + "swin.layernorm.bias": 0.0}


def _rename(key: str) -> tuple[str, tuple[str, ...] | None] | None:
    """transformers' key for an original key (with `{}` and the parts for a fused projection), or
    None when no rule covers it."""
    for pattern, prefix, suffixes in _BLOCKS_COMPILED:
        match = pattern.match(key)
        if not match:
            continue
        head = prefix(match) if callable(prefix) else match.expand(prefix)
        rest = key[match.end():]
        for start, target in suffixes.items():
            if rest.startswith(start):
                tail = rest[len(start):]
                if isinstance(target, _Fused):
                    return head + target.template + tail, target.parts
                return head + target + tail, None
        return None
    return None


def strip_module_prefix(sd: dict) -> dict:
    """Keys without the `module.` prefix that DistributedDataParallel training leaves."""
    return {k.removeprefix("module."): v for k, v in sd.items()}


def convert_original_state_dict(original_sd: dict, config) -> dict:
    """The original checkpoint's weights under transformers 5's GroundingDINO keys, for the model
    built from `config` (its GroundingDinoConfig).

    Fused q/k/v matrices are split in three, `UNUSED_KEYS` are dropped and `UNUSED_TARGET_KEYS`
    added; any other key no rule covers is an error, so that a changed layout cannot load half-way.
    """
    converted, unknown = {}, []
    for key, value in strip_module_prefix(original_sd).items():
        if any(p.match(key) for p in UNUSED_KEYS):
            continue
        renamed = _rename(key)
        if renamed is None:
            unknown.append(key)
            continue
        target, parts = renamed
        if parts is None:
            converted[target] = value
        else:
            for part, chunk in zip(parts, value.chunk(3, dim=0)):
                converted[target.format(part)] = chunk
    if unknown:
        raise GroundingDinoLoadError(f"{len(unknown)} weights of unknown role in the checkpoint, e.g. {unknown[:5]}")
    swin = config.backbone_config
    width = swin.embed_dim * 2 ** (len(swin.depths) - 1)  # the last stage's, which that layer norm has
    like = converted[_SWIN + "swin.embeddings.norm.weight"]
    for key, fill in UNUSED_TARGET_KEYS.items():
        converted[key] = torch.full((width,), fill, dtype=like.dtype, device=like.device)
    return converted


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def _not_gdino(path: Path, reason: str) -> GroundingDinoLoadError:
    return GroundingDinoLoadError(f"{path.name} is not a GroundingDINO checkpoint: {reason}. {EXPECTED}")


def read_original_checkpoint(path: str | Path) -> dict:
    """The state dict of an original GroundingDINO checkpoint (.pth / .safetensors).

    Accepts `{"model": state_dict}` (the released files) or a bare state dict, with or without
    `module.` prefixes. Loads with `weights_only=True`; the argparse Namespace that DINO-family
    training scripts store beside the weights is allowed (it holds plain values only).
    """
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path))
        else:
            with torch.serialization.safe_globals([argparse.Namespace]):
                obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # any reader failure means the same thing to the user
        raise _not_gdino(path, f"it cannot be read as a weights file ({type(exc).__name__}: {exc})") from exc
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise _not_gdino(path, f"it holds a {type(obj).__name__}, not a state dict")
    sd = strip_module_prefix({k: v for k, v in obj.items() if isinstance(v, torch.Tensor)})
    missing = [k for k in SIGNATURE_KEYS if k not in sd]
    if missing:
        hint = next((h for prefix, h in NOT_GDINO_HINTS if any(k.startswith(prefix) for k in sd)), None)
        found = f"{len(sd)} tensors, e.g. {list(sd)[:3]}" if sd else "no tensors"
        raise _not_gdino(path, hint or f"it lacks {missing} ({found})")
    return sd


def build_model(config):
    """transformers' GroundingDINO for `config`, without the (slow, discarded) random initialisation."""
    from transformers import GroundingDinoForObjectDetection
    from transformers.initialization import no_init_weights

    with no_init_weights():
        return GroundingDinoForObjectDetection(config)


def load_original(path: Path, config_path: str | Path | None = None):
    """(model, variant) for an original checkpoint and its cfg (found next to it when not given)."""
    sd = read_original_checkpoint(path)
    cfg_path = Path(config_path) if config_path else find_cfg(path)
    if cfg_path is None:
        config, variant = original_config(None, sd, path.name)
        log.info("GroundingDINO: no .cfg.py next to %s; architecture read from the checkpoint (%s)", path.name, variant)
    else:
        config, variant = original_config(read_original_cfg(cfg_path), sd, cfg_path.name)
    model = build_model(config)
    try:
        model.load_state_dict(convert_original_state_dict(sd, config), strict=True)
    except RuntimeError as exc:
        raise GroundingDinoLoadError(f"{path.name}: the converted weights do not fit the model: {exc}") from exc
    return model, variant


def load_hf_folder(folder: Path):
    """(model, tokenizer, variant) from a Hugging Face-format folder, with local files only."""
    from transformers import AutoTokenizer, GroundingDinoForObjectDetection

    config_file = folder / "config.json"
    try:
        model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError) as exc:
        raise GroundingDinoLoadError(f"{folder.name}: no readable config.json ({exc}). {EXPECTED}") from exc
    if model_type != "grounding-dino":
        raise GroundingDinoLoadError(
            f"{folder.name}: config.json is for a {model_type!r} model, not grounding-dino. {EXPECTED}"
        )
    try:
        model = GroundingDinoForObjectDetection.from_pretrained(str(folder), local_files_only=True)
        has_tokenizer = any((folder / n).is_file() for n in ("tokenizer.json", "vocab.txt"))
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True) if has_tokenizer else None
    except (OSError, ValueError) as exc:
        raise GroundingDinoLoadError(
            f"{folder.name}: cannot load the Hugging Face GroundingDINO ({exc}). {EXPECTED}"
        ) from exc
    swin = model.config.backbone_config
    geometry = SwinGeometry(
        swin.embed_dim, tuple(swin.depths), tuple(swin.num_heads), swin.window_size, swin.image_size
    )
    return model, tokenizer, variant_name(geometry)


def bert_tokenizer():
    """bert-base-uncased's tokenizer from the shipped vocabulary.

    transformers 5 takes the vocabulary file as `vocab=` (it ignores `vocab_file=` and silently
    keeps a five-token vocabulary).
    """
    from transformers import BertTokenizerFast

    return BertTokenizerFast(vocab=str(VOCAB), do_lower_case=True)


def _check_tokenizer(tokenizer, source: Path) -> None:
    """The model hard-codes BERT's ids for its phrase delimiters; a tokenizer with others would
    silently merge or split phrases."""
    ids = dict(zip(SPECIAL_TOKENS, tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))))
    if ids != SPECIAL_TOKENS:
        raise GroundingDinoLoadError(f"{source.name}: the tokenizer is not bert-base-uncased's (ids {ids})")


def load_grounding_dino(path: str | Path, config_path: str | Path | None = None, device="cpu",
                        dtype: torch.dtype = torch.float32) -> GroundingDino:
    """Loads a GroundingDINO: an original checkpoint (.pth / .safetensors, with its .cfg.py given or
    found next to it, else read from the checkpoint) or a Hugging Face-format folder.

    Raises GroundingDinoLoadError, naming the file, for anything that is not a GroundingDINO.
    """
    path = Path(path)
    if not path.exists():
        raise GroundingDinoLoadError(f"{path} does not exist. {EXPECTED}")
    tokenizer = None
    if path.is_dir():
        model, tokenizer, variant = load_hf_folder(path)
    else:
        model, variant = load_original(path, config_path)
    tokenizer = tokenizer or bert_tokenizer()
    _check_tokenizer(tokenizer, path)
    model.to(device=device, dtype=dtype).eval()
    model.requires_grad_(False)
    return GroundingDino(model, tokenizer, variant, path)


# ---------------------------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """One image's phrases as a GroundingDINO caption: "p1 . p2 . p3 ." with each phrase's
    character span in it."""

    phrases: tuple[str, ...]
    caption: str
    spans: tuple[tuple[int, int], ...]


def _caption_text(phrase: str) -> str:
    """A phrase as it goes into the caption: lower case, single spaces, and without "." or "?",
    which GroundingDINO treats as phrase separators (they would split the phrase in two)."""
    return " ".join(re.sub(r"[.?]", " ", phrase.lower()).split())


def build_prompt(phrases) -> Prompt | None:
    """The prompt for these phrases, or None if none is left. Empty phrases are dropped, and so are
    phrases that read the same in the caption as an earlier one (the first spelling labels them)."""
    kept, texts, spans, position = [], [], [], 0
    for phrase in phrases:
        text = _caption_text(phrase) if isinstance(phrase, str) else ""
        if not text or text in texts:
            continue
        kept.append(phrase)
        texts.append(text)
        spans.append((position, position + len(text)))
        position += len(text) + len(" . ")
    if not kept:
        return None
    return Prompt(tuple(kept), " . ".join(texts) + " .", tuple(spans))


def resized_size(height: int, width: int, short: int = 800, long_max: int = 1333) -> tuple[int, int]:
    """GroundingDINO's test-time size: the short side to `short` unless the long side would pass
    `long_max` (the reference's `RandomResize([800], max_size=1333)`, same rounding)."""
    small, large = min(height, width), max(height, width)
    if large / small * short > long_max:
        short = round(long_max * small / large)
    if small == short:
        return height, width
    if width < height:
        return int(short * height / width), short
    return short, int(short * width / height)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) in [0, 1] to GroundingDINO's input: resized, ImageNet-normalised (B, 3, h, w)."""
    pixels = images.permute(0, 3, 1, 2).float()
    size = resized_size(pixels.shape[2], pixels.shape[3])
    if size != tuple(pixels.shape[2:]):
        pixels = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=pixels.device).view(1, 3, 1, 1)
    return (pixels - mean) / std


def _image_list(images) -> list[torch.Tensor]:
    """Each image as (H, W, 3): from a ComfyUI IMAGE batch (B, H, W, C) or a list of images of any
    sizes ((H, W, C) or (1, H, W, C)). Grey images are repeated to RGB, alpha is ignored."""
    if isinstance(images, torch.Tensor):
        images = list(images) if images.ndim == 4 else [images]
    result = []
    for image in images:
        image = image[0] if image.ndim == 4 and image.shape[0] == 1 else image
        if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
            raise ValueError(f"detect expects ComfyUI images (H, W, 3), got shape {tuple(image.shape)}")
        result.append(image.expand(-1, -1, 3) if image.shape[-1] == 1 else image[..., :3])
    return result


def _phrases_per_image(phrases, count: int) -> list[list[str]]:
    """One phrase list per image, from one shared list (or a single phrase) or one list per image."""
    if isinstance(phrases, str):
        phrases = [phrases]
    phrases = list(phrases)
    if all(isinstance(p, str) for p in phrases):
        return [phrases] * count
    if len(phrases) != count:
        raise ValueError(f"{len(phrases)} phrase lists for {count} images: give one list per image, or one shared list")
    return [[p] if isinstance(p, str) else list(p) for p in phrases]


def _token_phrases(offsets: torch.Tensor, prompt: Prompt) -> torch.Tensor:
    """(P, T) bool: which tokens spell each phrase. [CLS], [SEP], padding (empty offsets) and the
    "." separators (outside every span) belong to none."""
    start, end = offsets[:, 0], offsets[:, 1]
    real = end > start
    return torch.stack([real & (start >= s) & (end <= e) for s, e in prompt.spans])


def _phrase_scores(probs: torch.Tensor, membership: torch.Tensor) -> torch.Tensor:
    """(Q, P): each query's highest token probability within each phrase (0 for a phrase that
    lost all its tokens to the 256-token limit)."""
    masked = probs[:, None, : membership.shape[1]] * membership[None].to(probs.dtype)
    return masked.amax(dim=2)


def _boxes_xyxy(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Normalised (cx, cy, w, h) to pixel (x1, y1, x2, y2) in the original image, clipped to it."""
    cx, cy, w, h = boxes.unbind(-1)
    xyxy = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)
    xyxy = xyxy * torch.tensor([width, height, width, height], dtype=xyxy.dtype, device=xyxy.device)
    xyxy[:, 0::2] = xyxy[:, 0::2].clamp(0, width)
    xyxy[:, 1::2] = xyxy[:, 1::2].clamp(0, height)
    return xyxy


class GroundingDino:
    """A loaded GroundingDINO: `model` (transformers' GroundingDinoForObjectDetection, eval mode),
    `tokenizer`, `variant` ("swint_ogc", "swinb_cogcoor", ...) and `source` (the file or folder).

    The device and dtype are read from the model's parameters at every call, so whoever manages
    memory (ComfyUI's ModelPatcher) may move `model` freely. `forward_passes` counts model forwards.
    """

    def __init__(self, model, tokenizer, variant: str, source: Path, max_batch: int = 8):
        self.model = model
        self.tokenizer = tokenizer
        self.variant = variant
        self.source = Path(source)
        self.max_batch = max_batch
        self.forward_passes = 0

    def __repr__(self) -> str:
        return f"GroundingDino({self.variant}, {self.source.name})"

    def detect(self, images, phrases, box_threshold: float = 0.3,
               text_threshold: float = 0.25) -> list[Detections]:
        """Boxes for the phrases on each image: a ComfyUI IMAGE batch (B, H, W, C) in [0, 1], or a
        list of images of different sizes.

        `phrases` is one list shared by all images or one list per image. All phrases of an image
        go in one forward pass, which up to `max_batch` images of the same size share. Every query
        whose best phrase scores above `box_threshold` is kept, as in the reference `predict` (no
        NMS); its label is that phrase, its score that phrase's highest token probability (the
        reference also counts the [CLS], [SEP] and "." tokens, which training teaches to score
        low). `text_threshold` only chose the words of a label in the reference, and a box whose
        tokens all fell below it got an empty label: here such a box is dropped, i.e. boxes must
        beat both thresholds (with the defaults, 0.3 > 0.25, text_threshold changes nothing).

        Each Detections' `extra` holds "phrases" (the phrases searched) and "phrase_scores"
        (N, P): every box's score for every phrase, so one pass can score them all.
        """
        images = _image_list(images)
        prompts = [build_prompt(p) for p in _phrases_per_image(phrases, len(images))]
        threshold = max(box_threshold, text_threshold)
        results: list[Detections | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (image, prompt) in enumerate(zip(images, prompts)):
            if prompt is None:
                results[i] = Detections.empty(tuple(image.shape[:2]), note="no phrases to look for")
            else:
                groups.setdefault(tuple(image.shape[:2]), []).append(i)
        with torch.inference_mode():
            for indices in groups.values():
                for start in range(0, len(indices), self.max_batch):
                    chunk = indices[start:start + self.max_batch]
                    batch = torch.stack([images[i] for i in chunk])
                    for i, found in zip(chunk, self._detect_batch(batch, [prompts[i] for i in chunk], threshold)):
                        results[i] = found
        return results

    def _forward(self, images: torch.Tensor, captions: list[str]):
        """One model forward for same-size images: (probabilities (B, Q, T) float32, boxes
        (B, Q, 4) float32, token offsets (B, T, 2))."""
        parameter = next(self.model.parameters())
        pixels = preprocess(images.to(parameter.device)).to(parameter.dtype)
        tokens = self.tokenizer(captions, padding="longest", truncation=True, return_offsets_mapping=True,
                                max_length=self.model.config.max_text_len, return_tensors="pt")
        offsets = tokens.pop("offset_mapping")
        self.forward_passes += 1
        out = self.model(pixel_values=pixels, **{k: v.to(parameter.device) for k, v in tokens.items()})
        return out.logits.float().sigmoid().cpu(), out.pred_boxes.float().cpu(), offsets

    def _detect_batch(self, images: torch.Tensor, prompts: list[Prompt], threshold: float) -> list[Detections]:
        probs, boxes, offsets = self._forward(images, [p.caption for p in prompts])
        size = tuple(images.shape[1:3])
        limit = self.model.config.max_text_len
        return [_detections(*item, size, threshold, limit) for item in zip(probs, boxes, offsets, prompts)]


def _detections(probs: torch.Tensor, boxes: torch.Tensor, offsets: torch.Tensor, prompt: Prompt,
                size: tuple[int, int], threshold: float, token_limit: int) -> Detections:
    """One image's Detections from the model's output for it: the queries whose best phrase scores
    above `threshold`, best first, labelled with that phrase."""
    membership = _token_phrases(offsets, prompt)
    per_phrase = _phrase_scores(probs, membership)
    scores, best = per_phrase.max(dim=1)
    finite = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores)
    keep = ((scores > threshold) & finite).nonzero().flatten()
    keep = keep[scores[keep].argsort(descending=True)]
    lost = [phrase for phrase, tokens in zip(prompt.phrases, membership) if not tokens.any()]
    notes = [f"not searched (past GroundingDINO's {token_limit}-token prompt): {lost}"] if lost else []
    if not finite.all():
        notes.append(f"{int((~finite).sum())} of {len(finite)} detector outputs were NaN and were dropped "
                     "(a float16 overflow? load GroundingDINO in float32)")
    note = "; ".join(notes)
    return Detections(
        _boxes_xyxy(boxes[keep], *size), scores[keep], [prompt.phrases[i] for i in best[keep].tolist()], size, note,
        {"phrases": list(prompt.phrases), "phrase_scores": per_phrase[keep]},
    )
