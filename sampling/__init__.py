"""Sampling core of grounded-ip2p: plain PyTorch, no ComfyUI import."""

from .blending import (
    BACKGROUND_MODES,
    BackgroundBlender,
    ddim_invert,
    empty_mask_indices,
    latent_mask,
    window_bounds,
)

__all__ = [
    "BACKGROUND_MODES",
    "BackgroundBlender",
    "ddim_invert",
    "empty_mask_indices",
    "latent_mask",
    "window_bounds",
]
