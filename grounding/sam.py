"""Segment Anything models from the files ComfyUI users have, for box-prompted masks.

Users keep segmenter files in ComfyUI's `models/sams` and `models/sam2` folders:

- Meta's original SAM (`sam_vit_h_4b8939.pth`, `sam_vit_l_0b3195.pth`, `sam_vit_b_01ec64.pth`),
  built with `segment_anything`'s own builder;
- HQ-SAM (`sam_hq_vit_h/l/b.pth`, Light HQ-SAM `sam_hq_vit_tiny.pth`) and MobileSAM
  (`mobile_sam.pt`, a TinyViT encoder before SAM's decoder), built with `segment_anything_hq`
  (`sam_hq.py`);
- SAM 2 and 2.1 (`sam2_hiera_*.pt`, `sam2.1_hiera_*.pt` and their `.safetensors` repacks), built
  from the `sam2` package's own configs (`sam2_model.py`).

The file names are often changed, so the kind and the architecture are read from the state dict
itself, and the model is then loaded strictly: a file that is none of these fails here with a
message that says what it looks like, instead of producing garbage masks later.

Masks are made as Grounded-InstructPix2Pix makes them (arthur-71/Grounded-Instruct-Pix2Pix,
`external_mask_extractor.py:90-95`), through each family's official predictor: the image is
embedded once (uint8 RGB, resized to 1024 by the predictor's own transform), the boxes are
decoded in batched calls with `multimask_output=False`, and the logits are thresholded at the
predictor's default 0.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint_files import CheckpointFileError, ModelFileError, read_state_dict

SAMS_FOLDER_HINT = (
    "a Segment Anything checkpoint (SAM, HQ-SAM, MobileSAM, SAM 2 or 2.1: e.g. sam_vit_h_4b8939.pth, "
    "sam_hq_vit_h.pth, mobile_sam.pt, sam2.1_hiera_large.pt) in ComfyUI's models/sams or models/sam2 folder"
)

# segment_anything's builder hardcodes these (1024 px input, 16 px patches, 14-token windows).
_IMAGE_SIZE = 1024
_PATCH_SIZE = 16
_WINDOW_SIZE = 14
_GLOBAL_REL_POS = 2 * (_IMAGE_SIZE // _PATCH_SIZE) - 1  # 127: rel-pos table of a global block
_WINDOW_REL_POS = 2 * _WINDOW_SIZE - 1  # 27: rel-pos table of a windowed block

# The three published image encoders: (embed dim, depth, heads, global-attention blocks).
_VARIANTS = {
    "vit_b": (768, 12, 12, (2, 5, 8, 11)),
    "vit_l": (1024, 24, 16, (5, 11, 17, 23)),
    "vit_h": (1280, 32, 16, (7, 15, 23, 31)),
}

# Keys that only HQ-SAM's mask decoder has.
HQ_SAM_MARKERS = (
    "mask_decoder.hf_token",
    "mask_decoder.hf_mlp",
    "mask_decoder.compress_vit_feat",
    "mask_decoder.embedding_encoder",
    "mask_decoder.embedding_maskfeature",
)
_PATCH_KEY = "image_encoder.patch_embed.proj.weight"
_TINY_VIT_KEY = "image_encoder.patch_embed.seq.0.c.weight"  # MobileSAM's TinyViT stem
_SAM2_KEYS = ("image_encoder.trunk.patch_embed.proj.weight", "sam_mask_decoder.iou_token.weight")

# What other model files are told apart by (a key prefix, or a key), for the message about them.
_LOOKS_LIKE = (
    (
        ("transformer.level_embed", "bert.embeddings.", "backbone.0."),
        "a GroundingDINO checkpoint (it belongs in models/grounding-dino)",
    ),
    (("model.diffusion_model.",), "a Stable Diffusion checkpoint (it belongs in models/checkpoints)"),
    (("first_stage_model.", "encoder.down.", "decoder.up."), "a VAE"),
    (("lora_unet_", "lora_te"), "a LoRA"),
    (("visual.", "text_model.", "vision_model.", "transformer.resblocks."), "a CLIP model"),
)


class SamLoadError(ModelFileError, ValueError):
    """The file is not a SAM checkpoint this loader can build (the message says why and what to use)."""


def not_sam(name: str, reason: str) -> SamLoadError:
    return SamLoadError(f"{name}: {reason}; it should be {SAMS_FOLDER_HINT}.")


def segmenter_kind(state_dict: dict) -> str | None:
    """ "sam2", "tiny_vit" (MobileSAM, Light HQ-SAM), "vit" (SAM, HQ-SAM), or None for other files."""
    if all(k in state_dict for k in _SAM2_KEYS):
        return "sam2"
    if _TINY_VIT_KEY in state_dict:
        return "tiny_vit"
    if _PATCH_KEY in state_dict:
        return "vit"
    return None


def is_hq_sam(state_dict: dict) -> bool:
    return any(k.startswith(HQ_SAM_MARKERS) for k in state_dict)


def looks_like(state_dict: dict) -> str:
    """What a file that is no segmenter seems to be, from its keys (for the loader's message)."""
    for markers, what in _LOOKS_LIKE:
        if any(k.startswith(markers) for k in state_dict):
            return f"it looks like {what}, not a segmenter"
    return f"it holds no segmenter image encoder ({len(state_dict)} tensors, e.g. {list(state_dict)[:3]})"


@dataclass(frozen=True)
class SamArchitecture:
    """The image-encoder hyper-parameters `segment_anything.build_sam._build_sam` needs."""

    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]

    @property
    def variant(self) -> str:
        """ "vit_b", "vit_l" or "vit_h" for the published encoders, else "custom"."""
        for name, spec in _VARIANTS.items():
            if spec == (self.embed_dim, self.depth, self.num_heads, self.global_attn_indexes):
                return name
        return "custom"


