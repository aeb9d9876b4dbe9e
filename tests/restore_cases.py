"""Runs of the background restore for the sampler/scheduler matrix, shared by tests and bench.

``parts`` is ``(model, positive, negative, vae, image, source)``: an SD1.5-InstructPix2Pix
ModelPatcher, the CLIP conditionings, the VAE, a ``[1, SIZE, SIZE, 3]`` image and its VAE-encoded
latent (``source_latent``). ComfyUI must be imported
(tests: the ``comfy`` fixture; bench: ``ComfyHarness``) before these functions run.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch

SIZE = 64  # pixels: an 8x8 latent
RESTORE_NODE = "GroundedIP2P_RestoreBackground"


def edit_mask(size: int = SIZE, batch: int = 1) -> torch.Tensor:
    """1 (edit) on a block left of centre, 0 (keep) elsewhere."""
    mask = torch.zeros(batch, size, size)
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
    latent, info = sampler_module.blended_sample(
        model,
        positive,
        negative,
        vae,
        image,
        mask,
        seed,
        steps,
        7.5,
        1.5,
        sampler,
        scheduler,
        start_t,
        end_t,
        background,
    )
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
    sigmas = comfy.samplers.KSampler(
        model, steps=steps, device=model.load_device, sampler=sampler, scheduler=scheduler, denoise=1.0
    ).sigmas
    return guider.sample(
        comfy.sample.prepare_noise(latent, seed),
        latent,
        comfy.samplers.sampler_object(sampler),
        sigmas,
        disable_pbar=True,
        seed=seed,
    )


def patched_ksampler_run(parts, sampler, scheduler, steps, background, mask, seed=3):
    """Restore Background on the model, then core KSampler with InstructPixToPixConditioning's outputs."""
    from comfy_extras.nodes_ip2p import InstructPixToPixConditioning

    import nodes

    model, positive, negative, vae, image, source = parts
    _, restore_module = _pack()
    patched = restore_module.RestoreBackground.execute(
        model=model, source={"samples": source}, mask=mask, start_percent=0.9, end_percent=1.0, background=background
    ).args[0]
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


# -- edit models through core sampler nodes ----------------------------------------------------


def call(comfy, node_id, **inputs):
    """Run a node's function as ComfyUI does, for V1 (FUNCTION) and V3 (execute) nodes alike."""
    cls = comfy.node_class(node_id)
    if hasattr(cls, "FUNCTION"):
        return getattr(cls(), cls.FUNCTION)(**inputs)
    return cls.execute(**inputs).args


@dataclass
class Case:
    name: str
    model: object
    positive: list
    negative: list
    source: torch.Tensor  # the source latent, as VAE Encode gives it
    latent: torch.Tensor  # the latent to sample
    cfg: float
    ip2p_middle: list | None = None  # IP2P's second conditioning, for DualCFGGuider


def qwen_edit_case() -> "Case":
    """A 1-block Qwen-Image DiT with its conditioning (the source as reference latent), 5-D latents."""
    from comfy.sd import load_diffusion_model

    from . import edit_models

    model = load_diffusion_model(str(edit_models.qwen_image_dit()))
    source = torch.randn(1, 16, 1, SIZE // 8, SIZE // 8, generator=torch.Generator().manual_seed(1))
    # equal token counts, so cond and uncond share one batched call per step
    positive = edit_models.qwen_conditioning(source, seed=2, tokens=24)
    negative = edit_models.qwen_negative_conditioning(source, seed=3, tokens=24)
    return Case("qwen", model, positive, negative, source, torch.zeros(1, 16, SIZE // 8, SIZE // 8), 2.5)


def flux_edit_case() -> "Case":
    """A 1+1-block Flux DiT (Kontext layout) with its conditioning and guidance, CFG 1."""
    from comfy.sd import load_diffusion_model

    from . import edit_models

    model = load_diffusion_model(str(edit_models.flux_dit()))
    source = torch.randn(1, 16, SIZE // 8, SIZE // 8, generator=torch.Generator().manual_seed(1))
    positive = edit_models.flux_conditioning(source, seed=2)
    return Case(
        "flux",
        model,
        positive,
        edit_models.flux_negative_conditioning(source, seed=3),
        source,
        torch.zeros(1, 16, SIZE // 8, SIZE // 8),
        1.0,
    )


def ksampler(comfy, case, model, sampler, steps=3, seed=5):
    out = call(
        comfy,
        "KSampler",
        model=model,
        seed=seed,
        steps=steps,
        cfg=case.cfg,
        sampler_name=sampler,
        scheduler="simple",
        positive=case.positive,
        negative=case.negative,
        latent_image={"samples": case.latent.clone()},
        denoise=1.0,
    )
    return out[0]["samples"]


def custom_advanced(comfy, case, model, sampler, steps=3, seed=5):
    if case.ip2p_middle is not None:
        guider = call(
            comfy,
            "DualCFGGuider",
            model=model,
            cond1=case.positive,
            cond2=case.ip2p_middle,
            negative=case.negative,
            cfg_conds=case.cfg,
            cfg_cond2_negative=1.5,
            style="regular",
        )[0]
    elif case.cfg == 1.0:
        guider = call(comfy, "BasicGuider", model=model, conditioning=case.positive)[0]
    else:
        guider = call(comfy, "CFGGuider", model=model, positive=case.positive, negative=case.negative, cfg=case.cfg)[0]
    noise = call(comfy, "RandomNoise", noise_seed=seed)[0]
    sigmas = call(comfy, "BasicScheduler", model=model, scheduler="simple", steps=steps, denoise=1.0)[0]
    chosen = call(comfy, "KSamplerSelect", sampler_name=sampler)[0]
    out = call(
        comfy,
        "SamplerCustomAdvanced",
        noise=noise,
        guider=guider,
        sampler=chosen,
        sigmas=sigmas,
        latent_image={"samples": case.latent.clone()},
    )
    return out[0]["samples"]
