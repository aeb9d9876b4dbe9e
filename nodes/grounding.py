"""The grounding chain as nodes: instruction -> phrases -> boxes -> chosen boxes -> MASK.

    Noun Phrase Extract -> GroundingDINO Detect -> CLIP Filter -> Select Boxes -> SAM Mask

The detector runs once per image for every candidate phrase (and the anchor) together; the CLIP
filter then scores the phrases on those boxes instead of running the detector per phrase as the
reference does. Each node also returns a readable `info` string, and every image of a batch gets
its own boxes and mask.
"""

from __future__ import annotations

import logging

import comfy.model_management as mm
import comfy.utils
import torch
from comfy_api.latest import io

from ..grounding import masks as mask_ops
from ..grounding.clip_score import pick_phrase
from ..grounding.detections import Detections
from ..grounding.phrases import MODES, PhraseSet, detector_phrase, extract
from ..grounding.selection import select
from .images import rgb
from .types import Boxes, ClipModel, GroundingDinoModel, Phrases, SamModel
from .validation import ValidatedNode

log = logging.getLogger("grounded-ip2p")
CATEGORY = "grounded-ip2p/grounding"


def _batch_text(lines: list[str]) -> str:
    return lines[0] if len(lines) == 1 else "\n".join(f"image {i}: {t}" for i, t in enumerate(lines))


def _check_batch(node: str, image: torch.Tensor, boxes: list[Detections]) -> None:
    if len(boxes) != image.shape[0]:
        raise ValueError(
            f"{node}: the boxes are for {len(boxes)} image(s) but {image.shape[0]} image(s) "
            f"are connected. Connect the same image batch that was detected."
        )
    for i, det in enumerate(boxes):
        if tuple(det.image_size) != tuple(image.shape[1:3]):
            raise ValueError(
                f"{node}: image {i} is {image.shape[2]}x{image.shape[1]} px but its boxes were "
                f"found on a {det.image_size[1]}x{det.image_size[0]} px image. Connect the "
                f"image that went into GroundingDINO Detect."
            )


# Inputs that Grounded Mask shares with the nodes it runs.
def box_threshold_input():
    return io.Float.Input(
        "box_threshold",
        default=0.3,
        min=0.0,
        max=1.0,
        step=0.01,
        tooltip="Keep boxes whose best phrase-token score is above this (reference 0.3). "
        "Lower finds more, including wrong objects. OWLv2's scores run lower: about 0.1 suits it.",
    )


def dilation_input():
    return io.Int.Input(
        "dilation",
        default=11,
        min=0,
        max=255,
        tooltip="Grow the mask by a square of this many pixels (reference: 11) so the edit "
        "covers the object's rim. 0 = off.",
    )


def no_detection_input():
    return io.Combo.Input(
        "no_detection",
        options=["edit whole image", "keep image"],
        default="edit whole image",
        tooltip="When nothing was detected: edit the whole image (plain InstructPix2Pix), "
        "or return the image unchanged (an all-zero mask). The info output says when it happened.",
    )


