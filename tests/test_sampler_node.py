"""IP2PBlendedSampler inside real ComfyUI, on a random-weight full-size SD1.5-InstructPix2Pix checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from .graphs import (
    blended,
    graph,
    latent_region_masks,
    native,
    relative_error,
    run_latent,
    with_encoded_source,
)

SIZE = 64  # pixels: an 8x8 latent keeps the full-size UNet cheap on CPU


@pytest.fixture(scope="module")
def source_image(comfy):
    """A test photo with an alpha channel: transparent (alpha 0) in the middle = the area to edit."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    rgb = np.stack([xx * 4, yy * 4, (xx + yy) * 2], -1) % 256 + rng.integers(0, 20, (SIZE, SIZE, 3))
    alpha = np.full((SIZE, SIZE), 255)
    alpha[16:48, 20:44] = 0
    rgba = np.concatenate([np.clip(rgb, 0, 255), alpha[..., None]], -1).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(comfy.work / "input" / "photo.png")
    return "photo.png"


@pytest.mark.parametrize("sampler", ["euler", "euler_ancestral", "dpmpp_2m"])
def test_without_mask_equals_native_ip2p(comfy, ip2p_checkpoint, source_image, sampler):
    base = graph(ip2p_checkpoint, source_image)
    ours = run_latent(comfy, {**base, **blended(sampler, 4, seed=7)})
    theirs = run_latent(comfy, {**base, **native(sampler, 4, seed=7)})
    assert ours.shape == theirs.shape == (1, 4, SIZE // 8, SIZE // 8)
    assert torch.isfinite(ours).all()
    assert relative_error(ours, theirs) <= 1e-5


def test_seed_changes_result(comfy, ip2p_checkpoint, source_image):
    base = graph(ip2p_checkpoint, source_image)
    a = run_latent(comfy, {**base, **blended("euler", 2, seed=1)})
    b = run_latent(comfy, {**base, **blended("euler", 2, seed=2)})
    assert relative_error(a, b) > 1e-3


# --- the masked edit -------------------------------------------------------------------------


@pytest.mark.parametrize("background", ["inversion", "noised"])
@pytest.mark.parametrize("sampler", ["euler", "euler_ancestral", "dpmpp_2m"])
def test_masked_output_keeps_source_outside_the_mask(comfy, ip2p_checkpoint, source_image, sampler, background):
    prompt = with_encoded_source(
        {**graph(ip2p_checkpoint, source_image), **blended(sampler, 6, seed=3, mask=True, background=background)}
    )
    results = comfy.run(prompt, capture=("out", "src"))
    out, src = comfy.output(results, "out")["samples"], comfy.output(results, "src")["samples"]
    outside, inside = latent_region_masks(comfy, results, out)
    assert outside.any() and inside.any()
    diff = (out - src).abs()
    ratio = float(diff[outside].mean() / diff[inside].mean())
    assert ratio <= 0.05, f"mean |out-src| outside is {ratio:.2%} of inside"


@pytest.fixture(scope="module")
def loaded(ip2p_loaded):
    return ip2p_loaded


def recorded_calls(model, fn):
    """Run ``fn(model_clone)`` and return every UNet call's (input, sigma, branches)."""
    calls = []

    def wrapper(apply_model, args):
        calls.append((args["input"].clone(), args["timestep"].clone(), tuple(args["cond_or_uncond"])))
        return apply_model(args["input"], args["timestep"], **args["c"])

    patched = model.clone()
    patched.set_model_unet_function_wrapper(wrapper)
    fn(patched)
    return calls


def test_before_the_window_every_model_call_matches_the_unmasked_run(comfy, loaded):
    model, positive, negative, vae = loaded
    sample = comfy.pack_module().blended_sample
    image = torch.rand(1, SIZE, SIZE, 3, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, SIZE, SIZE)
    mask[:, 8:40, 16:48] = 1.0
    ms = model.get_model_object("model_sampling")
    for background in ("inversion", "noised"):

        def run(m, masked):
            sample(
                m,
                positive,
                negative,
                vae,
                image,
                mask if masked else None,
                5,
                8,
                7.5,
                1.5,
                "euler_ancestral",
                "normal",
                400,
                1,
                background,
            )

        plain = recorded_calls(model, lambda m: run(m, False))
        edited = recorded_calls(model, lambda m: run(m, True))
        t_of = [float(ms.timestep(s[:1]).item()) for _, s, _ in plain]
        before = sum(t > 400 for t in t_of)
        assert 0 < before < len(plain)
        for (x_a, s_a, b_a), (x_b, s_b, b_b) in zip(plain[:before], edited[:before]):
            assert b_a == b_b and torch.equal(s_a, s_b) and torch.equal(x_a, x_b)
        # inside the window the model sees the source: the inputs differ from the unmasked run
        window = [c for c in edited[before:] if len(c[2]) == 3]
        assert len(window) == len(plain) - before
        assert all(not torch.equal(x, p[0]) for (x, _, _), p in zip(window, plain[before:]))
        # inversion spends one instruction-only call per window level (except the lowest); noised none
        extra = [c for c in edited if c[2] == (0,)]
        assert len(extra) == (len(window) - 1 if background == "inversion" else 0)


def test_empty_mask_returns_the_source_unchanged(comfy, ip2p_checkpoint, source_image, caplog):
    # An RGB photo through LoadImage gives an all-zero mask: nothing marked, so nothing edited
    # (ComfyUI's own masks mean the same), and the log says how to get a whole-image edit.
    Image.open(comfy.work / "input" / source_image).convert("RGB").save(comfy.work / "input" / "opaque.png")
    base = graph(ip2p_checkpoint, "opaque.png")
    base["enc"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["img", 0], "vae": ["ckpt", 2]}}
    prompt = {**base, **blended("euler", 3, seed=5, mask=True)}
    masked = run_latent(comfy, prompt)
    source = comfy.output(comfy.run(base, capture=("enc",)), "enc")["samples"]
    assert torch.equal(masked, source)
    assert any("empty" in r.getMessage() and "unchanged" in r.getMessage() for r in caplog.records)


