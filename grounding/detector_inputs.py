"""What every text-prompted detector (GroundingDINO, MM-Grounding-DINO, OWLv2) takes and gives in
the same form: images from ComfyUI, one phrase list per image, boxes in the image's pixels."""

from __future__ import annotations

import torch


def image_list(images) -> list[torch.Tensor]:
    """Each image as (H, W, 3): from a ComfyUI IMAGE batch (B, H, W, C) or a list of images of any
    sizes ((H, W, C) or (1, H, W, C)). Grey images are repeated to RGB, alpha is ignored."""
    if isinstance(images, torch.Tensor):
        images = list(images) if images.ndim == 4 else [images]
    result = []
    for image in images:
        image = image[0] if image.ndim == 4 and image.shape[0] == 1 else image
        if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
            raise ValueError(f"detect expects ComfyUI images (H, W, 3), got shape {tuple(image.shape)}")
        result.append(image.expand(-1, -1, 3) if image.shape[-1] == 1 else image[..., :3])
    return result


def phrases_per_image(phrases, count: int) -> list[list[str]]:
    """One phrase list per image, from one shared list (or a single phrase) or one list per image."""
    if isinstance(phrases, str):
        phrases = [phrases]
    phrases = list(phrases)
    if all(isinstance(p, str) for p in phrases):
        return [phrases] * count
    if len(phrases) != count:
        raise ValueError(f"{len(phrases)} phrase lists for {count} images: give one list per image, or one shared list")
    return [[p] if isinstance(p, str) else list(p) for p in phrases]


def pixel_boxes(boxes: torch.Tensor, height: int, width: int, frame: tuple[int, int] | None = None) -> torch.Tensor:
    """Normalised (cx, cy, w, h) to pixel (x1, y1, x2, y2) in the image, clipped to it.

    `frame` is the (height, width) in pixels that the normalised coordinates span when it is not
    the image itself (OWLv2's: the image padded to a square at its bottom and right).
    """
    frame_h, frame_w = frame or (height, width)
    cx, cy, w, h = boxes.unbind(-1)
    xyxy = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)
    xyxy = xyxy * torch.tensor([frame_w, frame_h, frame_w, frame_h], dtype=xyxy.dtype, device=xyxy.device)
    xyxy[:, 0::2] = xyxy[:, 0::2].clamp(0, width)
    xyxy[:, 1::2] = xyxy[:, 1::2].clamp(0, height)
    return xyxy
