"""The background restore holds for every sampler, scheduler and step count ComfyUI lists.

Runs the IP2P Blended Sampler's function and the Restore Background patch (with core KSampler)
inside real ComfyUI, on a reduced-width SD1.5-InstructPix2Pix UNet (the same ComfyUI classes,
random weights) so that the few hundred samplings fit in CI; the conditioning and the VAE are the
test checkpoint's. ``bench/restore_matrix.py`` prints the same figures per sampler family.
"""

from __future__ import annotations

import pytest
import torch

from . import checkpoints
from .comfy_harness import sampler_and_scheduler_names
from .restore_cases import (
    SIZE,
    background_figures,
    blended_run,
    edit_mask,
    native_run,
    patched_ksampler_run,
    source_latent,
)

SAMPLER_NAMES, SCHEDULER_NAMES = sampler_and_scheduler_names()
STEPS = (3, 20)
MODES = ("inversion", "noised")


@pytest.fixture(scope="module")
def parts(comfy, ip2p_loaded):
    model, positive, negative, vae = ip2p_loaded
    image = torch.rand(1, SIZE, SIZE, 3, generator=torch.Generator().manual_seed(0))
    return checkpoints.reduced_ip2p(model), positive, negative, vae, image, source_latent(vae, image)


def assert_background_kept(figures, label):
    max_outside, ratio = figures
    assert max_outside <= 1e-3, f"{label}: max |out - src| outside the mask is {max_outside:.3g}"
    assert ratio <= 0.05, f"{label}: mean |out - src| outside is {ratio:.2%} of inside"


@pytest.mark.parametrize("sampler", SAMPLER_NAMES)
def test_every_sampler_keeps_the_background(parts, sampler):
    mask = edit_mask()
    for steps in STEPS:
        for mode in MODES:
            out, source, info = blended_run(parts, sampler, "normal", steps, mode, mask)
            assert torch.isfinite(out).all()
            assert_background_kept(background_figures(out, source, mask), f"{sampler} {steps} steps {mode}")
            assert "restored on" in info or "no model call" in info
    # without a mask it is the native path (KSampler's sigmas), bit for bit
    ours, _, _ = blended_run(parts, sampler, "normal", 3, "noised", None)
    assert torch.equal(ours, native_run(parts, sampler, "normal", 3))


@pytest.mark.parametrize("scheduler", SCHEDULER_NAMES)
def test_every_scheduler_keeps_the_background(parts, scheduler):
    mask = edit_mask()
    for steps in STEPS:
        for mode in MODES:
            out, source, _ = blended_run(parts, "euler_ancestral", scheduler, steps, mode, mask)
            assert_background_kept(background_figures(out, source, mask), f"{scheduler} {steps} steps {mode}")
    ours, _, _ = blended_run(parts, "euler", scheduler, 3, "noised", None)
    assert torch.equal(ours, native_run(parts, "euler", scheduler, 3))


@pytest.mark.parametrize("sampler", SAMPLER_NAMES)
def test_the_patch_keeps_the_background_with_ksampler(parts, sampler):
    mask = edit_mask()
    for mode in MODES:
        out, source = patched_ksampler_run(parts, sampler, "normal", 3, mode, mask)
        assert_background_kept(background_figures(out, source, mask), f"patch {sampler} {mode}")


def test_one_step_and_an_empty_window_are_reported(parts):
    mask = edit_mask()
    # one step: no call lands in the last 10%, but the background is still pasted back exactly
    out, source, info = blended_run(parts, "euler", "normal", 1, "noised", mask)
    assert_background_kept(background_figures(out, source, mask), "1 step")
    assert "no model call" in info and "pasted back on the final latent" in info
    # linear_quadratic keeps every call of a short schedule above t=100
    out, source, info = blended_run(parts, "euler", "linear_quadratic", 3, "noised", mask)
    assert_background_kept(background_figures(out, source, mask), "linear_quadratic")
    assert "no model call" in info
    # a window that ends early and holds no call: nothing is restored, and the info says so
    _, _, info = blended_run(parts, "euler", "normal", 2, "noised", mask, start_t=300, end_t=200)
    assert "nothing was restored" in info
    # start_t == end_t is a one-timestep window: legal, and the same cost as any other window
    _, _, info = blended_run(parts, "euler", "normal", 4, "inversion", mask, start_t=500, end_t=500)
    assert "nothing was restored" in info or "restored on" in info
