"""Mask operations of the grounding chain, in plain torch (no OpenCV).

The reference (GIP2P / GGIP2P mask extractors, docs/method.md §1.5, §2.7, §2.8) merges SAM's masks
by summing and clipping to 1, grows the result with `cv2.dilate` and an 11x11 all-ones kernel (one
iteration, no blur), uses a filled rectangle for the "add" path and a half-image mask when only a
direction is known. These functions reproduce those steps; `feather` is an optional extra the
reference does not have.

Masks are float in [0, 1] with 1 = editable, shaped (H, W) or (..., H, W) like ComfyUI's MASK.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

DIRECTIONS = ("left", "right", "top", "bottom")


def _as_planes(mask: torch.Tensor) -> torch.Tensor:
    """(..., H, W) -> (N, 1, H, W) float32, for the 2-D pooling and convolution ops."""
    if mask.ndim < 2:
        raise ValueError(f"a mask needs at least 2 dimensions (H, W), got shape {tuple(mask.shape)}")
    return mask.reshape(-1, 1, *mask.shape[-2:]).float()


def union(masks: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """(N, H, W) masks (bool or [0, 1]) -> one (H, W) float32 mask: the pixelwise max, which for SAM's
    binary masks equals the reference's sum clipped to 1. All zeros when N == 0 (no box)."""
    height, width = int(image_size[0]), int(image_size[1])
    if len(masks) == 0:
        return torch.zeros(height, width, device=masks.device)
    if tuple(masks.shape[-2:]) != (height, width):
        raise ValueError(f"masks of size {tuple(masks.shape[-2:])} do not fit a {(height, width)} image")
    return masks.float().amax(0).clamp(0, 1)


def dilate(mask: torch.Tensor, size: int) -> torch.Tensor:
    """Grow a mask as `cv2.dilate(mask, np.ones((size, size)))` does (one iteration): each output
    pixel is the max over a size x size square. Same shape and dtype as the input.

    The kernel anchor is OpenCV's default, the kernel centre (size // 2): for an odd size the square
    is centred; for an even size each output pixel reads size // 2 pixels up/left and
    size // 2 - 1 down/right, so a single pixel grows by size // 2 - 1 up/left and size // 2
    down/right (checked against OpenCV 5.0). Outside the image counts as "nothing" (OpenCV's default
    border for dilation), so the image size never changes. size 0 or 1 returns the mask unchanged.
    """
    if size < 0:
        raise ValueError(f"dilation size must be >= 0, got {size}")
    if size <= 1 or mask.numel() == 0:
        return mask
    before, after = size // 2, size - 1 - size // 2
    planes = F.pad(_as_planes(mask), (before, after, before, after), value=float("-inf"))
    return F.max_pool2d(planes, size, stride=1).reshape(mask.shape).to(mask.dtype)


def feather(mask: torch.Tensor, radius: float) -> torch.Tensor:
    """Soften the mask edge with a Gaussian blur of sigma = radius / 2, so the ramp spans about
    `radius` pixels on each side of the edge (2 sigma: ~2% and ~98% there). Edges are replicated, so
    a mask touching the image border stays full there. Result in [0, 1], float (the input's float
    dtype, or float32). radius 0 returns the mask unchanged.
    """
    if radius < 0:
        raise ValueError(f"feather radius must be >= 0, got {radius}")
    if radius == 0 or mask.numel() == 0:
        return mask
    sigma = radius / 2
    reach = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-reach, reach + 1, dtype=torch.float32, device=mask.device)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    planes = _as_planes(mask)
    planes = F.conv2d(F.pad(planes, (reach, reach, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    planes = F.conv2d(F.pad(planes, (0, 0, reach, reach), mode="replicate"), kernel.view(1, 1, -1, 1))
    dtype = mask.dtype if mask.is_floating_point() else torch.float32
    return planes.clamp(0, 1).reshape(mask.shape).to(dtype)


def rectangle(image_size: tuple[int, int], box) -> torch.Tensor:
    """(H, W) float32 mask, 1 inside the pixel xyxy box clipped to the image.

    Corners are clamped to the image, then floored, as the reference's `int()` on its clipped box:
    pixel columns x1..x2-1 and rows y1..y2-1 are set. An empty or outside box gives all zeros.
    """
    height, width = int(image_size[0]), int(image_size[1])
    x1, y1, x2, y2 = (float(v) for v in box)
    left, right = (math.floor(min(max(x, 0.0), width)) for x in (x1, x2))
    top, bottom = (math.floor(min(max(y, 0.0), height)) for y in (y1, y2))
    mask = torch.zeros(height, width)
    mask[top:bottom, left:right] = 1.0
    return mask


def half(image_size: tuple[int, int], direction: str) -> torch.Tensor:
    """(H, W) float32 mask of one half of the image, GGIP2P's fallback when the instruction gives a
    direction but no object ("add a sunset at the top"). The split is at W // 2 (or H // 2), as in
    the reference: for odd sizes the middle column (row) belongs to the right (bottom) half."""
    height, width = int(image_size[0]), int(image_size[1])
    mask = torch.zeros(height, width)
    if direction == "left":
        mask[:, : width // 2] = 1.0
    elif direction == "right":
        mask[:, width // 2 :] = 1.0
    elif direction == "top":
        mask[: height // 2] = 1.0
    elif direction == "bottom":
        mask[height // 2 :] = 1.0
    else:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    return mask


__all__ = ["DIRECTIONS", "dilate", "feather", "half", "rectangle", "union"]
