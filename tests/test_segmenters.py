"""HQ-SAM, MobileSAM, Light HQ-SAM and SAM 2/2.1 files, made with random weights in their released
formats: each loads with its kind and size read from the weights, and its masks equal the official
predictor's for the same boxes."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from grounded_ip2p.grounding import sam, sam2_model, sam_hq

from .checkpoints import cache_dir
from .sam_checkpoint import (
    SAM2_SIZES,
    hq_sam_checkpoint,
    light_hq_sam_checkpoint,
    mobile_sam_checkpoint,
    sam2_checkpoint,
    sam2_config,
    sam2_safetensors,
    sam_with_encoder,
    structured_image,
)

# The pack batches the boxes of one image into one decoder call; the official predictors are called
# once per box. Masks may differ on at most this share of pixels (float rounding at the threshold).
TOLERANCE = 1e-3
BOXES = torch.tensor([[4.0, 6.0, 30.0, 40.0], [20.5, 2.0, 79.0, 47.0], [0.0, 0.0, 80.0, 48.0]])


@pytest.fixture(scope="module")
def image():
    return structured_image()


def _uint8(image) -> np.ndarray:
    return (image * 255).round().to(torch.uint8).numpy()


def _official_hq(path, arch):
    """segment_anything_hq's builder and predictor (its builder loads the file itself)."""
    from segment_anything_hq.build_sam import _build_sam

    model = _build_sam(arch.embed_dim, arch.depth, arch.num_heads, list(arch.global_attn_indexes), checkpoint=str(path))
    return sam_hq.segment_anything_hq.SamPredictor(model.eval())


def _official_light_hq(path):
    builder = sam_hq.segment_anything_hq.sam_model_registry["vit_tiny"]
    return sam_hq.segment_anything_hq.SamPredictor(builder(checkpoint=str(path)).eval())


class _FeaturesOnly(torch.nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder
        self.img_size = encoder.img_size  # what segment_anything's predictor resizes to

    def forward(self, x):
        return self.encoder(x)[0]


def _official_mobile(path):
    """MobileSAM as its builder makes it (TinyViT before segment_anything's decoder) with
    segment_anything's predictor; the TinyViT is segment_anything_hq's copy of MobileSAM's, whose
    forward also returns the early features, dropped here."""
    from segment_anything import SamPredictor

    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    arch = sam_hq.tiny_vit_architecture(state_dict)
    encoder = sam_hq.tiny_vit_sam.TinyViT(
        img_size=1024,
        num_classes=arch.num_classes,
        embed_dims=list(arch.embed_dims),
        depths=list(arch.depths),
        num_heads=list(arch.num_heads),
        window_sizes=list(arch.window_sizes),
    )
    model = sam_with_encoder(encoder)
    model.load_state_dict(state_dict, strict=True)
    model.image_encoder = _FeaturesOnly(encoder)
    return SamPredictor(model.eval())


def _official_sam2(path):
    from sam2.build_sam import build_sam2
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    return SAM2ImagePredictor(build_sam2(sam2_config("2.1", "t"), ckpt_path=str(path), device="cpu"))


# name -> (the file, the variant the pack reads from it, the official predictor for it)
FORMATS = {
    "hq_sam": (lambda: hq_sam_checkpoint(cache_dir() / "sam-hq-tiny"), "hq_custom"),
    "mobile_sam": (lambda: mobile_sam_checkpoint(cache_dir() / "mobile-sam-tiny"), "custom_tiny_vit"),
    "mobile_sam_published": (lambda: mobile_sam_checkpoint(cache_dir() / "mobile-sam", "published"), "mobile_sam"),
    "light_hq_sam": (lambda: light_hq_sam_checkpoint(cache_dir() / "light-hq-sam"), "hq_vit_tiny"),
    "sam2.1": (lambda: sam2_checkpoint(cache_dir() / "sam2.1-hiera-t", "2.1", "t"), "sam2.1_hiera_t"),
}


def _official(name, path):
    if name == "hq_sam":
        return _official_hq(path, sam.sam_architecture(torch.load(path, weights_only=True)))
    if name == "light_hq_sam":
        return _official_light_hq(path)
    if name.startswith("mobile_sam"):
        return _official_mobile(path)
    return _official_sam2(path)


@pytest.fixture(scope="module")
def loaded():
    """Each format's file and the pack's model of it, loaded once."""
    cache = {}

    def get(name):
        if name not in cache:
            path = FORMATS[name][0]()
            cache[name] = path, sam.load_sam(path)
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(FORMATS))
def test_each_format_loads_and_masks_like_its_official_predictor(loaded, image, name):
    path, model = loaded(name)
    assert model.variant == FORMATS[name][1]
    model.forget_image()
    before = model.encoder_passes
    masks = model.segment(image, BOXES)
    assert model.encoder_passes == before + 1
    assert masks.shape == (3, 48, 80) and masks.dtype == torch.bool
    assert masks.any() and not masks.all()  # random weights, but not a constant answer

    predictor = _official(name, path)
    predictor.set_image(_uint8(image))
    for box, mask in zip(BOXES, masks):
        expected = predictor.predict(box=box.numpy(), multimask_output=False)[0][0]
        assert (torch.from_numpy(expected).bool() != mask).float().mean() <= TOLERANCE


