"""The converters between the pack's boxes and core's BOUNDING_BOX in real ComfyUI: present where
core has the type (0.15.0 and later), absent otherwise with nothing else changed."""

from __future__ import annotations

import sys

import pytest
import torch

from .graphs import chain
from .sam3_checkpoint import sam3_checkpoint
from .test_grounding_nodes import grounding_models, street  # noqa: F401  (shared fixtures)

CONVERTERS = {"GroundedIP2P_BoxesToBoundingBox", "GroundedIP2P_BoundingBoxToBoxes"}


def core_has_bounding_boxes() -> bool:
    from comfy_api.latest import io

    return hasattr(io, "BoundingBox")


@pytest.fixture
def core_boxes(comfy):
    if not core_has_bounding_boxes():
        pytest.skip("this ComfyUI has no BOUNDING_BOX type (io.BoundingBox, ComfyUI 0.15.0 and later)")
    return comfy


def test_converters_are_registered_exactly_where_core_has_bounding_boxes(comfy):
    pack = sys.modules[comfy.pack_module().__package__]  # the pack's `nodes` package as ComfyUI imported it
    registered = {name for name in comfy.nodes.NODE_CLASS_MAPPINGS if name.startswith("GroundedIP2P_")}
    others = {cls.define_schema().node_id for cls in pack.NODE_CLASSES} - CONVERTERS
    if core_has_bounding_boxes():
        assert registered == others | CONVERTERS
    else:
        assert pack.CORE_BOX_NODES == [] and registered == others
        assert len(registered) == len(pack.NODE_CLASSES)


def through_core(prompt, source, image="img", phrases=None, prefix="c"):
    """Nodes that take `source`'s boxes to core's BOUNDING_BOX and back; returns the last node's id."""
    prompt[f"{prefix}_to"] = {"class_type": "GroundedIP2P_BoxesToBoundingBox", "inputs": {"boxes": [source, 0]}}
    back = {"image": [image, 0], "bboxes": [f"{prefix}_to", 0], "label": ""}
    if phrases:
        back["phrases"] = [phrases, 0]
    prompt[f"{prefix}_from"] = {"class_type": "GroundedIP2P_BoundingBoxToBoxes", "inputs": back}
    return f"{prefix}_from"


def mask_of(prompt, name, boxes):
    prompt[name] = {**prompt["mask"], "inputs": {**prompt["mask"]["inputs"], "boxes": [boxes, 0]}}


def test_pack_boxes_through_core_boxes_give_the_direct_paths_mask(core_boxes, grounding_models, street):  # noqa: F811
    prompt = chain(grounding_models, street)
    del prompt["filter"]
    prompt["select"]["inputs"]["boxes"] = ["det", 0]
    # chosen boxes -> core -> pack -> SAM Mask
    mask_of(prompt, "mask_chosen", through_core(prompt, "select", prefix="chosen"))
    # every box -> core -> pack (with the phrases) -> Select Boxes -> SAM Mask
    detected = through_core(prompt, "det", phrases="np", prefix="all")
    prompt["select_core"] = {**prompt["select"], "inputs": {**prompt["select"]["inputs"], "boxes": [detected, 0]}}
    mask_of(prompt, "mask_all", "select_core")
    prompt["draw"] = {"class_type": "DrawBBoxes", "inputs": {"image": ["img", 0], "bboxes": ["chosen_to", 0]}}
    capture = ("mask", "mask_chosen", "mask_all", "select", "select_core", "chosen_to", "draw", "img")
    results = core_boxes.run(prompt, capture=capture)

    direct = core_boxes.output(results, "mask")
    assert direct.shape == (1, 64, 96) and 0 < float(direct.sum()) < direct.numel()
    assert torch.equal(core_boxes.output(results, "mask_chosen"), direct)
    assert torch.equal(core_boxes.output(results, "mask_all"), direct)
    chosen, again = core_boxes.output(results, "select")[0], core_boxes.output(results, "select_core")[0]
    assert torch.equal(again.boxes, chosen.boxes) and again.labels == chosen.labels == ["car"]

    (frame,) = core_boxes.output(results, "chosen_to")
    assert [sorted(b) for b in frame] == [["height", "label", "score", "width", "x", "y"]]
    drawn, source = core_boxes.output(results, "draw"), core_boxes.output(results, "img")
    assert drawn.shape == source.shape and not torch.equal(drawn, source)  # core read the boxes


def test_one_core_box_serves_a_batch_clipped_to_the_image(core_boxes, street):  # noqa: F811
    prompt = {
        "img": {"class_type": "LoadImage", "inputs": {"image": street}},
        "batch": {"class_type": "RepeatImageBatch", "inputs": {"image": ["img", 0], "amount": 3}},
        "box": {"class_type": "PrimitiveBoundingBox", "inputs": {"x": 80, "y": 10, "width": 512, "height": 20}},
        "out": {
            "class_type": "GroundedIP2P_BoundingBoxToBoxes",
            "inputs": {"image": ["batch", 0], "bboxes": ["box", 0], "label": "sign"},
        },
    }
    boxes = core_boxes.output(core_boxes.run(prompt), "out")
    assert [d.boxes.tolist() for d in boxes] == [[[80, 10, 96, 30]]] * 3
    assert [d.labels for d in boxes] == [["sign"]] * 3 and all(d.image_size == (64, 96) for d in boxes)


