"""The random-weight edit models of tests/edit_models.py load in real ComfyUI as the flow models
they stand for. Sampling them through KSampler and SamplerCustomAdvanced is covered, with and
without the restore patch, by test_restore_patch.py."""

from __future__ import annotations

import pytest

from .restore_cases import flux_edit_case, qwen_edit_case


@pytest.mark.parametrize(
    "build, model_class, latent_ndim",
    [(qwen_edit_case, "QwenImage", 5), (flux_edit_case, "Flux", 4)],
    ids=["qwen", "flux"],
)
def test_loads_as_its_flow_model(comfy, build, model_class, latent_ndim):
    from comfy import model_base, model_sampling

    case = build()
    assert type(case.model.model) is getattr(model_base, model_class)
    assert isinstance(case.model.model.model_sampling, model_sampling.CONST)
    assert case.source.ndim == latent_ndim
    assert case.positive[0][1]["reference_latents"][0] is case.source