@pytest.mark.parametrize("name", ["hq_sam", "mobile_sam"])
def test_the_embedding_is_kept_and_boxes_go_in_chunks(loaded, image, name):
    """The same photo embeds once across calls, one box per decoder call gives the same masks,
    and the interrupt check runs before every decoder call."""
    _, model = loaded(name)
    model.forget_image()
    every = model.segment(image, BOXES)
    passes = model.encoder_passes
    calls, saved = [], model.decoder_bytes
    try:
        model.decoder_bytes = 4 * 48 * 80  # one full-size float mask: one box per call
        assert torch.equal(model.segment(image.clone(), BOXES, interrupt=lambda: calls.append(1)), every)
    finally:
        model.decoder_bytes = saved
    assert len(calls) == len(BOXES) and model.encoder_passes == passes
    assert torch.equal(model.segment(image, BOXES, union=True)[0], every.any(0))
    assert model.encoder_passes == passes


def test_sam2_keeps_its_embedding_across_calls(loaded, image):
    _, model = loaded("sam2.1")
    model.segment(image, BOXES[:1])
    before = model.encoder_passes
    first = model.segment(image, BOXES)
    assert torch.equal(model.segment(image.clone(), BOXES[1:]), first[1:])
    assert model.encoder_passes == before


def test_hq_sam_keeps_only_the_early_features_its_decoder_reads(loaded, image):
    _, model = loaded("hq_sam")
    model.segment(image, BOXES[:1])
    kept = model._embedding[1]
    assert len(kept["interm_features"]) == 1 and kept["features"].shape == (1, 256, 64, 64)


def test_sam2_safetensors_repack_loads_with_the_same_weights(loaded, tmp_path):
    """The half-precision `.safetensors` repacks of models/sam2 hold the same keys flat."""
    path, model = loaded("sam2.1")
    repack = sam2_safetensors(path, tmp_path / "sam2.1_hiera_tiny-fp16.safetensors")
    from_repack = sam.load_sam(repack)
    assert from_repack.variant == "sam2.1_hiera_t"
    for (key, a), b in zip(from_repack.sam.state_dict().items(), model.sam.state_dict().values()):
        expected = b.half().float() if b.is_floating_point() else b
        assert torch.equal(a, expected), key


