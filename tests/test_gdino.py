"""GroundingDINO on transformers' implementation, loaded from the original checkpoint files.

Nothing can be downloaded here, so every model has random weights and the reference is the
original model itself, built from IDEA-Research's code (reference_gdino.py): the converted model
must load strictly and compute the same outputs. Then the detect API (one pass for all phrases,
batching, labels and scores), the load errors, cfg handling and the Hugging Face folder format.
"""

from __future__ import annotations

import json
import logging
import os

import pytest
import torch
from grounded_ip2p.grounding import gdino

from . import reference_gdino as ref
from .gdino_checkpoint import CFG_NAME, PTH_NAME, original_gdino_checkpoint

PHRASES = ["red car", "tree", "small dog", "house"]


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    """The tiny original checkpoint and its cfg, as a user's models/grounding-dino folder has them."""
    return original_gdino_checkpoint(tmp_path_factory.mktemp("grounding-dino"), "tiny")


@pytest.fixture(scope="module")
def tiny_original(tiny_files):
    """The original model code holding the checkpoint's weights."""
    model = ref.build_original(ref.TINY_CFG, tiny=True, layout_only=True)
    model.load_state_dict(torch.load(tiny_files[0], weights_only=True)["model"])
    return model


@pytest.fixture(scope="module")
def detector(tiny_files):
    return gdino.load_grounding_dino(tiny_files[0])


def _phrase_positions(tokenizer, phrases) -> list[list[int]]:
    """Each phrase's token positions in "[CLS] p1 . p2 . ... [SEP]", counted from the tokenized
    phrases alone (independently of the offsets detect uses)."""
    positions, start = [], 1
    for phrase in phrases:
        count = len(tokenizer(phrase, add_special_tokens=False)["input_ids"])
        positions.append(list(range(start, start + count)))
        start += count + 1
    return positions