def test_image_batch_with_one_mask_and_with_a_mask_per_image(comfy, ip2p_checkpoint, source_image):
    base = graph(ip2p_checkpoint, source_image)
    base["batch"] = {"class_type": "RepeatImageBatch", "inputs": {"image": ["img", 0], "amount": 2}}
    base["masks"] = {"class_type": "RepeatLatentBatch", "inputs": {"samples": ["img", 1], "amount": 2}}
    prompt = {**base, **blended("euler", 3, seed=1, mask=True)}
    prompt["out"]["inputs"]["image"] = ["batch", 0]
    assert run_latent(comfy, prompt).shape[0] == 2
    prompt["mask_rgb"] = {"class_type": "ImageToMask", "inputs": {"image": ["batch", 0], "channel": "red"}}
    prompt["out"]["inputs"]["mask"] = ["mask_rgb", 0]
    assert run_latent(comfy, prompt).shape[0] == 2
    prompt["three"] = {"class_type": "RepeatImageBatch", "inputs": {"image": ["img", 0], "amount": 3}}
    prompt["mask_rgb"]["inputs"]["image"] = ["three", 0]
    with pytest.raises(Exception, match="IP2PBlendedSampler.*3 masks for 2 images"):
        run_latent(comfy, prompt)


def test_bad_window_is_a_clear_error(comfy, ip2p_checkpoint, source_image):
    prompt = {**graph(ip2p_checkpoint, source_image), **blended("euler", 2, seed=0, mask=True, start_t=50, end_t=200)}
    with pytest.raises(Exception, match="IP2PBlendedSampler.*end_t <= start_t"):
        run_latent(comfy, prompt)


