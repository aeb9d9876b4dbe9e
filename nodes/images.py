"""IMAGE/MASK conversions shared by the nodes."""

from __future__ import annotations

import torch


def rgb(image: torch.Tensor, node: str) -> torch.Tensor:
    """IMAGE batches from other nodes may be grayscale or RGBA, or a single (H, W, C) image:
    make them a (B, H, W, 3) batch."""
    if image.ndim == 3:
        image = image[None]
    if not torch.isfinite(image).all():
        raise ValueError(
            f"{node}: the image has NaN or infinite values. Check the node that made it "
            f"(a VAE decode in half precision can overflow); images are numbers from 0 to 1."
        )
    if image.shape[-1] == 1:
        return image.expand(*image.shape[:-1], 3)
    if image.shape[-1] == 4:
        return image[..., :3]
    if image.shape[-1] != 3:
        raise ValueError(f"{node}: the image has {image.shape[-1]} channels; expected 1 (gray), 3 (RGB) or 4 (RGBA)")
    return image
