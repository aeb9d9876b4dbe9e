"""The grounding chain in real ComfyUI, on random-weight models in the users' file formats:
LoadImage -> Noun Phrase Extract -> GroundingDINO Detect -> CLIP Filter -> Select Boxes -> SAM Mask
-> IP2P Blended Sampler."""

from __future__ import annotations

import os
import sys

import pytest
import torch
from grounded_ip2p.grounding.detections import Detections
from PIL import Image

from .checkpoints import cache_dir
from .clip_checkpoint import clip_checkpoint
from .comfy_harness import PromptError
from .gdino_checkpoint import original_gdino_checkpoint
from .graphs import chain, detector, edit, loaded_model
from .sam_checkpoint import (
    hq_sam_checkpoint,
    light_hq_sam_checkpoint,
    mobile_sam_checkpoint,
    sam2_checkpoint,
    sam2_safetensors,
    sam_checkpoint,
)

W, H = 96, 64


@pytest.fixture(scope="session")
def grounding_models(comfy, tmp_path_factory):
    """The three model folders with random-weight models under the names users have."""
    root = tmp_path_factory.mktemp("grounding-models")
    pth, _ = original_gdino_checkpoint(root / "grounding-dino", size="tiny")
    sam = sam_checkpoint(root / "sams", size="tiny")
    clip = clip_checkpoint(root / "clip_filter")
    for folder in ("grounding-dino", "sams", "clip_filter"):
        comfy.add_models(folder, root / folder)
    return {"gdino": pth.name, "sam": sam.name, "clip": clip.name, "root": root}


@pytest.fixture(scope="session")
def street(comfy):
    img = Image.new("RGB", (W, H), (90, 140, 200))
    for x0, colour in ((6, (200, 30, 30)), (38, (30, 160, 40)), (70, (220, 200, 40))):
        img.paste(colour, (x0, 30, x0 + 20, 50))
    img.save(comfy.work / "input" / "street.png")
    return "street.png"


