"""Runs of the background restore for the sampler/scheduler matrix, shared by tests and bench.

``parts`` is ``(model, positive, negative, vae, image, source)``: an SD1.5-InstructPix2Pix
ModelPatcher, the CLIP conditionings, the VAE, a ``[1, SIZE, SIZE, 3]`` image and its VAE-encoded
latent (``source_latent``). ComfyUI must be imported
(tests: the ``comfy`` fixture; bench: ``ComfyHarness``) before these functions run.
"""

from __future__ import annotations

import sys

import torch

SIZE = 64  # pixels: an 8x8 latent


def edit_mask(size: int = SIZE) -> torch.Tensor:
    mask = torch.zeros(1, size, size)
    mask[:, 16:48, 8:40] = 1.0
    return mask


def _pack():
    """The pack's node modules as ComfyUI imported them."""
    import nodes

    sampler_module = sys.modules[nodes.NODE_CLASS_MAPPINGS["GroundedIP2P_BlendedSampler"].__module__]
    restore_module = sys.modules[nodes.NODE_CLASS_MAPPINGS["GroundedIP2P_RestoreBackground"].__module__]
    return sampler_module, restore_module


def background_figures(out: torch.Tensor, source: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """(max |out - src| where the resized mask is 0, mean outside / mean inside where it is 1)."""
    m = torch.nn.functional.interpolate(mask[:, None], size=out.shape[-2:], mode="bilinear", align_corners=False)
    m = m.expand_as(out)
    diff = (out.detach().float() - source.float()).abs()
    outside, inside = diff[m <= 1e-6], diff[m >= 1 - 1e-6]
    return float(outside.max()), float(outside.mean() / inside.mean())


def source_latent(vae, image: torch.Tensor) -> torch.Tensor:
    return vae.encode(image[..., :3])


def blended_run(parts, sampler, scheduler, steps, background, mask, start_t=100, end_t=1, seed=3):
    """IP2P Blended Sampler's function: (latent, source latent, info)."""
    model, positive, negative, vae, image, source = parts
    sampler_module, _ = _pack()
    latent, info = sampler_module.blended_sample(model, positive, negative, vae, image, mask, seed, steps, 7.5, 1.5,
                                                 sampler, scheduler, start_t, end_t, background)
    return latent["samples"], source, info


def native_run(parts, sampler, scheduler, steps, seed=3):
    """ComfyUI's own IP2P path: InstructPixToPixConditioning + Guider_DualCFG, KSampler's sigmas."""
    import comfy.sample
    import comfy.samplers
    from comfy_extras.nodes_custom_sampler import Guider_DualCFG
    from comfy_extras.nodes_ip2p import InstructPixToPixConditioning

    model, positive, negative, vae, image, _ = parts
    pos, mid, latent = InstructPixToPixConditioning.execute(positive, negative, image, vae).args
    latent = comfy.sample.fix_empty_latent_channels(model, latent["samples"])
    guider = Guider_DualCFG(model)
    guider.set_conds(pos, mid, negative)
    guider.set_cfg(7.5, 1.5)
    sigmas = comfy.samplers.KSampler(model, steps=steps, device=model.load_device, sampler=sampler,
                                     scheduler=scheduler, denoise=1.0).sigmas
    return guider.sample(comfy.sample.prepare_noise(latent, seed), latent, comfy.samplers.sampler_object(sampler),
                         sigmas, disable_pbar=True, seed=seed)


def patched_ksampler_run(parts, sampler, scheduler, steps, background, mask, seed=3):
    """Restore Background on the model, then core KSampler with InstructPixToPixConditioning's outputs."""
    import nodes
    from comfy_extras.nodes_ip2p import InstructPixToPixConditioning

    model, positive, negative, vae, image, source = parts
    _, restore_module = _pack()
    patched = restore_module.RestoreBackground.execute(model=model, source={"samples": source}, mask=mask,
                                                       start_percent=0.9, end_percent=1.0,
                                                       background=background).args[0]
    pos, _, latent = InstructPixToPixConditioning.execute(positive, negative, image, vae).args
    out = nodes.common_ksampler(patched, seed, steps, 7.5, sampler, scheduler, pos, negative, latent)[0]
    return out["samples"], source


class CapturedReports:
    """Collect the ``RestoreReport`` of every run inside the ``with`` block (bench diagnostics)."""

    def __enter__(self):
        _, restore_module = _pack()
        self._cls = restore_module.LateRestore
        self._original = self._cls._finish_report
        self.reports = []
        original, reports = self._original, self.reports

        def finish(restore, run):
            reports.append(run.report)
            return original(restore, run)

        self._cls._finish_report = finish
        return self

    def __exit__(self, *exc):
        self._cls._finish_report = self._original
        return False