def test_a_model_that_is_not_ip2p_is_a_clear_error(comfy, loaded, ip2p_checkpoint):
    import comfy.sd as comfy_sd
    import comfy.utils as comfy_utils

    sd = comfy_utils.load_torch_file(str(comfy.folder_paths.get_full_path("checkpoints", ip2p_checkpoint)))
    key = "model.diffusion_model.input_blocks.0.0.weight"
    sd[key] = sd[key][:, :4].contiguous()  # a plain SD1.5 UNet
    sd15 = comfy_sd.load_state_dict_guess_config(sd, output_vae=False, output_clip=False)[0]
    _, positive, negative, vae = loaded
    with pytest.raises(
        ValueError, match="IP2PBlendedSampler: the model is not an InstructPix2Pix model .*4 input channels"
    ):
        comfy.pack_module().blended_sample(
            sd15,
            positive,
            negative,
            vae,
            torch.rand(1, SIZE, SIZE, 3),
            None,
            0,
            2,
            7.5,
            1.5,
            "euler",
            "normal",
            100,
            1,
            "noised",
        )


@pytest.mark.parametrize("channels", [1, 4])
def test_odd_sizes_gray_and_rgba_images(comfy, loaded, channels):
    model, positive, negative, vae = loaded
    image = torch.rand(1, 61, 75, channels)
    mask = torch.zeros(1, 30, 30)
    mask[:, 5:20, 5:20] = 1
    out, _ = comfy.pack_module().blended_sample(
        model, positive, negative, vae, image, mask, 0, 2, 7.5, 1.5, "euler", "normal", 999, 1, "noised"
    )
    assert out["samples"].shape == (1, 4, 61 // 8, 75 // 8)
    assert torch.isfinite(out["samples"]).all()


def test_cancel_mid_run_leaves_comfy_usable(comfy, ip2p_checkpoint, source_image):
    import comfy.model_management as mm

    prompt = {**graph(ip2p_checkpoint, source_image), **blended("euler", 6, seed=9, mask=True)}
    comfy.on_progress = lambda value, total: mm.interrupt_current_processing(True) if value == 2 else None
    try:
        with pytest.raises(Exception, match="execution_interrupted"):
            run_latent(comfy, prompt)
        assert max(v for v, _ in comfy.progress) < 6
    finally:
        comfy.on_progress = None
    out = run_latent(comfy, prompt)
    assert out.shape == (1, 4, SIZE // 8, SIZE // 8)
    assert comfy.progress[-1] == (6, 6)


@pytest.mark.parametrize("sampler", ["heun", "dpmpp_2s_ancestral", "ddim", "uni_pc", "lcm"])
def test_other_samplers_work_with_a_mask(comfy, ip2p_checkpoint, source_image, sampler):
    prompt = with_encoded_source(
        {
            **graph(ip2p_checkpoint, source_image),
            **blended(sampler, 4, seed=2, mask=True, background="inversion", start_t=600),
        }
    )
    results = comfy.run(prompt, capture=("out", "src"))
    out, src = comfy.output(results, "out")["samples"], comfy.output(results, "src")["samples"]
    outside, inside = latent_region_masks(comfy, results, out)
    diff = (out - src).abs()
    assert torch.isfinite(out).all()
    assert float(diff[outside].mean()) <= 0.05 * float(diff[inside].mean())


def test_timestep_window_on_sd_and_on_a_continuous_edm_schedule(comfy, loaded):
    """SD's discrete schedule maps t exactly; CosXL's EDM schedule gets SD's noise level at t."""
    import comfy.model_sampling as cms

    window = comfy.pack_module()._timestep_window(100, 1)
    sd = loaded[0].get_model_object("model_sampling")
    assert window(sd).high == pytest.approx(float(sd.sigma(torch.tensor(100.0))), rel=1e-6) and window(sd).to_end

    class CosXLSampling(cms.ModelSamplingContinuousEDM, cms.V_PREDICTION):
        pass

    edm = CosXLSampling()
    edm.set_parameters(sigma_min=0.002, sigma_max=120.0, sigma_data=1.0)
    assert window(edm).high == pytest.approx(window(sd).high, rel=1e-3)
