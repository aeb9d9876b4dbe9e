"""SAM 2 and SAM 2.1 from Meta's checkpoint files, built from the `sam2` package's own configs.

The released files are `{"model": state_dict}` (`sam2_hiera_{tiny,small,base_plus,large}.pt`,
`sam2.1_hiera_*.pt`); the `.safetensors` repacks users have in `models/sam2` hold the same keys
flat, often in half precision. Which config fits is read from the weights: the Hiera trunk's width
and stage depths tell the four sizes apart (its heads and windows are not in any tensor shape, so
only the published sizes can be built), and 2.1 has parameters 2.0 lacks (`no_obj_embed_spatial`).

The config's YAML is read by OmegaConf from the installed package and instantiated by Hydra's
`instantiate`, as `sam2.build_sam.build_sam2` does, with its post-processing overrides (a single
mask that is not stable falls back to the best of the three); Hydra's global config search path is
not used, so another node's Hydra set-up does not matter. Only the package's configs are
instantiated; nothing in the checkpoint is.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from importlib import resources

import torch

from .sam import not_sam

# (trunk width, blocks per stage) -> the config's size name and the released file's.
_SIZES = {
    (96, (1, 2, 7, 2)): ("t", "tiny"),
    (96, (1, 2, 11, 2)): ("s", "small"),
    (112, (2, 3, 16, 3)): ("b+", "base_plus"),
    (144, (2, 6, 36, 4)): ("l", "large"),
}
_SAM2_1_KEY = "no_obj_embed_spatial"
_TRUNK = "image_encoder.trunk."
# sam2.build_sam.build_sam2's apply_postprocessing=True overrides (its default).
_POSTPROCESSING = {
    "dynamic_multimask_via_stability": True,
    "dynamic_multimask_stability_delta": 0.05,
    "dynamic_multimask_stability_thresh": 0.98,
}


@dataclass(frozen=True)
class Sam2Architecture:
    version: str  # "2" or "2.1"
    size: str  # "t", "s", "b+", "l"

    @property
    def config(self) -> str:
        """The config's path inside the sam2 package."""
        folder = "sam2.1" if self.version == "2.1" else "sam2"
        return f"configs/{folder}/sam{self.version}_hiera_{self.size}.yaml"

    @property
    def variant(self) -> str:
        return f"sam{self.version}_hiera_{self.size}"


def sam2_architecture(state_dict: dict, name: str = "the checkpoint") -> Sam2Architecture:
    """The published SAM 2 config the weights fit: the trunk's width (its patch embedding's output
    channels) and its stages (a block with a `proj` layer opens a new, wider stage)."""
    patch = state_dict.get(f"{_TRUNK}patch_embed.proj.weight")
    blocks = sorted({int(k.split(".")[3]) for k in state_dict if k.startswith(f"{_TRUNK}blocks.")})
    if patch is None or not blocks or blocks != list(range(len(blocks))):
        raise not_sam(name, "its SAM 2 image encoder (Hiera trunk) is incomplete")
    openings = [i for i in blocks if i and f"{_TRUNK}blocks.{i}.proj.weight" in state_dict]
    bounds = [0, *openings, len(blocks)]
    stages = tuple(b - a for a, b in zip(bounds, bounds[1:]))
    width = int(patch.shape[0])
    size = _SIZES.get((width, stages))
    if size is None:
        published = ", ".join(f"{w} wide {list(s)}" for w, s in _SIZES)
        raise not_sam(
            name,
            f"its SAM 2 encoder is {width} wide with stages {list(stages)}, which is none of the "
            f"published sizes ({published})",
        )
    return Sam2Architecture("2.1" if _SAM2_1_KEY in state_dict else "2", size[0])


def _config(arch: Sam2Architecture):
    from omegaconf import OmegaConf

    text = resources.files("sam2").joinpath(arch.config).read_text(encoding="utf-8")
    config = OmegaConf.create(text)
    config.model.sam_mask_decoder_extra_args = _POSTPROCESSING
    OmegaConf.resolve(config)
    return config


def build_sam2_model(state_dict: dict, name: str):
    """(SAM2Base, variant, predictor steps) for a SAM 2 / 2.1 state dict (not yet loaded)."""
    from hydra.utils import instantiate

    arch = sam2_architecture(state_dict, name)
    model = instantiate(_config(arch).model, _recursive_=True)
    return model, arch.variant, Sam2PredictorSteps()


class Sam2PredictorSteps:
    """`sam2.sam2_image_predictor.SAM2ImagePredictor`'s steps for `sam.SamModel`: `set_image` on
    the uint8 image, its kept `_features`, its box transform, and the batched `_predict` that its
    `predict` calls after preparing the prompts. One predictor per model; its image transforms run
    as plain modules where the package allows (rf-sam-2's `disable_torch_jit`; Meta's own package
    scripts them with TorchScript)."""

    kept = ("_features", "_orig_hw", "_is_batch")

    def __init__(self):
        self._predictor = None

    def predictor(self, model):
        if self._predictor is None or self._predictor.model is not model:
            from sam2.sam2_image_predictor import SAM2ImagePredictor

            plain = "disable_torch_jit" in inspect.signature(SAM2ImagePredictor).parameters
            self._predictor = SAM2ImagePredictor(model, **({"disable_torch_jit": True} if plain else {}))
        return self._predictor

    def embed(self, predictor, pixels, device, dtype) -> None:
        predictor.set_image(pixels)

    def keep(self, predictor) -> dict:
        return {name: getattr(predictor, name) for name in self.kept}

    def restore(self, predictor, kept: dict) -> None:
        for name, value in kept.items():
            setattr(predictor, name, value)
        predictor._is_image_set = True

    def prompt(self, predictor, boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        boxes = boxes.to(device=predictor.device, dtype=torch.float)
        return predictor._transforms.transform_boxes(boxes, normalize=True, orig_hw=size)

    def masks(self, predictor, boxes: torch.Tensor) -> torch.Tensor:
        return predictor._predict(None, None, boxes=boxes, multimask_output=False)[0][:, 0]


__all__ = ["Sam2Architecture", "Sam2PredictorSteps", "build_sam2_model", "sam2_architecture"]
