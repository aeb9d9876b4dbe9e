"""Detections: the boxes of one image, with their scores and phrase labels.

This is the payload of the pack's box type between nodes (one `Detections` per image of a
batch). Boxes are pixel `xyxy` in the coordinates of the image they were detected on, so SAM,
the CLIP crops and the preview can use them without knowing the detector's input size.

What each node adds on the way, in named fields:
- GroundingDINO Detect: `phrases` (what it searched for), `phrase_scores` (every box against every
  phrase) and `phrase_set` (Noun Phrase Extract's analysis, which the later nodes select by);
- CLIP Filter: `candidates` (everything detected, before the filter) and `chosen_phrase`;
- Select Boxes: `fill` when the boxes are rectangles to paint rather than objects to segment.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .phrases import PhraseSet


@dataclass
class Detections:
    """Boxes found on one image.

    boxes: (N, 4) float32 pixel xyxy; scores: (N,) float32 in [0, 1]; labels: the phrase each box
    was detected for (one of the phrases asked for); image_size: (height, width) of the image the
    boxes refer to. `note` carries a human-readable remark (a fallback taken, a selection made)
    that nodes show to the user. The other fields are described in the module docstring.
    """

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: list[str]
    image_size: tuple[int, int]
    note: str = ""
    phrases: list[str] | None = None
    phrase_scores: torch.Tensor | None = None  # (N, len(phrases))
    phrase_set: PhraseSet | None = None
    candidates: Detections | None = None
    chosen_phrase: str | None = None
    fill: bool = False

    def __post_init__(self):
        self.boxes = torch.as_tensor(self.boxes, dtype=torch.float32).reshape(-1, 4).cpu()
        self.scores = torch.as_tensor(self.scores, dtype=torch.float32).reshape(-1).cpu()
        self.labels = list(self.labels)
        if not (len(self.boxes) == len(self.scores) == len(self.labels)):
            raise ValueError(
                f"Detections: {len(self.boxes)} boxes, {len(self.scores)} scores and "
                f"{len(self.labels)} labels must be the same count"
            )
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))

    @classmethod
    def empty(cls, image_size: tuple[int, int], note: str = "") -> "Detections":
        return cls(torch.zeros(0, 4), torch.zeros(0), [], image_size, note)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index, note: str | None = None) -> "Detections":
        """The detections at `index` (a list of positions, a bool mask or a slice)."""
        if isinstance(index, torch.Tensor) and index.dtype == torch.bool:
            index = index.nonzero().flatten().tolist()
        elif isinstance(index, slice):
            index = list(range(len(self)))[index]
        index = [int(i) for i in index]
        return dataclasses.replace(
            self,
            boxes=self.boxes[index] if index else torch.zeros(0, 4),
            scores=self.scores[index] if index else torch.zeros(0),
            labels=[self.labels[i] for i in index],
            note=self.note if note is None else note,
            phrase_scores=None if self.phrase_scores is None else self.phrase_scores[index],
        )

    def with_label(self, phrase: str) -> "Detections":
        """The detections whose label is `phrase`."""
        return self.subset([i for i, label in enumerate(self.labels) if label == phrase])

    def clipped(self) -> "Detections":
        """Boxes clipped to the image bounds."""
        h, w = self.image_size
        boxes = self.boxes.clone()
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
        return dataclasses.replace(self, boxes=boxes)

    def union_box(self) -> torch.Tensor | None:
        """The box that encloses every box (the reference's `join_bboxes`), or None if empty."""
        if len(self) == 0:
            return None
        return torch.cat([self.boxes[:, :2].min(0).values, self.boxes[:, 2:].max(0).values])

    def describe(self) -> str:
        """One line per box: `label score [x1, y1, x2, y2]`."""
        if len(self) == 0:
            return "no boxes" + (f" ({self.note})" if self.note else "")
        lines = [
            f"{label} {score:.2f} [{', '.join(f'{v:.0f}' for v in box.tolist())}]"
            for label, score, box in zip(self.labels, self.scores.tolist(), self.boxes)
        ]
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)
