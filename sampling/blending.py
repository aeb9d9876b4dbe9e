"""Late-window background restoration, for any diffusion or flow model.

Grounded-InstructPix2Pix (docs/method.md, "latent blending") edits with the model and, during the
last denoising steps only, puts the source image's latent back outside the edit mask (latent
blending from Blended Latent Diffusion). Early steps run untouched, so the edit is planned on the
whole image; the late restores keep every unmasked latent pixel of the source.

Everything here works in the sampler's space. A latent at noise level ``sigma`` is
``signal(sigma) * x0 + noise(sigma) * eps``: ``(1, sigma)`` for EPS/V models (k-diffusion's
variance-exploding form, the default) and ``(1 - sigma, sigma)`` for flow models. A denoiser maps
``(x, sigma)`` to a prediction of ``x0``. No ComfyUI import: the adapters in ``nodes/`` feed these
functions with the model's own ``model_sampling``.

Two ways to get the source latent at a call's noise level (``background``):

- ``inversion``: the source is DDIM-inverted (for a flow model: the Euler inversion of its ODE)
  with the instruction-conditioned model at guidance 1, as the reference does. Its latents are
  consistent with what the model would have denoised, which hides the seam better. It costs one
  single-conditioning model call per schedule level in the window, except the lowest.
- ``noised``: the source plus the run's own initial noise scaled to the level. No extra model call.

Differences from the reference implementation, on purpose: the inverted latents are stored at
exactly the sampler's sigmas, kept in the sampler's scaling, every model call in the window is
restored, and each restored call's prediction of the clean latent is the source outside the mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

BACKGROUND_MODES = ("inversion", "noised")

#: Train timesteps of the SD/IP2P noise schedule.
NUM_TRAIN_TIMESTEPS = 1000

Denoiser = Callable[[torch.Tensor, float], torch.Tensor]
#: ``sigma -> (signal, noise)`` scales of a latent at that level: ``signal * x0 + noise * eps``.
NoiseLevels = Callable[[float], "tuple[float, float]"]


def ve_levels(sigma: float) -> tuple[float, float]:
    """EPS/V models in k-diffusion's form: ``x0 + sigma * eps``."""
    return 1.0, float(sigma)


def flow_levels(sigma: float) -> tuple[float, float]:
    """Rectified-flow models: ``(1 - sigma) * x0 + sigma * eps``."""
    return 1.0 - float(sigma), float(sigma)


@dataclass(frozen=True)
class Window:
    """The noise levels where the background is restored: ``low <= sigma <= high``.

    ``low`` 0 means "until the end of sampling": the window then also holds the last model call
    and the sampler's final latent, whose level is 0.
    """

    low: float
    high: float

    @property
    def to_end(self) -> bool:
        return self.low <= 0.0

    def contains(self, sigma: float) -> bool:
        sigma = float(sigma)
        if sigma <= 0.0:
            return self.to_end
        return self.low * (1 - 1e-6) <= sigma <= self.high * (1 + 1e-6)


def window_bounds(start_t: float, end_t: float) -> tuple[float, float]:
    """Check a window of train timesteps and return it as inclusive ``(low, high)`` timesteps.

    ``end_t`` of 1 (the reference's default: the lowest step of its DDIM grid) or 0 means
    "restore until the end of sampling".
    """
    if not (0 <= end_t <= start_t <= NUM_TRAIN_TIMESTEPS - 1):
        raise ValueError(
            f"the blending window must satisfy 0 <= end_t <= start_t <= {NUM_TRAIN_TIMESTEPS - 1}; "
            f"got start_t={start_t}, end_t={end_t}. start_t is where restoring the background begins "
            f"(the noisier end, e.g. 100), end_t where it stops (e.g. 1 = the end of sampling)."
        )
    low = 0.0 if end_t <= 1 else float(end_t)
    return low, float(start_t)


def sd_timestep_sigma(t: float) -> float:
    """The noise level of train timestep ``t`` on SD's schedule (scaled-linear betas 0.00085-0.012)."""
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, NUM_TRAIN_TIMESTEPS, dtype=torch.float64) ** 2
    alphas = torch.cumprod(1.0 - betas, 0)
    log_sigmas = (((1 - alphas) / alphas) ** 0.5).log()
    low = min(max(int(math.floor(t)), 0), NUM_TRAIN_TIMESTEPS - 1)
    high, w = min(low + 1, NUM_TRAIN_TIMESTEPS - 1), float(t) - low
    return float(((1 - w) * log_sigmas[low] + w * log_sigmas[high]).exp())


def timestep_window(start_t: float, end_t: float, t_to_sigma: Callable[[float], float]) -> Window:
    """A window given in train timesteps (IP2P's convention), as noise levels."""
    low_t, high_t = window_bounds(start_t, end_t)
    return Window(0.0 if low_t <= 0 else float(t_to_sigma(low_t)), float(t_to_sigma(high_t)))


