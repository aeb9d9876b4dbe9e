"""SAM loading (architecture read from the weights, clear errors for wrong files) and box-prompted
segmentation (one image embedding, one batched decoder call), on random-weight checkpoints."""

from __future__ import annotations

import pytest
import torch
from grounded_ip2p.grounding import sam

from .checkpoints import cache_dir
from .sam_checkpoint import sam_checkpoint, sam_state_dict, structured_image


@pytest.fixture(scope="module")
def tiny_path():
    return sam_checkpoint(cache_dir() / "sam-tiny", "tiny")


@pytest.fixture(scope="module")
def tiny(tiny_path):
    return sam.load_sam(tiny_path)


@pytest.fixture(scope="module")
def image():
    return structured_image()


BOXES = torch.tensor([[4.0, 6.0, 30.0, 40.0], [20.5, 2.0, 79.0, 47.0], [0.0, 0.0, 80.0, 48.0]])


def test_vit_b_file_loads_as_vit_b():
    model = sam.load_sam(sam_checkpoint(cache_dir() / "sam-vit_b", "vit_b"))
    encoder = model.sam.image_encoder
    assert model.variant == "vit_b"
    assert len(encoder.blocks) == 12 and encoder.patch_embed.proj.out_channels == 768
    assert [b.attn.num_heads for b in encoder.blocks] == [12] * 12
    assert [i for i, b in enumerate(encoder.blocks) if b.window_size == 0] == [2, 5, 8, 11]
    assert model.encoder_passes == 0


def _shape_only_sam(embed_dim: int, depth: int, head_dim: int, global_blocks) -> dict:
    """The keys the architecture is read from, as meta tensors (no memory, any size)."""
    sd = {"image_encoder.patch_embed.proj.weight": torch.empty(embed_dim, 3, 16, 16, device="meta")}
    for i in range(depth):
        rows = 127 if i in global_blocks else 27
        for axis in "hw":
            sd[f"image_encoder.blocks.{i}.attn.rel_pos_{axis}"] = torch.empty(rows, head_dim, device="meta")
    return sd


@pytest.mark.parametrize(
    "variant,embed_dim,depth,head_dim,heads,global_blocks",
    [
        ("vit_b", 768, 12, 64, 12, (2, 5, 8, 11)),
        ("vit_l", 1024, 24, 64, 16, (5, 11, 17, 23)),
        ("vit_h", 1280, 32, 80, 16, (7, 15, 23, 31)),
        ("custom", 512, 6, 64, 8, (5,)),
    ],
)
def test_architecture_is_read_from_shapes(variant, embed_dim, depth, head_dim, heads, global_blocks):
    arch = sam.sam_architecture(_shape_only_sam(embed_dim, depth, head_dim, global_blocks))
    assert arch == sam.SamArchitecture(embed_dim, depth, heads, global_blocks)
    assert arch.variant == variant


def test_tiny_custom_file_loads(tiny):
    encoder = tiny.sam.image_encoder
    assert tiny.variant == "custom"
    assert len(encoder.blocks) == 2 and encoder.patch_embed.proj.out_channels == 64
    assert [b.attn.num_heads for b in encoder.blocks] == [2, 2]
    assert [b.window_size for b in encoder.blocks] == [14, 0]


def test_safetensors_with_the_same_keys_loads(tmp_path, tiny):
    from safetensors.torch import save_file

    path = tmp_path / "sam_vit_b_01ec64.safetensors"
    save_file(sam_state_dict("tiny"), str(path))
    model = sam.load_sam(path)
    for (name, a), b in zip(model.state_dict().items(), tiny.state_dict().values()):
        assert torch.equal(a, b), name


def _sd_checkpoint(path):
    from safetensors.torch import save_file

    save_file(
        {
            "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3),
            "first_stage_model.encoder.conv_in.weight": torch.zeros(128, 3, 3, 3),
        },
        str(path),
    )


def _gdino_checkpoint(path):
    torch.save({"model": {"backbone.0.patch_embed.proj.weight": torch.zeros(96, 3, 4, 4)}, "epoch": 11}, path)


def _truncated(path, source):
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _wrong_shape(path):
    sd = sam_state_dict("tiny")
    sd["mask_decoder.iou_prediction_head.layers.0.weight"] = torch.zeros(3, 3)
    torch.save(sd, path)


@pytest.mark.parametrize(
    "kind,filename",
    [
        ("stable diffusion", "v1-5-pruned-emaonly.safetensors"),
        ("groundingdino", "groundingdino_swint_ogc.pth"),
        ("truncated", "sam_vit_h_4b8939.pth"),
        ("wrong shape", "sam_vit_l_0b3195.pth"),
        ("text", "notes.pth"),
        ("missing", "sam_vit_h_4b8939.pth"),
    ],
)
def test_wrong_files_say_what_to_use(tmp_path, tiny_path, kind, filename):
    path = tmp_path / filename
    if kind == "stable diffusion":
        _sd_checkpoint(path)
    elif kind == "groundingdino":
        _gdino_checkpoint(path)
    elif kind == "truncated":
        _truncated(path, tiny_path)
    elif kind == "wrong shape":
        _wrong_shape(path)
    elif kind == "text":
        path.write_text("not a checkpoint")
    with pytest.raises(sam.SamLoadError) as err:
        sam.load_sam(path)
    message = str(err.value)
    assert filename in message and "models/sams" in message and "Segment Anything checkpoint" in message
    if kind in ("stable diffusion", "groundingdino"):
        assert f"it looks like a {'Stable Diffusion' if kind == 'stable diffusion' else 'GroundingDINO'}" in message


