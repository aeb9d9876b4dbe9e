"""OWLv2: text-prompted boxes from a Hugging Face-format OWLv2 folder, on transformers' own classes.

The folders are the `google/owlv2-*` repositories (config.json with model_type "owlv2",
model.safetensors, the CLIP tokenizer's files and preprocessor_config.json), read with local files
only. `Owlv2Detector.detect` has GroundingDINO's contract (`gdino.GroundingDino.detect`): all phrases
of an image in one forward pass (each phrase is one OWLv2 text query), every box labelled with the
phrase that scores it highest, scores in [0, 1], boxes in the image's pixels.

OWLv2 scores each phrase as a whole (one embedding per query), so there are no token scores for a
`text_threshold` to act on: it is accepted and ignored. The scores and boxes are what transformers'
`Owlv2Processor.post_process_grounded_object_detection` gives, clipped to the image (OWLv2 sees the
image padded to a square, and a box may reach into the padding).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint_files import ModelFileError
from .detections import Detections
from .detector_inputs import image_list, phrases_per_image, pixel_boxes

EXPECTED = (
    "Expected a Hugging Face OWLv2 folder (config.json with model_type owlv2, model.safetensors and the "
    "tokenizer files tokenizer.json, or vocab.json + merges.txt), e.g. google/owlv2-base-patch16-ensemble, "
    "in ComfyUI's models/grounding-dino folder."
)
TOKENIZER_FILES = (("tokenizer.json",), ("vocab.json", "merges.txt"))


class Owlv2LoadError(ModelFileError, RuntimeError):
    """An OWLv2 folder that cannot be loaded; the message names the folder and what was expected."""


def _image_processor(folder: Path, image_size: int):
    """The folder's own preprocessing (preprocessor_config.json), else OWLv2's defaults, at the size
    the model was trained at (its vision config's image_size)."""
    from transformers import Owlv2ImageProcessor

    size = {"height": image_size, "width": image_size}
    if (folder / "preprocessor_config.json").is_file():
        return Owlv2ImageProcessor.from_pretrained(str(folder), local_files_only=True, size=size)
    return Owlv2ImageProcessor(size=size)


def load_owlv2(path: str | Path, device="cpu", dtype: torch.dtype = torch.float32) -> Owlv2Detector:
    """An OWLv2 from a Hugging Face-format folder (nothing is fetched). Raises Owlv2LoadError,
    naming the folder, for anything else."""
    from transformers import AutoConfig, AutoTokenizer, Owlv2ForObjectDetection

    folder = Path(path)
    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise Owlv2LoadError(f"{folder.name}: no readable config.json ({exc}). {EXPECTED}") from exc
    if config.model_type != "owlv2":
        raise Owlv2LoadError(f"{folder.name}: config.json is for a {config.model_type!r} model, not owlv2. {EXPECTED}")
    if not any(all((folder / name).is_file() for name in names) for names in TOKENIZER_FILES):
        raise Owlv2LoadError(
            f"{folder.name}: the CLIP tokenizer's files are missing (the pack ships none for OWLv2). {EXPECTED}"
        )
    try:
        model = Owlv2ForObjectDetection.from_pretrained(str(folder), local_files_only=True, weights_only=True)
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        processor = _image_processor(folder, config.vision_config.image_size)
    except (OSError, ValueError) as exc:
        raise Owlv2LoadError(f"{folder.name}: cannot load the Hugging Face OWLv2 ({exc}). {EXPECTED}") from exc
    model.to(device=device, dtype=dtype).eval()
    model.requires_grad_(False)
    vision = config.vision_config
    variant = f"owlv2 {vision.image_size}px patch{vision.patch_size} ({vision.num_hidden_layers} layers)"
    return Owlv2Detector(model, tokenizer, processor, variant, folder)


class Owlv2Detector:
    """A loaded OWLv2: `model` (transformers' Owlv2ForObjectDetection, eval mode), `tokenizer`,
    `image_processor`, `variant` and `source` (the folder). The same detect API as GroundingDino;
    the device and dtype are read from the model at every call (ComfyUI may move it)."""

    def __init__(self, model, tokenizer, image_processor, variant: str, source: Path, max_batch: int = 4):
        self.model = model
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.variant = variant
        self.source = Path(source)
        self.max_batch = max_batch
        self.forward_passes = 0

    def __repr__(self) -> str:
        return f"Owlv2Detector({self.variant}, {self.source.name})"

    def detect(
        self, images, phrases, box_threshold: float = 0.1, text_threshold: float = 0.0, interrupt=None
    ) -> list[Detections]:
        """Boxes for the phrases on each image (a ComfyUI IMAGE batch or a list of images of any
        sizes; one phrase list shared by all images, or one per image).

        Every box whose best phrase scores above `box_threshold` is kept, best first (no NMS, as
        in transformers' post-processing); `text_threshold` is ignored (see the module). Up to
        `max_batch` images of the same size and phrase count share a forward pass. `interrupt`,
        when given, is called between preparing a batch and its forward pass (it raises to cancel).
        """
        images = image_list(images)
        phrase_lists = [
            list(dict.fromkeys(p for p in ps if isinstance(p, str) and p.strip()))
            for ps in phrases_per_image(phrases, len(images))
        ]
        results: list[Detections | None] = [None] * len(images)
        groups: dict[tuple, list[int]] = {}
        for i, (image, wanted) in enumerate(zip(images, phrase_lists)):
            if not wanted:
                results[i] = Detections.empty(tuple(image.shape[:2]), note="no phrases to look for")
            else:
                groups.setdefault((tuple(image.shape[:2]), len(wanted)), []).append(i)
        with torch.inference_mode():
            for indices in groups.values():
                for start in range(0, len(indices), self.max_batch):
                    chunk = indices[start : start + self.max_batch]
                    batch = torch.stack([images[i] for i in chunk])
                    found = self._detect_batch(batch, [phrase_lists[i] for i in chunk], box_threshold, interrupt)
                    for i, detections in zip(chunk, found):
                        results[i] = detections
        return results

    def pixel_values(self, images: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) in [0, 1] to OWLv2's input, by the folder's own image processor."""
        pixels = images.permute(0, 3, 1, 2).float().cpu()
        return self.image_processor(images=list(pixels), do_rescale=False, return_tensors="pt")["pixel_values"]

    def _forward(self, images: torch.Tensor, phrase_lists: list[list[str]], interrupt=None):
        """(logits (B, patches, P) float32, boxes (B, patches, 4) float32, truncated phrases)."""
        parameter = next(self.model.parameters())
        length = self.model.config.text_config.max_position_embeddings
        flat = [p for ps in phrase_lists for p in ps]
        tokens = self.tokenizer(flat, padding="max_length", truncation=True, max_length=length, return_tensors="pt")
        full = self.tokenizer(flat)["input_ids"]
        truncated = {p for p, ids in zip(flat, full) if len(ids) > length}
        pixels = self.pixel_values(images).to(parameter.device, parameter.dtype)
        if interrupt is not None:
            interrupt()
        self.forward_passes += 1
        out = self.model(pixel_values=pixels, **{k: v.to(parameter.device) for k, v in tokens.items()})
        return out.logits.float().cpu(), out.pred_boxes.float().cpu(), truncated

    def _detect_batch(
        self, images: torch.Tensor, phrase_lists: list[list[str]], threshold: float, interrupt=None
    ) -> list[Detections]:
        logits, boxes, truncated = self._forward(images, phrase_lists, interrupt)
        size = tuple(images.shape[1:3])
        return [_detections(*item, size, threshold, truncated) for item in zip(logits, boxes, phrase_lists)]


def _detections(
    logits: torch.Tensor,
    boxes: torch.Tensor,
    phrases: list[str],
    size: tuple[int, int],
    threshold: float,
    truncated: set[str],
) -> Detections:
    """One image's Detections from OWLv2's output for it (logits (patches, P), boxes normalised to
    the image padded to a square). Labels and order come from the logits, as in transformers: their
    sigmoids round to 1.0 in float32 for confident boxes, and would tie."""
    best_logits, best = logits.max(dim=1)
    scores = best_logits.sigmoid()
    finite = torch.isfinite(boxes).all(dim=1) & torch.isfinite(best_logits)
    keep = ((scores > threshold) & finite).nonzero().flatten()
    keep = keep[best_logits[keep].argsort(descending=True)]
    notes = []
    cut = [p for p in phrases if p in truncated]
    if cut:
        notes.append(f"shortened to fit OWLv2's text queries (16 tokens): {cut}")
    if not finite.all():
        notes.append(f"{int((~finite).sum())} of {len(finite)} detector outputs were NaN and were dropped")
    side = max(size)
    return Detections(
        pixel_boxes(boxes[keep], *size, frame=(side, side)),
        scores[keep],
        [phrases[i] for i in best[keep].tolist()],
        size,
        "; ".join(notes),
        phrases=list(phrases),
        phrase_scores=logits[keep].sigmoid(),
    )
