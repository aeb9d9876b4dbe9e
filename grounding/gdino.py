"""GroundingDINO: text-prompted boxes, run on transformers' implementation from the original files.

Users have the original IDEA-Research checkpoints (`groundingdino_swint_ogc.pth` with
`GroundingDINO_SwinT_OGC.cfg.py`, `groundingdino_swinb_cogcoor.pth` with `GroundingDINO_SwinB.cfg.py`)
in ComfyUI's `models/grounding-dino` folder. The original package cannot build its model under
transformers 5, so this module builds transformers' own `GroundingDinoForObjectDetection` from the
`.cfg.py` and converts the original weights to it on load (`gdino_convert.py`); a Hugging
Face-format folder loads as is.

Nothing is ever downloaded: the cfg file is parsed, never executed; BERT's configuration comes from
the checkpoint's own tensor shapes; the tokenizer is built from the vocabulary shipped in
`grounding/data`.

`GroundingDino.detect` asks for every phrase of an image in one forward pass, with GroundingDINO's
multi-class prompt ("p1 . p2 . p3 ."), and attributes each box to the phrase whose tokens it
scores highest.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .checkpoint_files import CheckpointFileError, read_state_dict
from .detections import Detections
from .detector_inputs import image_list, phrases_per_image, pixel_boxes
from .gdino_convert import (
    GroundingDinoLoadError,
    SwinGeometry,
    backbone_name,
    convert_original_state_dict,
    original_config,
    read_original_cfg,
    variant_name,
)

log = logging.getLogger(__name__)

VOCAB = Path(__file__).resolve().parent / "data" / "bert-base-uncased-vocab.txt"
MODELS_FOLDER = "models/grounding-dino"
EXPECTED = (
    "Expected an original IDEA-Research GroundingDINO checkpoint (groundingdino_swint_ogc.pth or "
    "groundingdino_swinb_cogcoor.pth, with its GroundingDINO_SwinT_OGC.cfg.py / GroundingDINO_SwinB.cfg.py "
    "next to it), or a Hugging Face GroundingDINO, MM-Grounding-DINO or OWLv2 folder (config.json + "
    f"model.safetensors), in ComfyUI's {MODELS_FOLDER} folder."
)
# The token ids transformers' GroundingDINO treats as phrase delimiters ([CLS], [SEP], ".", "?").
SPECIAL_TOKENS = {"[CLS]": 101, "[SEP]": 102, ".": 1012, "?": 1029}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

# The .cfg.py that comes with each released checkpoint (the names other ComfyUI packs use too).
CFG_NAMES = {
    "groundingdino_swint_ogc": ("GroundingDINO_SwinT_OGC.cfg.py", "GroundingDINO_SwinT_OGC.py"),
    "groundingdino_swinb_cogcoor": ("GroundingDINO_SwinB.cfg.py", "GroundingDINO_SwinB_cfg.py"),
}


def find_cfg(checkpoint: Path) -> Path | None:
    """The `.cfg.py` next to `checkpoint`: `<stem>.cfg.py`, or the released cfg's name for a released
    checkpoint. Other cfg files in the folder are not guessed at (the checkpoint itself is read then)."""
    stem = checkpoint.stem
    wanted = [f"{stem}.cfg.py", f"{stem}.py", *CFG_NAMES.get(stem.lower(), ())]
    present = {p.name.lower(): p for p in checkpoint.parent.iterdir() if p.is_file()}
    return next((present[name.lower()] for name in wanted if name.lower() in present), None)


# Keys every original GroundingDINO checkpoint has (what tells one from another model's file).
SIGNATURE_KEYS = (
    "backbone.0.patch_embed.proj.weight",
    "transformer.level_embed",
    "bert.embeddings.word_embeddings.weight",
)
NOT_GDINO_HINTS = (
    ("image_encoder.", "it looks like a Segment Anything (SAM) checkpoint"),
    (
        "model.text_backbone.",
        (
            "it looks like the weights of a Hugging Face-format GroundingDINO: select the "
            "folder that holds them with their config.json"
        ),
    ),
)


def _not_gdino(path: Path, reason: str) -> GroundingDinoLoadError:
    return GroundingDinoLoadError(f"{path.name} is not a GroundingDINO checkpoint: {reason}. {EXPECTED}")


def read_original_checkpoint(path: str | Path) -> dict:
    """The state dict of an original GroundingDINO checkpoint (.pth / .safetensors).

    Accepts `{"model": state_dict}` (the released files) or a bare state dict, with or without
    `module.` prefixes (see `checkpoint_files.read_state_dict`, which runs nothing from the file).
    """
    path = Path(path)
    try:
        sd = read_state_dict(path)
    except CheckpointFileError as exc:
        raise _not_gdino(path, exc.reason) from exc
    missing = [k for k in SIGNATURE_KEYS if k not in sd]
    if missing:
        hint = next((h for prefix, h in NOT_GDINO_HINTS if any(k.startswith(prefix) for k in sd)), None)
        raise _not_gdino(path, hint or f"it lacks {missing} ({len(sd)} tensors, e.g. {list(sd)[:3]})")
    return sd


def build_model(config):
    """transformers' GroundingDINO for `config`, without the (slow, discarded) random initialisation."""
    from transformers import GroundingDinoForObjectDetection
    from transformers.initialization import no_init_weights

    with no_init_weights():
        return GroundingDinoForObjectDetection(config)