def _assert_same_detections(a, b):
    assert a.labels == b.labels and a.image_size == b.image_size
    torch.testing.assert_close(a.boxes, b.boxes, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(a.scores, b.scores, atol=1e-5, rtol=1e-4)


# --- conversion ----------------------------------------------------------------------------------


def test_full_swint_checkpoint_loads_strictly(tmp_path):
    """The full-size SwinT checkpoint file (real key layout and shapes) converts and loads with no
    missing or unexpected key; its shapes alone give the same model as its cfg."""
    pth, _cfg = original_gdino_checkpoint(tmp_path, "swint")
    detector = gdino.load_grounding_dino(pth)
    assert detector.variant == "swint_ogc" and not detector.model.training
    config, variant = gdino.original_config(None, gdino.read_original_checkpoint(pth))
    assert variant == "swint_ogc"
    assert config.to_dict() == detector.model.config.to_dict()


def test_full_swinb_layout_converts_strictly():
    ref.require_source()
    sd = ref.build_original(ref.SWINB_CFG, layout_only=True).state_dict()
    config, variant = gdino.original_config(ref.cfg_values(ref.SWINB_CFG), sd)
    assert variant == "swinb_cogcoor"
    assert (config.backbone_config.window_size, config.backbone_config.image_size) == (12, 384)
    gdino.build_model(config).load_state_dict(gdino.convert_original_state_dict(sd, config), strict=True)
    inferred, variant = gdino.original_config(None, sd)
    assert variant == "swinb_cogcoor" and inferred.to_dict() == config.to_dict()


def test_converted_model_computes_what_the_original_computes(tiny_original, detector):
    """Same logits and boxes as the original code. The converted model runs a batch of two
    captions of different lengths (so the padded-text path is checked too); the original runs each
    image alone, as its `predict` does: with more than one caption per batch it mixes them up (its
    text enhancer repeats the attention mask per head in batch-major order, and its sub-sentence
    mask carries the last delimiter of one caption over to the next)."""
    torch.manual_seed(1)
    pixels = torch.randn(2, 3, 96, 128)
    captions = ["red car . tree . small dog . house .", "a cat ."]
    tokens = detector.tokenizer(captions, padding="longest", return_tensors="pt")
    with torch.inference_mode():
        out = detector.model(pixel_values=pixels, **tokens)
    for i, caption in enumerate(captions):
        with torch.no_grad():
            expected = tiny_original(pixels[i : i + 1], captions=[caption])
        logits, finite = expected["pred_logits"][0], torch.isfinite(expected["pred_logits"][0])
        assert torch.equal(finite, torch.isfinite(out.logits[i]))
        assert logits[finite].std() > 1  # random weights, yet far from constant
        torch.testing.assert_close(out.logits[i][finite], logits[finite], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(out.pred_boxes[i], expected["pred_boxes"][0], atol=1e-4, rtol=1e-4)


def test_unknown_original_key_is_an_error(tiny_original):
    sd = dict(tiny_original.state_dict(), **{"transformer.new_head.weight": torch.zeros(1)})
    config, _variant = gdino.original_config(None, sd)
    with pytest.raises(gdino.GroundingDinoLoadError, match="transformer.new_head.weight"):
        gdino.convert_original_state_dict(sd, config)


# --- detect --------------------------------------------------------------------------------------


def test_detect_is_the_original_prediction_in_one_pass(tiny_original, detector):
    """All four phrases in one forward pass; every box, score and label is what the original
    model's output gives for the "p1 . p2 . p3 . p4 ." caption, in pixels of the input image."""
    torch.manual_seed(2)
    image = torch.rand(1, 120, 90, 3)
    before = detector.forward_passes
    [found] = detector.detect(image, PHRASES, box_threshold=0.0, text_threshold=0.0)
    assert detector.forward_passes == before + 1

    with torch.no_grad():
        out = tiny_original(gdino.preprocess(image), captions=["red car . tree . small dog . house ."])
    probs = out["pred_logits"][0].sigmoid()
    per_phrase = torch.stack([probs[:, pos].amax(1) for pos in _phrase_positions(detector.tokenizer, PHRASES)], 1)
    scores, best = per_phrase.max(1)
    order = scores.argsort(descending=True)
    order = order[scores[order] > 0]
    cx, cy, w, h = out["pred_boxes"][0][order].unbind(-1)
    boxes = torch.stack([(cx - w / 2) * 90, (cy - h / 2) * 120, (cx + w / 2) * 90, (cy + h / 2) * 120], 1)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, 90)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, 120)

    assert found.image_size == (120, 90) and len(found) == len(order) > 0
    assert found.labels == [PHRASES[i] for i in best[order]]
    torch.testing.assert_close(found.scores, scores[order], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(found.boxes, boxes, atol=1e-3, rtol=1e-4)
    assert found.phrases == PHRASES
    torch.testing.assert_close(found.phrase_scores, per_phrase[order], atol=1e-5, rtol=1e-4)


def test_thresholds(detector):
    image = torch.rand(1, 64, 64, 3)
    everything = detector.detect(image, PHRASES, 0.0, 0.0)[0]
    cut = float(everything.scores.median())
    for box_threshold, text_threshold in ((cut, 0.0), (0.0, cut)):
        found = detector.detect(image, PHRASES, box_threshold, text_threshold)[0]
        assert len(found) == int((everything.scores > cut).sum()) and bool((found.scores > cut).all())
        assert torch.equal(found.scores, found.phrase_scores.amax(1))
        assert bool((found.scores[:-1] >= found.scores[1:]).all())


def test_equal_size_batch_is_one_pass_with_per_image_results(detector):
    torch.manual_seed(3)
    images = torch.rand(2, 64, 80, 3)
    per_image = [["red car", "tree"], ["small dog", "house", "tree"]]
    before = detector.forward_passes
    batch = detector.detect(images, per_image, 0.0, 0.0)
    assert detector.forward_passes == before + 1
    for i, found in enumerate(batch):
        assert found.phrases == per_image[i] and set(found.labels) <= set(per_image[i])
        _assert_same_detections(found, detector.detect(images[i : i + 1], [per_image[i]], 0.0, 0.0)[0])


def test_batching_by_size_and_max_batch(detector):
    images = [torch.rand(64, 80, 3), torch.rand(1, 50, 70, 4), torch.rand(64, 80, 3)]
    before = detector.forward_passes
    found = detector.detect(images, ["tree"], 0.0, 0.0)
    assert detector.forward_passes == before + 2  # one pass per size
    assert [d.image_size for d in found] == [(64, 80), (50, 70), (64, 80)]
    for d in found:
        h, w = d.image_size
        assert bool(((d.boxes >= 0) & (d.boxes <= torch.tensor([w, h, w, h]))).all())

    detector.max_batch = 1
    try:
        before = detector.forward_passes
        detector.detect(torch.rand(2, 32, 32, 3), ["tree"])
        assert detector.forward_passes == before + 2
    finally:
        detector.max_batch = 8


@pytest.mark.parametrize("phrases", [[], ["", "  ", " . "], [[], []]])
def test_no_phrases_runs_nothing(detector, phrases):
    before = detector.forward_passes
    found = detector.detect(torch.rand(2, 40, 50, 3), phrases)
    assert detector.forward_passes == before
    assert [len(d) for d in found] == [0, 0] and found[0].image_size == (40, 50) and found[0].note


def test_prompt_and_token_spans(detector):
    prompt = gdino.build_prompt(["Red car", "St. Mary church", "red  car", "", "dog?"])
    assert prompt.phrases == ("Red car", "St. Mary church", "dog?")
    assert prompt.caption == "red car . st mary church . dog ."
    tokens = detector.tokenizer(prompt.caption, return_offsets_mapping=True, return_tensors="pt")
    membership = gdino._token_phrases(tokens["offset_mapping"][0], prompt)
    words = detector.tokenizer.convert_ids_to_tokens(tokens["input_ids"][0])
    spelled = [[w for w, m in zip(words, row, strict=True) if m] for row in membership]
    assert spelled == [["red", "car"], ["st", "mary", "church"], ["dog"]]


def test_phrases_past_the_token_limit_are_reported(detector):
    phrases = [f"cat number {i}" for i in range(100)]  # ~4 tokens each: past 256
    found = detector.detect(torch.rand(1, 32, 32, 3), phrases, 0.0, 0.0)[0]
    lost = found.phrase_scores[:, -1]
    assert "not searched" in found.note and "cat number 99" in found.note and bool((lost == 0).all())
    assert "cat number 99" not in found.labels


def test_nan_outputs_are_dropped_and_reported():
    prompt = gdino.build_prompt(["tree"])
    offsets = torch.tensor([[0, 0], [0, 4], [5, 6], [0, 0]])  # [CLS] tree . [SEP]
    probs = torch.full((3, 256), 0.9)
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.2], [float("nan")] * 4, [0.5, 0.5, 0.4, 0.4]])
    found = gdino._detections(probs, boxes, offsets, prompt, (10, 20), 0.3, 256)
    assert len(found) == 2 and "1 of 3 detector outputs were NaN" in found.note


