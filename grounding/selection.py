"""Guided box selection (GGIP2P, docs/method.md §2.5-2.8): which of the detected boxes the edit is for.

Given the instruction's analysis and the boxes of one image, `select` keeps one box for a
singular target and every box for a plural one, resolves "the left car" / "the second car from
the left" among the target's boxes, "the lamp right of the bed" against the anchor's boxes (and,
unlike GGIP2P, rejects a candidate that is not on the named side), and turns additions ("add a
vase to the left of the lamp") into a rectangle where the new object goes.

Rectangles that should be filled as they are (additions, half-image and whole-image regions)
are returned as boxes with `fill` set: the mask node paints them instead of running
SAM on them. Every result carries a `note` that says what was chosen and why.
"""

from __future__ import annotations

from typing import Optional

import torch

from .detections import Detections
from .instruction import InstructionAnalysis

DIRECTIONS = ("left", "right", "top", "bottom", "center", "front", "back")
SIDES = ("left", "right", "top", "bottom")
CONTAINMENT = 0.9  # GGIP2P: a box inside another by more than this is a duplicate
MIN_ADD_SIZE = 50  # GGIP2P clamps the new object's size to at least 50 px
ADD_SIZE_RATIO = 1.0  # size prior for additions: the new object as large as its anchor


def _area(b: torch.Tensor) -> torch.Tensor:
    return (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)


def _centres(b: torch.Tensor) -> torch.Tensor:
    return torch.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], dim=1)


def containment_filter(det: Detections, plural: bool, threshold: float = CONTAINMENT) -> Detections:
    """Drop duplicate boxes (GGIP2P, docs/method.md §2.5): when one box lies inside another (intersection over its
    own area above `threshold`), a singular target keeps the smaller box (the object, not a group
    around it) and a plural target keeps the larger one (the group). Identical boxes keep one."""
    n = len(det)
    if n < 2:
        return det
    b = det.boxes
    lt = torch.maximum(b[:, None, :2], b[None, :, :2])
    rb = torch.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = _area(b).clamp(min=1e-6)
    drop: set[int] = set()
    for i in range(n):
        for j in range(n):
            if i == j or i in drop or j in drop:
                continue
            if inter[i, j] / area[j] > threshold:  # j lies inside i
                if torch.equal(b[i], b[j]):
                    drop.add(
                        max(i, j) if det.scores[i] == det.scores[j] else (i if det.scores[i] < det.scores[j] else j)
                    )
                else:
                    larger, smaller = (i, j) if area[i] >= area[j] else (j, i)
                    drop.add(smaller if plural else larger)
    return det.subset([k for k in range(n) if k not in drop])


def pick_direction(det: Detections, direction: str, ordinal: Optional[int] = None) -> Detections:
    """The box at `direction` ("the left car"), or the `ordinal`-th counted from there ("the second
    car from the left"). Boxes are ordered by their centres (GGIP2P compares edges, which lets a
    wide box reaching far left win over a car that is really further left); "center" takes the
    box nearest the image centre; "front" (the nearest car, in the foreground) the largest box and
    "back" (the farthest, in the background) the smallest: among objects of one kind, the nearer
    looks bigger. An ordinal beyond the count gives no box."""
    if len(det) == 0:
        return det
    order = _order_from(det, direction)
    k = (ordinal or 1) - 1
    if k >= len(order):
        return det.subset([], note=f"only {len(det)} box(es): no number {ordinal} from the {direction}")
    return det.subset([int(order[k])])


def _order_from(det: Detections, direction: str) -> torch.Tensor:
    """Box indices, first the one furthest toward `direction`."""
    c = _centres(det.boxes)
    h, w = det.image_size
    if direction == "left":
        order = torch.argsort(c[:, 0])
    elif direction == "right":
        order = torch.argsort(c[:, 0], descending=True)
    elif direction == "top":
        order = torch.argsort(c[:, 1])
    elif direction == "bottom":
        order = torch.argsort(c[:, 1], descending=True)
    elif direction == "center":
        order = torch.argsort(((c - torch.tensor([w / 2, h / 2])) ** 2).sum(1))
    elif direction == "front":
        order = torch.argsort(_area(det.boxes), descending=True, stable=True)
    elif direction == "back":
        order = torch.argsort(_area(det.boxes), stable=True)
    else:
        raise ValueError(f"unknown direction {direction!r}")
    return order


def pick_all_toward(det: Detections, direction: str) -> Detections:
    """For a plural target with a place ("the cars on the left", "the trees in the background"):
    the boxes whose centre lies in that half of the image (left, right, top, bottom), in its
    middle third (center), at least half as large as the largest (front) or at most twice as
    large as the smallest (back). When none is there, the one box furthest toward it."""
    c = _centres(det.boxes)
    h, w = det.image_size
    area = _area(det.boxes)
    inside = {
        "left": c[:, 0] < w / 2,
        "right": c[:, 0] >= w / 2,
        "top": c[:, 1] < h / 2,
        "bottom": c[:, 1] >= h / 2,
        "center": ((c[:, 0] - w / 2).abs() <= w / 6) & ((c[:, 1] - h / 2).abs() <= h / 6),
        "front": area >= area.max() / 2,
        "back": area <= area.min() * 2,
    }[direction]
    keep = [i for i in range(len(det)) if bool(inside[i])]
    if not keep:
        return pick_direction(det, direction)
    return det.subset(keep)


