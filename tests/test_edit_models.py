"""The random-weight edit models of tests/edit_models.py load in real ComfyUI as the flow models
they stand for, and sample with their conditioning through KSampler and SamplerCustomAdvanced."""

from __future__ import annotations

import pytest
import torch

from . import edit_models

LATENT = (8, 8)  # a 64x64 image
SEED = 0


class Qwen:
    build = staticmethod(edit_models.qwen_image_dit)
    model_class = "QwenImage"
    cfg = 2.5  # real CFG against a negative
    reference = (1, 16, 1, *LATENT)  # the Wan VAE's latent of one image
    sampled = (1, 16, 1, *LATENT)  # KSampler makes the 4-D empty latent 5-D

    @staticmethod
    def conditioning(ref):
        return edit_models.qwen_conditioning(ref, SEED), edit_models.qwen_negative_conditioning(ref, SEED + 1)


class Flux:
    build = staticmethod(edit_models.flux_dit)
    model_class = "Flux"
    cfg = 1.0  # guidance-distilled: FluxGuidance instead of CFG
    reference = (1, 16, *LATENT)
    sampled = (1, 16, *LATENT)

    @staticmethod
    def conditioning(ref):
        return edit_models.flux_conditioning(ref, SEED), edit_models.flux_negative_conditioning(ref, SEED)


KINDS = pytest.mark.parametrize("kind", [Qwen, Flux], ids=["qwen", "flux"])


@pytest.fixture(scope="module")
def models(comfy):
    from comfy.sd import load_diffusion_model

    loaded = {}

    def get(kind):
        if kind not in loaded:
            loaded[kind] = load_diffusion_model(str(kind.build()))
        return loaded[kind]

    return get


def run_node(comfy, name, *args):
    cls = comfy.node_class(name)
    return getattr(cls(), cls.FUNCTION)(*args)[0]


def inputs(kind):
    """An empty latent as EmptySD3LatentImage gives it, and the conditioning on a random reference."""
    empty = {"samples": torch.zeros(1, 16, *LATENT)}
    ref = torch.randn(kind.reference, generator=torch.Generator().manual_seed(SEED))
    return empty, *kind.conditioning(ref)


@KINDS
def test_loads_as_its_flow_model(models, kind):
    from comfy import model_base, model_sampling

    model = models(kind)
    assert type(model.model) is getattr(model_base, kind.model_class)
    assert isinstance(model.model.model_sampling, model_sampling.CONST)


@KINDS
def test_ksampler(comfy, models, kind):
    empty, positive, negative = inputs(kind)
    out = run_node(comfy, "KSampler", models(kind), SEED, 2, kind.cfg, "euler", "simple", positive, negative, empty, 1.0)
    assert out["samples"].shape == kind.sampled
    assert torch.isfinite(out["samples"]).all()


@KINDS
def test_sampler_custom_advanced(comfy, models, kind):
    model = models(kind)
    empty, positive, negative = inputs(kind)
    if kind.cfg == 1.0:
        guider = run_node(comfy, "BasicGuider", model, positive)
    else:
        guider = run_node(comfy, "CFGGuider", model, positive, negative, kind.cfg)
    noise = run_node(comfy, "RandomNoise", SEED)
    sampler = run_node(comfy, "KSamplerSelect", "euler")
    sigmas = run_node(comfy, "BasicScheduler", model, "simple", 2, 1.0)
    out = run_node(comfy, "SamplerCustomAdvanced", noise, guider, sampler, sigmas, empty)
    assert out["samples"].shape == kind.sampled
    assert torch.isfinite(out["samples"]).all()
