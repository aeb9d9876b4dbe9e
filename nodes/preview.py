"""Preview Boxes: draws the boxes with phrase and score and overlays the mask, so an artist sees
why the mask is what it is."""

from __future__ import annotations

import numpy as np
import torch
from comfy_api.latest import io, ui
from PIL import Image, ImageDraw, ImageFont

from .images import rgb
from .types import Boxes
from .validation import ValidatedNode

PALETTE = [(255, 64, 64), (64, 160, 255), (64, 220, 96), (255, 200, 40), (200, 90, 255), (40, 220, 220)]
MASK_TINT = np.array([255, 40, 40], dtype=np.float32)


def draw(image: torch.Tensor, det, mask: torch.Tensor | None, opacity: float) -> torch.Tensor:
    """One (H, W, 3) image with the mask tinted red and each box outlined and labelled."""
    pixels = image.cpu().float().numpy() * 255.0
    if mask is not None:
        m = mask.cpu().float().numpy()[..., None] * opacity
        pixels = pixels * (1 - m) + MASK_TINT * m
    canvas = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    pen = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    width = max(2, round(min(canvas.size) / 200))
    colours = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(dict.fromkeys(det.labels))}
    for box, score, label in zip(det.boxes.tolist(), det.scores.tolist(), det.labels):
        colour = colours[label]
        pen.rectangle(box, outline=colour, width=width)
        text = label if det.fill else f"{label} {score:.2f}"
        x, y = box[0], max(0, box[1] - 12)
        left, top, right, bottom = pen.textbbox((x, y), text, font=font)
        pen.rectangle((left - 2, top - 1, right + 2, bottom + 1), fill=colour)
        pen.text((x, y), text, fill=(0, 0, 0), font=font)
    return torch.from_numpy(np.asarray(canvas).astype(np.float32) / 255.0)


class PreviewBoxes(ValidatedNode):
    NODE = "PreviewBoxes"

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GroundedIP2P_PreviewBoxes",
            display_name="Preview Boxes",
            category="grounded-ip2p/grounding",
            description="Shows each image with its boxes (phrase and score) and the mask in red.",
            is_output_node=True,
            inputs=[
                io.Image.Input("image", tooltip="The image(s) the boxes were found on."),
                Boxes.Input("boxes", tooltip="Any boxes output of this pack."),
                io.Mask.Input("mask", optional=True, tooltip="Optional: the mask to overlay (from SAM Mask)."),
                io.Float.Input(
                    "mask_opacity",
                    default=0.45,
                    min=0.0,
                    max=1.0,
                    step=0.05,
                    tooltip="How strongly the mask is tinted red.",
                ),
            ],
            outputs=[io.Image.Output(display_name="image", tooltip="The drawn preview, to save or compare.")],
        )

    @classmethod
    def execute(cls, image, boxes, mask_opacity, mask=None) -> io.NodeOutput:
        image = rgb(image, cls.NODE)
        if len(boxes) != image.shape[0]:
            raise ValueError(
                f"{cls.NODE}: {len(boxes)} box set(s) for {image.shape[0]} image(s); connect the "
                f"image batch that was detected."
            )
        masks = None
        if mask is not None:
            masks = mask if mask.ndim == 3 else mask[None]
            masks = torch.nn.functional.interpolate(masks[:, None].float(), size=image.shape[1:3], mode="bilinear")[
                :, 0
            ]
        frames = []
        for i, det in enumerate(boxes):
            m = None if masks is None else masks[min(i, masks.shape[0] - 1)]
            frames.append(draw(image[i], det, m, mask_opacity))
        out = torch.stack(frames)
        return io.NodeOutput(out, ui=ui.PreviewImage(out, cls=cls))