def load_original(path: Path, config_path: str | Path | None = None):
    """(model, variant) for an original checkpoint and its cfg (found next to it when not given)."""
    sd = read_original_checkpoint(path)
    cfg_path = Path(config_path) if config_path else find_cfg(path)
    if cfg_path is None:
        config, variant = original_config(None, sd, path.name)
        log.info("GroundingDINO: no .cfg.py next to %s; architecture read from the checkpoint (%s)", path.name, variant)
    else:
        config, variant = original_config(read_original_cfg(cfg_path), sd, cfg_path.name)
    model = build_model(config)
    try:
        model.load_state_dict(convert_original_state_dict(sd, config), strict=True)
    except RuntimeError as exc:
        raise GroundingDinoLoadError(f"{path.name}: the converted weights do not fit the model: {exc}") from exc
    return model, variant


# config.json's model_type -> transformers' class for it (both share GroundingDINO's inputs and outputs).
HF_CLASSES = {
    "grounding-dino": "GroundingDinoForObjectDetection",
    "mm-grounding-dino": "MMGroundingDinoForObjectDetection",
}


def read_model_type(folder: Path) -> str | None:
    """The `model_type` of a Hugging Face folder's config.json (what decides the architecture)."""
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError) as exc:
        raise GroundingDinoLoadError(f"{folder.name}: no readable config.json ({exc}). {EXPECTED}") from exc


def load_hf_folder(folder: Path):
    """(model, tokenizer, variant) from a Hugging Face-format GroundingDINO or MM-Grounding-DINO
    folder, with local files only."""
    import transformers
    from transformers import AutoTokenizer

    model_type = read_model_type(folder)
    if model_type not in HF_CLASSES:
        raise GroundingDinoLoadError(
            f"{folder.name}: config.json is for a {model_type!r} model, not grounding-dino or "
            f"mm-grounding-dino. {EXPECTED}"
        )
    try:
        model = getattr(transformers, HF_CLASSES[model_type]).from_pretrained(str(folder), local_files_only=True)
        has_tokenizer = any((folder / n).is_file() for n in ("tokenizer.json", "vocab.txt"))
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True) if has_tokenizer else None
    except (OSError, ValueError) as exc:
        raise GroundingDinoLoadError(
            f"{folder.name}: cannot load the Hugging Face {model_type} ({exc}). {EXPECTED}"
        ) from exc
    swin = model.config.backbone_config
    geometry = SwinGeometry(
        swin.embed_dim, tuple(swin.depths), tuple(swin.num_heads), swin.window_size, swin.image_size
    )
    if model_type == "mm-grounding-dino":  # the released names (swint_ogc, ...) are GroundingDINO's own
        return model, tokenizer, f"mm-grounding-dino {(backbone_name(geometry) or 'custom swin').lower()}"
    return model, tokenizer, variant_name(geometry)


def bert_tokenizer():
    """bert-base-uncased's tokenizer from the shipped vocabulary.

    transformers 5 takes the vocabulary file as `vocab=` (it ignores `vocab_file=` and silently
    keeps a five-token vocabulary).
    """
    from transformers import BertTokenizerFast

    return BertTokenizerFast(vocab=str(VOCAB), do_lower_case=True)


def _check_tokenizer(tokenizer, source: Path) -> None:
    """The model hard-codes BERT's ids for its phrase delimiters; a tokenizer with others would
    silently merge or split phrases."""
    ids = dict(zip(SPECIAL_TOKENS, tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))))
    if ids != SPECIAL_TOKENS:
        raise GroundingDinoLoadError(f"{source.name}: the tokenizer is not bert-base-uncased's (ids {ids})")