def test_sam_with_stray_hq_sam_keys_is_read_as_hq_sam(tmp_path):
    """A SAM file with only some of HQ-SAM's decoder keys is built as HQ-SAM, and the strict load
    names what does not fit."""
    sd = sam_state_dict("tiny")
    sd["mask_decoder.hf_token.weight"] = torch.zeros(1, 256)
    path = tmp_path / "sam_hq_vit_h.pth"
    torch.save(sd, path)
    with pytest.raises(sam.SamLoadError, match="do not fit the hq_custom architecture") as err:
        sam.load_sam(path)
    assert "sam_hq_vit_h.pth" in str(err.value)


def test_segment_embeds_once_and_matches_per_box_predictions(tiny, image):
    from segment_anything import SamPredictor

    tiny.forget_image()
    before = tiny.encoder_passes
    masks = tiny.segment(image, BOXES)
    assert tiny.encoder_passes == before + 1
    assert masks.shape == (3, 48, 80) and masks.dtype == torch.bool and masks.device.type == "cpu"
    assert masks.any() and not masks.all()  # random weights, but not a constant answer

    # The reference's call: set_image on the uint8 RGB image, then SAM's predict per box.
    predictor = SamPredictor(tiny.sam)
    predictor.set_image((image * 255).round().to(torch.uint8).numpy())
    for box, mask in zip(BOXES, masks):
        expected, _, _ = predictor.predict(box=box.numpy(), multimask_output=False)
        assert (torch.from_numpy(expected[0]) != mask).float().mean() < 1e-3


def test_segment_counts_one_pass_per_image(tiny, image):
    tiny.forget_image()
    before = tiny.encoder_passes
    tiny.segment(image, BOXES[:1])
    tiny.segment(image.flip(0), BOXES)
    assert tiny.encoder_passes == before + 2


def test_the_same_photo_is_embedded_once_across_calls(tiny, image):
    """New boxes on the same photo (the artist changed the instruction) reuse the embedding;
    any changed pixel, or forget_image(), embeds again."""
    tiny.forget_image()
    before = tiny.encoder_passes
    first = tiny.segment(image, BOXES)
    again = tiny.segment(image.clone(), BOXES[:2])
    assert tiny.encoder_passes == before + 1
    assert torch.equal(again, first[:2])
    changed = image.clone()
    changed[0, 0] = 0.0 if float(changed[0, 0].mean()) > 0.5 else 1.0
    tiny.segment(changed, BOXES)
    assert tiny.encoder_passes == before + 2
    tiny.segment(changed, BOXES)
    tiny.forget_image()
    tiny.segment(changed, BOXES)
    assert tiny.encoder_passes == before + 3


def test_union_and_small_decoder_calls_give_the_same_masks(tiny, image):
    """A large photo gets fewer boxes per decoder call and, for a union, one running mask: the
    result is the same, and the interrupt check runs before every call (it stops the loop)."""
    every = tiny.segment(image, BOXES)
    calls = []
    saved = tiny.decoder_bytes
    try:
        tiny.decoder_bytes = 4 * 48 * 80  # one full-size float mask: one box per call
        assert torch.equal(tiny.segment(image, BOXES, interrupt=lambda: calls.append(1)), every)
        assert len(calls) == len(BOXES)
        union = tiny.segment(image, BOXES, union=True)
        assert union.shape == (1, 48, 80) and torch.equal(union[0], every.any(0))

        def cancelled():
            raise InterruptedError

        with pytest.raises(InterruptedError):
            tiny.segment(image, BOXES, interrupt=cancelled)
    finally:
        tiny.decoder_bytes = saved
    assert tiny.segment(image, torch.zeros(0, 4), union=True).shape == (1, 48, 80)


def test_no_boxes_skips_the_encoder(tiny, image):
    before = tiny.encoder_passes
    masks = tiny.segment(image, torch.zeros(0, 4))
    assert masks.shape == (0, 48, 80) and masks.dtype == torch.bool
    assert tiny.encoder_passes == before


def test_bad_inputs_are_refused(tiny, image):
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        tiny.segment(image[None], BOXES)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        tiny.segment(image, BOXES[:, :2])


HALF = [("cpu", torch.bfloat16)] + ([("cuda", torch.float16)] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device,dtype", HALF)
def test_half_precision_weights(tiny_path, image, tiny, device, dtype):
    """A ModelPatcher may move and cast the model after loading: device and dtype are read at call
    time, and reduced precision runs under autocast (bfloat16 on the CPU: float16 there is slow)."""
    half = sam.load_sam(tiny_path).to(device=device, dtype=dtype)
    masks = half.segment(image, BOXES)
    assert masks.shape == (3, 48, 80) and masks.dtype == torch.bool
    assert (masks == tiny.segment(image, BOXES)).float().mean() > 0.95
