"""The CLIP-score filter: loading every supported layout offline, the score formula, batching,
the reference's crop preprocessing, and the phrase choice (ties, exclusion, no box), on tiny
random-weight CLIPs."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch
from grounded_ip2p.grounding import clip_score
from grounded_ip2p.grounding.detections import Detections

from .clip_checkpoint import clip_checkpoint, hf_clip_file, hf_clip_folder, tiny_hf_clip, tiny_open_clip

PHRASES = ["the red truck", "a brown bear", "two dogs", "the sky", "A Man's hat!", "green grass"]


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip")
    return {
        "open_clip": clip_checkpoint(root / "open_clip"),
        "hf_file": hf_clip_file(root / "hf_file"),
        "hf_folder": hf_clip_folder(root / "hf_folder"),
    }


@pytest.fixture(scope="module")
def scorers(paths):
    return {name: clip_score.load_clip(path) for name, path in paths.items()}


@pytest.fixture(scope="module")
def image():
    """A 120x200 image: a gradient with a bright block, so crops differ."""
    y, x = torch.meshgrid(torch.linspace(0, 1, 120), torch.linspace(0, 1, 200), indexing="ij")
    img = torch.stack([x, y, 1 - x * y], -1)
    img[30:90, 120:180] = torch.tensor([0.9, 0.2, 0.1])
    return img


def _square_crops(n: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return [torch.rand(224, 224, 3, generator=gen) ** (i + 1) for i in range(n)]


def _normalise(crop: torch.Tensor) -> torch.Tensor:
    mean, std = torch.tensor(clip_score.CLIP_MEAN), torch.tensor(clip_score.CLIP_STD)
    return ((crop - mean) / std).permute(2, 0, 1)


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------
def test_open_clip_file_loads_the_saved_weights(scorers):
    scorer = scorers["open_clip"]
    assert scorer.is_open_clip and scorer.image_size == 224 and scorer.context_length == 77
    expected = tiny_open_clip().state_dict()
    for name, value in scorer.model.state_dict().items():
        assert value.dtype == torch.float32 and torch.equal(value, expected[name]), name


def test_hf_file_config_is_read_from_shapes(scorers):
    model = scorers["hf_file"].model
    text, vision = model.config.text_config, model.config.vision_config
    assert (
        text.hidden_size,
        text.num_hidden_layers,
        text.intermediate_size,
        text.vocab_size,
        text.max_position_embeddings,
    ) == (64, 2, 256, 49408, 77)
    assert (vision.hidden_size, vision.num_hidden_layers, vision.patch_size, vision.image_size) == (64, 2, 14, 224)
    assert model.config.projection_dim == 32
    expected = tiny_hf_clip().state_dict()
    for name, value in model.state_dict().items():
        assert torch.equal(value, expected[name]), name


def test_hf_folder_tokenizer_agrees_with_open_clip_tokenizer(scorers):
    from open_clip.tokenizer import SimpleTokenizer

    folder, single = scorers["hf_folder"], scorers["hf_file"]
    assert not isinstance(folder.tokenizer, SimpleTokenizer) and isinstance(single.tokenizer, SimpleTokenizer)
    hf_ids, oc_ids = folder.tokenize(PHRASES)["input_ids"], single.tokenize(PHRASES)["input_ids"]
    width = hf_ids.shape[1]
    assert torch.equal(hf_ids[oc_ids[:, :width] != 0], oc_ids[:, :width][oc_ids[:, :width] != 0])
    crops = _square_crops(2)
    assert torch.allclose(folder.score(crops, PHRASES), single.score(crops, PHRASES), atol=1e-4)


def test_folder_without_tokenizer_files_uses_the_bundled_one(tmp_path):
    from open_clip.tokenizer import SimpleTokenizer

    scorer = clip_score.load_clip(hf_clip_folder(tmp_path / "no_tokenizer", tokenizer=False))
    assert isinstance(scorer.tokenizer, SimpleTokenizer)


def test_openai_torchscript_archive_loads(tmp_path, scorers):
    """OpenAI's ViT-L-14.pt is a TorchScript archive: read through torch.jit, not pickle."""
    import warnings

    path = tmp_path / "ViT-L-14.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(tiny_open_clip()), str(path))
    scorer = clip_score.load_clip(path)
    crops = _square_crops(2)
    assert torch.equal(scorer.score(crops, PHRASES), scorers["open_clip"].score(crops, PHRASES))


