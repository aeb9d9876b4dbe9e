"""Grounded Mask: the whole instruction -> mask chain in one node, for the common case.

It runs the separate nodes' own steps with their defaults (Noun Phrase Extract in guided mode,
GroundingDINO Detect, CLIP Filter when a CLIP model is connected, Select Boxes, SAM Mask, Preview
Boxes), so its mask is theirs; the separate nodes stay for inspecting or replacing a step.
"""

from __future__ import annotations

from comfy_api.latest import io, ui

from .grounding import (
    CATEGORY,
    ClipFilter,
    GroundingDINODetect,
    NounPhraseExtract,
    SAMMask,
    SelectBoxes,
    box_threshold_input,
    dilation_input,
    no_detection_input,
)
from .preview import PreviewBoxes
from .types import Boxes, ClipModel, GroundingDinoModel, SamModel
from .validation import ValidatedNode

# The separate nodes' defaults, for the inputs this node does not show.
TEXT_THRESHOLD = 0.25
CLIP_CHOICE = "prefer analysed target"
MASK_OUTPUT = "union"
FEATHER = 0.0
PREVIEW_OPACITY = 0.45


class GroundedMask(ValidatedNode):
    NODE = "GroundedMask"

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GroundedIP2P_GroundedMask",
            display_name="Grounded Mask (instruction → mask)",
            category=CATEGORY,
            description="The mask of what an edit instruction is about, in one node: Noun Phrase Extract → "
            "GroundingDINO Detect → CLIP Filter → Select Boxes → SAM Mask with their defaults. "
            "Use the separate nodes to see or change a step.",
            is_output_node=True,
            inputs=[
                GroundingDinoModel.Input("grounding_dino", tooltip="From Load GroundingDINO."),
                SamModel.Input("sam", tooltip="From Load SAM."),
                io.Image.Input("image", tooltip="The photo(s) to edit; each image of a batch gets its own mask."),
                io.String.Input(
                    "instruction",
                    multiline=True,
                    default="make the left car purple",
                    tooltip="The edit instruction, e.g. 'make the left car purple'.",
                ),
                box_threshold_input(),
                dilation_input(),
                no_detection_input(),
                ClipModel.Input(
                    "clip",
                    optional=True,
                    tooltip="From Load CLIP (filter). Connected: CLIP checks which phrase is really in the image "
                    "(GIP2P's filter). Not connected: the analysed target is used as it is.",
                ),
            ],
            outputs=[
                io.Mask.Output(
                    display_name="mask", tooltip="1 = edit. For IP2P Blended Sampler or Restore Background."
                ),
                io.Image.Output(display_name="preview", tooltip="The boxes and the mask drawn on the image."),
                io.String.Output(
                    display_name="simplified", tooltip="The instruction without locating words, for CLIP Text Encode."
                ),
                io.String.Output(display_name="info", tooltip="What each step understood, found and chose."),
                Boxes.Output(display_name="boxes", tooltip="The chosen boxes, for Preview Boxes or SAM Mask."),
            ],
        )

    @classmethod
    def execute(
        cls, grounding_dino, sam, image, instruction, box_threshold, dilation, no_detection, clip=None
    ) -> io.NodeOutput:
        phrases, _, simplified, understood = NounPhraseExtract.execute(instruction, "guided").args
        boxes, detected = GroundingDINODetect.execute(
            grounding_dino, image, box_threshold, TEXT_THRESHOLD, phrases=phrases
        ).args
        info = [f"understood: {understood}", f"detected: {detected}"]
        if clip is not None:
            boxes, chosen, _ = ClipFilter.execute(clip, image, boxes, CLIP_CHOICE).args
            info.append(f"CLIP filter chose: {chosen or 'nothing'}")
        boxes, selected = SelectBoxes.execute(boxes, True).args
        mask, segmented = SAMMask.execute(sam, image, boxes, MASK_OUTPUT, dilation, FEATHER, no_detection).args
        preview = PreviewBoxes.execute(image, boxes, PREVIEW_OPACITY, mask=mask).args[0]
        info += [f"selected: {selected}", f"mask: {segmented}"]
        text = "\n".join(info)
        shown = {**ui.PreviewImage(preview, cls=cls).as_dict(), **ui.PreviewText(text).as_dict()}
        return io.NodeOutput(mask, preview, simplified, text, boxes, ui=shown)