class NounPhraseExtract(ValidatedNode):
    NODE = "NounPhraseExtract"

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GroundedIP2P_NounPhraseExtract",
            display_name="Noun Phrase Extract",
            category=CATEGORY,
            description="Reads an edit instruction: the phrases a detector should look for, the object the "
            "edit is about (pronouns resolved, locating words removed) and the simplified "
            "instruction for the editor. Uses the installed English spaCy pipeline; offline.",
            inputs=[
                io.String.Input(
                    "instruction",
                    multiline=True,
                    default="make the left car purple",
                    tooltip="The edit instruction, e.g. 'make the left car purple'.",
                ),
                io.Combo.Input(
                    "mode",
                    options=list(MODES),
                    default="guided",
                    tooltip="guided: GGIP2P's instruction understanding (target, plural, left/right, "
                    "'the lamp right of the bed', additions, pronouns). noun chunks: the "
                    "GIP2P reference, every noun phrase, the CLIP filter picks.",
                ),
            ],
            outputs=[
                Phrases.Output(
                    display_name="phrases", tooltip="Candidates, target and analysis, for GroundingDINO Detect."
                ),
                io.String.Output(
                    display_name="target", tooltip="The phrase the detector looks for (empty for a global edit)."
                ),
                io.String.Output(
                    display_name="simplified", tooltip="The instruction without locating words, for CLIP Text Encode."
                ),
                io.String.Output(display_name="info", tooltip="What was understood, readable."),
            ],
        )

    @classmethod
    def execute(cls, instruction, mode) -> io.NodeOutput:
        try:
            ps = extract(instruction, mode=mode)
        except RuntimeError as e:  # no English spaCy pipeline installed
            raise RuntimeError(f"{cls.NODE}: {e}") from None
        if not ps.candidates:
            log.info("%s: no object to ground in %r: a whole-image edit.", cls.NODE, instruction)
        return io.NodeOutput(ps, ps.target or "", ps.simplified, ps.summary())


class GroundingDINODetect(ValidatedNode):
    NODE = "GroundingDINODetect"

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GroundedIP2P_GroundingDINODetect",
            display_name="GroundingDINO Detect",
            category=CATEGORY,
            description="Finds the boxes of phrases in each image with the loaded detector (GroundingDINO, "
            "MM-Grounding-DINO or OWLv2). All phrases of an image are detected in one pass (prompt "
            "'car . tree .', or one OWLv2 query per phrase); every box is labelled with its phrase.",
            inputs=[
                GroundingDinoModel.Input(
                    "grounding_dino", tooltip="From Load GroundingDINO (GroundingDINO, MM-Grounding-DINO or OWLv2)."
                ),
                io.Image.Input("image", tooltip="The image(s) to search; each image of a batch gets its own boxes."),
                box_threshold_input(),
                io.Float.Input(
                    "text_threshold",
                    default=0.25,
                    min=0.0,
                    max=1.0,
                    step=0.01,
                    tooltip="A phrase's token score above this counts for labelling a box (reference 0.25). "
                    "Ignored by OWLv2, which scores each phrase as a whole, not per token.",
                ),
                Phrases.Input(
                    "phrases",
                    optional=True,
                    tooltip="From Noun Phrase Extract. Connected: its candidates and anchor are detected.",
                ),
                io.String.Input(
                    "prompt",
                    default="",
                    optional=True,
                    tooltip="Used when 'phrases' is not connected: phrases separated by '.' or ',' "
                    "(e.g. 'car . tree').",
                ),
            ],
            outputs=[Boxes.Output(display_name="boxes"), io.String.Output(display_name="info")],
        )

    @classmethod
    def execute(cls, grounding_dino, image, box_threshold, text_threshold, phrases=None, prompt="") -> io.NodeOutput:
        image = rgb(image, cls.NODE)
        if phrases is None:
            words = [detector_phrase(p) for p in prompt.replace(",", ".").split(".")]
            phrases = PhraseSet(prompt, [w for w in dict.fromkeys(words) if w], simplified=prompt)
        to_detect = phrases.to_detect
        if to_detect:
            detector = grounding_dino.ready()
            bar = comfy.utils.ProgressBar(image.shape[0])
            found = []
            for i in range(image.shape[0]):
                mm.throw_exception_if_processing_interrupted()
                found += detector.detect(
                    image[i : i + 1],
                    to_detect,
                    box_threshold,
                    text_threshold,
                    interrupt=mm.throw_exception_if_processing_interrupted,
                )
                bar.update(1)
        else:
            note = "no phrase to detect (a global edit)"
            found = [Detections.empty(tuple(image.shape[1:3]), note) for _ in range(image.shape[0])]
        for det in found:
            det.phrase_set = phrases
        return io.NodeOutput(found, _batch_text([d.describe() for d in found]))


