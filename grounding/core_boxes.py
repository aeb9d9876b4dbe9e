"""ComfyUI core's boxes (the BOUNDING_BOX type) to and from the pack's `Detections`.

A core box is a dict `{"x", "y", "width", "height"}`: the top-left corner and the size, in pixels
of the image the detector ran on, as RT-DETR, SAM 3 and Create Bounding Boxes write them. It may
carry a `score` and a `label` (RT-DETR's COCO class; SAM 3 gives none). A node's output holds one
list of boxes per image; as an input, core nodes also take one dict or one flat list for every
image of the batch, and so does `from_core`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .detections import Detections
from .lexicon import plural_of
from .phrases import PhraseSet

UNLABELLED = "object"
# Core labels that name a kind of thing the instruction words more precisely ("the man" is an
# RT-DETR "person"). Phrases are matched on their head noun otherwise.
LABEL_HEADS = {
    "person": set(
        "person persons people man men woman women boy boys girl girls child children kid kids "
        "baby babies lady ladies guy guys".split()
    ),
}


def to_core(detections: Sequence[Detections]) -> list[list[dict]]:
    """One list of core boxes per image, clipped to its image, with each box's score and label."""
    out = []
    for det in detections:
        det = det.clipped()
        out.append(
            [
                {"x": x1, "y": y1, "width": x2 - x1, "height": y2 - y1, "score": score, "label": label}
                for (x1, y1, x2, y2), score, label in zip(det.boxes.tolist(), det.scores.tolist(), det.labels)
            ]
        )
    return out


def per_image(bboxes, count: int) -> list[list[dict]]:
    """Core's accepted shapes (a dict, a flat list, one list per image) as `count` lists."""
    if isinstance(bboxes, dict):
        return [[bboxes]] * count
    if not isinstance(bboxes, (list, tuple)):
        raise ValueError(f"expected core bounding boxes (dicts with x, y, width, height), got {type(bboxes).__name__}")
    if not bboxes:
        return [[]] * count
    if all(isinstance(b, dict) for b in bboxes):
        return [list(bboxes)] * count
    if not all(isinstance(frame, (list, tuple)) for frame in bboxes):
        raise ValueError("the boxes mix single boxes and per-image lists of boxes")
    if len(bboxes) == 1:
        return [list(bboxes[0])] * count
    if len(bboxes) != count:
        raise ValueError(
            f"the boxes are for {len(bboxes)} image(s) but {count} image(s) are connected. "
            f"Connect the image batch the boxes were found on."
        )
    return [list(frame) for frame in bboxes]


def _number(box, key: str, where: str) -> float:
    value = box.get(key) if isinstance(box, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where} has no number '{key}' (a core box is a dict with x, y, width, height): {box!r}")
    return float(value)


def _label_of(box: dict, label: str | None, phrases: PhraseSet | None) -> str:
    """`label` if given, else the box's own, else the instruction's target, else "object"."""
    label = label or box.get("label")
    if not label and isinstance(box.get("metadata"), dict):
        label = box["metadata"].get("desc")  # Create Bounding Boxes' description of the box
    if label and str(label).strip():
        return phrase_for(str(label).strip(), phrases)
    return (phrases.target if phrases is not None else None) or UNLABELLED


def phrase_for(label: str, phrases: PhraseSet | None) -> str:
    """The phrase of `phrases` that `label` names (`"car"` -> `"red cars"`), else `label` itself.

    An exact match wins; then a phrase whose head noun (its last word) is the label's head noun,
    its plural, or a word the core label stands for (`"person"` -> `"man"`).
    """
    if phrases is None:
        return label
    wanted = phrases.to_detect
    key = label.lower().strip()
    if key in wanted:
        return key
    head = key.split()[-1] if key else key
    heads = {head, plural_of(head)} | LABEL_HEADS.get(key, set())
    for phrase in wanted:
        if phrase.split()[-1] in heads:
            return phrase
    return label


def _one_image(frame: list, image_size: tuple[int, int], i: int, label: str | None, phrases) -> Detections:
    h, w = image_size
    boxes, scores, labels = [], [], []
    outside = 0
    for j, box in enumerate(frame):
        where = f"box {j} of image {i}"
        x, y = _number(box, "x", where), _number(box, "y", where)
        bw, bh = _number(box, "width", where), _number(box, "height", where)
        x1, x2 = sorted((x, x + bw))
        y1, y2 = sorted((y, y + bh))
        x1, x2 = min(max(x1, 0.0), w), min(max(x2, 0.0), w)
        y1, y2 = min(max(y1, 0.0), h), min(max(y2, 0.0), h)
        if x2 <= x1 or y2 <= y1:
            outside += 1
            continue
        score = _number(box, "score", where) if "score" in box else 1.0
        boxes.append([x1, y1, x2, y2])
        scores.append(min(max(score, 0.0), 1.0))
        labels.append(_label_of(box, label, phrases))
    note = f"{outside} box(es) with no area inside the image dropped" if outside else ""
    det = Detections(torch.tensor(boxes).reshape(-1, 4), torch.tensor(scores), labels, image_size, note)
    det.phrase_set = phrases
    return det


def from_core(
    bboxes, image_sizes: Sequence[tuple[int, int]], label: str | None = None, phrases: PhraseSet | None = None
) -> list[Detections]:
    """The pack's boxes for each image (height, width) from core's boxes.

    Boxes are clipped to their image; one with no area left is dropped (said in the note). `label`,
    when given, names every box; otherwise a box keeps its own label. With `phrases` (Noun Phrase
    Extract's), labels become the phrase they name and unlabelled boxes (SAM 3's) are the target's,
    so Select Boxes finds the instruction's target and anchor among them.
    """
    frames = per_image(bboxes, len(image_sizes))
    label = label.strip() if label else None
    return [_one_image(frame, size, i, label, phrases) for i, (frame, size) in enumerate(zip(frames, image_sizes))]