def test_boxes_for_another_batch_are_refused_naming_the_node(core_boxes):
    node = core_boxes.node_class("GroundedIP2P_BoundingBoxToBoxes")
    two = [[{"x": 1, "y": 2, "width": 10, "height": 10}], []]
    with pytest.raises(ValueError, match="BoundingBoxToBoxes: the boxes are for 2 image.* but 3 image"):
        node.execute(torch.rand(3, 64, 96, 3), two)


@pytest.fixture(scope="session")
def rtdetr_model(comfy, tmp_path_factory):
    """A random-weight RT-DETRv4 in ComfyUI's own architecture, saved where Load Diffusion Model looks."""
    try:
        from comfy.ldm.rt_detr.rtdetr_v4 import RTv4
    except ImportError:
        pytest.skip("this ComfyUI has no RT-DETR detector (ComfyUI 0.19.0 and later)")
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("diffusion_models")
    torch.manual_seed(0)
    weights = RTv4(operations=torch.nn).state_dict()
    save_file({k: v.clone() for k, v in weights.items()}, folder / "rtdetr_v4_random.safetensors")
    comfy.add_models("diffusion_models", folder)
    return "rtdetr_v4_random.safetensors"


@pytest.mark.slow
def test_core_rtdetr_boxes_feed_sam_mask(core_boxes, rtdetr_model, grounding_models, street):  # noqa: F811
    prompt = chain(grounding_models, street)
    for node in ("gd", "clip", "det", "filter", "select", "np"):
        del prompt[node]
    prompt["rtdetr"] = {"class_type": "UNETLoader", "inputs": {"unet_name": rtdetr_model, "weight_dtype": "default"}}
    prompt["detect"] = {
        "class_type": "RTDETR_detect",
        "inputs": {
            "model": ["rtdetr", 0],
            "image": ["img", 0],
            "threshold": 0.0,
            "class_name": "all",
            "max_detections": 4,
        },
    }
    prompt["boxes"] = {
        "class_type": "GroundedIP2P_BoundingBoxToBoxes",
        "inputs": {"image": ["img", 0], "bboxes": ["detect", 0], "label": "car"},
    }
    prompt["mask"]["inputs"]["boxes"] = ["boxes", 0]
    results = core_boxes.run(prompt, capture=("detect", "boxes", "mask"))

    (found,) = core_boxes.output(results, "detect")
    (det,) = core_boxes.output(results, "boxes")
    assert len(found) == 4 and all(isinstance(b["label"], str) for b in found)
    expected = [
        [max(b["x"], 0), max(b["y"], 0), min(b["x"] + b["width"], 96), min(b["y"] + b["height"], 64)] for b in found
    ]
    assert torch.allclose(det.boxes, torch.tensor(expected), atol=1e-4)
    assert det.labels == ["car"] * 4 and det.scores.tolist() == pytest.approx([b["score"] for b in found])
    mask = core_boxes.output(results, "mask")
    assert mask.shape == (1, 64, 96) and float(mask.max()) == 1.0
    assert core_boxes.output(results, "mask", 1) == "4 object(s) segmented: car"


@pytest.fixture(scope="session")
def sam3_model(comfy):
    """A random-weight full-size SAM 3.1 in ComfyUI's own architecture and file layout, where Load
    Checkpoint looks (built once into the test model cache, ~1.0 GB)."""
    if "SAM3_Detect" not in comfy.nodes.NODE_CLASS_MAPPINGS:
        pytest.skip("this ComfyUI has no SAM3_Detect node (comfy_extras/nodes_sam3.py, ComfyUI 0.33.0)")
    path = sam3_checkpoint()
    comfy.add_models("checkpoints", path.parent)
    return path.name


@pytest.mark.slow
def test_pack_boxes_feed_core_sam3_detect(core_boxes, sam3_model, grounding_models, street):  # noqa: F811
    """Select Boxes -> Boxes -> BOUNDING_BOX -> SAM3_Detect prompted with boxes only: one mask per box.

    Each box is one pass of SAM 3's ViT-L trunk at 1008x1008 (a minute or two on a CPU), so the
    plural target gives two boxes and no refinement passes."""
    prompt = chain(grounding_models, street, instruction="make the cars purple")
    for node in ("sam", "clip", "filter", "mask"):
        del prompt[node]
    prompt["select"]["inputs"]["boxes"] = ["det", 0]
    prompt["sam3"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": sam3_model}}
    prompt["to"] = {"class_type": "GroundedIP2P_BoxesToBoundingBox", "inputs": {"boxes": ["select", 0]}}
    prompt["detect"] = {
        "class_type": "SAM3_Detect",
        "inputs": {
            "model": ["sam3", 0],
            "image": ["img", 0],
            "bboxes": ["to", 0],
            "threshold": 0.5,
            "refine_iterations": 0,
            "individual_masks": True,
        },
    }
    results = core_boxes.run(prompt, capture=("select", "to", "detect"))

    (chosen,) = core_boxes.output(results, "select")
    assert len(chosen) == 2 and chosen.labels == ["cars", "cars"]
    (frame,) = core_boxes.output(results, "to")
    sent = torch.tensor([[b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]] for b in frame])
    assert torch.allclose(sent, chosen.boxes.float(), atol=1e-4)
    masks = core_boxes.output(results, "detect")
    assert masks.shape == (2, 64, 96)  # one per box, at the image's size
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert core_boxes.output(results, "detect", 1) == [[]]  # box prompts find no new boxes