class ClipFilter(ValidatedNode):
    NODE = "ClipFilter"

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GroundedIP2P_ClipFilter",
            display_name="CLIP Filter",
            category=CATEGORY,
            description="Picks the phrase that names what is really in the image: each candidate's detected "
            "region is cropped and scored against the phrase with CLIP (GIP2P's CLIP-score "
            "filtering); a phrase naming new content is usually not found or scores low. Uses "
            "the boxes already detected: no extra detector pass.",
            inputs=[
                ClipModel.Input("clip", tooltip="From Load CLIP (filter)."),
                io.Image.Input("image", tooltip="The image(s) the boxes were detected on."),
                Boxes.Input("boxes", tooltip="From GroundingDINO Detect (all candidates' boxes)."),
                io.Combo.Input(
                    "choice",
                    options=["prefer analysed target", "highest CLIP score"],
                    default="prefer analysed target",
                    tooltip="prefer analysed target: keep the target Noun Phrase Extract understood "
                    "when it was detected; CLIP decides otherwise. highest CLIP score: the "
                    "reference's arg-max over all candidates.",
                ),
            ],
            outputs=[
                Boxes.Output(
                    display_name="boxes",
                    tooltip="The chosen phrase's boxes (the others travel along for Select Boxes).",
                ),
                io.String.Output(display_name="phrase", tooltip="The chosen phrase."),
                io.String.Output(display_name="scores", tooltip="Each candidate's CLIP score (0 = not detected)."),
            ],
        )

    @classmethod
    def execute(cls, clip, image, boxes, choice) -> io.NodeOutput:
        image = rgb(image, cls.NODE)
        _check_batch(cls.NODE, image, boxes)
        scorer = None
        bar = comfy.utils.ProgressBar(len(boxes))
        chosen, phrases_out, tables = [], [], []
        for i, det in enumerate(boxes):
            mm.throw_exception_if_processing_interrupted()
            ps = det.phrase_set
            candidates = ps.candidates if ps is not None else list(dict.fromkeys(det.labels))
            if not candidates or len(det) == 0:
                out = det.subset([], note=det.note or "nothing detected")
                winner, table = "", "no candidate was detected"
            else:
                scorer = scorer or clip.ready()
                pick = pick_phrase(image[i], det, candidates, scorer)
                winner, table = pick.phrase, pick.table()
                if (
                    choice == "prefer analysed target"
                    and ps is not None
                    and ps.target
                    and len(det.with_label(ps.target))
                ):
                    winner = ps.target
                    table += f"\nkept the analysed target '{winner}'"
                out = det.with_label(winner)
                out.note = f"CLIP filter chose '{winner}'"
            out.candidates, out.phrase_set, out.chosen_phrase = det, ps, winner or None
            chosen.append(out)
            phrases_out.append(winner)
            tables.append(table)
            bar.update(1)
        return io.NodeOutput(chosen, _batch_text(phrases_out), _batch_text(tables))


class SelectBoxes(ValidatedNode):
    NODE = "SelectBoxes"

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GroundedIP2P_SelectBoxes",
            display_name="Select Boxes (guided)",
            category=CATEGORY,
            description="Chooses the boxes the instruction is about (GGIP2P): one box for a singular target, "
            "all for a plural one; 'the left car', 'the nearest car', 'the second car from the left'; "
            "'the lamp right of the bed' (checked to really be on that side); 'his shirt' (the shirt on "
            "the man); for additions a rectangle next to the anchor where the new object goes.",
            inputs=[
                Boxes.Input("boxes", tooltip="From CLIP Filter or GroundingDINO Detect (fed by Noun Phrase Extract)."),
                io.Boolean.Input(
                    "guided",
                    default=True,
                    label_on="guided (GGIP2P)",
                    label_off="all boxes (GIP2P)",
                    tooltip="Off: every box of the chosen phrase, as the GIP2P reference.",
                ),
            ],
            outputs=[Boxes.Output(display_name="boxes"), io.String.Output(display_name="info")],
        )

    @classmethod
    def execute(cls, boxes, guided) -> io.NodeOutput:
        out = []
        for det in boxes:
            everything = det.candidates or det
            ps: PhraseSet | None = det.phrase_set
            target = det.chosen_phrase or (ps.target if ps else None)
            if target is None and len(everything):
                target = everything.labels[int(everything.scores.argmax())]
            analysis = ps.analysis if (guided and ps is not None) else None
            chosen = select(analysis, everything, target, ps.anchor if ps else None)
            chosen.phrase_set = ps
            out.append(chosen)
        return io.NodeOutput(out, _batch_text([d.describe() for d in out]))


