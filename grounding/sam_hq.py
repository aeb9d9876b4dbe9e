"""HQ-SAM and MobileSAM, built with `segment_anything_hq` (SysCV's official package).

- HQ-SAM (`sam_hq_vit_h/l/b.pth`): SAM's ViT encoder and HQ-SAM's mask decoder, which also reads
  the encoder's features after its first global-attention block (`MaskDecoderHQ`).
- MobileSAM (`mobile_sam.pt`): a TinyViT encoder before SAM's own prompt encoder and mask
  decoder. No maintained MobileSAM package is on PyPI; `segment_anything_hq` ships MobileSAM's
  TinyViT (`modeling/tiny_vit_sam.py`, the same code apart from also returning the early features
  that Light HQ-SAM reads), so MobileSAM runs on that encoder and `segment_anything`'s decoder.
- Light HQ-SAM (`sam_hq_vit_tiny.pth`): the TinyViT encoder and HQ-SAM's decoder.

All are plain state dicts (`torch.save(model.state_dict())`); the architecture is read from them.
"""

from __future__ import annotations

import copy
import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import segment_anything.modeling
import torch

from .sam import SamPredictorSteps, is_hq_sam, not_sam, sam_architecture

_IMAGE_SIZE = 1024
_PROMPT_DIM = 256
# TinyViT's last stage keeps the 64x64 grid SAM's decoder needs only for these widths
# (`tiny_vit_sam.PatchMerging` strides 1 for them, 2 otherwise).
_STRIDE_ONE_WIDTHS = (320, 448, 576)
_MOBILE_SAM = ((64, 128, 160, 320), (2, 2, 6, 2), (4, 5, 10), (7, 14, 7))
_TIMM_REGISTRY = (
    "_module_to_models",
    "_model_to_module",
    "_model_entrypoints",
    "_model_has_pretrained",
    "_model_default_cfgs",
    "_model_pretrained_cfgs",
    "_model_with_tags",
)


@contextmanager
def _timm_registry_kept():
    """`segment_anything_hq` registers its TinyViT under timm's own model names
    (`tiny_vit_5m_224`, ...) when imported; timm's registry is put back as it was, so that other
    nodes that create those models from timm get timm's."""
    try:
        from timm.models import _registry as registry
    except ImportError:  # timm absent: segment_anything_hq's import says so
        yield
        return
    saved = {name: copy.copy(getattr(registry, name)) for name in _TIMM_REGISTRY if hasattr(registry, name)}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its "Overwriting tiny_vit_... in registry" and timm's deprecations
            yield
    finally:
        for name, value in saved.items():
            current = getattr(registry, name)
            current.clear()
            current.update(value)


with _timm_registry_kept():
    import segment_anything_hq
    import segment_anything_hq.modeling
    from segment_anything_hq.build_sam import _build_sam as _build_hq_sam
    from segment_anything_hq.modeling import tiny_vit_sam


class TinyViTFeatures(tiny_vit_sam.TinyViT):
    """MobileSAM's image encoder: TinyViT's image embedding alone (without the early features
    that only Light HQ-SAM's decoder reads), as `segment_anything`'s predictor expects."""

    def forward(self, x):
        return super().forward(x)[0]


@dataclass(frozen=True)
class TinyViTArchitecture:
    embed_dims: tuple[int, ...]
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    window_sizes: tuple[int, ...]
    mlp_ratio: float
    mbconv_expand_ratio: float
    local_conv_size: int
    num_classes: int

    @property
    def published(self) -> bool:
        """MobileSAM's encoder (stage 0 is convolutional: its heads and window are not in the file)."""
        attention = (self.num_heads[1:], self.window_sizes[1:])
        return (self.embed_dims, self.depths) == _MOBILE_SAM[:2] and attention == _MOBILE_SAM[2:]


def _shape(state_dict: dict, key: str, name: str) -> torch.Size:
    tensor = state_dict.get(key)
    if tensor is None:
        raise not_sam(name, f"its TinyViT encoder has no {key}")
    return tensor.shape


