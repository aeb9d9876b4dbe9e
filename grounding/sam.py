"""Segment Anything (SAM) from the original checkpoint files, for box-prompted masks.

Users have Meta's original files (`sam_vit_h_4b8939.pth`, `sam_vit_l_0b3195.pth`,
`sam_vit_b_01ec64.pth`, or `.safetensors` conversions with the same keys) in ComfyUI's
`models/sams` folder. The file names are often changed, so the architecture is read from the
state dict itself and the model is built with `segment_anything`'s own builder, then loaded
strictly: a file that is not a SAM checkpoint fails here with a message that says so, instead of
producing garbage masks later.

Masks are made as Grounded-InstructPix2Pix makes them (arthur-71/Grounded-Instruct-Pix2Pix,
`external_mask_extractor.py:90-95`): the image is embedded once by SAM's `set_image` path (uint8
RGB, ResizeLongestSide to 1024), every box is decoded in one batched call with
`multimask_output=False`, and the logits are thresholded at SAM's default 0.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint_files import CheckpointFileError, ModelFileError, read_state_dict

SAMS_FOLDER_HINT = "an original Segment Anything checkpoint (e.g. sam_vit_h_4b8939.pth) in ComfyUI's models/sams folder"

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

# Keys that only the HQ-SAM fork's mask decoder has.
_HQ_SAM_MARKERS = (
    "mask_decoder.hf_token",
    "mask_decoder.hf_mlp",
    "mask_decoder.compress_vit_feat",
    "mask_decoder.embedding_encoder",
    "mask_decoder.embedding_maskfeature",
)
_PATCH_KEY = "image_encoder.patch_embed.proj.weight"


class SamLoadError(ModelFileError, ValueError):
    """The file is not a SAM checkpoint this loader can build (the message says why and what to use)."""


def _not_sam(name: str, reason: str) -> SamLoadError:
    return SamLoadError(f"{name}: {reason}; it should be {SAMS_FOLDER_HINT}.")


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
        raise _not_sam(name, f"no SAM image encoder ({_PATCH_KEY})")
    embed_dim = int(patch.shape[0])
    if tuple(patch.shape[1:]) != (3, _PATCH_SIZE, _PATCH_SIZE):
        raise _not_sam(
            name,
            f"its encoder takes {tuple(patch.shape[1:])} patches, but segment_anything "
            f"builds (3, {_PATCH_SIZE}, {_PATCH_SIZE}) patches",
        )
    blocks = sorted({int(k.split(".")[2]) for k in state_dict if k.startswith("image_encoder.blocks.")})
    if not blocks or blocks != list(range(len(blocks))):
        raise _not_sam(name, "its image encoder blocks are missing or not numbered 0..N-1")
    global_blocks, head_dims = [], set()
    for i in blocks:
        rel_pos = state_dict.get(f"image_encoder.blocks.{i}.attn.rel_pos_h")
        if rel_pos is None or rel_pos.ndim != 2:
            raise _not_sam(name, f"encoder block {i} has no relative-position table")
        if rel_pos.shape[0] == _GLOBAL_REL_POS:
            global_blocks.append(i)
        elif rel_pos.shape[0] != _WINDOW_REL_POS:
            raise _not_sam(
                name,
                f"encoder block {i} has a {rel_pos.shape[0]}-row relative-position table "
                f"(SAM has {_GLOBAL_REL_POS} for global, {_WINDOW_REL_POS} for windowed blocks)",
            )
        head_dims.add(int(rel_pos.shape[1]))
    if len(head_dims) != 1 or embed_dim % next(iter(head_dims)):
        raise _not_sam(name, f"attention head widths {sorted(head_dims)} do not fit embed dim {embed_dim}")
    return SamArchitecture(embed_dim, len(blocks), embed_dim // head_dims.pop(), tuple(global_blocks))


def _read_state_dict(path: Path) -> dict:
    """The file's tensors by name (`checkpoint_files.read_state_dict`: nothing in it is run)."""
    if not path.is_file():
        raise _not_sam(str(path), "no such file")
    try:
        return read_state_dict(path)
    except CheckpointFileError as exc:  # truncated files, pickles with code in them, TorchScript, ...
        raise _not_sam(path.name, exc.reason) from exc


