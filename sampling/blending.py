"""Late-window background restoration for InstructPix2Pix sampling.

Grounded-InstructPix2Pix (reference §1.6-1.7) edits with InstructPix2Pix and, during the last
denoising steps only, puts the source image's latent back outside the edit mask (latent blending
from Blended Latent Diffusion). Early steps run untouched, so the edit is planned on the whole
image; the late restores keep every unmasked latent pixel of the source.

Everything here works in the sampler's space (k-diffusion, variance-exploding): a latent at noise
level ``sigma`` is ``x0 + sigma * eps`` and a denoiser maps ``(x, sigma)`` to a prediction of
``x0``. No ComfyUI import: the ComfyUI guider in ``nodes/`` feeds these functions.

Two ways to get the source latent at a step's noise level (``background``):

- ``inversion``: the source is DDIM-inverted with the instruction-conditioned model (CFG 1),
  as the reference does. Its latents are made consistent with what the model would have denoised,
  which hides the seam better. It costs one single-conditioning model call per step in the window.
- ``noised``: the source plus the run's own initial noise scaled to the step's sigma. No extra model
  call.

Deliberate differences from the reference (its known bugs, reference §1.7 caveats):
the inverted latents are stored at exactly the sampler's sigmas (no off-by-one levels), kept in the
sampler's VE scaling (the reference mixes VP and VE latents), every window step is restored (the
reference silently skips steps once its list runs out), and each restored step's prediction of the
clean latent is the source outside the mask, so the final output equals the source latent there.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

BACKGROUND_MODES = ("inversion", "noised")

#: Train timesteps of the SD/IP2P noise schedule.
NUM_TRAIN_TIMESTEPS = 1000

Denoiser = Callable[[torch.Tensor, float], torch.Tensor]


def window_bounds(start_t: float, end_t: float) -> tuple[float, float]:
    """Check a blending window and return it as inclusive ``(low, high)`` train timesteps.

    ``end_t`` of 1 (the reference's default: the lowest step of its DDIM grid) or 0 means
    "restore until the end of sampling", so the window also covers the last model call, whose
    timestep is 0 on ComfyUI's scale.
    """
    if not (0 <= end_t <= start_t <= NUM_TRAIN_TIMESTEPS - 1):
        raise ValueError(
            f"the blending window must satisfy 0 <= end_t <= start_t <= {NUM_TRAIN_TIMESTEPS - 1}; "
            f"got start_t={start_t}, end_t={end_t}. start_t is where restoring the background begins "
            f"(the noisier end, e.g. 100), end_t where it stops (e.g. 1 = the end of sampling)."
        )
    low = 0.0 if end_t <= 1 else float(end_t)
    return low, float(start_t)


def latent_mask(mask: torch.Tensor, latent_shape: Sequence[int]) -> torch.Tensor:
    """Resize an edit mask (1 = edit, 0 = keep) to a latent batch: ``[B, 1, h, w]`` in 0..1.

    Accepts ``[H, W]``, ``[N, H, W]`` or ``[N, 1, H, W]`` at any resolution. The resize is bilinear
    (``align_corners=False``) as in the reference, so mask edges stay soft. ``N`` must be 1 (one
    mask for the whole batch) or the latent batch size.
    """
    batch, _, height, width = latent_shape[:4]
    if mask.ndim == 2:
        mask = mask[None]
    if mask.ndim == 3:
        mask = mask[:, None]
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"a mask must be [H, W], [B, H, W] or [B, 1, H, W]; got shape {tuple(mask.shape)}")
    if mask.shape[0] not in (1, batch):
        raise ValueError(
            f"the mask batch has {mask.shape[0]} masks for {batch} images; give one mask for all "
            f"images or one per image"
        )
    mask = mask.float()
    if tuple(mask.shape[-2:]) != (height, width):
        mask = F.interpolate(mask, size=(height, width), mode="bilinear", align_corners=False)
    return mask.clamp(0.0, 1.0).expand(batch, 1, height, width).contiguous()


def empty_mask_indices(mask: torch.Tensor, eps: float = 1e-6) -> list[int]:
    """Indices of the masks in a ``[B, ...]`` batch that mark nothing to edit."""
    flat = mask.reshape(mask.shape[0], -1)
    return [i for i in range(flat.shape[0]) if float(flat[i].max()) <= eps]


def ddim_invert(denoise: Denoiser, x0: torch.Tensor, sigmas: Sequence[float], sigma_start: float) -> list[torch.Tensor]:
    """DDIM-invert the clean latent ``x0`` to each of the ascending noise levels ``sigmas``.

    The clean latent is treated as sitting at ``sigma_start`` (the schedule's smallest sigma), as
    the reference's first inverse step treats it at its lowest timestep. Each step is a
    deterministic DDIM step run backwards: from ``x`` at ``s``, ``eps = (x - D(x, s)) / s`` and
    the next latent is ``D(x, s) + s_next * eps``. One model call per returned level.
    """
    levels = [float(s) for s in sigmas]
    if any(b <= a for a, b in zip(levels, levels[1:])) or (levels and levels[0] <= 0):
        raise ValueError(f"inversion levels must be positive and strictly increasing, got {levels}")
    out: list[torch.Tensor] = []
    x, sigma = x0, float(sigma_start)
    for level in levels:
        if math.isclose(level, sigma, rel_tol=1e-6) and x is x0:
            out.append(x0)  # already at the first level: nothing to invert
            continue
        denoised = denoise(x, sigma)
        x = denoised + level * (x - denoised) / sigma
        sigma = level
        out.append(x)
    return out


class BackgroundBlender:
    """Restores the unmasked source in the model calls of a late timestep window.

    Per model call at noise level ``sigma`` inside the window the guider does::

        x_in     = blender.blend(x, blender.background(sigma))   # the model sees the source there
        denoised = blender.blend(model(x_in, sigma), blender.source)

    which is the reference's ``x <- m*x + (1-m)*background`` applied to what the model sees,
    plus the clean source as the prediction outside the mask. The sampler's step then lands on the
    source in the background, and the final output equals it there.

    ``source`` is the clean source latent and ``noise`` the run's unit initial noise, both in
    sampler space and shaped like the sampled batch; ``mask`` is ``[B, 1, h, w]`` (1 = edit).
    ``sigma_to_t`` maps a sigma to its train timestep (ComfyUI: ``model_sampling.timestep``).
    """

    def __init__(
        self,
        source: torch.Tensor,
        mask: torch.Tensor,
        *,
        start_t: float,
        end_t: float,
        mode: str,
        sigma_to_t: Callable[[float], float],
        noise: torch.Tensor | None = None,
    ):
        if mode not in BACKGROUND_MODES:
            raise ValueError(f"background must be one of {BACKGROUND_MODES}, got {mode!r}")
        if mode == "noised" and noise is None:
            raise ValueError("the 'noised' background needs the run's initial noise")
        if mask.shape[0] != source.shape[0] or mask.shape[-2:] != source.shape[-2:]:
            raise ValueError(f"mask {tuple(mask.shape)} does not fit the source latent {tuple(source.shape)}")
        self.source = source
        self.mask = mask.to(source)
        self.noise = noise
        self.mode = mode
        self.low, self.high = window_bounds(start_t, end_t)
        self.sigma_to_t = sigma_to_t
        self._timesteps: dict[float, float] = {}  # sigma -> timestep, so each sigma is mapped once
        self._levels: list[float] | None = None
        self._inverted: list[torch.Tensor] = []

    def active(self, sigma: float) -> bool:
        """Whether a model call at ``sigma`` lies in the window."""
        sigma = float(sigma)
        if sigma <= 0:
            return self.low <= 0
        t = self._timesteps.get(sigma)
        if t is None:
            t = self._timesteps[sigma] = float(self.sigma_to_t(sigma))
        return self.low <= t <= self.high

    def window_sigmas(self, schedule: Sequence[float]) -> list[float]:
        """The schedule's model-call sigmas inside the window, ascending."""
        return sorted({float(s) for s in schedule if float(s) > 0 and self.active(float(s))})

    def to(self, device, dtype=None) -> "BackgroundBlender":
        """Move the blender's tensors once, so the sampling loop copies nothing between devices."""
        self.source = self.source.to(device=device, dtype=dtype or self.source.dtype)
        self.mask = self.mask.to(self.source)
        if self.noise is not None:
            self.noise = self.noise.to(self.source)
        return self

    @property
    def prepared(self) -> bool:
        return self._levels is not None

    def prepare(self, schedule: Sequence[float], denoise: Denoiser | None, sigma_min: float) -> int:
        """Compute what ``background`` needs for this run; returns the model calls it spent.

        ``schedule`` is the run's sigma schedule; ``denoise`` the instruction-conditioned (CFG 1)
        denoiser used for the inversion; ``sigma_min`` the schedule's smallest possible sigma.
        """
        self._levels = self.window_sigmas(schedule)
        if self.mode != "inversion" or not self._levels:
            return 0
        if denoise is None:
            raise ValueError("the 'inversion' background needs a denoiser")
        start = min(float(sigma_min), self._levels[0])
        self._inverted = ddim_invert(denoise, self.source, self._levels, start)
        return sum(1 for x in self._inverted if x is not self.source)

    def background(self, sigma: float) -> torch.Tensor:
        """The source latent at noise level ``sigma``."""
        sigma = float(sigma)
        if self.mode == "noised" or not self._inverted:
            noise = self.noise if self.noise is not None else torch.zeros_like(self.source)
            return self.source + sigma * noise
        # A sampler may call the model between schedule sigmas (Heun, DPM-2, ...): rescale the
        # inverted latent of the nearest stored level to the requested sigma.
        log_sigma = math.log(max(sigma, 1e-12))
        j = min(range(len(self._levels)), key=lambda i: abs(math.log(self._levels[i]) - log_sigma))
        level, latent = self._levels[j], self._inverted[j]
        if math.isclose(level, sigma, rel_tol=1e-6):
            return latent
        return self.source + (sigma / level) * (latent - self.source)

    def blend(self, x: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        """``m * x + (1 - m) * background``: keep ``x`` where the mask edits."""
        return x * self.mask + background * (1.0 - self.mask)