@functools.cache
def _trunk_shapes(size: str) -> dict:
    """The shapes of a published SAM 2 size's Hiera trunk (its config's, built on the CPU: Hiera
    cannot be built on the meta device), as meta tensors under the checkpoint's key names."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    from sam2.build_sam import compose

    cfg = compose(config_name=sam2_config("2.1", size))
    OmegaConf.resolve(cfg)
    trunk = instantiate(cfg.model.image_encoder.trunk).state_dict()
    return {f"image_encoder.trunk.{k}": torch.empty(v.shape, device="meta") for k, v in trunk.items()}


@pytest.mark.parametrize("version", ["2", "2.1"])
@pytest.mark.parametrize("size", list(SAM2_SIZES))
def test_sam2_version_and_size_are_read_from_the_weights(version, size):
    """The trunk tells the size; 2.1's files have `no_obj_embed_spatial`, 2.0's do not."""
    state_dict = dict(_trunk_shapes(size))
    if version == "2.1":
        state_dict["no_obj_embed_spatial"] = torch.empty(1, 64, device="meta")
    arch = sam2_model.sam2_architecture(state_dict)
    assert arch == sam2_model.Sam2Architecture(version, size)
    assert arch.variant == f"sam{version}_hiera_{size}"


def test_mobile_sam_architecture_is_read_from_the_weights(loaded):
    path, model = loaded("mobile_sam_published")
    arch = sam_hq.tiny_vit_architecture(torch.load(path, weights_only=True))
    assert arch.published and arch.num_classes == 1000
    assert (arch.embed_dims, arch.depths, arch.num_heads[1:], arch.window_sizes[1:]) == (
        (64, 128, 160, 320),
        (2, 2, 6, 2),
        (4, 5, 10),
        (7, 14, 7),
    )
    encoder = model.sam.image_encoder
    assert isinstance(encoder, sam_hq.TinyViTFeatures) and len(encoder.layers) == 4


def test_importing_hq_sam_leaves_timms_models_alone():
    """segment_anything_hq registers its TinyViT under timm's names; timm's own stay registered."""
    import timm
    from timm.models import tiny_vit

    assert timm.models.model_entrypoint("tiny_vit_5m_224").__module__ == tiny_vit.__name__


def _save(path, state_dict):
    torch.save(state_dict, path)
    return path


@pytest.mark.parametrize(
    "make,reason",
    [
        (
            lambda d: _save(d / "sam2.1_hiera_small.pt", {"model": _drop(sam2_model_sd(), "no_obj_ptr")}),
            "do not fit the sam2.1_hiera_t architecture",
        ),
        (
            lambda d: _save(d / "sam2_hiera_large.pt", _renumbered_trunk(sam2_model_sd())),
            "none of the published sizes",
        ),
        (lambda d: _save(d / "mobile_sam.pt", _narrow_tiny_vit()), "SAM's decoder needs one of"),
        (
            lambda d: _save(d / "sam_hq_vit_h.pth", _drop(hq_sd(), "mask_decoder.hf_token.weight")),
            "do not fit the hq_custom architecture",
        ),
        (
            lambda d: _save(d / "sam2.1_hiera_large.pt", {"model": {"encoder.stem.conv.weight": torch.zeros(1)}}),
            "no segmenter image encoder",
        ),
    ],
    ids=["sam2 missing key", "sam2 unknown size", "tiny vit too narrow", "hq without its token", "unknown keys"],
)
def test_broken_files_say_what_is_wrong(tmp_path, make, reason):
    path = make(tmp_path)
    with pytest.raises(sam.SamLoadError) as err:
        sam.load_sam(path)
    message = str(err.value)
    assert path.name in message and reason in message and "models/sam2" in message


def sam2_model_sd():
    return torch.load(FORMATS["sam2.1"][0](), weights_only=True)["model"]


def hq_sd():
    return torch.load(FORMATS["hq_sam"][0](), weights_only=True)


def _drop(state_dict, key):
    del state_dict[key]
    return state_dict


def _renumbered_trunk(state_dict):
    """A SAM 2 whose trunk has one block fewer in its last stage than any published size."""
    last = max(int(k.split(".")[3]) for k in state_dict if k.startswith("image_encoder.trunk.blocks."))
    return {k: v for k, v in state_dict.items() if not k.startswith(f"image_encoder.trunk.blocks.{last}.")}


def _narrow_tiny_vit():
    state_dict = torch.load(FORMATS["mobile_sam"][0](), weights_only=True)
    state_dict["image_encoder.layers.3.blocks.0.attn.norm.weight"] = torch.zeros(256)
    return state_dict


@pytest.mark.parametrize(
    "keys,looks_like",
    [
        ({"transformer.level_embed": torch.zeros(4, 256)}, "a GroundingDINO checkpoint"),
        ({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3)}, "a Stable Diffusion checkpoint"),
        ({"first_stage_model.encoder.conv_in.weight": torch.zeros(1)}, "a VAE"),
        ({"visual.proj": torch.zeros(1), "transformer.resblocks.0.ln_1.weight": torch.zeros(1)}, "a CLIP model"),
    ],
)
def test_other_models_files_are_named(tmp_path, keys, looks_like):
    from safetensors.torch import save_file

    path = tmp_path / "sam2.1_hiera_large.safetensors"
    save_file(keys, str(path))
    with pytest.raises(sam.SamLoadError, match=f"it looks like {looks_like}") as err:
        sam.load_sam(path)
    assert path.name in str(err.value) and "not a segmenter" in str(err.value)