def load_sam(path) -> "SamModel":
    """SAM from an original checkpoint (`.pth`/`.pt` state dict or `.safetensors`), on the CPU in float32.

    Raises SamLoadError, naming the file, for anything else: a GroundingDINO or Stable Diffusion
    checkpoint, a truncated download, an HQ-SAM file (its extra decoder is not supported yet).
    """
    from segment_anything.build_sam import _build_sam

    path = Path(path)
    state_dict = _read_state_dict(path)
    if any(k.startswith(_HQ_SAM_MARKERS) for k in state_dict):
        raise _not_sam(path.name, "this is an HQ-SAM checkpoint, and HQ-SAM is not supported yet")
    arch = sam_architecture(state_dict, path.name)
    sam = _build_sam(arch.embed_dim, arch.depth, arch.num_heads, list(arch.global_attn_indexes), checkpoint=None)
    try:
        sam.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise _not_sam(
            path.name,
            f"its weights do not fit the SAM {arch.variant} architecture read from their shapes ({detail[:300]})",
        ) from exc
    return SamModel(sam.eval(), arch.variant)


class SamModel(torch.nn.Module):
    """A loaded SAM and its box-to-mask call.

    An nn.Module so that ComfyUI's ModelPatcher can move or cast it: the device and dtype are read
    from the weights at every call. `encoder_passes` counts image embeddings (the expensive part:
    one per image, whatever the number of boxes).

    The last image's embedding is kept (4 MiB for every SAM size), keyed by its uint8 pixels and
    the weights' device and dtype: an artist who changes the instruction on the same photo gets new
    boxes, and SAM Mask runs again, but the image encoder does not. `forget_image()` drops it.
    """

    def __init__(self, sam, variant: str):
        super().__init__()
        self.sam = sam
        self.variant = variant
        self.encoder_passes = 0
        # Boxes per decoder call: each box's mask is upsampled to full resolution in float before
        # thresholding, so hundreds of boxes at once (a low box threshold) would need gigabytes;
        # on a large photo fewer boxes go in each call (decoder_bytes of full-size masks at most).
        self.decoder_batch = 32
        self.decoder_bytes = 1 << 30
        self._embedding: tuple | None = None  # (key, features, input_size, original_size)

    def forget_image(self) -> None:
        self._embedding = None

    def _set_image(self, predictor, pixels, device, dtype) -> None:
        """The predictor's image embedding: the kept one when the pixels match, else a new one."""
        height, width = pixels.shape[:2]
        key = (pixels.shape, hashlib.blake2b(pixels.tobytes(), digest_size=16).digest(), str(device), dtype)
        if self._embedding is not None and self._embedding[0] == key:
            _, predictor.features, predictor.input_size, predictor.original_size = self._embedding
            predictor.is_image_set = True
            return
        resized = torch.from_numpy(predictor.transform.apply_image(pixels))
        resized = resized.to(device=device, dtype=dtype).permute(2, 0, 1).unsqueeze(0).contiguous()
        predictor.set_torch_image(resized, (height, width))
        self.encoder_passes += 1
        self._embedding = (key, predictor.features, predictor.input_size, predictor.original_size)

    def segment(self, image: torch.Tensor, boxes: torch.Tensor, union: bool = False, interrupt=None) -> torch.Tensor:
        """One mask per box: (N, H, W) bool on the CPU; with ``union``, their union: (1, H, W).

        image: (H, W, 3) float in [0, 1] (one image of a ComfyUI IMAGE batch); boxes: (N, 4) pixel
        xyxy in that image's coordinates. The image is quantised to uint8 and resized by SAM's
        own ResizeLongestSide (PIL), as the reference's `set_image` does. With reduced-precision
        weights the model runs under autocast, because segment_anything builds some inputs in
        float32 (its positional-encoding grid, the empty sparse prompt) that would otherwise meet
        half-precision weights. ``interrupt`` is called between decoder calls (it raises to stop).
        """
        from segment_anything import SamPredictor

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
        predictor = SamPredictor(self.sam)
        pixels = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
        per_call = max(1, min(self.decoder_batch, self.decoder_bytes // (4 * height * width)))
        masks, merged = [], torch.zeros(1, height, width, dtype=torch.bool) if union else None
        with torch.inference_mode(), autocast:
            self._set_image(predictor, pixels, device, dtype)
            prompt = predictor.transform.apply_boxes_torch(boxes, (height, width)).to(device)
            for chunk in prompt.split(per_call):
                if interrupt is not None:
                    interrupt()
                found = predictor.predict_torch(None, None, boxes=chunk, multimask_output=False)[0][:, 0].cpu()
                if union:
                    merged |= found.any(0, keepdim=True)
                else:
                    masks.append(found)
        return merged if union else torch.cat(masks)


__all__ = ["SamArchitecture", "SamLoadError", "SamModel", "load_sam", "sam_architecture"]