def sam_architecture(state_dict: dict, name: str = "the checkpoint") -> SamArchitecture:
    """Read the encoder architecture from tensor shapes (file names are not trusted).

    - embed dim: output channels of `image_encoder.patch_embed.proj.weight`;
    - depth: the number of `image_encoder.blocks.N`;
    - global-attention blocks: those whose relative-position table spans the whole 64x64 token
      grid (2*64-1 = 127 rows) instead of a 14x14 window (27 rows);
    - heads: embed dim / head dim, the head dim being the width of the rel-pos tables. This is
      exact for any encoder, and gives the published 12 (ViT-B), 16 (ViT-L) and 16 (ViT-H, whose
      heads are 80 wide, so `embed_dim // 64` would be wrong for it).
    """
    patch = state_dict.get(_PATCH_KEY)
    if patch is None or patch.ndim != 4:
        raise not_sam(name, f"no SAM image encoder ({_PATCH_KEY})")
    embed_dim = int(patch.shape[0])
    if tuple(patch.shape[1:]) != (3, _PATCH_SIZE, _PATCH_SIZE):
        raise not_sam(
            name,
            f"its encoder takes {tuple(patch.shape[1:])} patches, but segment_anything "
            f"builds (3, {_PATCH_SIZE}, {_PATCH_SIZE}) patches",
        )
    blocks = sorted({int(k.split(".")[2]) for k in state_dict if k.startswith("image_encoder.blocks.")})
    if not blocks or blocks != list(range(len(blocks))):
        raise not_sam(name, "its image encoder blocks are missing or not numbered 0..N-1")
    global_blocks, head_dims = [], set()
    for i in blocks:
        rel_pos = state_dict.get(f"image_encoder.blocks.{i}.attn.rel_pos_h")
        if rel_pos is None or rel_pos.ndim != 2:
            raise not_sam(name, f"encoder block {i} has no relative-position table")
        if rel_pos.shape[0] == _GLOBAL_REL_POS:
            global_blocks.append(i)
        elif rel_pos.shape[0] != _WINDOW_REL_POS:
            raise not_sam(
                name,
                f"encoder block {i} has a {rel_pos.shape[0]}-row relative-position table "
                f"(SAM has {_GLOBAL_REL_POS} for global, {_WINDOW_REL_POS} for windowed blocks)",
            )
        head_dims.add(int(rel_pos.shape[1]))
    if len(head_dims) != 1 or embed_dim % next(iter(head_dims)):
        raise not_sam(name, f"attention head widths {sorted(head_dims)} do not fit embed dim {embed_dim}")
    return SamArchitecture(embed_dim, len(blocks), embed_dim // head_dims.pop(), tuple(global_blocks))


def _read_state_dict(path: Path) -> dict:
    """The file's tensors by name (`checkpoint_files.read_state_dict`: nothing in it is run)."""
    if not path.is_file():
        raise not_sam(str(path), "no such file")
    try:
        return read_state_dict(path)
    except CheckpointFileError as exc:  # truncated files, pickles with code in them, TorchScript, ...
        raise not_sam(path.name, exc.reason) from exc


def load_strictly(model: torch.nn.Module, state_dict: dict, name: str, variant: str) -> None:
    """Every weight of the file into the model built for it, none missing or left over."""
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise not_sam(
            name, f"its weights do not fit the {variant} architecture read from their shapes ({detail[:300]})"
        ) from exc


def _build_original_sam(state_dict: dict, name: str) -> tuple[torch.nn.Module, str]:
    from segment_anything.build_sam import _build_sam

    arch = sam_architecture(state_dict, name)
    sam = _build_sam(arch.embed_dim, arch.depth, arch.num_heads, list(arch.global_attn_indexes), checkpoint=None)
    return sam, arch.variant


def load_sam(path) -> "SamModel":
    """The segmenter in a file (`.pth`/`.pt` state dict, `{"model": ...}` or `.safetensors`): SAM,
    HQ-SAM, MobileSAM or SAM 2/2.1, on the CPU in float32, kind and size read from the weights.

    Raises SamLoadError, naming the file, for anything else: a GroundingDINO or Stable Diffusion
    checkpoint (the message says what it looks like), a truncated download, weights that do not
    fit the architecture their shapes describe.
    """
    path = Path(path)
    state_dict = _read_state_dict(path)
    kind = segmenter_kind(state_dict)
    if kind is None:
        raise not_sam(path.name, looks_like(state_dict))
    if kind == "sam2":
        from .sam2_model import build_sam2_model

        sam, variant, steps = build_sam2_model(state_dict, path.name)
    elif kind == "tiny_vit" or is_hq_sam(state_dict):
        from .sam_hq import build_hq_or_mobile_sam

        sam, variant, steps = build_hq_or_mobile_sam(state_dict, path.name, kind)
    else:
        sam, variant = _build_original_sam(state_dict, path.name)
        steps = SamPredictorSteps()
    load_strictly(sam, state_dict, path.name, variant)
    return SamModel(sam.eval(), variant, steps)


class SamPredictorSteps:
    """How SamModel drives a family's official predictor: embed an image, keep and restore its
    embedding, map boxes into the predictor's frame, decode a batch of boxes to masks.

    This one drives `segment_anything.SamPredictor` (SAM, MobileSAM) and, given its class and the
    extra `interm_features` it keeps, `segment_anything_hq.SamPredictor` (HQ-SAM), whose calls are
    the same. SAM 2's predictor has its own (`sam2_model.Sam2PredictorSteps`).
    """

    kept = ("features", "input_size", "original_size")

    def __init__(self, predictor_class=None, kept: tuple[str, ...] | None = None):
        self.predictor_class = predictor_class
        self.kept = kept or self.kept

    def predictor(self, sam):
        if self.predictor_class is None:
            from segment_anything import SamPredictor

            self.predictor_class = SamPredictor
        return self.predictor_class(sam)

    def embed(self, predictor, pixels, device, dtype) -> None:
        """SAM's `set_image` with the image resized by its ResizeLongestSide (PIL) and cast to the weights' dtype."""
        resized = torch.from_numpy(predictor.transform.apply_image(pixels))
        resized = resized.to(device=device, dtype=dtype).permute(2, 0, 1).unsqueeze(0).contiguous()
        predictor.set_torch_image(resized, pixels.shape[:2])

    def keep(self, predictor) -> dict:
        return {name: getattr(predictor, name) for name in self.kept}

    def restore(self, predictor, kept: dict) -> None:
        for name, value in kept.items():
            setattr(predictor, name, value)
        predictor.is_image_set = True

    def prompt(self, predictor, boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return predictor.transform.apply_boxes_torch(boxes, size).to(predictor.device)

    def masks(self, predictor, boxes: torch.Tensor) -> torch.Tensor:
        return predictor.predict_torch(None, None, boxes=boxes, multimask_output=False)[0][:, 0]


class SamModel(torch.nn.Module):
    """A loaded segmenter and its box-to-mask call.

    An nn.Module so that ComfyUI's ModelPatcher can move or cast it: the device and dtype are read
    from the weights at every call. `encoder_passes` counts image embeddings (the expensive part:
    one per image, whatever the number of boxes).

    The last image's embedding is kept (4 MiB for SAM and MobileSAM, 16 MiB for SAM 2, up to
    24 MiB for HQ-SAM ViT-H with its early encoder features), keyed by its uint8 pixels and the
    weights' device and dtype: an artist who changes the instruction on the same photo gets new
    boxes, and SAM Mask runs again, but the image encoder does not. `forget_image()` drops it.
    """

    def __init__(self, sam, variant: str, steps: SamPredictorSteps | None = None):
        super().__init__()
        self.sam = sam
        self.variant = variant
        self.steps = steps or SamPredictorSteps()
        self.encoder_passes = 0
        # Boxes per decoder call: each box's mask is upsampled to full resolution in float before
        # thresholding, so hundreds of boxes at once (a low box threshold) would need gigabytes;
        # on a large photo fewer boxes go in each call (decoder_bytes of full-size masks at most).
        self.decoder_batch = 32
        self.decoder_bytes = 1 << 30
        self._embedding: tuple | None = None  # (key, what the predictor keeps of the image)

    def forget_image(self) -> None:
        self._embedding = None

    def _set_image(self, predictor, pixels, device, dtype) -> None:
        """The predictor's image embedding: the kept one when the pixels match, else a new one."""
        key = (pixels.shape, hashlib.blake2b(pixels.tobytes(), digest_size=16).digest(), str(device), dtype)
        if self._embedding is not None and self._embedding[0] == key:
            self.steps.restore(predictor, self._embedding[1])
            return
        self.steps.embed(predictor, pixels, device, dtype)
        self.encoder_passes += 1
        self._embedding = (key, self.steps.keep(predictor))

    def segment(self, image: torch.Tensor, boxes: torch.Tensor, union: bool = False, interrupt=None) -> torch.Tensor:
        """One mask per box: (N, H, W) bool on the CPU; with ``union``, their union: (1, H, W).

        image: (H, W, 3) float in [0, 1] (one image of a ComfyUI IMAGE batch); boxes: (N, 4) pixel
        xyxy in that image's coordinates. The image is quantised to uint8 and resized by the
        predictor's own transform, as the reference's `set_image` does. With reduced-precision
        weights the model runs under autocast, because the predictors build some inputs in
        float32 (positional-encoding grids, the empty sparse prompt, SAM 2's input image) that
        would otherwise meet half-precision weights. ``interrupt`` is called between decoder calls
        (it raises to stop).
        """
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"SAM needs one (H, W, 3) image, got shape {tuple(image.shape)}")
        boxes = torch.as_tensor(boxes, dtype=torch.float32)
        if boxes.ndim != 2 or boxes.shape[-1] != 4:
            raise ValueError(f"SAM boxes must be (N, 4) pixel xyxy, got shape {tuple(boxes.shape)}")
        height, width = int(image.shape[0]), int(image.shape[1])
        if len(boxes) == 0:
            return torch.zeros(0 if not union else 1, height, width, dtype=torch.bool)

        weight = next(self.sam.parameters())
        device, dtype = weight.device, weight.dtype
        predictor = self.steps.predictor(self.sam)
        pixels = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
        per_call = max(1, min(self.decoder_batch, self.decoder_bytes // (4 * height * width)))
        masks, merged = [], torch.zeros(1, height, width, dtype=torch.bool) if union else None
        with torch.inference_mode(), autocast:
            self._set_image(predictor, pixels, device, dtype)
            prompt = self.steps.prompt(predictor, boxes, (height, width))
            for chunk in prompt.split(per_call):
                if interrupt is not None:
                    interrupt()
                found = self.steps.masks(predictor, chunk).cpu()
                if union:
                    merged |= found.any(0, keepdim=True)
                else:
                    masks.append(found)
        return merged if union else torch.cat(masks)


__all__ = [
    "SamArchitecture",
    "SamLoadError",
    "SamModel",
    "SamPredictorSteps",
    "load_sam",
    "looks_like",
    "sam_architecture",
    "segmenter_kind",
]
