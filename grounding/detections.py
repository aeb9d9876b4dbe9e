"""Detections: the boxes of one image, with their scores and phrase labels.

This is the payload of the pack's box type between nodes (one `Detections` per image of a
batch). Boxes are pixel `xyxy` in the coordinates of the image they were detected on, so SAM,
the CLIP crops and the preview can use them without knowing the detector's input size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Detections:
    """Boxes found on one image.

    boxes: (N, 4) float32 pixel xyxy; scores: (N,) float32 in [0, 1]; labels: the phrase each box
    was detected for (one of the phrases asked for); image_size: (height, width) of the image the
    boxes refer to. `note` carries a human-readable remark (a fallback taken, a selection made)
    that nodes show to the user.
    """

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: list[str]
    image_size: tuple[int, int]
    note: str = ""
    extra: dict = field(default_factory=dict)

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
        return Detections(
            self.boxes[index] if index else torch.zeros(0, 4),
            self.scores[index] if index else torch.zeros(0),
            [self.labels[i] for i in index],
            self.image_size,
            self.note if note is None else note,
            self._extra_at(index),
        )

    def _extra_at(self, index: list[int]) -> dict:
        """`extra` for a subset: per-box tensors (first dimension = box count) are indexed too."""
        out = {}
        for key, value in self.extra.items():
            if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] == len(self):
                value = value[index] if index else value[:0]
            out[key] = value
        return out

    def with_label(self, phrase: str) -> "Detections":
        """The detections whose label is `phrase`."""
        return self.subset([i for i, label in enumerate(self.labels) if label == phrase])

    def clipped(self) -> "Detections":
        """Boxes clipped to the image bounds."""
        h, w = self.image_size
        boxes = self.boxes.clone()
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
        return Detections(boxes, self.scores, self.labels, self.image_size, self.note, dict(self.extra))

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
