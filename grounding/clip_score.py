"""The CLIP-score filter of Grounded-InstructPix2Pix (arthur-71/Grounded-Instruct-Pix2Pix,
`external_mask_extractor.py:110-133` and `:152-158`).

An instruction names several noun phrases ("turn the man into a brown bear": "the man",
"a brown bear"). The one to mask is the one that is both detected and looks like its crop: for each
phrase, its boxes are merged into one enclosing box, the image is cropped to it and CLIP scores
the crop against the phrase; a phrase without a box scores 0; the highest raw score wins.

The score is torchmetrics' CLIPScore, as the reference uses it: max(100 * cos(E_image, E_text), 0),
raw phrase text with no prompt template. All crops go through the image encoder in one batch and
all phrases through the text encoder in one batch.

Checkpoints load from local files only, nothing is ever downloaded:
- OpenAI / open_clip state dicts (`.safetensors`, `.bin`, `.pt`, `.pth`; keys `visual.*`,
  `transformer.resblocks.*`, ...), including OpenAI's own TorchScript archives (`ViT-L-14.pt`,
  whose parameters the TorchScript runtime reads) and open_clip training checkpoints
  (`{"state_dict": ...}` with `module.` prefixes; see `checkpoint_files.read_state_dict`);
- Hugging Face transformers CLIP (the reference's `openai/clip-vit-large-patch14`), as a folder
  with `config.json` or as a single `model.safetensors` (`text_model.*` / `vision_model.*` keys).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .checkpoint_files import (
    CheckpointFileError,
    ModelFileError,
    is_torchscript,
    read_state_dict,
)
from .detections import Detections

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
THUMBNAIL_SIZE = 224  # the reference's `crop.thumbnail((224, 224))` before the CLIP processor
CONTEXT_LENGTH = 77
CLIP_HINT = (
    "a complete CLIP model with image and text encoders: an OpenAI/open_clip checkpoint "
    "(e.g. ViT-L-14.pt) or the Hugging Face openai/clip-vit-large-patch14 folder "
    "or its model.safetensors"
)
_TOKENIZER_FILES = ("tokenizer.json", "vocab.json")
# Vision widths whose heads are not 64 wide (open_clip ViT-H/14 and ViT-bigG/14 have 16 heads);
# every other CLIP tower uses 64-wide heads. Only needed for single HF files, which carry no config.
_VISION_HEADS = {1280: 16, 1664: 16}
_OPENAI_METADATA = ("input_resolution", "context_length", "vocab_size")  # scalars in OpenAI's archives


class ClipLoadError(ModelFileError, ValueError):
    """The file is not a CLIP checkpoint this loader can build (the message says why)."""


def _not_clip(name: str, reason: str) -> ClipLoadError:
    return ClipLoadError(f"{name}: {reason}; it should be {CLIP_HINT}.")


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------
def _read_state_dict(path: Path) -> dict:
    """Tensors by name, without running pickled code (`checkpoint_files.read_state_dict`), including
    the parameters of OpenAI's TorchScript archives (read by the TorchScript runtime, not by pickle)."""
    try:
        state_dict = read_state_dict(path, torchscript=True)
    except CheckpointFileError as exc:  # truncated files, pickles with code, unknown formats
        raise _not_clip(path.name, exc.reason) from exc
    if is_torchscript(path):
        # open_clip registers the causal mask as a buffer, which scripting saves with the weights.
        state_dict.pop("attn_mask", None)
    return state_dict


def _count_layers(state_dict: dict, prefix: str) -> int:
    return len({k[len(prefix) :].split(".")[0] for k in state_dict if k.startswith(prefix)})