def on_side(box: torch.Tensor, anchor: torch.Tensor, direction: str) -> bool:
    """Whether `box` lies on `direction`'s side of `anchor`: its centre is beyond the anchor's
    centre by at least a quarter of the anchor's extent on that axis."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    ax, ay = (anchor[0] + anchor[2]) / 2, (anchor[1] + anchor[3]) / 2
    aw, ah = anchor[2] - anchor[0], anchor[3] - anchor[1]
    if direction == "left":
        return bool(cx <= ax - aw / 4)
    if direction == "right":
        return bool(cx >= ax + aw / 4)
    if direction == "top":
        return bool(cy <= ay - ah / 4)
    if direction == "bottom":
        return bool(cy >= ay + ah / 4)
    return True


def _side_cost(box: torch.Tensor, anchor: torch.Tensor, direction: str) -> float:
    """GGIP2P's L1 cost: the gap between the facing edges plus the offset across that axis."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    ax, ay = (anchor[0] + anchor[2]) / 2, (anchor[1] + anchor[3]) / 2
    if direction == "left":
        return float(abs(box[2] - anchor[0]) + abs(cy - ay))
    if direction == "right":
        return float(abs(box[0] - anchor[2]) + abs(cy - ay))
    if direction == "top":
        return float(abs(box[3] - anchor[1]) + abs(cx - ax))
    if direction == "bottom":
        return float(abs(box[1] - anchor[3]) + abs(cx - ax))
    return float(abs(cx - ax) + abs(cy - ay))


def pick_relative(targets: Detections, anchor_box: torch.Tensor, direction: Optional[str]) -> Detections:
    """The target box on `direction`'s side of the anchor, nearest to it. Boxes on the wrong side
    are rejected (GGIP2P takes the nearest regardless). Without a direction ("the cup on the
    table") the boxes mostly inside the anchor win, else the nearest one."""
    if len(targets) == 0:
        return targets
    if direction in ("left", "right", "top", "bottom"):
        valid = [i for i in range(len(targets)) if on_side(targets.boxes[i], anchor_box, direction)]
        if not valid:
            return targets.subset([], note=f"no {targets.labels[0]} is {direction} of the anchor")
        best = min(valid, key=lambda i: _side_cost(targets.boxes[i], anchor_box, direction))
        return targets.subset([best])
    inside = _intersection_over_own_area(targets.boxes, anchor_box)
    if float(inside.max()) > 0.5:
        return targets.subset([int(inside.argmax())])
    best = min(range(len(targets)), key=lambda i: _side_cost(targets.boxes[i], anchor_box, None))
    return targets.subset([best])