class SAMMask(ValidatedNode):
    NODE = "SAMMask"

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GroundedIP2P_SAMMask",
            display_name="SAM Mask",
            category=CATEGORY,
            description="Segments the boxes with Segment Anything and returns the MASK to edit (1 = edit). "
            "Rectangles from Select Boxes (additions, global edits) are filled as they are. When "
            "nothing was detected, the chosen fallback applies and the info output says so.",
            inputs=[
                SamModel.Input("sam", tooltip="From Load SAM."),
                io.Image.Input("image", tooltip="The image(s) the boxes were found on."),
                Boxes.Input("boxes", tooltip="From Select Boxes, CLIP Filter or GroundingDINO Detect."),
                io.Combo.Input(
                    "output",
                    options=["union", "per instance"],
                    default="union",
                    tooltip="union: one mask per image with every box's segment (the reference). "
                    "per instance: one mask per box, all images' boxes in one batch.",
                ),
                dilation_input(),
                io.Float.Input(
                    "feather",
                    default=0.0,
                    min=0.0,
                    max=128.0,
                    step=0.5,
                    tooltip="Soften the mask edge by this many pixels (Gaussian). 0 = hard edge.",
                ),
                no_detection_input(),
            ],
            outputs=[io.Mask.Output(display_name="mask"), io.String.Output(display_name="info")],
        )

    @classmethod
    def execute(cls, sam, image, boxes, output, dilation, feather, no_detection) -> io.NodeOutput:
        image = rgb(image, cls.NODE)
        _check_batch(cls.NODE, image, boxes)
        segmenter = None
        bar = comfy.utils.ProgressBar(len(boxes))
        per_image, infos = [], []
        for i, det in enumerate(boxes):
            mm.throw_exception_if_processing_interrupted()
            h, w = det.image_size
            det = det.clipped()
            if len(det) == 0:
                fill = 1.0 if no_detection == "edit whole image" else 0.0
                instances = torch.full((1, h, w), fill)
                reason = det.note or "nothing detected"
                infos.append(f"{reason}: fallback '{no_detection}'")
                log.warning("%s: image %d: %s; fallback: %s.", cls.NODE, i, reason, no_detection)
            elif det.fill:
                instances = torch.stack([mask_ops.rectangle((h, w), b) for b in det.boxes])
                infos.append(f"{det.note or 'rectangle'}: {len(det)} rectangle(s)")
            else:
                segmenter = segmenter or sam.ready()
                instances = segmenter.segment(
                    image[i], det.boxes, union=output == "union", interrupt=mm.throw_exception_if_processing_interrupted
                )
                infos.append(f"{len(det)} object(s) segmented: {', '.join(dict.fromkeys(det.labels))}")
            if output == "union":  # dilation commutes with the union: grow one mask, not N
                instances = instances.amax(0, keepdim=True)
            instances = mask_ops.feather(mask_ops.dilate(instances.float(), dilation), feather)
            per_image.append(instances)
            bar.update(1)
        mask = torch.cat(per_image)
        return io.NodeOutput(mask.clamp(0, 1).to(mm.intermediate_device()), _batch_text(infos))


GROUNDING_NODES = [NounPhraseExtract, GroundingDINODetect, ClipFilter, SelectBoxes, SAMMask]