def _hf_config_from_shapes(sd: dict):
    """A CLIPConfig for a single HF-layout file, which carries no config.json.

    Sizes come from the tensor shapes; heads are width / 64 (true for OpenAI's CLIPs, see
    `_VISION_HEADS` for the exceptions); the activation is OpenAI's quick_gelu, which shapes cannot
    tell: a CLIP trained with another activation needs its folder (with config.json) instead.
    """
    from transformers import CLIPConfig

    text_width = sd["text_model.embeddings.token_embedding.weight"].shape[1]
    vision_width, _, patch, _ = sd["vision_model.embeddings.patch_embedding.weight"].shape
    grid = math.isqrt(sd["vision_model.embeddings.position_embedding.weight"].shape[0] - 1)
    text = dict(
        vocab_size=sd["text_model.embeddings.token_embedding.weight"].shape[0],
        hidden_size=text_width,
        intermediate_size=sd["text_model.encoder.layers.0.mlp.fc1.weight"].shape[0],
        num_hidden_layers=_count_layers(sd, "text_model.encoder.layers."),
        num_attention_heads=text_width // 64,
        max_position_embeddings=sd["text_model.embeddings.position_embedding.weight"].shape[0],
        hidden_act="quick_gelu",
    )
    vision = dict(
        hidden_size=vision_width,
        intermediate_size=sd["vision_model.encoder.layers.0.mlp.fc1.weight"].shape[0],
        num_hidden_layers=_count_layers(sd, "vision_model.encoder.layers."),
        num_attention_heads=_VISION_HEADS.get(vision_width, vision_width // 64),
        patch_size=patch,
        image_size=grid * patch,
        hidden_act="quick_gelu",
    )
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=sd["text_projection.weight"].shape[0])


def _load_hf_file(sd: dict, name: str):
    from transformers import CLIPModel

    sd = {k: v for k, v in sd.items() if not k.endswith("position_ids")}  # buffers, rebuilt by the model
    try:
        model = CLIPModel(_hf_config_from_shapes(sd))
    except KeyError as exc:
        raise _not_clip(name, f"the Hugging Face CLIP layout lacks {exc}") from exc
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise _not_clip(
            name,
            f"its weights do not fit the CLIP read from their shapes "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})",
        )
    return model


def _load_open_clip(sd: dict, name: str):
    from open_clip.model import build_model_from_openai_state_dict

    try:
        # cast_dtype=None: plain LayerNorms, so the model works in whatever single dtype it is cast to.
        model = build_model_from_openai_state_dict(dict(sd), cast_dtype=None).float()
        # The builder loads into float16 linear layers (OpenAI shipped half weights): load again in
        # float32 so that full-precision checkpoints keep their precision.
        model.load_state_dict({k: v for k, v in sd.items() if k not in _OPENAI_METADATA})
    except (KeyError, RuntimeError, AssertionError) as exc:
        detail = " ".join(str(exc).split())[:300]
        raise _not_clip(name, f"its weights do not fit the CLIP read from their shapes ({detail})") from exc
    return model


def _layout_error(sd: dict, name: str) -> ClipLoadError:
    has = {part: any(k.startswith(part) for k in sd) for part in ("vision_model.", "text_model.", "visual.")}
    if has["vision_model."] and not has["text_model."]:
        return _not_clip(name, "this is a CLIP vision model only (no text encoder), like ComfyUI's clip_vision files")
    if has["text_model."] and not has["vision_model."]:
        return _not_clip(
            name,
            "this is a CLIP text encoder only (no image encoder), "
            "like the text encoders in ComfyUI's models/clip folder",
        )
    return _not_clip(
        name,
        "no CLIP image and text encoders found (neither open_clip `visual.*` nor Hugging Face `vision_model.*` keys)",
    )


def load_clip(path) -> "ClipScorer":
    """A ClipScorer from a local CLIP checkpoint (file or Hugging Face folder), on the CPU in float32.

    Raises ClipLoadError naming the file when it is not a complete CLIP model.
    """
    from open_clip.tokenizer import SimpleTokenizer

    path = Path(path)
    if path.is_dir():
        from transformers import AutoTokenizer, CLIPModel

        try:
            model = CLIPModel.from_pretrained(str(path), local_files_only=True).float()
        except Exception as exc:
            first_line = (str(exc).splitlines() or [""])[0]
            reason = f"not a Hugging Face CLIP folder ({type(exc).__name__}: {first_line})"
            raise _not_clip(path.name, reason) from exc
        context = model.config.text_config.max_position_embeddings
        if any((path / f).is_file() for f in _TOKENIZER_FILES):
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        else:
            tokenizer = SimpleTokenizer(context_length=context)
        return ClipScorer(model.eval(), tokenizer, context)
    if not path.is_file():
        raise _not_clip(str(path), "no such file or folder")
    sd = _read_state_dict(path)
    if "visual.proj" in sd or "visual.attnpool.positional_embedding" in sd:
        model = _load_open_clip(sd, path.name)
        context = model.context_length
    elif any(k.startswith("text_model.") for k in sd) and any(k.startswith("vision_model.") for k in sd):
        model = _load_hf_file(sd, path.name)
        context = model.config.text_config.max_position_embeddings
    else:
        raise _layout_error(sd, path.name)
    # The open_clip tokenizer ships OpenAI's BPE vocabulary inside the package (offline).
    return ClipScorer(model.eval(), SimpleTokenizer(context_length=context), context)