def load_grounding_dino(
    path: str | Path, config_path: str | Path | None = None, device="cpu", dtype: torch.dtype = torch.float32
) -> GroundingDino:
    """Loads a GroundingDINO: an original checkpoint (.pth / .safetensors, with its .cfg.py given or
    found next to it, else read from the checkpoint) or a Hugging Face-format folder.

    Raises GroundingDinoLoadError, naming the file, for anything that is not a GroundingDINO.
    """
    path = Path(path)
    if not path.exists():
        raise GroundingDinoLoadError(f"{path} does not exist. {EXPECTED}")
    tokenizer = None
    if path.is_dir():
        model, tokenizer, variant = load_hf_folder(path)
    else:
        model, variant = load_original(path, config_path)
    tokenizer = tokenizer or bert_tokenizer()
    _check_tokenizer(tokenizer, path)
    model.to(device=device, dtype=dtype).eval()
    model.requires_grad_(False)
    return GroundingDino(model, tokenizer, variant, path)


# ---------------------------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """One image's phrases as a GroundingDINO caption: "p1 . p2 . p3 ." with each phrase's
    character span in it."""

    phrases: tuple[str, ...]
    caption: str
    spans: tuple[tuple[int, int], ...]


def _caption_text(phrase: str) -> str:
    """A phrase as it goes into the caption: lower case, single spaces, and without "." or "?",
    which GroundingDINO treats as phrase separators (they would split the phrase in two)."""
    return " ".join(re.sub(r"[.?]", " ", phrase.lower()).split())


def build_prompt(phrases) -> Prompt | None:
    """The prompt for these phrases, or None if none is left. Empty phrases are dropped, and so are
    phrases that read the same in the caption as an earlier one (the first spelling labels them)."""
    kept, texts, spans, position = [], [], [], 0
    for phrase in phrases:
        text = _caption_text(phrase) if isinstance(phrase, str) else ""
        if not text or text in texts:
            continue
        kept.append(phrase)
        texts.append(text)
        spans.append((position, position + len(text)))
        position += len(text) + len(" . ")
    if not kept:
        return None
    return Prompt(tuple(kept), " . ".join(texts) + " .", tuple(spans))


def resized_size(height: int, width: int, short: int = 800, long_max: int = 1333) -> tuple[int, int]:
    """GroundingDINO's test-time size: the short side to `short` unless the long side would pass
    `long_max` (the reference's `RandomResize([800], max_size=1333)`, same rounding)."""
    small, large = min(height, width), max(height, width)
    if large / small * short > long_max:
        short = round(long_max * small / large)
    if small == short:
        return height, width
    if width < height:
        return int(short * height / width), short
    return short, int(short * width / height)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) in [0, 1] to GroundingDINO's input: resized, ImageNet-normalised (B, 3, h, w)."""
    pixels = images.permute(0, 3, 1, 2).float()
    size = resized_size(pixels.shape[2], pixels.shape[3])
    if size != tuple(pixels.shape[2:]):
        pixels = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=pixels.device).view(1, 3, 1, 1)
    return (pixels - mean) / std


def _token_phrases(offsets: torch.Tensor, prompt: Prompt) -> torch.Tensor:
    """(P, T) bool: which tokens spell each phrase. [CLS], [SEP], padding (empty offsets) and the
    "." separators (outside every span) belong to none."""
    start, end = offsets[:, 0], offsets[:, 1]
    real = end > start
    return torch.stack([real & (start >= s) & (end <= e) for s, e in prompt.spans])


def _phrase_scores(probs: torch.Tensor, membership: torch.Tensor) -> torch.Tensor:
    """(Q, P): each query's highest token probability within each phrase (0 for a phrase that
    lost all its tokens to the 256-token limit)."""
    masked = probs[:, None, : membership.shape[1]] * membership[None].to(probs.dtype)
    return masked.amax(dim=2)