def percent_bounds(start_percent: float, end_percent: float) -> None:
    """Check a window given in ComfyUI's percent-of-sampling convention (0 = start, 1 = end)."""
    ok = all(math.isfinite(p) for p in (start_percent, end_percent))
    if not ok or not (0.0 <= start_percent <= end_percent <= 1.0):
        raise ValueError(
            f"the restore window must satisfy 0 <= start_percent <= end_percent <= 1; got "
            f"start_percent={start_percent}, end_percent={end_percent}. start_percent is where "
            f"restoring begins (0.9 = the last 10% of sampling), end_percent where it stops "
            f"(1.0 = the end, so the background is exactly the source)."
        )


def percent_window(start_percent: float, end_percent: float, percent_to_sigma: Callable[[float], float]) -> Window:
    """A window in ComfyUI's percent convention, as noise levels of the model's own schedule."""
    percent_bounds(start_percent, end_percent)
    low = 0.0 if end_percent >= 1.0 else float(percent_to_sigma(end_percent))
    return Window(low, float(percent_to_sigma(start_percent)))


def latent_mask(mask: torch.Tensor, latent_shape: Sequence[int]) -> torch.Tensor:
    """Resize an edit mask (1 = edit, 0 = keep) to a latent batch, in 0..1.

    Accepts ``[H, W]``, ``[N, H, W]`` or ``[N, 1, H, W]`` at any resolution. ``latent_shape`` is
    ``[B, C, h, w]`` or, for video-style latents, ``[B, C, T, h, w]``; the result is
    ``[B, 1, h, w]`` or ``[B, 1, 1, h, w]``, broadcasting over channels (and frames). The resize
    is bilinear (``align_corners=False``) as in the reference, so mask edges stay soft. ``N``
    must be 1 (one mask for the whole batch) or the latent batch size.
    """
    batch, height, width = latent_shape[0], latent_shape[-2], latent_shape[-1]
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
    if not torch.isfinite(mask).all():
        raise ValueError("the mask has NaN or infinite values; masks must be numbers from 0 (keep) to 1 (edit)")
    if tuple(mask.shape[-2:]) != (height, width):
        mask = F.interpolate(mask, size=(height, width), mode="bilinear", align_corners=False)
    mask = mask.clamp(0.0, 1.0).expand(batch, 1, height, width)
    extra = (1,) * (len(latent_shape) - 4)
    return mask.reshape(batch, 1, *extra, height, width).contiguous()


def empty_mask_indices(mask: torch.Tensor, eps: float = 1e-6) -> list[int]:
    """Indices of the masks in a ``[B, ...]`` batch that mark nothing to edit."""
    flat = mask.reshape(mask.shape[0], -1)
    return [i for i in range(flat.shape[0]) if float(flat[i].max()) <= eps]


def noise_of(latent: torch.Tensor, x0: torch.Tensor, sigma: float, levels: NoiseLevels) -> torch.Tensor:
    """The ``eps`` with ``latent = signal(sigma) * x0 + noise(sigma) * eps``."""
    signal, noise = levels(sigma)
    return (latent - signal * x0) / noise


def at_level(x0: torch.Tensor, eps: torch.Tensor, sigma: float, levels: NoiseLevels) -> torch.Tensor:
    """``signal(sigma) * x0 + noise(sigma) * eps``."""
    signal, noise = levels(sigma)
    return x0 * signal + eps * noise


def ddim_invert(
    denoise: Denoiser, x0: torch.Tensor, sigmas: Sequence[float], sigma_start: float, levels: NoiseLevels = ve_levels
) -> list[torch.Tensor]:
    """DDIM-invert the clean latent ``x0`` to each of the ascending noise levels ``sigmas``.

    The clean latent is treated as sitting at ``sigma_start`` (the schedule's smallest sigma), as
    the reference's first inverse step treats it at its lowest timestep. Each step is a
    deterministic DDIM step run backwards: from ``x`` at ``s``, ``D = denoise(x, s)``, the noise
    ``eps`` that makes ``x`` a latent of ``D`` at ``s``, and the next latent is ``D`` at the next
    level with that noise (for a flow model this is the Euler step of its ODE, backwards). One
    model call per returned level.
    """
    targets = [float(s) for s in sigmas]
    if any(b <= a for a, b in zip(targets, targets[1:])) or (targets and targets[0] <= 0):
        raise ValueError(f"inversion levels must be positive and strictly increasing, got {targets}")
    out: list[torch.Tensor] = []
    x, sigma = x0, float(sigma_start)
    for level in targets:
        if math.isclose(level, sigma, rel_tol=1e-6) and x is x0:
            out.append(x0)  # already at the first level: nothing to invert
            continue
        denoised = denoise(x, sigma)
        x = at_level(denoised, noise_of(x, denoised, sigma, levels), level, levels)
        sigma = level
        out.append(x)
    return out