def test_nothing_is_downloaded(monkeypatch, paths):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    for path in paths.values():
        scorer = clip_score.load_clip(path)
        assert scorer.score(_square_crops(1), ["a cat"]).shape == (1, 1)


def _save(path, sd):
    from safetensors.torch import save_file

    save_file(sd, str(path))


@pytest.mark.parametrize(
    "kind,name,match",
    [
        ("vision only", "clip_vision_l.safetensors", "vision model only"),
        ("text only", "clip_l.safetensors", "text encoder only"),
        ("sam", "sam_vit_b_01ec64.pth", "no CLIP image and text encoders"),
        ("truncated", "ViT-L-14.safetensors", "cannot be read"),
        ("folder", "not-a-clip", "not a Hugging Face CLIP folder"),
        ("missing", "nothing.safetensors", "no such file"),
    ],
)
def test_wrong_files_say_what_to_use(tmp_path, paths, kind, name, match):
    path = tmp_path / name
    hf = {k: v for k, v in tiny_hf_clip().state_dict().items()}
    if kind == "vision only":
        _save(path, {k: v for k, v in hf.items() if k.startswith(("vision_model.", "visual_projection"))})
    elif kind == "text only":
        _save(path, {k: v for k, v in hf.items() if k.startswith("text_model.")})
    elif kind == "sam":
        torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(8, 3, 16, 16)}, path)
    elif kind == "truncated":
        data = paths["open_clip"].read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif kind == "folder":
        path.mkdir()
        (path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(clip_score.ClipLoadError, match=match) as err:
        clip_score.load_clip(path)
    assert name in str(err.value) and "CLIP" in str(err.value)


# ----------------------------------------------------------------------------------------------
# Scores
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["open_clip", "hf_file"])
def test_score_is_clipscore(scorers, layout):
    """224x224 crops need no resizing: the expected value is computed straight from the model's own
    forward, with open_clip's module-level tokenizer, as max(100 cos, 0)."""
    import open_clip

    scorer = scorers[layout]
    crops = _square_crops(3)
    pixels = torch.stack([_normalise(c) for c in crops])
    tokens = open_clip.tokenize(PHRASES)
    with torch.no_grad():
        if layout == "open_clip":
            image_embeds = scorer.model.encode_image(pixels, normalize=True)
            text_embeds = scorer.model.encode_text(tokens, normalize=True)
        else:
            out = scorer.model(input_ids=tokens, pixel_values=pixels)
            image_embeds, text_embeds = out.image_embeds, out.text_embeds
    cosine = 100 * image_embeds @ text_embeds.T
    expected = cosine.clamp(min=0)
    got = scorer.score(crops, PHRASES)
    assert got.shape == (3, len(PHRASES)) and got.dtype == torch.float32
    assert torch.allclose(got, expected, atol=1e-3)
    assert (cosine > 0).any() and (cosine < 0).any()  # both sides of the clamp are exercised


def test_all_crops_in_one_image_pass(scorers, image):
    scorer = scorers["open_clip"]
    crops = [image, image[:10, :150], image[50:, 20:30], image[:1, :1], _square_crops(1)[0]]
    before = scorer.image_passes, scorer.text_passes
    batch = scorer.score(crops, PHRASES[:3])
    assert (scorer.image_passes, scorer.text_passes) == (before[0] + 1, before[1] + 1)
    assert batch.shape == (5, 3)
    for crop, row in zip(crops, batch):
        assert torch.allclose(scorer.score([crop], PHRASES[:3])[0], row, atol=1e-3)
    assert scorer.score([], PHRASES).shape == (0, len(PHRASES))
    assert scorer.image_passes == before[0] + 1 + len(crops)