def test_full_chain_into_the_sampler(comfy, ip2p_checkpoint, grounding_models, street):
    gd = loaded_model(comfy, "GroundedIP2P_GroundingDINOLoader", grounding_models["gdino"])
    passes = gd.forward_passes
    prompt = edit(grounding_models, street, ip2p_checkpoint)
    results = comfy.run(prompt, capture=("out", "mask", "select", "np", "filter"))
    assert comfy.output(results, "out")["samples"].shape == (1, 4, H // 8, W // 8)
    assert comfy.output(results, "np", 2) == "make the car purple"  # the simplified instruction
    assert comfy.output(results, "filter", 1) == "car"
    chosen = comfy.output(results, "select")[0]
    # box threshold 0 keeps every query; the guided selection keeps the single leftmost car
    assert len(chosen) == 1 and chosen.labels == ["car"] and "left" in chosen.note
    everything = chosen.phrase_set
    assert everything is not None and everything.target == "car"
    mask = comfy.output(results, "mask")
    assert mask.shape == (1, H, W) and 0.0 <= float(mask.min()) and float(mask.max()) <= 1.0
    assert detector(results) is gd and gd.forward_passes - passes == 1


def test_one_detector_pass_scores_four_phrases(comfy, grounding_models, street):
    instruction = "replace the hat of the man beside the dog with a crown"
    gd = loaded_model(comfy, "GroundedIP2P_GroundingDINOLoader", grounding_models["gdino"])
    clip = loaded_model(comfy, "GroundedIP2P_ClipFilterLoader", grounding_models["clip"])
    before = gd.forward_passes, clip.image_passes, clip.text_passes
    prompt = chain(grounding_models, street, instruction=instruction, mode="noun chunks")
    results = comfy.run(prompt, capture=("mask", "filter", "np", "det"))
    candidates = comfy.output(results, "np").candidates
    assert len(candidates) >= 4, candidates
    assert detector(results) is gd
    assert gd.forward_passes - before[0] == 1  # all phrases in one pass; CLIP reused its boxes
    labels = set(comfy.output(results, "det")[0].labels)
    assert labels <= set(candidates) and labels
    scores = comfy.output(results, "filter", 2)
    assert all(p in scores for p in candidates)
    assert (clip.image_passes - before[1], clip.text_passes - before[2]) == (1, 1)


@pytest.mark.parametrize("fallback,value", [("edit whole image", 1.0), ("keep image", 0.0)])
def test_no_detection_fallbacks_are_chosen_and_reported(comfy, grounding_models, street, fallback, value):
    prompt = chain(grounding_models, street, box_threshold=1.0, no_detection=fallback)
    results = comfy.run(prompt, capture=("mask",))
    mask = comfy.output(results, "mask")
    assert torch.all(mask == value)
    info = comfy.output(results, "mask", 1)
    assert "not detected" in info and fallback in info


def test_global_instruction_edits_the_whole_image_without_running_the_detector(comfy, grounding_models, street):
    prompt = chain(grounding_models, street, instruction="make it night", no_detection="keep image")
    results = comfy.run(prompt, capture=("mask",))
    assert torch.all(comfy.output(results, "mask") == 1.0)  # a global edit, not a failed detection
    assert "global" in comfy.output(results, "mask", 1)


def test_each_image_of_a_batch_gets_its_own_mask_and_a_miss_drops_nothing(comfy, grounding_models, street):
    SAMMask = comfy.node_class("GroundedIP2P_SAMMask")
    SAMLoader = comfy.node_class("GroundedIP2P_SAMLoader")
    sam = SAMLoader.execute(grounding_models["sam"], "auto").args[0]
    image = torch.rand(3, H, W, 3)
    found = Detections(torch.tensor([[10.0, 10, 40, 40]]), torch.tensor([0.9]), ["car"], (H, W))
    boxes = [found, Detections.empty((H, W), "'car' was not detected"), found]
    out = SAMMask.execute(sam, image, boxes, "union", 0, 0.0, "keep image")
    mask, info = out.args
    assert mask.shape == (3, H, W)
    assert torch.all(mask[1] == 0) and "image 1: 'car' was not detected" in info
    assert sam.core.encoder_passes >= 2


def test_wrong_model_file_and_missing_file_say_which_node_and_file(comfy, grounding_models):
    root = grounding_models["root"]
    sam_in_gdino = root / "grounding-dino" / "not_a_dino.pth"
    if not sam_in_gdino.exists():
        sam_in_gdino.hardlink_to(root / "sams" / grounding_models["sam"])
    prompt = {
        "gd": {
            "class_type": "GroundedIP2P_GroundingDINOLoader",
            "inputs": {"model_name": "not_a_dino.pth", "precision": "auto"},
        }
    }
    with pytest.raises(PromptError, match="Load GroundingDINO.*not_a_dino.pth"):
        comfy.run(prompt, capture=("gd",))
    Loader = comfy.node_class("GroundedIP2P_SAMLoader")
    with pytest.raises(FileNotFoundError, match="Load SAM: model file 'gone.pth' not found.*sams"):
        Loader.execute("gone.pth", "auto")


def _sam2_repack(folder):
    source = sam2_checkpoint(cache_dir() / "sam2.1-hiera-t", "2.1", "t")
    target = folder / "sam2.1_hiera_tiny-fp16.safetensors"
    return target if target.exists() else sam2_safetensors(source, target)


# Where users keep each segmenter file, how the tests make it, and what Load SAM reads from it.
SEGMENTER_FILES = [
    ("sams", lambda _: hq_sam_checkpoint(cache_dir() / "sam-hq-tiny"), "hq_custom"),
    ("sams", lambda _: mobile_sam_checkpoint(cache_dir() / "mobile-sam-tiny"), "custom_tiny_vit"),
    ("sams", lambda _: light_hq_sam_checkpoint(cache_dir() / "light-hq-sam"), "hq_vit_tiny"),
    ("sam2", lambda _: sam2_checkpoint(cache_dir() / "sam2.1-hiera-t", "2.1", "t"), "sam2.1_hiera_t"),
    ("sam2", _sam2_repack, "sam2.1_hiera_t"),
]


@pytest.mark.parametrize(
    "folder,make,variant", SEGMENTER_FILES, ids=[v for _, _, v in SEGMENTER_FILES[:-1]] + ["sam2.1 fp16 safetensors"]
)
def test_every_segmenter_file_runs_the_chain(comfy, grounding_models, street, folder, make, variant):
    """HQ-SAM, MobileSAM, Light HQ-SAM and SAM 2.1 (.pt and its .safetensors repack) from
    models/sams or models/sam2, through Load SAM and SAM Mask in the whole chain."""
    where = grounding_models["root"] / folder
    where.mkdir(exist_ok=True)
    made = make(where)
    target = where / made.name
    if not target.exists():
        target.hardlink_to(made)
    comfy.add_models(folder, where)
    results = comfy.run(chain({**grounding_models, "sam": target.name}, street), capture=("sam", "mask"))
    assert comfy.output(results, "sam").core.variant == variant
    mask = comfy.output(results, "mask")
    assert mask.shape == (1, H, W) and float(mask.max()) <= 1.0


def test_a_file_of_another_kind_says_what_it_looks_like(comfy, grounding_models):
    where = grounding_models["root"] / "sam2"
    where.mkdir(exist_ok=True)
    dino_as_sam2 = where / "sam2.1_hiera_large.pt"
    if not dino_as_sam2.exists():
        dino_as_sam2.hardlink_to(grounding_models["root"] / "grounding-dino" / grounding_models["gdino"])
    comfy.add_models("sam2", where)
    Loader = comfy.node_class("GroundedIP2P_SAMLoader")
    with pytest.raises(ValueError, match="Load SAM: sam2.1_hiera_large.pt: it looks like a GroundingDINO checkpoint"):
        Loader.execute(dino_as_sam2.name, "auto")


def test_preview_draws_boxes_and_mask(comfy, grounding_models, street):
    prompt = chain(grounding_models, street)
    prompt["preview"] = {
        "class_type": "GroundedIP2P_PreviewBoxes",
        "inputs": {"image": ["img", 0], "boxes": ["select", 0], "mask": ["mask", 0], "mask_opacity": 0.5},
    }
    results = comfy.run(prompt, capture=("preview",))
    drawn = comfy.output(results, "preview")
    original = (
        torch.frombuffer(
            bytearray(Image.open(comfy.work / "input" / street).convert("RGB").tobytes()), dtype=torch.uint8
        )
        .reshape(H, W, 3)
        .float()
        / 255
    )
    assert drawn.shape == (1, H, W, 3)
    assert not torch.allclose(drawn[0], original)


def test_models_are_managed_by_comfyui_and_reload_after_being_unloaded_model(comfy, grounding_models, street):
    import comfy.model_management as mm

    prompt = chain(grounding_models, street, instruction="make the red car blue")
    comfy.run(prompt, capture=("mask",))
    managed = [
        comfy.node_class(node).execute(grounding_models[key], "auto").args[0]
        for node, key in (
            ("GroundedIP2P_GroundingDINOLoader", "gdino"),
            ("GroundedIP2P_SAMLoader", "sam"),
            ("GroundedIP2P_ClipFilterLoader", "clip"),
        )
    ]
    loaded = [lm.model for lm in mm.current_loaded_models]
    assert all(m.patcher in loaded for m in managed)  # ComfyUI's model management holds them
    mm.unload_all_models()
    assert not any(m.patcher in [lm.model for lm in mm.current_loaded_models] for m in managed)
    prompt["np"]["inputs"]["instruction"] = "make the red car green"
    results = comfy.run(prompt, capture=("mask",))  # ready() loads them again
    assert comfy.output(results, "mask").shape == (1, H, W)


def test_model_folders_exist_and_registering_again_changes_nothing(comfy):
    import asyncio

    import folder_paths
    from grounded_ip2p.grounding.model_folders import LOADERS

    package = sys.modules[comfy.pack_module().__name__.rpartition(".")[0]]  # the pack's nodes package
    before = {loader.folder: list(folder_paths.folder_names_and_paths[loader.folder][0]) for loader in LOADERS}
    asyncio.run(package.GroundedIP2PExtension().on_load())
    for loader in LOADERS:
        paths = folder_paths.folder_names_and_paths[loader.folder][0]
        assert paths == before[loader.folder]
        assert os.path.isdir(os.path.join(folder_paths.models_dir, loader.folder))


@pytest.mark.parametrize(
    "instruction, clip",
    [("make the left car purple", True), ("make the cars blue", False), ("put a hat on the car", True)],
)
def test_grounded_mask_node_gives_the_separate_nodes_mask(comfy, grounding_models, street, instruction, clip):
    separate = chain(grounding_models, street, instruction, box_threshold=0.0)
    if not clip:  # Select Boxes straight from the detector, as Grounded Mask does without a CLIP model
        separate["select"]["inputs"]["boxes"] = ["det", 0]
    one = {
        "img": separate["img"],
        "gd": separate["gd"],
        "sam": separate["sam"],
        "clip": separate["clip"],
        "one": {
            "class_type": "GroundedIP2P_GroundedMask",
            "inputs": {
                "grounding_dino": ["gd", 0],
                "sam": ["sam", 0],
                "image": ["img", 0],
                "instruction": instruction,
                "box_threshold": 0.0,
                "dilation": 3,
                "no_detection": "edit whole image",
                **({"clip": ["clip", 0]} if clip else {}),
            },
        },
    }
    expected = comfy.run(separate, capture=("mask", "np"))
    got = comfy.run(one, capture=("one",))
    mask, preview, simplified, info, boxes = (comfy.output(got, "one", i) for i in range(5))
    assert torch.equal(mask, comfy.output(expected, "mask"))
    assert simplified == comfy.output(expected, "np", 2)
    assert preview.shape == (1, H, W, 3)
    assert info.splitlines()[0].startswith("understood: ") and "mask: " in info
    assert ("CLIP filter chose" in info) == clip
    assert len(boxes) == 1 and boxes[0].phrase_set is not None
    shown = comfy.executor.history_result["outputs"]["one"]  # what the frontend gets for the node
    assert list(shown["text"]) == [info] and len(shown["images"]) == 1


def test_a_replaced_model_file_is_loaded_again(comfy, grounding_models):
    """ComfyUI's cache knows a loader's output by its inputs; the loaders also fingerprint the file,
    so a file replaced under the same name is not served from the cache."""
    import os

    path = grounding_models["root"] / "sams" / grounding_models["sam"]
    first = loaded_model(comfy, "GroundedIP2P_SAMLoader", grounding_models["sam"])
    assert loaded_model(comfy, "GroundedIP2P_SAMLoader", grounding_models["sam"]) is first
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # as a new download would
    assert loaded_model(comfy, "GroundedIP2P_SAMLoader", grounding_models["sam"]) is not first


@pytest.mark.parametrize("background", ["noised", "inversion"])
def test_the_same_prompt_twice_gives_the_same_bytes(comfy, ip2p_checkpoint, grounding_models, street, background):
    """Deterministic on the CPU: the whole chain and the sampler, run again with ComfyUI's cache
    emptied, give bit-identical masks and images."""
    from grounded_ip2p.headless import comfy_session

    prompt = edit(grounding_models, street, ip2p_checkpoint, background=background)
    prompt["image"] = {"class_type": "VAEDecode", "inputs": {"samples": ["out", 0], "vae": ["ckpt", 2]}}
    runs = []
    for _ in range(2):
        comfy.executor = comfy_session.prompt_executor(comfy.server)  # a fresh output cache: everything runs again
        results = comfy.run(prompt, capture=("mask", "image"))
        runs.append((comfy.output(results, "mask"), comfy.output(results, "image")))
    (mask_a, image_a), (mask_b, image_b) = runs
    assert torch.equal(mask_a, mask_b) and torch.equal(image_a, image_b)