# ----------------------------------------------------------------------------------------------
# Scoring
# ----------------------------------------------------------------------------------------------
def thumbnail_size(height: int, width: int, limit: int = THUMBNAIL_SIZE) -> tuple[int, int]:
    """The size PIL's `Image.thumbnail((limit, limit))` gives: shrink only, keep the aspect ratio,
    the long side becomes `limit`, the short side is floored or ceiled (whichever keeps the aspect
    closer, floor on a tie), and at least 1 px."""
    if height <= limit and width <= limit:
        return height, width
    aspect = width / height

    def closest(value: float, error) -> int:
        return max(min(math.floor(value), math.ceil(value), key=error), 1)

    if aspect <= 1:
        return limit, closest(limit * aspect, lambda n: abs(aspect - n / limit))
    return closest(limit / aspect, lambda n: abs(aspect - limit / n) if n else 0), limit


def _resize(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(pixels.shape[-2:]) == size:
        return pixels
    return F.interpolate(pixels, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def preprocess(crop_: torch.Tensor, image_size: int) -> torch.Tensor:
    """One (h, w, 3) crop in [0, 1] -> the (3, S, S) normalised CLIP input, as the reference:

    1. `thumbnail` to at most 224x224 keeping the aspect ratio (the reference uses PIL LANCZOS;
       here bicubic with antialiasing, so pixel values differ slightly);
    2. the CLIP processor: resize the short side to S (the long side to int(S * long / short)),
       bicubic; centre-crop S x S; normalise with CLIP's mean and std.
    The reference works on uint8 images between steps; this stays in float.
    """
    pixels = crop_.permute(2, 0, 1).unsqueeze(0)
    height, width = pixels.shape[-2:]
    height, width = thumbnail_size(height, width)
    pixels = _resize(pixels, (height, width))
    if height <= width:
        size = (image_size, int(image_size * width / height))
    else:
        size = (int(image_size * height / width), image_size)
    pixels = _resize(pixels, size)
    top, left = (size[0] - image_size) // 2, (size[1] - image_size) // 2
    pixels = pixels[..., top : top + image_size, left : left + image_size]
    mean = torch.tensor(CLIP_MEAN, device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=pixels.device).view(1, 3, 1, 1)
    return ((pixels - mean) / std)[0]


class ClipScorer(torch.nn.Module):
    """A CLIP model (open_clip or transformers) and its tokenizer, scoring crops against phrases.

    An nn.Module so that ComfyUI's ModelPatcher can move or cast it: the device and dtype are read
    from the weights at every call. `image_passes` / `text_passes` count encoder calls (one per
    `score` each, whatever the number of crops and phrases).
    """

    def __init__(self, model: torch.nn.Module, tokenizer, context_length: int = CONTEXT_LENGTH):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.image_passes = 0
        self.text_passes = 0

    @property
    def is_open_clip(self) -> bool:
        return hasattr(self.model, "encode_image")

    @property
    def image_size(self) -> int:
        """The model's square input side (224 for ViT-L/14)."""
        if self.is_open_clip:
            size = self.model.visual.image_size
            return int(size[0] if isinstance(size, (tuple, list)) else size)
        return int(self.model.config.vision_config.image_size)

    def _weight(self) -> torch.Tensor:
        return next(self.model.parameters())

    def encode_images(self, crops: list[torch.Tensor]) -> torch.Tensor:
        """(len(crops), D) image embeddings, in one encoder call."""
        weight = self._weight()
        pixels = torch.stack([preprocess(c.to(weight.device, torch.float32), self.image_size) for c in crops])
        pixels = pixels.to(weight.dtype)
        with torch.inference_mode():
            self.image_passes += 1
            if self.is_open_clip:
                return self.model.encode_image(pixels)
            pooled = self.model.vision_model(pixel_values=pixels).pooler_output
            return self.model.visual_projection(pooled)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """input_ids (and attention_mask from a Hugging Face tokenizer), at most 77 tokens, EOT kept."""
        from open_clip.tokenizer import SimpleTokenizer

        if isinstance(self.tokenizer, SimpleTokenizer):
            return {"input_ids": self.tokenizer(texts, context_length=self.context_length)}
        encoded = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.context_length, return_tensors="pt"
        )
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """(len(texts), D) text embeddings of the raw phrases (no prompt template), in one encoder call."""
        device = self._weight().device
        tokens = {k: v.to(device) for k, v in self.tokenize(list(texts)).items()}
        with torch.inference_mode():
            self.text_passes += 1
            if self.is_open_clip:
                return self.model.encode_text(tokens["input_ids"])
            pooled = self.model.text_model(**tokens).pooler_output
            return self.model.text_projection(pooled)

    def score(self, crops: list[torch.Tensor], texts: list[str]) -> torch.Tensor:
        """(len(crops), len(texts)) float32 CPU tensor: max(100 * cos(E_image, E_text), 0)."""
        if not crops or not texts:
            return torch.zeros(len(crops), len(texts))
        images = F.normalize(self.encode_images(crops).float(), dim=-1)
        words = F.normalize(self.encode_texts(texts).float(), dim=-1)
        return (100 * images @ words.T).clamp(min=0).cpu()


# ----------------------------------------------------------------------------------------------
# Phrase choice
# ----------------------------------------------------------------------------------------------
def crop(image: torch.Tensor, box) -> torch.Tensor:
    """image (H, W, 3) cut to a pixel xyxy box, corners rounded like PIL's `crop`, clamped to the
    image and at least 1x1 px."""
    height, width = int(image.shape[0]), int(image.shape[1])
    x1, y1, x2, y2 = (float(v) for v in box)
    left = min(max(round(x1), 0), width - 1)
    top = min(max(round(y1), 0), height - 1)
    right = min(max(round(x2), left + 1), width)
    bottom = min(max(round(y2), top + 1), height)
    return image[top:bottom, left:right]


@dataclass
class PhraseChoice:
    """The CLIP filter's answer for one image.

    phrase/index: the winner among `phrases`; scores: one per phrase (0 = no box, -1 = excluded);
    counts: boxes per phrase; detections: the winner's boxes (empty if it had none).
    """

    phrase: str
    index: int
    phrases: list[str]
    scores: list[float]
    counts: list[int]
    detections: Detections = field(repr=False)

    def table(self) -> str:
        """One line per phrase, `phrase: score`, the winner marked with `*`."""
        lines = []
        for i, (phrase, score, count) in enumerate(zip(self.phrases, self.scores, self.counts)):
            remark = " (excluded)" if score < 0 else " (no box)" if count == 0 else ""
            lines.append(f"{'*' if i == self.index else ' '} {phrase}: {score:.2f}{remark}")
        return "\n".join(lines)


def pick_phrase(image: torch.Tensor, detections: Detections, phrases: list[str], scorer, exclude=()) -> PhraseChoice:
    """The CLIP filter on one detector pass: `detections` holds the boxes of every phrase, labelled.

    A phrase with no box scores 0; otherwise its boxes' enclosing box is cropped and scored against
    the phrase (all crops in one batched call); excluded phrases score -1. The winner is the
    argmax of the raw scores, the earlier phrase on a tie (so with no box at all, the first one).
    """
    phrases = list(phrases)
    if not phrases:
        raise ValueError("pick_phrase needs at least one phrase")
    if tuple(image.shape[:2]) != detections.image_size:
        raise ValueError(
            f"the boxes refer to a {detections.image_size} image, not to this {tuple(image.shape[:2])} one"
        )
    excluded = set(exclude)
    scores = [-1.0 if p in excluded else 0.0 for p in phrases]
    counts = [len(detections.with_label(p)) for p in phrases]
    scored = [i for i, p in enumerate(phrases) if p not in excluded and counts[i]]
    if scored:
        crops = [crop(image, detections.with_label(phrases[i]).union_box()) for i in scored]
        matrix = scorer.score(crops, [phrases[i] for i in scored])
        for row, i in enumerate(scored):
            scores[i] = float(matrix[row, row])
    index = max(range(len(phrases)), key=scores.__getitem__)  # max() keeps the first of equals
    winner = phrases[index]
    chosen = detections.with_label(winner)  # a new Detections: its note can be set
    chosen.note = f"CLIP filter chose '{winner}' ({scores[index]:.2f})"
    return PhraseChoice(winner, index, phrases, scores, counts, chosen)


__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "ClipLoadError",
    "ClipScorer",
    "PhraseChoice",
    "crop",
    "load_clip",
    "pick_phrase",
    "preprocess",
    "thumbnail_size",
]
