"""Converters between the pack's boxes and core ComfyUI's BOUNDING_BOX, so that core detectors
(RT-DETR, SAM 3, Create Bounding Boxes) feed Select Boxes and SAM Mask, and the pack's boxes
feed core's SAM 3. Registered only where the running ComfyUI has the type."""

from __future__ import annotations

from comfy_api.latest import io

from ..grounding.core_boxes import from_core, to_core
from .grounding import CATEGORY, _batch_text
from .images import rgb
from .types import Boxes, Phrases
from .validation import ValidatedNode


def core_has_bounding_boxes() -> bool:
    return hasattr(io, "BoundingBox")


class BoxesToBoundingBox(ValidatedNode):
    NODE = "BoxesToBoundingBox"

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GroundedIP2P_BoxesToBoundingBox",
            display_name="Boxes → BOUNDING_BOX",
            category=CATEGORY,
            description="The pack's boxes as core ComfyUI's BOUNDING_BOX: one list per image of "
            "{x, y, width, height} in pixels of that image, with each box's score and phrase as its label. "
            "For SAM3 Detect's bboxes input, Draw BBoxes and other core nodes.",
            inputs=[
                Boxes.Input(
                    "boxes",
                    tooltip="From Select Boxes, CLIP Filter or GroundingDINO Detect. Boxes are clipped to their image.",
                ),
            ],
            outputs=[io.BoundingBox.Output(display_name="bboxes", tooltip="One list of boxes per image.")],
        )

    @classmethod
    def execute(cls, boxes) -> io.NodeOutput:
        return io.NodeOutput(to_core(boxes))


class BoundingBoxToBoxes(ValidatedNode):
    NODE = "BoundingBoxToBoxes"

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GroundedIP2P_BoundingBoxToBoxes",
            display_name="BOUNDING_BOX → Boxes",
            category=CATEGORY,
            description="Core ComfyUI's BOUNDING_BOX (from Run Real-Time Detection (RT-DETR), SAM3 Detect, "
            "Create Bounding Boxes) as the pack's boxes, for Select Boxes, CLIP Filter, SAM Mask and "
            "Preview Boxes. Boxes are clipped to the image; each is labelled by the phrase Select Boxes "
            "looks for.",
            inputs=[
                io.Image.Input("image", tooltip="The image(s) the boxes were found on."),
                io.BoundingBox.Input(
                    "bboxes",
                    force_input=True,
                    tooltip="One list of boxes per image, or one box or list for every image of the batch.",
                ),
                Phrases.Input(
                    "phrases",
                    optional=True,
                    tooltip="From Noun Phrase Extract: Select Boxes then picks by the instruction, and the "
                    "detector's labels become the phrases they name ('car' -> 'red cars', 'person' -> 'man'); "
                    "boxes without a label (SAM 3's) are the target's.",
                ),
                io.String.Input(
                    "label",
                    default="",
                    optional=True,
                    tooltip="Names every box (e.g. 'car' for SAM 3 boxes prompted with 'car'). Empty: each box "
                    "keeps the detector's label (RT-DETR's COCO class), 'object' when it has none.",
                ),
            ],
            outputs=[Boxes.Output(display_name="boxes"), io.String.Output(display_name="info")],
        )

    @classmethod
    def execute(cls, image, bboxes, phrases=None, label="") -> io.NodeOutput:
        image = rgb(image, cls.NODE)
        sizes = [tuple(image.shape[1:3])] * image.shape[0]
        try:
            found = from_core(bboxes, sizes, label=label, phrases=phrases)
        except ValueError as e:
            raise ValueError(f"{cls.NODE}: {e}") from None
        return io.NodeOutput(found, _batch_text([d.describe() for d in found]))


CORE_BOX_NODES = [BoxesToBoundingBox, BoundingBoxToBoxes] if core_has_bounding_boxes() else []