class GroundingDino:
    """A loaded GroundingDINO: `model` (transformers' GroundingDinoForObjectDetection, eval mode),
    `tokenizer`, `variant` ("swint_ogc", "swinb_cogcoor", ...) and `source` (the file or folder).

    The device and dtype are read from the model's parameters at every call, so whoever manages
    memory (ComfyUI's ModelPatcher) may move `model` freely. `forward_passes` counts model forwards.
    """

    def __init__(self, model, tokenizer, variant: str, source: Path, max_batch: int = 8):
        self.model = model
        self.tokenizer = tokenizer
        self.variant = variant
        self.source = Path(source)
        self.max_batch = max_batch
        self.forward_passes = 0

    def __repr__(self) -> str:
        return f"GroundingDino({self.variant}, {self.source.name})"

    def detect(
        self, images, phrases, box_threshold: float = 0.3, text_threshold: float = 0.25, interrupt=None
    ) -> list[Detections]:
        """Boxes for the phrases on each image: a ComfyUI IMAGE batch (B, H, W, C) in [0, 1], or a
        list of images of different sizes.

        `phrases` is one list shared by all images or one list per image. All phrases of an image
        go in one forward pass, which up to `max_batch` images of the same size share. Every query
        whose best phrase scores above `box_threshold` is kept, as in the reference `predict` (no
        NMS); its label is that phrase, its score that phrase's highest token probability (the
        reference also counts the [CLS], [SEP] and "." tokens, which training teaches to score
        low). `text_threshold` only chose the words of a label in the reference, and a box whose
        tokens all fell below it got an empty label: here such a box is dropped, i.e. boxes must
        beat both thresholds (with the defaults, 0.3 > 0.25, text_threshold changes nothing).

        Each Detections carries `phrases` (the phrases searched) and `phrase_scores` (N, P): every
        box's score for every phrase, so one pass can score them all. `interrupt`, when given, is
        called between resizing a batch and its forward pass (it raises to cancel).
        """
        images = image_list(images)
        prompts = [build_prompt(p) for p in phrases_per_image(phrases, len(images))]
        threshold = max(box_threshold, text_threshold)
        results: list[Detections | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (image, prompt) in enumerate(zip(images, prompts)):
            if prompt is None:
                results[i] = Detections.empty(tuple(image.shape[:2]), note="no phrases to look for")
            else:
                groups.setdefault(tuple(image.shape[:2]), []).append(i)
        with torch.inference_mode():
            for indices in groups.values():
                for start in range(0, len(indices), self.max_batch):
                    chunk = indices[start : start + self.max_batch]
                    batch = torch.stack([images[i] for i in chunk])
                    found_in_chunk = self._detect_batch(batch, [prompts[i] for i in chunk], threshold, interrupt)
                    for i, found in zip(chunk, found_in_chunk):
                        results[i] = found
        return results

    def _forward(self, images: torch.Tensor, captions: list[str], interrupt=None):
        """One model forward for same-size images: (probabilities (B, Q, T) float32, boxes
        (B, Q, 4) float32, token offsets (B, T, 2))."""
        parameter = next(self.model.parameters())
        pixels = preprocess(images.to(parameter.device)).to(parameter.dtype)
        tokens = self.tokenizer(
            captions,
            padding="longest",
            truncation=True,
            return_offsets_mapping=True,
            max_length=self.model.config.max_text_len,
            return_tensors="pt",
        )
        offsets = tokens.pop("offset_mapping")
        if interrupt is not None:
            interrupt()  # resizing a large photo takes a while: a cancel should not wait for the model too
        self.forward_passes += 1
        out = self.model(pixel_values=pixels, **{k: v.to(parameter.device) for k, v in tokens.items()})
        return out.logits.float().sigmoid().cpu(), out.pred_boxes.float().cpu(), offsets

    def _detect_batch(
        self, images: torch.Tensor, prompts: list[Prompt], threshold: float, interrupt=None
    ) -> list[Detections]:
        probs, boxes, offsets = self._forward(images, [p.caption for p in prompts], interrupt)
        size = tuple(images.shape[1:3])
        limit = self.model.config.max_text_len
        return [_detections(*item, size, threshold, limit) for item in zip(probs, boxes, offsets, prompts)]


def _detections(
    probs: torch.Tensor,
    boxes: torch.Tensor,
    offsets: torch.Tensor,
    prompt: Prompt,
    size: tuple[int, int],
    threshold: float,
    token_limit: int,
) -> Detections:
    """One image's Detections from the model's output for it: the queries whose best phrase scores
    above `threshold`, best first, labelled with that phrase."""
    membership = _token_phrases(offsets, prompt)
    per_phrase = _phrase_scores(probs, membership)
    scores, best = per_phrase.max(dim=1)
    finite = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores)
    keep = ((scores > threshold) & finite).nonzero().flatten()
    keep = keep[scores[keep].argsort(descending=True)]
    lost = [phrase for phrase, tokens in zip(prompt.phrases, membership) if not tokens.any()]
    notes = [f"not searched (past GroundingDINO's {token_limit}-token prompt): {lost}"] if lost else []
    if not finite.all():
        notes.append(
            f"{int((~finite).sum())} of {len(finite)} detector outputs were NaN and were dropped "
            "(a float16 overflow? load GroundingDINO in float32)"
        )
    note = "; ".join(notes)
    return Detections(
        pixel_boxes(boxes[keep], *size),
        scores[keep],
        [prompt.phrases[i] for i in best[keep].tolist()],
        size,
        note,
        phrases=list(prompt.phrases),
        phrase_scores=per_phrase[keep],
    )