def test_preprocess_size_rule():
    assert gdino.resized_size(480, 640) == (800, 1066)
    assert gdino.resized_size(100, 1000) == (133, 1330)  # the long side caps the size (same rounding)
    assert gdino.resized_size(800, 600) == (1066, 800)
    assert tuple(gdino.preprocess(torch.rand(1, 30, 40, 3)).shape) == (1, 3, 800, 1066)


def test_model_moved_by_someone_else(tiny_files):
    """The device and dtype are read at call time (ComfyUI's ModelPatcher moves the model)."""
    detector = gdino.load_grounding_dino(tiny_files[0])
    image = torch.rand(1, 48, 48, 3)
    expected = detector.detect(image, PHRASES, 0.0, 0.0)[0]
    detector.model.to(torch.float64)
    _assert_same_detections(detector.detect(image, PHRASES, 0.0, 0.0)[0], expected)


# --- files and errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, says",
    [
        (
            {"image_encoder.patch_embed.proj.weight": torch.zeros(1), "mask_decoder.iou_token.weight": torch.zeros(1)},
            "Segment Anything",
        ),
        ({"model": {"layer.weight": torch.zeros(2)}}, "lacks"),
        ([1, 2, 3], "list"),
    ],
)
def test_other_files_are_refused_clearly(tmp_path, content, says):
    path = tmp_path / "sam_vit_b_01ec64.pth"
    torch.save(content, path)
    with pytest.raises(gdino.GroundingDinoLoadError) as error:
        gdino.load_grounding_dino(path)
    message = str(error.value)
    assert path.name in message and says in message and "models/grounding-dino" in message


def test_garbage_file_is_refused_clearly(tmp_path):
    path = tmp_path / "groundingdino_swint_ogc.pth"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(gdino.GroundingDinoLoadError, match="groundingdino_swint_ogc.pth.*cannot be read"):
        gdino.load_grounding_dino(path)


def test_checkpoint_without_cfg_is_read_from_its_shapes(tmp_path, tiny_files, detector, caplog):
    os.link(tiny_files[0], tmp_path / PTH_NAME)
    with caplog.at_level(logging.INFO, logger=gdino.__name__):
        alone = gdino.load_grounding_dino(tmp_path / PTH_NAME)
    assert "no .cfg.py" in caplog.text
    assert alone.variant == "custom"
    assert alone.model.config.to_dict() == detector.model.config.to_dict()


