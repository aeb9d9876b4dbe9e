"""The blending core without ComfyUI: window, masks, DDIM inversion, and a toy sampling loop."""

from __future__ import annotations

import math

import pytest
import torch
from grounded_ip2p.sampling import (
    BackgroundBlender,
    Window,
    ddim_invert,
    empty_mask_indices,
    flow_levels,
    latent_mask,
    percent_window,
    timestep_window,
    window_bounds,
)

# A toy VP schedule in sigma form, like SD's (scaled-linear betas), for sigma <-> timestep maps.
BETAS = torch.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2
SIGMAS = ((1 - torch.cumprod(1 - BETAS, 0)) / torch.cumprod(1 - BETAS, 0)) ** 0.5


def t_to_sigma(t: float) -> float:
    return float(SIGMAS[int(round(t))])


def schedule(steps: int) -> list[float]:
    ts = torch.linspace(999, 0, steps)
    return [float(SIGMAS[int(round(float(t)))]) for t in ts] + [0.0]


def gaussian_denoiser(scale: float):
    """The exact denoiser for data ~ N(0, scale^2): D(x, s) = x * scale^2 / (scale^2 + s^2)."""
    return lambda x, s: x * scale**2 / (scale**2 + float(s) ** 2)


def euler(denoise, x, sigmas):
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        d = denoise(x, s)
        x = d + s_next * (x - d) / s
    return x


def test_window_bounds():
    assert window_bounds(100, 1) == (0.0, 100.0)  # 1 = until the end of sampling
    assert window_bounds(100, 0) == (0.0, 100.0)
    assert window_bounds(300, 200) == (200.0, 300.0)
    for start, end in ((50, 200), (1000, 1), (100, -1)):
        with pytest.raises(ValueError, match="end_t <= start_t"):
            window_bounds(start, end)


def test_latent_mask_shapes_resizing_and_batches():
    mask = torch.zeros(64, 64)
    mask[:, 32:] = 1
    m = latent_mask(mask, (3, 4, 8, 8))
    assert m.shape == (3, 1, 8, 8)
    assert torch.equal(m[:, :, :, :4], torch.zeros(3, 1, 8, 4)) and torch.equal(m[:, :, :, 4:], torch.ones(3, 1, 8, 4))
    soft = latent_mask(torch.tensor([[0.0, 1.0]]), (1, 4, 1, 4))  # bilinear: edges stay soft
    assert 0 < float(soft[0, 0, 0, 1]) < 1
    per_image = latent_mask(torch.stack([mask, 1 - mask]), (2, 4, 8, 8))
    assert torch.equal(per_image[0], 1 - per_image[1])
    with pytest.raises(ValueError, match="3 masks for 2 images"):
        latent_mask(torch.zeros(3, 64, 64), (2, 4, 8, 8))
    with pytest.raises(ValueError, match="must be"):
        latent_mask(torch.zeros(1, 2, 3, 4, 5), (1, 4, 8, 8))


def test_empty_mask_indices():
    masks = torch.zeros(3, 1, 4, 4)
    masks[1, 0, 2, 2] = 0.5
    assert empty_mask_indices(masks) == [0, 2]


def test_ddim_inversion_follows_the_probability_flow_and_round_trips():
    """For Gaussian data the probability-flow ODE is x(s) = x0 * sqrt(scale^2 + s^2) / scale."""
    scale, x0 = 0.8, torch.randn(2, 4, 8, 8)
    denoise = gaussian_denoiser(scale)
    levels = torch.logspace(math.log10(0.03), math.log10(3.0), 400).tolist()
    inverted = ddim_invert(denoise, x0, levels, sigma_start=0.03)
    exact = x0 * math.sqrt(scale**2 + levels[-1] ** 2) / math.sqrt(scale**2 + 0.03**2)
    assert float((inverted[-1] - exact).norm() / exact.norm()) < 0.01
    # ... and Euler (= DDIM) sampling from the top level back to 0.03 returns the source
    back = euler(denoise, inverted[-1], levels[::-1])
    assert float((back - x0).norm() / x0.norm()) < 0.01
    coarse = ddim_invert(denoise, x0, levels[::80], sigma_start=0.03)
    assert len(coarse) == 5


