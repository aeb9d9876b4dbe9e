"""Random-weight segmenter checkpoints in their released file formats.

SAM, HQ-SAM, MobileSAM and Light HQ-SAM files are plain `torch.save`d state dicts; SAM 2 files are
`{"model": state_dict}`, and their `.safetensors` repacks hold the same keys flat.

`vit_b` is the published ViT-B architecture (a ~375 MB file, the layout of Meta's
`sam_vit_b_01ec64.pth`); `tiny` is a small custom encoder (embed 64, depth 2, 2 heads, block 1
global) with the same file layout, fast enough to segment with in every test. Both carry the
realistic file name `sam_vit_b_01ec64.pth` so node tests can use it as users would; the loader
reads the architecture from the weights, never from the name. Keep one size per folder: an
existing file is reused as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

SAM_FILENAME = "sam_vit_b_01ec64.pth"
SIZES = {  # embed dim, depth, heads, global-attention blocks
    "tiny": (64, 2, 2, [1]),
    "vit_b": (768, 12, 12, [2, 5, 8, 11]),
    "vit_h": (1280, 32, 16, [7, 15, 23, 31]),  # for benchmarks (a ~2.5 GB file)
}
FILENAMES = {"vit_h": "sam_vit_h_4b8939.pth"}  # the published name of each size; SAM_FILENAME otherwise


def sam_state_dict(size: str = "tiny", seed: int = 0) -> dict[str, torch.Tensor]:
    """The state dict of a randomly initialised SAM of `size` (segment_anything's own init)."""
    from segment_anything.build_sam import _build_sam

    embed_dim, depth, heads, global_blocks = SIZES[size]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        sam = _build_sam(embed_dim, depth, heads, global_blocks, checkpoint=None)
        # SAM initialises its position tables to zero; random values make them count in the tests.
        for name, tensor in sam.state_dict().items():
            if name.endswith(("pos_embed", "rel_pos_h", "rel_pos_w")):
                tensor.normal_(0.0, 0.02)
    return {k: v.contiguous() for k, v in sam.state_dict().items()}


def sam_checkpoint(dest_dir, size: str = "tiny") -> Path:
    """`dest_dir/sam_vit_b_01ec64.pth` (ViT-H: `sam_vit_h_4b8939.pth`), built once (written
    atomically) and then reused."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    path = Path(dest_dir) / FILENAMES.get(size, SAM_FILENAME)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save(sam_state_dict(size), partial)
    os.replace(partial, path)
    return path


# The other segmenter formats users have, each written as its released file is.
HQ_FILENAME = "sam_hq_vit_b.pth"
MOBILE_FILENAME = "mobile_sam.pt"
LIGHT_HQ_FILENAME = "sam_hq_vit_tiny.pth"
SAM2_FILENAMES = {"2": "sam2_hiera_{}.pt", "2.1": "sam2.1_hiera_{}.pt"}
SAM2_SIZES = {"t": "tiny", "s": "small", "b+": "base_plus", "l": "large"}
# TinyViT stage widths, depths, heads and windows of a small MobileSAM-format encoder (its last
# stage stays 320 wide: only that keeps SAM's 64x64 grid).
TINY_VIT = ([16, 32, 32, 320], [1, 1, 1, 1], [1, 1, 1, 2], [7, 7, 14, 7])


def _random_positions(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict, with SAM's zero-initialised position tables made random so they count."""
    for name, tensor in model.state_dict().items():
        if name.endswith(("pos_embed", "rel_pos_h", "rel_pos_w", "pos_embed_window")):
            tensor.normal_(0.0, 0.02)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def _write_once(path: Path, build) -> Path:
    """`build()`'s object saved at `path` by torch.save, once (atomically); an existing file is reused."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        torch.save(build(), partial)
    os.replace(partial, path)
    return path


def hq_sam_state_dict(size: str = "tiny") -> dict[str, torch.Tensor]:
    """A random HQ-SAM (ViT encoder, HQ decoder) from segment_anything_hq's builder."""
    from grounded_ip2p.grounding.sam_hq import _build_hq_sam

    embed_dim, depth, heads, global_blocks = SIZES[size]
    return _random_positions(_build_hq_sam(embed_dim, depth, heads, global_blocks, checkpoint=None))


def hq_sam_checkpoint(dest_dir, size: str = "tiny") -> Path:
    """`dest_dir/sam_hq_vit_b.pth`: a plain state dict, as SysCV releases HQ-SAM."""
    return _write_once(Path(dest_dir) / HQ_FILENAME, lambda: hq_sam_state_dict(size))


def light_hq_sam_state_dict() -> dict[str, torch.Tensor]:
    """A random Light HQ-SAM at its published size (segment_anything_hq's `build_sam_vit_t`):
    MobileSAM's TinyViT and HQ-SAM's decoder."""
    from grounded_ip2p.grounding.sam_hq import segment_anything_hq

    return _random_positions(segment_anything_hq.sam_model_registry["vit_tiny"]())


def mobile_sam_state_dict(size: str = "tiny") -> dict[str, torch.Tensor]:
    """A random MobileSAM: "published" is Light HQ-SAM's model without HQ-SAM's decoder additions
    (the keys of `mobile_sam.pt`); "tiny" has the small TinyViT above (num_classes 1000, as
    MobileSAM's builder leaves TinyViT's classifier head in the file)."""
    from grounded_ip2p.grounding.sam import HQ_SAM_MARKERS
    from grounded_ip2p.grounding.sam_hq import tiny_vit_sam

    if size == "published":
        return {k: v for k, v in light_hq_sam_state_dict().items() if not k.startswith(HQ_SAM_MARKERS)}
    dims, depths, heads, windows = TINY_VIT
    sam = sam_with_encoder(
        tiny_vit_sam.TinyViT(
            img_size=1024, num_classes=1000, embed_dims=dims, depths=depths, num_heads=heads, window_sizes=windows
        )
    )
    for name, tensor in sam.state_dict().items():  # TinyViT starts its attention biases at zero
        if name.endswith("attention_biases"):
            tensor.normal_(0.0, 0.5)
    return _random_positions(sam)


def mobile_sam_checkpoint(dest_dir, size: str = "tiny") -> Path:
    """`dest_dir/mobile_sam.pt`: a plain state dict, as MobileSAM's `weights/mobile_sam.pt` is."""
    return _write_once(Path(dest_dir) / MOBILE_FILENAME, lambda: mobile_sam_state_dict(size))


def light_hq_sam_checkpoint(dest_dir) -> Path:
    return _write_once(Path(dest_dir) / LIGHT_HQ_FILENAME, light_hq_sam_state_dict)


def sam2_config(version: str = "2.1", size: str = "t") -> str:
    folder = "sam2.1" if version == "2.1" else "sam2"
    return f"configs/{folder}/sam{version}_hiera_{size}.yaml"


def sam2_state_dict(version: str = "2.1", size: str = "t") -> dict[str, torch.Tensor]:
    """A random SAM 2 / 2.1 from the sam2 package's own builder and config."""
    from sam2.build_sam import build_sam2

    return _random_positions(build_sam2(sam2_config(version, size), ckpt_path=None, device="cpu"))


def sam2_checkpoint(dest_dir, version: str = "2.1", size: str = "t") -> Path:
    """`dest_dir/sam2.1_hiera_tiny.pt` (etc.): `{"model": state_dict}`, as Meta releases SAM 2."""
    path = Path(dest_dir) / SAM2_FILENAMES[version].format(SAM2_SIZES[size])
    return _write_once(path, lambda: {"model": sam2_state_dict(version, size)})


def sam2_safetensors(source: Path, dest: Path, dtype=torch.float16) -> Path:
    """The `.safetensors` repack of a SAM 2 file that users have in models/sam2: the same keys,
    flat, in half precision."""
    from safetensors.torch import save_file

    state_dict = torch.load(source, map_location="cpu", weights_only=True)["model"]
    save_file({k: v.to(dtype) if v.is_floating_point() else v for k, v in state_dict.items()}, str(dest))
    return dest


def structured_image() -> torch.Tensor:
    """A 48x80 (not square) image with some structure, as a ComfyUI IMAGE slice."""
    gen = torch.Generator().manual_seed(1)
    y, x = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 80), indexing="ij")
    base = torch.stack([x, y, (x * y) ** 0.5], -1)
    return (base + 0.1 * torch.rand(48, 80, 3, generator=gen)).clamp(0, 1)


def sam_with_encoder(image_encoder):
    """segment_anything's Sam around `image_encoder`, with SAM's published prompt encoder and mask
    decoder (what MobileSAM's builder assembles around its TinyViT)."""
    from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    return Sam(
        image_encoder=image_encoder,
        prompt_encoder=PromptEncoder(
            embed_dim=256, image_embedding_size=(64, 64), input_image_size=(1024, 1024), mask_in_chans=16
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
            transformer_dim=256,
        ),
    )