def test_cfg_of_another_model_is_refused(tmp_path, tiny_files):
    (tmp_path / "swint.cfg.py").write_text(ref.SWINT_CFG)
    with pytest.raises(gdino.GroundingDinoLoadError, match="does not describe this checkpoint.*backbone"):
        gdino.load_grounding_dino(tiny_files[0], tmp_path / "swint.cfg.py")


def test_cfg_is_read_never_executed(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "a.cfg.py").write_text(f'hidden_dim = 256\nx = __import__("pathlib").Path({str(marker)!r}).touch()\n')
    with pytest.raises(gdino.GroundingDinoLoadError, match="line 2"):
        gdino.read_original_cfg(tmp_path / "a.cfg.py")
    assert not marker.exists()
    (tmp_path / CFG_NAME).write_text(ref.SWINT_CFG)
    assert gdino.read_original_cfg(tmp_path / CFG_NAME) == ref.cfg_values(ref.SWINT_CFG)


def test_cfg_found_next_to_released_names(tmp_path):
    for name in ("groundingdino_swint_ogc.pth", "groundingdino_swinb_cogcoor.pth", "mine.pth"):
        (tmp_path / name).touch()
    (tmp_path / "GroundingDINO_SwinT_OGC.cfg.py").touch()
    (tmp_path / "GroundingDINO_SwinB.cfg.py").touch()
    (tmp_path / "mine.cfg.py").touch()
    assert gdino.find_cfg(tmp_path / "groundingdino_swint_ogc.pth").name == "GroundingDINO_SwinT_OGC.cfg.py"
    assert gdino.find_cfg(tmp_path / "groundingdino_swinb_cogcoor.pth").name == "GroundingDINO_SwinB.cfg.py"
    assert gdino.find_cfg(tmp_path / "mine.pth").name == "mine.cfg.py"
    (tmp_path / "other.pth").touch()
    assert gdino.find_cfg(tmp_path / "other.pth") is None


def test_module_prefixes_and_safetensors_originals(tmp_path, tiny_files, detector):
    from safetensors.torch import save_file

    sd = gdino.read_original_checkpoint(tiny_files[0])
    torch.save({"model": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "ddp.pth")
    save_file({k: v.clone().contiguous() for k, v in sd.items()}, str(tmp_path / "gd.safetensors"))
    expected = detector.model.state_dict()
    for name in ("ddp.pth", "gd.safetensors"):
        loaded = gdino.load_grounding_dino(tmp_path / name, tiny_files[1]).model.state_dict()
        assert loaded.keys() == expected.keys()
        assert all(torch.equal(loaded[k], expected[k]) for k in expected)


def test_hugging_face_folder(tmp_path, detector):
    folder = tmp_path / "grounding-dino-tiny"
    detector.model.save_pretrained(folder)  # transformers 5 writes the hub's (transformers 4) key names
    config = json.loads((folder / "config.json").read_text())
    config.update(use_timm_backbone=False, backbone=None, use_pretrained_backbone=False)  # as on the hub
    (folder / "config.json").write_text(json.dumps(config))
    image = torch.rand(1, 56, 72, 3)
    expected = detector.detect(image, PHRASES, 0.0, 0.0)[0]
    loaded = gdino.load_grounding_dino(folder)  # no tokenizer files: the shipped vocabulary
    assert loaded.variant == "custom" and loaded.source == folder
    _assert_same_detections(loaded.detect(image, PHRASES, 0.0, 0.0)[0], expected)

    detector.tokenizer.save_pretrained(folder)  # with tokenizer files: the folder's own tokenizer
    _assert_same_detections(gdino.load_grounding_dino(folder).detect(image, PHRASES, 0.0, 0.0)[0], expected)


def test_hugging_face_folder_of_another_model(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "sam"}))
    with pytest.raises(gdino.GroundingDinoLoadError, match="'sam' model"):
        gdino.load_grounding_dino(tmp_path)


def test_a_cancel_between_resize_and_forward_skips_the_model(detector):
    class Cancelled(Exception):
        pass

    def cancel():
        raise Cancelled

    before = detector.forward_passes
    with pytest.raises(Cancelled):
        detector.detect(torch.rand(1, 900, 1300, 3), PHRASES, interrupt=cancel)
    assert detector.forward_passes == before  # stopped after the resize, before the forward pass
    assert len(detector.detect(torch.rand(1, 60, 80, 3), PHRASES, interrupt=lambda: None)) == 1
