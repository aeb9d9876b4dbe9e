"""Widget values are checked when a prompt is queued: a wrong one is refused with the node, the
input and what it may be, before anything runs (ComfyUI itself lets NaN through min/max, and some
versions do not check a V3 combo against its options)."""

from __future__ import annotations

import math

import pytest

from .comfy_harness import PromptError
from .graphs import blended, graph

SAMPLER_CASES = [
    ("scheduler", "no_such_scheduler", "scheduler 'no_such_scheduler' is not one of its choices"),
    ("sampler_name", "warp_drive", "sampler_name 'warp_drive' is not one of its choices"),
    ("background", "sideways", "background 'sideways' is not one of its choices"),
    ("text_cfg", math.nan, "text_cfg is nan: it must be a finite number"),
    ("image_cfg", math.inf, "image_cfg is inf: it must be a finite number"),
    ("steps", 0, "steps 0 is below its minimum 1"),
    ("start_t", 10**9, "start_t 1000000000 is above its maximum"),
    ("seed", -1, "seed -1 is below its minimum 0"),
]


def refusal(comfy, prompt) -> str:
    """The validation messages ComfyUI gives for the prompt (it must not run)."""
    with pytest.raises(PromptError) as caught:
        comfy.run(prompt)
    return " | ".join(
        f"{err.get('message')}: {err.get('details')}"
        for node in (caught.value.details or {}).values()
        for err in node.get("errors", [])
    )


@pytest.fixture(scope="module")
def photo(comfy) -> str:
    from PIL import Image

    Image.new("RGB", (64, 64), (90, 140, 200)).save(comfy.work / "input" / "validation.png")
    return "validation.png"


@pytest.mark.parametrize("name, value, expected", SAMPLER_CASES, ids=[c[0] for c in SAMPLER_CASES])
def test_sampler_refuses_a_wrong_widget_value(comfy, ip2p_checkpoint, photo, name, value, expected):
    prompt = {**graph(ip2p_checkpoint, photo), **blended("euler", 2, 1)}
    prompt["out"]["inputs"][name] = value
    text = refusal(comfy, prompt)
    assert "IP2P Blended Sampler: " in text and expected in text, text


def test_grounding_nodes_refuse_wrong_values(comfy):
    prompt = {
        "np": {"class_type": "GroundedIP2P_NounPhraseExtract", "inputs": {"instruction": "x", "mode": "poetry"}},
        "sink": {"class_type": "PreviewAny", "inputs": {"source": ["np", 3]}},
    }
    assert "Noun Phrase Extract: mode 'poetry' is not one of its choices" in refusal(comfy, prompt)


def test_a_missing_model_file_says_where_it_goes(comfy):
    prompt = {
        "sam": {"class_type": "GroundedIP2P_SAMLoader", "inputs": {"model_name": "sam_vit_q.pth", "precision": "auto"}},
        "sink": {"class_type": "PreviewAny", "inputs": {"source": ["sam", 0]}},
    }
    text = refusal(comfy, prompt)
    assert "Load SAM: model file 'sam_vit_q.pth' is not in" in text and "grounded-ip2p models" in text, text


def test_good_values_pass(comfy):
    sampler = comfy.node_class("GroundedIP2P_BlendedSampler")
    values = {"steps": 20, "text_cfg": 7.5, "scheduler": "normal", "background": "noised", "start_t": 100}
    assert sampler.validate_inputs(**values) is True


# --- values that only exist at run time: images, masks, results ----------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_image_is_refused_by_the_sampler_and_the_grounding_nodes(comfy, ip2p_loaded, bad):
    import torch

    model, positive, negative, vae = ip2p_loaded
    image = torch.rand(1, 64, 64, 3)
    image[0, 10, 10, 1] = bad
    with pytest.raises(ValueError, match="IP2PBlendedSampler: the image has NaN or infinite values"):
        comfy.pack_module().blended_sample(
            model, positive, negative, vae, image, None, 0, 2, 7.5, 1.5, "euler", "normal", 100, 1, "noised"
        )
    extract = comfy.node_class("GroundedIP2P_NounPhraseExtract")
    phrases = extract.execute("make the car red", "guided").args[0]
    detect = comfy.node_class("GroundedIP2P_GroundingDINODetect")
    with pytest.raises(ValueError, match="GroundingDINODetect: the image has NaN or infinite values"):
        detect.execute(None, image, 0.3, 0.25, phrases=phrases)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_mask_is_refused(comfy, ip2p_loaded, bad):
    import torch

    model, positive, negative, vae = ip2p_loaded
    mask = torch.zeros(1, 64, 64)
    mask[0, 3, 3] = bad
    with pytest.raises(ValueError, match="IP2PBlendedSampler: .*NaN or infinite"):
        comfy.pack_module().blended_sample(
            model,
            positive,
            negative,
            vae,
            torch.rand(1, 64, 64, 3),
            mask,
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
    restore = comfy.node_class("GroundedIP2P_RestoreBackground")
    source = {"samples": torch.zeros(1, 4, 8, 8)}
    with pytest.raises(ValueError, match="NaN or infinite"):
        restore.execute(model, source, 0.9, 1.0, "noised", mask=mask)


def test_a_non_finite_result_is_an_error_not_a_success(comfy):
    import sys

    import torch

    late_restore = sys.modules[comfy.node_class("GroundedIP2P_RestoreBackground").__module__]
    latent = torch.zeros(1, 4, 8, 8)
    late_restore.check_finite(latent, "Restore Background")  # finite: nothing to say
    latent[0, 0, 0, 0] = math.nan
    with pytest.raises(ValueError, match="Restore Background: the sampled latent has NaN or infinite values"):
        late_restore.check_finite(latent, "Restore Background")