def test_reduced_precision_weights(paths):
    """A ModelPatcher may cast the model after loading: the dtype is read at call time."""
    full = clip_score.load_clip(paths["open_clip"])
    half = clip_score.load_clip(paths["open_clip"]).to(torch.bfloat16)
    crops = _square_crops(2)
    assert torch.allclose(half.score(crops, PHRASES), full.score(crops, PHRASES), atol=3.0)


@pytest.mark.parametrize(
    "height,width",
    [
        (300, 500),
        (500, 300),
        (225, 1000),
        (1000, 225),
        (100, 100),
        (224, 225),
        (3, 2000),
        (2000, 3),
        (224, 224),
        (600, 601),
        (37, 999),
    ],
)
def test_thumbnail_size_is_pils(height, width):
    from PIL import Image

    thumb = Image.new("RGB", (width, height))
    thumb.thumbnail((224, 224))
    assert clip_score.thumbnail_size(height, width) == (thumb.height, thumb.width)


@pytest.mark.parametrize("height,width", [(180, 300), (300, 180), (120, 90), (400, 400)])
def test_preprocess_matches_the_reference_pipeline(height, width):
    """Against PIL: thumbnail (LANCZOS), short side to 224 (bicubic), centre crop, normalise. A smooth
    crop, so only the resampling filters differ; a wrong size or crop offset would not be close."""
    from PIL import Image

    y, x = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    crop = torch.stack([x, y, (x + y) / 2], -1)
    pil = Image.fromarray((crop * 255).round().to(torch.uint8).numpy())
    pil.thumbnail((224, 224), Image.LANCZOS)
    short = min(pil.size)
    size = (224, int(224 * pil.height / short)) if pil.width == short else (int(224 * pil.width / short), 224)
    pil = pil.resize(size, Image.BICUBIC)
    left, top = (pil.width - 224) // 2, (pil.height - 224) // 2
    pil = pil.crop((left, top, left + 224, top + 224))
    expected = _normalise(torch.from_numpy(np.array(pil)).float() / 255)
    got = clip_score.preprocess(crop, 224)
    assert got.shape == (3, 224, 224)
    assert (got - expected).abs().mean() < 0.01 and (got - expected).abs().max() < 0.05


def test_crop_rounds_clamps_and_keeps_a_pixel(image):
    assert clip_score.crop(image, [10.4, 20.6, 50.5, 60.2]).shape == (39, 40, 3)  # PIL-style rounding
    assert torch.equal(clip_score.crop(image, [-30, -5, 500, 400]), image)
    assert clip_score.crop(image, [300, 200, 400, 300]).shape == (1, 1, 3)
    assert clip_score.crop(image, [50, 50, 40, 40]).shape == (1, 1, 3)
    assert torch.equal(clip_score.crop(image, [50, 50, 40, 40]), image[50:51, 50:51])


# ----------------------------------------------------------------------------------------------
# Phrase choice
# ----------------------------------------------------------------------------------------------
class FakeScorer:
    """Scores each crop against each text from a table by phrase; records the calls."""

    def __init__(self, table: dict[str, float]):
        self.table, self.calls = table, []

    def score(self, crops, texts):
        self.calls.append(([tuple(c.shape) for c in crops], list(texts)))
        return torch.tensor([[self.table[t] for t in texts] for _ in crops])


def _detections(image_size=(120, 200)) -> Detections:
    boxes = [[10, 10, 50, 40], [120, 30, 180, 90], [100, 60, 150, 110], [0, 0, 200, 120]]
    return Detections(
        torch.tensor(boxes, dtype=torch.float32),
        torch.tensor([0.9, 0.8, 0.5, 0.4]),
        ["the man", "a bear", "the man", "the sky"],
        image_size,
    )


