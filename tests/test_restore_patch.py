"""Restore Background (Model Patch) in real ComfyUI, with core's sampler nodes and three model families.

SD1.5 InstructPix2Pix (EPS, concat latent), a 1-block Qwen-Image DiT (flow, 5-D latents, real
CFG) and a 1-double/1-single-block Flux DiT (flow, guidance-distilled), all random weights in the
real layouts. The flow models' text encoders are too large to build, so their conditioning is made
in-process (``edit_models``) with the source as ``reference_latents``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from . import edit_models

SIZE = 64  # pixels: 8x8 latents
NODE = "GroundedIP2P_RestoreBackground"
SAMPLERS = ["euler", "euler_ancestral", "dpmpp_2m"]  # plain, ancestral, multistep


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


def mask_for(size=SIZE, batch=1):
    mask = torch.zeros(batch, size, size)
    mask[:, 16:48, 8:40] = 1.0
    return mask


@pytest.fixture(scope="module")
def ip2p_case(comfy, ip2p_checkpoint):
    model, clip, vae = call(comfy, "CheckpointLoaderSimple", ckpt_name=ip2p_checkpoint)[:3]
    positive = call(comfy, "CLIPTextEncode", clip=clip, text="make the car purple")[0]
    negative = call(comfy, "CLIPTextEncode", clip=clip, text="")[0]
    image = torch.rand(1, SIZE, SIZE, 3, generator=torch.Generator().manual_seed(0))
    pos, mid, latent = call(comfy, "InstructPixToPixConditioning", positive=positive, negative=negative,
                            vae=vae, pixels=image)
    source = call(comfy, "VAEEncode", pixels=image, vae=vae)[0]["samples"]
    return Case("ip2p", model, pos, negative, source, latent["samples"], 7.5, ip2p_middle=mid)


@pytest.fixture(scope="module")
def qwen_case(comfy):
    from comfy.sd import load_diffusion_model

    model = load_diffusion_model(str(edit_models.qwen_image_dit()))
    source = torch.randn(1, 16, 1, SIZE // 8, SIZE // 8, generator=torch.Generator().manual_seed(1))
    # equal token counts, so cond and uncond share one batched call per step
    positive = edit_models.qwen_conditioning(source, seed=2, tokens=24)
    negative = edit_models.qwen_negative_conditioning(source, seed=3, tokens=24)
    return Case("qwen", model, positive, negative, source, torch.zeros(1, 16, SIZE // 8, SIZE // 8), 2.5)


@pytest.fixture(scope="module")
def flux_case(comfy):
    from comfy.sd import load_diffusion_model

    model = load_diffusion_model(str(edit_models.flux_dit()))
    source = torch.randn(1, 16, SIZE // 8, SIZE // 8, generator=torch.Generator().manual_seed(1))
    positive = edit_models.flux_conditioning(source, seed=2)
    return Case("flux", model, positive, edit_models.flux_negative_conditioning(source, seed=3), source,
                torch.zeros(1, 16, SIZE // 8, SIZE // 8), 1.0)


@pytest.fixture(params=["ip2p", "qwen", "flux"])
def case(request):
    return request.getfixturevalue(f"{request.param}_case")


def patch(comfy, case, mask, start_percent=0.5, end_percent=1.0, background="noised"):
    cls = comfy.node_class(NODE)
    return cls.execute(model=case.model, source={"samples": case.source}, mask=mask, start_percent=start_percent,
                       end_percent=end_percent, background=background).args[0]


def ksampler(comfy, case, model, sampler, steps=3, seed=5):
    out = call(comfy, "KSampler", model=model, seed=seed, steps=steps, cfg=case.cfg, sampler_name=sampler,
               scheduler="simple", positive=case.positive, negative=case.negative,
               latent_image={"samples": case.latent.clone()}, denoise=1.0)
    return out[0]["samples"]


def custom_advanced(comfy, case, model, sampler, steps=3, seed=5):
    if case.ip2p_middle is not None:
        guider = call(comfy, "DualCFGGuider", model=model, cond1=case.positive, cond2=case.ip2p_middle,
                      negative=case.negative, cfg_conds=case.cfg, cfg_cond2_negative=1.5, style="regular")[0]
    elif case.cfg == 1.0:
        guider = call(comfy, "BasicGuider", model=model, conditioning=case.positive)[0]
    else:
        guider = call(comfy, "CFGGuider", model=model, positive=case.positive, negative=case.negative,
                      cfg=case.cfg)[0]
    noise = call(comfy, "RandomNoise", noise_seed=seed)[0]
    sigmas = call(comfy, "BasicScheduler", model=model, scheduler="simple", steps=steps, denoise=1.0)[0]
    chosen = call(comfy, "KSamplerSelect", sampler_name=sampler)[0]
    out = call(comfy, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=chosen, sigmas=sigmas,
               latent_image={"samples": case.latent.clone()})
    return out[0]["samples"]


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
    mask = mask_for()
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
    cls = comfy.node_class(NODE)
    plain = ksampler(comfy, case, case.model, "euler", steps=2)
    for mask in (None, torch.ones(1, SIZE, SIZE)):
        model = cls.execute(model=case.model, source={"samples": case.source}, mask=mask, start_percent=0.5,
                            end_percent=1.0, background="noised").args[0]
        assert model is case.model
        assert torch.equal(ksampler(comfy, case, model, "euler", steps=2), plain)


def test_all_zero_mask_returns_the_source(comfy, case):
    out = ksampler(comfy, case, patch(comfy, case, torch.zeros(1, SIZE, SIZE)), "euler", steps=2)
    assert torch.equal(out.reshape(case.source.shape), case.source.float())


def test_inversion_restores_the_background(comfy, case):
    mask = mask_for()
    out = ksampler(comfy, case, patch(comfy, case, mask, background="inversion"), "dpmpp_2m")
    out = out.reshape(case.source.shape)
    outside, inside = regions(mask, out)
    diff = (out - case.source).abs()
    assert float(diff[outside].max()) <= 1e-3 and float(diff[inside].mean()) > 0


def test_mismatches_are_clear_errors(comfy, flux_case):
    case = flux_case
    with pytest.raises(ValueError, match="Restore Background.*2 masks for 1 images"):
        ksampler(comfy, case, patch(comfy, case, mask_for(batch=2)), "euler", steps=2)
    small = Case(**{**case.__dict__, "source": case.source[..., :4, :4]})
    with pytest.raises(ValueError, match=r"Restore Background.*source latent is 32x32 px.*sampler's latent is 64x64 px"):
        ksampler(comfy, case, patch(comfy, small, mask_for()), "euler", steps=2)
    with pytest.raises(ValueError, match="Restore Background.*start_percent <= end_percent"):
        patch(comfy, case, mask_for(), start_percent=0.9, end_percent=0.5)
    with pytest.raises(ValueError, match="Restore Background.*NaN or infinite"):
        patch(comfy, case, torch.full((1, SIZE, SIZE), float("nan")))
