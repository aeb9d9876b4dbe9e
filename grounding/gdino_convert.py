"""Conversion of the original IDEA-Research GroundingDINO checkpoints to transformers' layout.

An original checkpoint (`groundingdino_swint_ogc.pth`, `groundingdino_swinb_cogcoor.pth`) and its
`.cfg.py` become a transformers 5 `GroundingDinoConfig` and a state dict for
`GroundingDinoForObjectDetection`:

- `read_original_cfg`: the cfg file's assignments, read with `ast` (the file is never executed);
- `swin_geometry`, `sizes_from_state_dict`, `bert_config`: what the checkpoint's tensor shapes
  tell (Swin backbone, transformer sizes, BERT text encoder; nothing is fetched);
- `original_config`: the cfg values and the shapes, checked against each other, as a config;
- `convert_original_state_dict`: the weights renamed, fused q/k/v projections split.

Checkpoint conversion is kept apart from loading and detection (`gdino.py`) the way transformers
keeps `convert_grounding_dino_to_hf.py` apart from `modeling_grounding_dino.py`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint_files import ModelFileError, strip_module_prefix


class GroundingDinoLoadError(ModelFileError, RuntimeError):
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
    """ "swint_ogc" / "swinb_cogcoor" for the released models' backbones, the backbone's name for
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
            f"(the released models use { ({k: REQUIRED_CFG.get(k, DEFAULT_CFG[k]) for k in wrong}) })"
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
    (
        r"backbone\.0\.patch_embed\.",
        _SWIN + "swin.embeddings.",
        {"proj.": "patch_embeddings.projection.", "norm.": "norm."},
    ),
    (
        r"backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.",
        _SWIN + r"swin.encoder.layers.\1.blocks.\2.",
        {
            "norm1.": "layernorm_before.",
            "norm2.": "layernorm_after.",
            "mlp.": "mlp.",
            "attn.qkv.": _Fused("attention.{}.", ("q_proj", "k_proj", "v_proj")),
            "attn.proj.": "attention.o_proj.",
            "attn.relative_position_bias_table": "attention.relative_position_bias.relative_position_bias_table",
        },
    ),
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
    (
        r"transformer\.encoder\.layers\.(\d+)\.",
        r"model.encoder.layers.\1.deformable_layer.",
        {
            "self_attn.": "self_attn.",
            "norm1.": "self_attn_layer_norm.",
            "linear1.": "fc1.",
            "linear2.": "fc2.",
            "norm2.": "final_layer_norm.",
        },
    ),
    (
        r"transformer\.encoder\.text_layers\.(\d+)\.",
        r"model.encoder.layers.\1.text_enhancer_layer.",
        {
            "self_attn.in_proj_": _Fused("self_attn.{}.", _MHA),
            "self_attn.out_proj.": "self_attn.out_proj.",
            "linear1.": "fc1.",
            "linear2.": "fc2.",
            "norm1.": "layer_norm_before.",
            "norm2.": "layer_norm_after.",
        },
    ),
    (
        r"transformer\.encoder\.fusion_layers\.(\d+)\.",
        r"model.encoder.layers.\1.fusion_layer.",
        {
            "gamma_v": "vision_param",
            "gamma_l": "text_param",
            "layer_norm_v.": "layer_norm_vision.",
            "layer_norm_l.": "layer_norm_text.",
            "attn.v_proj.": "attn.vision_proj.",
            "attn.l_proj.": "attn.text_proj.",
            "attn.values_v_proj.": "attn.values_vision_proj.",
            "attn.values_l_proj.": "attn.values_text_proj.",
            "attn.out_v_proj.": "attn.out_vision_proj.",
            "attn.out_l_proj.": "attn.out_text_proj.",
        },
    ),
    (
        r"transformer\.decoder\.layers\.(\d+)\.",
        r"model.decoder.layers.\1.",
        {
            "cross_attn.": "encoder_attn.",
            "norm1.": "encoder_attn_layer_norm.",
            "ca_text.in_proj_": _Fused("encoder_attn_text.{}.", _MHA),
            "ca_text.out_proj.": "encoder_attn_text.out_proj.",
            "catext_norm.": "encoder_attn_text_layer_norm.",
            "self_attn.in_proj_": _Fused("self_attn.{}.", _MHA),
            "self_attn.out_proj.": "self_attn.out_proj.",
            "norm2.": "self_attn_layer_norm.",
            "linear1.": "fc1.",
            "linear2.": "fc2.",
            "norm3.": "final_layer_norm.",
        },
    ),
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
        rest = key[match.end() :]
        for start, target in suffixes.items():
            if rest.startswith(start):
                tail = rest[len(start) :]
                if isinstance(target, _Fused):
                    return head + target.template + tail, target.parts
                return head + target + tail, None
        return None
    return None


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
