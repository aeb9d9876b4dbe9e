"""Restore Background (Model Patch) in real ComfyUI, with core's sampler nodes and three model families.

SD1.5 InstructPix2Pix (EPS, concat latent), a 1-block Qwen-Image DiT (flow, 5-D latents, real
CFG) and a 1-double/1-single-block Flux DiT (flow, guidance-distilled), all random weights in the
real layouts. The flow models' text encoders are too large to build, so their conditioning is made
in-process (``edit_models``) with the source as ``reference_latents``.
"""

from __future__ import annotations

import pytest
import torch

from .restore_cases import (
    RESTORE_NODE,
    SIZE,
    Case,
    call,
    custom_advanced,
    edit_mask,
    flux_edit_case,
    ksampler,
    qwen_edit_case,
)

SAMPLERS = ["euler", "euler_ancestral", "dpmpp_2m"]  # plain, ancestral, multistep


@pytest.fixture(scope="module")
def ip2p_case(comfy, ip2p_checkpoint):
    model, clip, vae = call(comfy, "CheckpointLoaderSimple", ckpt_name=ip2p_checkpoint)[:3]
    positive = call(comfy, "CLIPTextEncode", clip=clip, text="make the car purple")[0]
    negative = call(comfy, "CLIPTextEncode", clip=clip, text="")[0]
    image = torch.rand(1, SIZE, SIZE, 3, generator=torch.Generator().manual_seed(0))
    pos, mid, latent = call(
        comfy, "InstructPixToPixConditioning", positive=positive, negative=negative, vae=vae, pixels=image
    )
    source = call(comfy, "VAEEncode", pixels=image, vae=vae)[0]["samples"]
    return Case("ip2p", model, pos, negative, source, latent["samples"], 7.5, ip2p_middle=mid)


@pytest.fixture(scope="module")
def qwen_case(comfy):
    return qwen_edit_case()


@pytest.fixture(scope="module")
def flux_case(comfy):
    return flux_edit_case()


@pytest.fixture(params=["ip2p", "qwen", "flux"])
def case(request):
    return request.getfixturevalue(f"{request.param}_case")


def patch(comfy, case, mask, start_percent=0.5, end_percent=1.0, background="noised"):
    cls = comfy.node_class(RESTORE_NODE)
    return cls.execute(
        model=case.model,
        source={"samples": case.source},
        mask=mask,
        start_percent=start_percent,
        end_percent=end_percent,
        background=background,
    ).args[0]


SAMPLER_NODES = {"KSampler": ksampler, "SamplerCustomAdvanced": custom_advanced}


def recorded(model, fn):
    """Run ``fn(clone)`` and return (output, every model call's (input, sigma))."""
    calls = []

    def wrapper(apply_model, args):
        calls.append((args["input"].clone(), float(args["timestep"].max())))
        return apply_model(args["input"], args["timestep"], **args["c"])

    clone = model.clone()
    clone.set_model_unet_function_wrapper(wrapper)
    return fn(clone), calls


def regions(mask, latent):
    m = torch.nn.functional.interpolate(mask[:, None], size=latent.shape[-2:], mode="bilinear", align_corners=False)
    m = m.reshape(m.shape[0], 1, *([1] * (latent.ndim - 4)), *latent.shape[-2:]).expand_as(latent)
    return m <= 1e-6, m >= 1 - 1e-6


@pytest.mark.parametrize("node", list(SAMPLER_NODES))
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_patch_restores_the_background_with_every_sampler_node(comfy, case, node, sampler):
    run = SAMPLER_NODES[node]
    mask = edit_mask()
    patched = patch(comfy, case, mask)
    plain_out, plain = recorded(case.model, lambda m: run(comfy, case, m, sampler))
    out, edited = recorded(patched, lambda m: run(comfy, case, m, sampler))
    ms = case.model.get_model_object("model_sampling")
    high = ms.percent_to_sigma(0.5)
    before = sum(s > high for _, s in plain)
    assert 0 < before < len(plain) == len(edited)
    for (x_a, s_a), (x_b, s_b) in zip(plain[:before], edited[:before]):  # untouched before the window
        assert s_a == s_b and torch.equal(x_a, x_b)

    # in the window the model sees the source at the call's noise level outside the mask
    noise = torch.randn(case.latent.shape, generator=torch.Generator().manual_seed(5))
    source_in = case.model.model.process_latent_in(case.source.float())
    if source_in.ndim == 5 and noise.ndim == 4:
        noise = noise[:, :, None]
    keep = regions(mask, source_in)[0]
    for x, sigma in edited[before:]:
        level = ms.noise_scaling(torch.tensor([sigma]), noise, source_in)
        x = x.reshape(-1, *level.shape[1:])  # cond and uncond are batched together
        for row in x:
            assert torch.allclose(row[None][keep], level[keep], atol=1e-4)

    # the output latent is the source outside the mask, and the edit is not
    out = out.reshape(case.source.shape[0], *case.source.shape[1:])
    outside, inside = regions(mask, out)
    diff = (out - case.source).abs()
    assert float(diff[outside].max()) <= 1e-3
    assert float(diff[outside].mean()) <= 0.05 * float(diff[inside].mean())
    assert not torch.equal(out, plain_out.reshape(out.shape))


def test_no_mask_or_all_ones_leaves_the_model_untouched(comfy, case):
    cls = comfy.node_class(RESTORE_NODE)
    plain = ksampler(comfy, case, case.model, "euler", steps=2)
    for mask in (None, torch.ones(1, SIZE, SIZE)):
        model = cls.execute(
            model=case.model,
            source={"samples": case.source},
            mask=mask,
            start_percent=0.5,
            end_percent=1.0,
            background="noised",
        ).args[0]
        assert model is case.model
        assert torch.equal(ksampler(comfy, case, model, "euler", steps=2), plain)


def test_all_zero_mask_returns_the_source(comfy, case):
    out = ksampler(comfy, case, patch(comfy, case, torch.zeros(1, SIZE, SIZE)), "euler", steps=2)
    assert torch.equal(out.reshape(case.source.shape), case.source.float())


def test_inversion_restores_the_background(comfy, case):
    mask = edit_mask()
    out = ksampler(comfy, case, patch(comfy, case, mask, background="inversion"), "dpmpp_2m")
    out = out.reshape(case.source.shape)
    outside, inside = regions(mask, out)
    diff = (out - case.source).abs()
    assert float(diff[outside].max()) <= 1e-3 and float(diff[inside].mean()) > 0


def test_mismatches_are_clear_errors(comfy, flux_case):
    case = flux_case
    with pytest.raises(ValueError, match="Restore Background.*2 masks for 1 images"):
        ksampler(comfy, case, patch(comfy, case, edit_mask(batch=2)), "euler", steps=2)
    small = Case(**{**case.__dict__, "source": case.source[..., :4, :4]})
    with pytest.raises(
        ValueError, match=r"Restore Background.*source latent is 32x32 px.*sampler's latent is 64x64 px"
    ):
        ksampler(comfy, case, patch(comfy, small, edit_mask()), "euler", steps=2)
    with pytest.raises(ValueError, match="Restore Background.*start_percent <= end_percent"):
        patch(comfy, case, edit_mask(), start_percent=0.9, end_percent=0.5)
    with pytest.raises(ValueError, match="Restore Background.*NaN or infinite"):
        patch(comfy, case, torch.full((1, SIZE, SIZE), float("nan")))
