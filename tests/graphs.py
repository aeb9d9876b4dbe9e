"""API-format prompts the tests and the benches run in ComfyUI, and small helpers to read their results.

- ``chain``/``edit``: the grounding chain (LoadImage -> Noun Phrase Extract -> GroundingDINO Detect ->
  CLIP Filter -> Select Boxes -> SAM Mask), and the same feeding IP2P Blended Sampler.
- ``graph``/``blended``/``native``: the checkpoint, prompts and image, then IP2P Blended Sampler or
  ComfyUI's own InstructPix2Pix path (DualCFGGuider + SamplerCustomAdvanced) on them.
"""

from __future__ import annotations

import torch

SAMPLER_NODE = "GroundedIP2P_BlendedSampler"


# --- the grounding chain ---------------------------------------------------------------------


def chain(
    models,
    image,
    instruction="make the left car purple",
    mode="guided",
    box_threshold=0.0,
    no_detection="edit whole image",
    guided=True,
    text_threshold=0.25,
):
    return {
        "img": {"class_type": "LoadImage", "inputs": {"image": image}},
        "gd": {
            "class_type": "GroundedIP2P_GroundingDINOLoader",
            "inputs": {"model_name": models["gdino"], "precision": "auto"},
        },
        "sam": {"class_type": "GroundedIP2P_SAMLoader", "inputs": {"model_name": models["sam"], "precision": "auto"}},
        "clip": {
            "class_type": "GroundedIP2P_ClipFilterLoader",
            "inputs": {"model_name": models["clip"], "precision": "auto"},
        },
        "np": {"class_type": "GroundedIP2P_NounPhraseExtract", "inputs": {"instruction": instruction, "mode": mode}},
        "det": {
            "class_type": "GroundedIP2P_GroundingDINODetect",
            "inputs": {
                "grounding_dino": ["gd", 0],
                "image": ["img", 0],
                "phrases": ["np", 0],
                "box_threshold": box_threshold,
                "text_threshold": text_threshold,
            },
        },
        "filter": {
            "class_type": "GroundedIP2P_ClipFilter",
            "inputs": {
                "clip": ["clip", 0],
                "image": ["img", 0],
                "boxes": ["det", 0],
                "choice": "prefer analysed target",
            },
        },
        "select": {"class_type": "GroundedIP2P_SelectBoxes", "inputs": {"boxes": ["filter", 0], "guided": guided}},
        "mask": {
            "class_type": "GroundedIP2P_SAMMask",
            "inputs": {
                "sam": ["sam", 0],
                "image": ["img", 0],
                "boxes": ["select", 0],
                "output": "union",
                "dilation": 3,
                "feather": 0.0,
                "no_detection": no_detection,
            },
        },
    }


def edit(models, image, ckpt, seed=1, steps=2, sampler="euler", background="noised", **chain_options):
    """The chain feeding IP2P Blended Sampler: the whole grounded edit as the example workflow wires it."""
    prompt = chain(models, image, **chain_options)
    prompt.update(
        {
            "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
            "pos": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["ckpt", 1], "text": ["np", 2]}},
            "neg": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["ckpt", 1], "text": ""}},
            "out": {
                "class_type": "GroundedIP2P_BlendedSampler",
                "inputs": {
                    "model": ["ckpt", 0],
                    "positive": ["pos", 0],
                    "negative": ["neg", 0],
                    "vae": ["ckpt", 2],
                    "image": ["img", 0],
                    "mask": ["mask", 0],
                    "seed": seed,
                    "steps": steps,
                    "text_cfg": 7.5,
                    "image_cfg": 1.5,
                    "sampler_name": sampler,
                    "scheduler": "normal",
                    "start_t": 100,
                    "end_t": 1,
                    "background": background,
                },
            },
        }
    )
    return prompt


def detector(results):
    return results["gd"][0][0].core


def loaded_model(comfy, node, name):
    """The model a loader gives a graph: the loader run through ComfyUI, whose output cache then
    hands the same object to the next prompt that has this loader with these inputs."""
    loader = {"class_type": node, "inputs": {"model_name": name, "precision": "auto"}}
    return comfy.output(comfy.run({"loader": loader}, capture=("loader",)), "loader").core


# --- IP2P Blended Sampler and ComfyUI's native InstructPix2Pix ---------------------------------


def graph(ckpt, image, instruction="make the car purple"):
    return {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "pos": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["ckpt", 1], "text": instruction}},
        "neg": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["ckpt", 1], "text": ""}},
        "img": {"class_type": "LoadImage", "inputs": {"image": image}},
    }


def blended(sampler, steps, seed, mask=False, background="inversion", scheduler="normal", start_t=100, end_t=1):
    inputs = {
        "model": ["ckpt", 0],
        "positive": ["pos", 0],
        "negative": ["neg", 0],
        "vae": ["ckpt", 2],
        "image": ["img", 0],
        "seed": seed,
        "steps": steps,
        "text_cfg": 7.5,
        "image_cfg": 1.5,
        "sampler_name": sampler,
        "scheduler": scheduler,
        "start_t": start_t,
        "end_t": end_t,
        "background": background,
    }
    if mask:
        inputs["mask"] = ["img", 1]
    return {"out": {"class_type": SAMPLER_NODE, "inputs": inputs}}


def native(sampler, steps, seed, scheduler="normal"):
    """ComfyUI's own InstructPix2Pix path."""
    return {
        "ip2p": {
            "class_type": "InstructPixToPixConditioning",
            "inputs": {"positive": ["pos", 0], "negative": ["neg", 0], "vae": ["ckpt", 2], "pixels": ["img", 0]},
        },
        "guider": {
            "class_type": "DualCFGGuider",
            "inputs": {
                "model": ["ckpt", 0],
                "cond1": ["ip2p", 0],
                "cond2": ["ip2p", 1],
                "negative": ["neg", 0],
                "cfg_conds": 7.5,
                "cfg_cond2_negative": 1.5,
                "style": "regular",
            },
        },
        "noise": {"class_type": "RandomNoise", "inputs": {"noise_seed": seed}},
        "sampler": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": sampler}},
        "sigmas": {
            "class_type": "BasicScheduler",
            "inputs": {"model": ["ckpt", 0], "scheduler": scheduler, "steps": steps, "denoise": 1.0},
        },
        "out": {
            "class_type": "SamplerCustomAdvanced",
            "inputs": {
                "noise": ["noise", 0],
                "guider": ["guider", 0],
                "sampler": ["sampler", 0],
                "sigmas": ["sigmas", 0],
                "latent_image": ["ip2p", 2],
            },
        },
    }


def run_latent(comfy, prompt):
    results = comfy.run(prompt)
    return comfy.output(results, "out")["samples"]


def relative_error(a, b):
    return float((a - b).norm() / b.norm())


def with_encoded_source(prompt):
    return {**prompt, "src": {"class_type": "VAEEncode", "inputs": {"pixels": ["img", 0], "vae": ["ckpt", 2]}}}


def latent_region_masks(comfy, results, latent):
    """Latent pixels entirely outside / entirely inside the edit mask after the bilinear resize."""
    mask = comfy.output(results, "img", 1)
    m = torch.nn.functional.interpolate(mask[:, None], size=latent.shape[-2:], mode="bilinear", align_corners=False)
    m = m.expand_as(latent)
    return m <= 1e-6, m >= 1 - 1e-6