class BackgroundBlender:
    """Restores the unmasked source in the model calls of a late window.

    Per model call at noise level ``sigma`` inside the window the caller does::

        x_in     = blender.blend(x, blender.background(sigma))   # the model sees the source there
        denoised = blender.blend(model(x_in, sigma), blender.source)

    which is the reference's ``x <- m*x + (1-m)*background`` applied to what the model sees,
    plus the clean source as the prediction outside the mask. The sampler's step then lands on the
    source in the background. Samplers that combine several model calls into a step (multistep,
    adaptive, second-order) land there only approximately, so a window that runs to the end is
    closed by ``finish``, which puts the source back on the final latent.

    ``source`` is the clean source latent and ``noise`` the run's unit initial noise, both in
    sampler space and shaped like the sampled batch; ``mask`` is ``[B, 1, ...]`` (1 = edit).
    """

    def __init__(
        self,
        source: torch.Tensor,
        mask: torch.Tensor,
        *,
        window: Window,
        mode: str,
        noise: torch.Tensor | None = None,
        levels: NoiseLevels = ve_levels,
    ):
        if mode not in BACKGROUND_MODES:
            raise ValueError(f"background must be one of {BACKGROUND_MODES}, got {mode!r}")
        if mode == "noised" and noise is None:
            raise ValueError("the 'noised' background needs the run's initial noise")
        if mask.shape[0] != source.shape[0] or mask.shape[-2:] != source.shape[-2:]:
            raise ValueError(f"mask {tuple(mask.shape)} does not fit the source latent {tuple(source.shape)}")
        self.source = source
        self.mask = mask.to(source)
        self.keep = 1.0 - self.mask
        self.noise = noise
        self.mode = mode
        self.window = window
        self.levels = levels
        self._levels: list[float] | None = None
        self._inverted: list[torch.Tensor] = []

    def active(self, sigma: float) -> bool:
        """Whether a model call at ``sigma`` lies in the window."""
        return self.window.contains(sigma)

    def window_sigmas(self, schedule: Sequence[float]) -> list[float]:
        """The schedule's model-call sigmas inside the window, ascending."""
        return sorted({float(s) for s in schedule if float(s) > 0 and self.active(float(s))})

    def to(self, device, dtype=None) -> "BackgroundBlender":
        """Move the blender's tensors once, so the sampling loop copies nothing between devices."""
        self.source = self.source.to(device=device, dtype=dtype or self.source.dtype)
        self.mask = self.mask.to(self.source)
        self.keep = self.keep.to(self.source)
        if self.noise is not None:
            self.noise = self.noise.to(self.source)
        return self

    @property
    def prepared(self) -> bool:
        return self._levels is not None

    def prepare(self, schedule: Sequence[float], denoise: Denoiser | None, sigma_min: float) -> int:
        """Compute what ``background`` needs for this run; returns the model calls it spent.

        ``schedule`` is the run's sigma schedule; ``denoise`` the instruction-conditioned
        (guidance 1) denoiser used for the inversion; ``sigma_min`` the model's smallest sigma.
        """
        self._levels = self.window_sigmas(schedule)
        if self.mode != "inversion" or not self._levels:
            return 0
        if denoise is None:
            raise ValueError("the 'inversion' background needs a denoiser")
        start = min(float(sigma_min), self._levels[0])
        self._inverted = ddim_invert(denoise, self.source, self._levels, start, self.levels)
        return sum(1 for x in self._inverted if x is not self.source)

    def background(self, sigma: float) -> torch.Tensor:
        """The source latent at noise level ``sigma``."""
        sigma = float(sigma)
        if sigma <= 0:
            return self.source
        if self.mode == "noised" or not self._inverted:
            noise = self.noise if self.noise is not None else torch.zeros_like(self.source)
            return at_level(self.source, noise, sigma, self.levels)
        # A sampler may call the model between schedule sigmas (Heun, DPM-2, adaptive...): take the
        # noise of the nearest stored level and put the source at the requested sigma with it.
        log_sigma = math.log(max(sigma, 1e-12))
        j = min(range(len(self._levels)), key=lambda i: abs(math.log(self._levels[i]) - log_sigma))
        level, latent = self._levels[j], self._inverted[j]
        if math.isclose(level, sigma, rel_tol=1e-6):
            return latent
        return at_level(self.source, noise_of(latent, self.source, level, self.levels), sigma, self.levels)

    def blend(self, x: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        """``m * x + (1 - m) * background``: keep ``x`` where the mask edits."""
        return x * self.mask + background * self.keep

    def finish(
        self, final: torch.Tensor, sigma_last: float, to_output: Callable[[torch.Tensor], torch.Tensor] = lambda x: x
    ) -> torch.Tensor:
        """The sampler's final latent (at ``sigma_last``) with the source put back outside the mask.

        Only where the window holds ``sigma_last``; otherwise ``final`` unchanged. This is what
        makes the background exact for every sampler when the window runs to the end.
        ``to_output`` maps a sampler-space latent to the space ``final`` is in.
        """
        if not self.active(sigma_last):
            return final
        return self.blend(final, to_output(self.background(sigma_last)).to(final))