def test_union_box_crops_in_one_call(image):
    fake = FakeScorer({"the man": 20.0, "a bear": 25.0, "the sky": 5.0})
    choice = clip_score.pick_phrase(image, _detections(), ["the man", "a bear", "a kite", "the sky"], fake)
    # "the man" has two boxes: its crop is their union (10..150 x 10..110)
    assert fake.calls == [([(100, 140, 3), (60, 60, 3), (120, 200, 3)], ["the man", "a bear", "the sky"])]
    assert choice.scores == [20.0, 25.0, 0.0, 5.0] and choice.counts == [2, 1, 0, 1]
    assert (choice.phrase, choice.index) == ("a bear", 1)
    assert choice.detections.labels == ["a bear"] and "a bear" in choice.detections.note
    assert torch.equal(choice.detections.boxes, torch.tensor([[120.0, 30.0, 180.0, 90.0]]))


def test_ties_go_to_the_earlier_phrase(image):
    fake = FakeScorer({"the man": 25.0, "a bear": 25.0, "the sky": 25.0})
    choice = clip_score.pick_phrase(image, _detections(), ["a bear", "the man", "the sky"], fake)
    assert (choice.phrase, choice.index) == ("a bear", 0)


def test_excluded_phrases_score_minus_one_and_are_not_scored(image):
    fake = FakeScorer({"the man": 20.0, "a bear": 25.0})
    choice = clip_score.pick_phrase(image, _detections(), ["the man", "a bear"], fake, exclude=["a bear"])
    assert choice.scores == [20.0, -1.0] and choice.phrase == "the man"
    assert fake.calls[0][1] == ["the man"]


def test_no_box_scores_zero_and_beats_nothing(image):
    fake = FakeScorer({})
    choice = clip_score.pick_phrase(image, Detections.empty((120, 200)), ["a kite", "a cactus"], fake)
    assert choice.scores == [0.0, 0.0] and (choice.phrase, choice.index) == ("a kite", 0)
    assert len(choice.detections) == 0 and fake.calls == []
    # a box with a clamped score of 0 ties with "no box": the earlier phrase still wins
    fake = FakeScorer({"the man": 0.0})
    assert clip_score.pick_phrase(image, _detections(), ["a kite", "the man"], fake).phrase == "a kite"


def test_table_marks_the_winner(image):
    fake = FakeScorer({"the man": 20.0, "a bear": 25.5})
    table = clip_score.pick_phrase(
        image, _detections(), ["the man", "a bear", "a kite", "the sky"], fake, exclude=["the sky"]
    ).table()
    assert table.splitlines() == [
        "  the man: 20.00",
        "* a bear: 25.50",
        "  a kite: 0.00 (no box)",
        "  the sky: -1.00 (excluded)",
    ]


def test_pick_phrase_checks_its_inputs(image):
    with pytest.raises(ValueError, match="at least one phrase"):
        clip_score.pick_phrase(image, _detections(), [], FakeScorer({}))
    with pytest.raises(ValueError, match="refer to a"):
        clip_score.pick_phrase(image, _detections((240, 400)), ["the man"], FakeScorer({}))


def test_pick_phrase_with_a_real_model(scorers, image):
    """One detector pass's labelled boxes serve every phrase; one image and one text pass in all."""
    scorer = scorers["hf_file"]
    detections = _detections()
    phrases = ["the man", "a kite", "a bear", "the sky"]
    before = scorer.image_passes, scorer.text_passes
    choice = clip_score.pick_phrase(image, detections, phrases, scorer)
    assert (scorer.image_passes, scorer.text_passes) == (before[0] + 1, before[1] + 1)
    for phrase, score in zip(phrases, choice.scores):
        boxes = detections.with_label(phrase)
        if len(boxes) == 0:
            assert score == 0.0
        else:
            alone = scorer.score([clip_score.crop(image, boxes.union_box())], [phrase])
            assert score == pytest.approx(float(alone[0, 0]), abs=1e-3)
    assert choice.scores[choice.index] == max(choice.scores)
    assert set(choice.detections.labels) == {choice.phrase}
