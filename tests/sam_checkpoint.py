"""Random-weight SAM checkpoints in the original file format (a plain `torch.save`d state dict).

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