def _intersection_over_own_area(boxes: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    lt = torch.maximum(boxes[:, :2], other[:2])
    rb = torch.minimum(boxes[:, 2:], other[2:])
    return (rb - lt).clamp(min=0).prod(-1) / _area(boxes).clamp(min=1e-6)


def addition_box(
    anchor_box: torch.Tensor,
    direction: Optional[str],
    image_size: tuple[int, int],
    size_ratio: float = ADD_SIZE_RATIO,
    min_size: int = MIN_ADD_SIZE,
) -> torch.Tensor:
    """Where a new object goes next to `anchor_box` (GGIP2P's placement, docs/method.md §2.7).

    GGIP2P predicts the new object's size with a trained model whose weights are not public; the
    prior here is `size_ratio` times the anchor's size, clamped to [min_size, image size]. Right:
    starts at the anchor's right edge, bottom-aligned; left: ends at its left edge,
    bottom-aligned; top: centred above it; bottom: centred below it; no direction ("put a hat on
    the dog"): the anchor's own box. The result is clipped to the image.
    """
    h, w = image_size
    x1, y1, x2, y2 = (float(v) for v in anchor_box)
    if direction not in ("left", "right", "top", "bottom"):
        box = [x1, y1, x2, y2]
    else:
        bw = min(max((x2 - x1) * size_ratio, min_size), w)
        bh = min(max((y2 - y1) * size_ratio, min_size), h)
        cx = (x1 + x2) / 2
        if direction == "right":
            box = [x2, y2 - bh, x2 + bw, y2]
        elif direction == "left":
            box = [x1 - bw, y2 - bh, x1, y2]
        elif direction == "top":
            box = [cx - bw / 2, y1 - bh, cx + bw / 2, y1]
        else:
            box = [cx - bw / 2, y2, cx + bw / 2, y2 + bh]
    out = torch.tensor(box, dtype=torch.float32)
    out[0::2] = out[0::2].clamp(0, w)
    out[1::2] = out[1::2].clamp(0, h)
    return out


def region_box(image_size: tuple[int, int], direction: Optional[str]) -> torch.Tensor:
    """The part of the image at `direction` ("add a sunset at the top"): a half for a side, the
    middle half of each axis for "center", the lower half for "front" (the foreground of a photo
    is its lower part) and the upper half for "back" (the distance lies toward the horizon); the
    whole image without a direction."""
    h, w = image_size
    return torch.tensor(
        {
            "left": [0, 0, w / 2, h],
            "right": [w / 2, 0, w, h],
            "top": [0, 0, w, h / 2],
            "bottom": [0, h / 2, w, h],
            "center": [w / 4, h / 4, 3 * w / 4, 3 * h / 4],
            "front": [0, h / 2, w, h],
            "back": [0, 0, w, h / 2],
        }.get(direction, [0, 0, w, h]),
        dtype=torch.float32,
    )


def _filled(box: torch.Tensor, label: str, image_size, note: str) -> Detections:
    return Detections(box[None], torch.ones(1), [label], image_size, note, fill=True)


def _best(det: Detections) -> Detections:
    return det.subset([int(det.scores.argmax())]) if len(det) else det


def select(
    analysis: Optional[InstructionAnalysis], detections: Detections, target: Optional[str], anchor: Optional[str] = None
) -> Detections:
    """The boxes the edit is about, on one image.

    analysis: the instruction's analysis (None: reference behaviour, every box of `target`);
    detections: every box found on the image, labelled by phrase; target, anchor: the detector
    phrases of the object to edit and of the reference object. An empty result means nothing
    fits; the mask node then applies the user's no-detection fallback.
    """
    size = detections.image_size
    if analysis is None:
        chosen = detections.with_label(target) if target else detections.subset([])
        return chosen.subset(slice(None), note=f"all {len(chosen)} box(es) of '{target}'")

    anchors = detections.with_label(anchor) if anchor else detections.subset([])
    anchor_box = anchors.boxes[int(anchors.scores.argmax())] if len(anchors) else None
    direction = analysis.direction

    if analysis.kind == "global":
        if analysis.relation == "absolute" and direction in DIRECTIONS:
            # "make the left side of the image brighter"
            return _filled(region_box(size, direction), direction, size, f"scene edit of the {direction} part")
        return _filled(region_box(size, None), "whole image", size, "global edit: the whole image")
    if analysis.kind == "add":
        if analysis.relation == "absolute" and direction in SIDES + ("center",) and len(anchors):
            # "add curtains to the window on the left": the direction picks the anchor, and the
            # new object goes on it, not beside it
            anchor_box = pick_direction(anchors, direction, analysis.ordinal).boxes[0]
            direction = None
        if anchor_box is not None:
            box = addition_box(anchor_box, direction, size)
            where = f"{direction} of" if direction in ("left", "right", "top", "bottom") else "on"
            return _filled(
                box,
                "add",
                size,
                f"addition: a rectangle {where} '{anchor}' (size prior {ADD_SIZE_RATIO:g}x the anchor)",
            )
        region = direction if direction in DIRECTIONS else None
        return _filled(
            region_box(size, region),
            "add",
            size,
            f"addition: the {region} part of the image" if region else "addition with no anchor found: the whole image",
        )

    targets = detections.with_label(target) if target else detections.subset([])
    if len(targets) == 0:
        if analysis.relation == "part" and anchor_box is not None:
            # "his shirt", "the woman's dress": the owner stands in for a part the detector missed
            owner = anchors.subset([int(anchors.scores.argmax())])
            owner.note = f"'{target}' was not detected: its owner '{anchor}' instead"
            return owner
        return targets.subset([], note=f"'{target}' was not detected")
    targets = containment_filter(targets, analysis.plural)
    if analysis.plural:
        if analysis.relation == "absolute" and direction in DIRECTIONS:
            chosen = pick_all_toward(targets, direction)
            chosen.note = f"plural: the {len(chosen)} '{target}' box(es) toward the {direction} of {len(targets)}"
            return chosen
        return targets.subset(slice(None), note=f"plural: all {len(targets)} '{target}' box(es)")
    if analysis.relation in ("relative", "part") and anchor_box is not None:
        chosen = pick_relative(targets, anchor_box, direction if analysis.relation == "relative" else None)
        if len(chosen):
            side = f"{direction} of" if direction else ("of" if analysis.relation == "part" else "at")
            chosen.note = f"the '{target}' {side} '{anchor}'"
        return chosen
    if direction in DIRECTIONS:
        chosen = pick_direction(targets, direction, analysis.ordinal)
        if len(chosen) and not chosen.note:
            nth = f"number {analysis.ordinal} from the" if analysis.ordinal else "the"
            chosen.note = f"{nth} {direction} '{target}' of {len(targets)}"
        return chosen
    chosen = _best(targets)
    chosen.note = f"singular: the best-scoring '{target}' of {len(targets)}"
    return chosen