def test_ddim_inversion_calls_the_model_once_per_level():
    calls = []
    levels = [0.1, 0.5, 1.0]
    ddim_invert(lambda x, s: calls.append(s) or x * 0.5, torch.ones(1), levels, sigma_start=0.03)
    assert calls == [0.03, 0.1, 0.5]
    calls.clear()
    out = ddim_invert(lambda x, s: calls.append(s) or x * 0.5, torch.ones(1), levels, sigma_start=0.1)
    assert calls == [0.1, 0.5] and torch.equal(out[0], torch.ones(1))
    with pytest.raises(ValueError, match="increasing"):
        ddim_invert(lambda x, s: x, torch.ones(1), [0.5, 0.1], sigma_start=0.03)


def make_blender(mode, start_t=300, end_t=1, batch=2):
    source = torch.randn(batch, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    noise = torch.randn(batch, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    mask = torch.zeros(batch, 1, 8, 8)
    mask[..., 2:6, 2:6] = 1
    window = timestep_window(start_t, end_t, t_to_sigma)
    return BackgroundBlender(source, mask, window=window, mode=mode, noise=noise)


def test_window_membership():
    blender = make_blender("noised", start_t=300, end_t=100)
    assert blender.active(float(SIGMAS[200])) and blender.active(float(SIGMAS[300]))
    assert not blender.active(float(SIGMAS[301])) and not blender.active(float(SIGMAS[99]))
    assert not blender.active(0.0)
    to_end = make_blender("noised", start_t=300, end_t=1)
    assert to_end.active(float(SIGMAS[0])) and to_end.active(0.0)
    assert to_end.window_sigmas(schedule(11)) == sorted(s for s in schedule(11) if 0 < s <= float(SIGMAS[300]))


def test_noised_background_is_source_plus_scaled_noise():
    blender = make_blender("noised")
    assert blender.prepare(schedule(10), None, float(SIGMAS[0])) == 0
    assert torch.allclose(blender.background(0.5), blender.source + 0.5 * blender.noise)


def test_inverted_background_at_and_between_levels():
    blender = make_blender("inversion", start_t=500)
    sched = schedule(20)
    calls = blender.prepare(sched, gaussian_denoiser(1.0), float(SIGMAS[0]))
    levels = blender.window_sigmas(sched)
    assert calls == len(levels) - 1  # the lowest level is the schedule's smallest sigma
    top = levels[-1]
    stored = blender.background(top)
    assert stored.shape == blender.source.shape and not torch.equal(stored, blender.source)
    middle = levels[-1] ** 0.7 * levels[-2] ** 0.3  # nearer the top level
    between = blender.background(middle)
    nearest = min(levels, key=lambda s: abs(math.log(s / middle)))
    expected = blender.source + (middle / nearest) * (blender.background(nearest) - blender.source)
    assert torch.allclose(between, expected)


def test_blend_keeps_x_inside_and_background_outside():
    blender = make_blender("noised")
    x, bg = torch.full((2, 4, 8, 8), 5.0), torch.full((2, 4, 8, 8), -1.0)
    out = blender.blend(x, bg)
    assert torch.equal(out[..., 3, 3], torch.full((2, 4), 5.0)) and torch.equal(
        out[..., 0, 0], torch.full((2, 4), -1.0)
    )


@pytest.mark.parametrize("mode", ["inversion", "noised"])
def test_toy_sampling_restores_the_source_outside_the_mask(mode):
    """The guider's recipe on a plain Euler loop with a 'model' that ignores the source entirely."""
    blender = make_blender(mode, start_t=300)
    sched = schedule(12)

    def model(x, s):  # predicts something unrelated to the source everywhere
        return torch.tanh(x) * 3 + 1

    def guided(x, s):
        if not blender.active(s):
            return model(x, s)
        if not blender.prepared:
            blender.prepare(sched, model, float(SIGMAS[0]))
        return blender.blend(model(blender.blend(x, blender.background(s)), s), blender.source)

    x = blender.noise * sched[0]
    out = euler(guided, x, sched)
    outside, inside = blender.mask.expand_as(out) == 0, blender.mask.expand_as(out) == 1
    assert torch.allclose(out[outside], blender.source[outside], atol=1e-6)
    assert float((out - blender.source)[inside].abs().mean()) > 0.1


def test_blender_rejects_bad_arguments():
    source, mask, window = torch.zeros(1, 4, 8, 8), torch.ones(1, 1, 8, 8), Window(0.0, 1.0)
    with pytest.raises(ValueError, match="background must be"):
        BackgroundBlender(source, mask, window=window, mode="paste")
    with pytest.raises(ValueError, match="initial noise"):
        BackgroundBlender(source, mask, window=window, mode="noised")
    with pytest.raises(ValueError, match="does not fit"):
        BackgroundBlender(source, torch.ones(2, 1, 8, 8), window=window, mode="inversion")


def test_percent_window_follows_the_model_schedule():
    window = percent_window(0.9, 1.0, lambda p: 1.0 - p)  # a flow model without shift
    assert window == Window(0.0, pytest.approx(0.1)) and window.to_end
    assert window.contains(0.0) and window.contains(0.1) and not window.contains(0.11)
    early = percent_window(0.7, 0.8, lambda p: 1.0 - p)
    assert not early.to_end and early.contains(0.25) and not early.contains(0.0) and not early.contains(0.31)
    for start, end in ((0.9, 0.8), (-0.1, 1.0), (0.5, 1.5), (float("nan"), 1.0)):
        with pytest.raises(ValueError, match="start_percent <= end_percent"):
            percent_window(start, end, lambda p: 1.0 - p)


def test_latent_mask_for_video_style_latents_and_non_finite_masks():
    mask = torch.zeros(1, 64, 64)
    mask[:, :32] = 1
    m = latent_mask(mask, (2, 16, 1, 8, 8))
    assert m.shape == (2, 1, 1, 8, 8) and float(m[0, 0, 0, 0, 0]) == 1.0 and float(m[1, 0, 0, -1, 0]) == 0.0
    with pytest.raises(ValueError, match="NaN or infinite"):
        latent_mask(torch.full((1, 8, 8), float("nan")), (1, 4, 8, 8))


def test_flow_inversion_follows_the_flow_and_round_trips():
    """Flow latents (1-s)*x0 + s*eps; for Gaussian data the ODE scales x by the marginal std."""
    scale, x0 = 0.8, torch.randn(2, 16, 8, 8)

    def std(s):
        return math.sqrt((1 - s) ** 2 * scale**2 + s**2)

    def denoise(x, s):  # E[x0 | x] for x0 ~ N(0, scale^2)
        return x * (1 - s) * scale**2 / std(s) ** 2

    levels = torch.linspace(0.01, 0.6, 400).tolist()
    inverted = ddim_invert(denoise, x0, levels, sigma_start=0.01, levels=flow_levels)
    exact = x0 * std(levels[-1]) / std(0.01)
    assert float((inverted[-1] - exact).norm() / exact.norm()) < 0.01


def test_finish_puts_the_source_back_on_the_final_latent_only_in_the_window():
    blender = make_blender("noised", start_t=300, end_t=1)
    final = torch.full_like(blender.source, 7.0)
    out = blender.finish(final, 0.0)
    keep = blender.mask.expand_as(out) == 0
    assert torch.equal(out[keep], blender.source[keep]) and torch.equal(out[~keep], final[~keep])
    early = make_blender("noised", start_t=300, end_t=200)
    assert torch.equal(early.finish(final, 0.0), final)
    doubled = blender.finish(final, 0.0, to_output=lambda x: 2 * x)
    assert torch.equal(doubled[keep], 2 * blender.source[keep])