def tiny_vit_architecture(state_dict: dict, name: str = "the checkpoint") -> TinyViTArchitecture:
    """TinyViT's hyper-parameters from tensor shapes: stage widths from the stem and the attention
    norms, depths from the block numbers, heads and window sizes from the attention-bias tables
    (heads x window^2 offsets)."""
    prefix = "image_encoder.layers."
    stages = sorted({int(k.split(".")[2]) for k in state_dict if k.startswith(prefix)})
    if stages != [0, 1, 2, 3]:
        raise not_sam(name, f"its TinyViT encoder has stages {stages}, MobileSAM's has 4")
    depths = []
    for i in stages:
        blocks = sorted({int(k.split(".")[4]) for k in state_dict if k.startswith(f"{prefix}{i}.blocks.")})
        if not blocks or blocks != list(range(len(blocks))):
            raise not_sam(name, f"its TinyViT stage {i} blocks are missing or not numbered 0..N-1")
        depths.append(len(blocks))
    dims = [int(_shape(state_dict, "image_encoder.patch_embed.seq.2.c.weight", name)[0])]
    heads, windows = [], []
    for i in (1, 2, 3):
        dims.append(int(_shape(state_dict, f"{prefix}{i}.blocks.0.attn.norm.weight", name)[0]))
        bias = _shape(state_dict, f"{prefix}{i}.blocks.0.attn.attention_biases", name)
        window = math.isqrt(int(bias[1]))
        if window * window != bias[1]:
            raise not_sam(name, f"TinyViT stage {i}'s attention biases ({tuple(bias)}) fit no square window")
        heads.append(int(bias[0]))
        windows.append(window)
    if dims[-1] not in _STRIDE_ONE_WIDTHS:
        raise not_sam(
            name, f"its TinyViT's last stage is {dims[-1]} wide; SAM's decoder needs one of {_STRIDE_ONE_WIDTHS}"
        )
    head = state_dict.get("image_encoder.head.weight")
    return TinyViTArchitecture(
        embed_dims=tuple(dims),
        depths=tuple(depths),
        num_heads=(1, *heads),  # stage 0 is convolutional: its heads are unused
        window_sizes=(windows[0], *windows),  # likewise its window
        mlp_ratio=_shape(state_dict, f"{prefix}1.blocks.0.mlp.fc1.weight", name)[0] / dims[1],
        mbconv_expand_ratio=_shape(state_dict, f"{prefix}0.blocks.0.conv1.c.weight", name)[0] / dims[0],
        local_conv_size=int(_shape(state_dict, f"{prefix}1.blocks.0.local_conv.c.weight", name)[-1]),
        num_classes=int(head.shape[0]) if head is not None else 0,
    )


def _tiny_vit(arch: TinyViTArchitecture, encoder_class):
    return encoder_class(
        img_size=_IMAGE_SIZE,
        in_chans=3,
        num_classes=arch.num_classes,
        embed_dims=list(arch.embed_dims),
        depths=list(arch.depths),
        num_heads=list(arch.num_heads),
        window_sizes=list(arch.window_sizes),
        mlp_ratio=arch.mlp_ratio,
        drop_rate=0.0,
        drop_path_rate=0.0,
        use_checkpoint=False,
        mbconv_expand_ratio=arch.mbconv_expand_ratio,
        local_conv_size=arch.local_conv_size,
    )


def _sam_around(modeling, image_encoder, **decoder_args):
    """`modeling.Sam` (segment_anything's or segment_anything_hq's) with the prompt encoder and
    mask decoder their builders give every published encoder; HQ's decoder takes `vit_dim`."""
    decoder = modeling.MaskDecoderHQ if "vit_dim" in decoder_args else modeling.MaskDecoder
    grid = _IMAGE_SIZE // 16
    return modeling.Sam(
        image_encoder=image_encoder,
        prompt_encoder=modeling.PromptEncoder(
            embed_dim=_PROMPT_DIM,
            image_embedding_size=(grid, grid),
            input_image_size=(_IMAGE_SIZE, _IMAGE_SIZE),
            mask_in_chans=16,
        ),
        mask_decoder=decoder(
            num_multimask_outputs=3,
            transformer=modeling.TwoWayTransformer(depth=2, embedding_dim=_PROMPT_DIM, mlp_dim=2048, num_heads=8),
            transformer_dim=_PROMPT_DIM,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
            **decoder_args,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )


class HqPredictorSteps(SamPredictorSteps):
    """`segment_anything_hq.SamPredictor`, which also keeps the encoder's early features. Its mask
    decoder reads only the first of them (`MaskDecoderHQ.forward`), so only that one is kept with
    the embedding (20 MiB for ViT-H instead of 80)."""

    kept = ("features", "interm_features", "input_size", "original_size")

    def __init__(self):
        super().__init__(segment_anything_hq.SamPredictor)

    def keep(self, predictor) -> dict:
        kept = super().keep(predictor)
        kept["interm_features"] = kept["interm_features"][:1]
        return kept


def build_hq_or_mobile_sam(state_dict: dict, name: str, kind: str):
    """(model, variant, predictor steps) for an HQ-SAM, Light HQ-SAM or MobileSAM state dict;
    `kind` is `sam.segmenter_kind`'s "vit" or "tiny_vit"."""
    hq = is_hq_sam(state_dict)
    if kind == "vit":
        arch = sam_architecture(state_dict, name)
        sam = _build_hq_sam(arch.embed_dim, arch.depth, arch.num_heads, list(arch.global_attn_indexes), checkpoint=None)
        return sam, f"hq_{arch.variant}", HqPredictorSteps()
    arch = tiny_vit_architecture(state_dict, name)
    size = "vit_tiny" if arch.published else "custom_tiny_vit"
    if hq:
        encoder = _tiny_vit(arch, tiny_vit_sam.TinyViT)
        sam = _sam_around(segment_anything_hq.modeling, encoder, vit_dim=arch.embed_dims[2])
        return sam, f"hq_{size}", HqPredictorSteps()
    sam = _sam_around(segment_anything.modeling, _tiny_vit(arch, TinyViTFeatures))
    return sam, "mobile_sam" if arch.published else "custom_tiny_vit", SamPredictorSteps()


__all__ = ["TinyViTArchitecture", "build_hq_or_mobile_sam", "tiny_vit_architecture"]
