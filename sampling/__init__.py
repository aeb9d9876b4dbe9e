"""Sampling core of grounded-ip2p: plain PyTorch, no ComfyUI import."""

from .blending import (
    BACKGROUND_MODES,
    BackgroundBlender,
    Window,
    ddim_invert,
    empty_mask_indices,
    flow_levels,
    latent_mask,
    percent_bounds,
    percent_window,
    sd_timestep_sigma,
    timestep_window,
    ve_levels,
    window_bounds,
)

__all__ = [
    "BACKGROUND_MODES",
    "BackgroundBlender",
    "Window",
    "ddim_invert",
    "empty_mask_indices",
    "flow_levels",
    "latent_mask",
    "percent_bounds",
    "percent_window",
    "sd_timestep_sigma",
    "timestep_window",
    "ve_levels",
    "window_bounds",
]
