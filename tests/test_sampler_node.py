"""IP2PBlendedSampler inside real ComfyUI, on a random-weight full-size SD1.5-InstructPix2Pix checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

NODE = "GroundedIP2P_BlendedSampler"
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


def graph(ckpt, image, instruction="make the car purple"):
    return {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "pos": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["ckpt", 1], "text": instruction}},
        "neg": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["ckpt", 1], "text": ""}},
        "img": {"class_type": "LoadImage", "inputs": {"image": image}},
    }


def blended(sampler, steps, seed, mask=False, background="inversion", scheduler="normal", start_t=100, end_t=1):
    inputs = {"model": ["ckpt", 0], "positive": ["pos", 0], "negative": ["neg", 0], "vae": ["ckpt", 2],
              "image": ["img", 0], "seed": seed, "steps": steps, "text_cfg": 7.5, "image_cfg": 1.5,
              "sampler_name": sampler, "scheduler": scheduler, "start_t": start_t, "end_t": end_t,
              "background": background}
    if mask:
        inputs["mask"] = ["img", 1]
    return {"out": {"class_type": NODE, "inputs": inputs}}


def native(sampler, steps, seed, scheduler="normal"):
    """ComfyUI's own InstructPix2Pix path."""
    return {
        "ip2p": {"class_type": "InstructPixToPixConditioning",
                 "inputs": {"positive": ["pos", 0], "negative": ["neg", 0], "vae": ["ckpt", 2], "pixels": ["img", 0]}},
        "guider": {"class_type": "DualCFGGuider",
                   "inputs": {"model": ["ckpt", 0], "cond1": ["ip2p", 0], "cond2": ["ip2p", 1], "negative": ["neg", 0],
                              "cfg_conds": 7.5, "cfg_cond2_negative": 1.5, "style": "regular"}},
        "noise": {"class_type": "RandomNoise", "inputs": {"noise_seed": seed}},
        "sampler": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": sampler}},
        "sigmas": {"class_type": "BasicScheduler",
                   "inputs": {"model": ["ckpt", 0], "scheduler": scheduler, "steps": steps, "denoise": 1.0}},
        "out": {"class_type": "SamplerCustomAdvanced",
                "inputs": {"noise": ["noise", 0], "guider": ["guider", 0], "sampler": ["sampler", 0],
                           "sigmas": ["sigmas", 0], "latent_image": ["ip2p", 2]}},
    }


def run_latent(comfy, prompt):
    results = comfy.run(prompt)
    return comfy.output(results, "out")["samples"]


def relative_error(a, b):
    return float((a - b).norm() / b.norm())


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
