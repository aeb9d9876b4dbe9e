"""MM-Grounding-DINO and OWLv2 folders through Load GroundingDINO and GroundingDINO Detect.

The folders are random-weight models in their Hugging Face repositories' layout
(grounder_folders.py). The reference is transformers itself: its processor, model and
post-processing on the same folder and image. Tolerances: scores 1e-5 absolute; boxes 1e-3 pixel
(the same float32 computation, run twice).
"""

from __future__ import annotations

import json

import pytest
import torch
from grounded_ip2p.grounding import grounders
from grounded_ip2p.grounding.gdino import GroundingDino, GroundingDinoLoadError
from grounded_ip2p.grounding.owlv2 import Owlv2Detector, Owlv2LoadError

from .clip_checkpoint import clip_checkpoint
from .comfy_harness import PromptError
from .graphs import chain
from .grounder_folders import copy_folder, mm_gdino_folder, owlv2_folder
from .sam_checkpoint import sam_checkpoint

PHRASES = ["red car", "tree", "small dog", "house"]
H, W = 50, 70  # not square: OWLv2 pads it


@pytest.fixture(scope="module")
def mm_folder():
    return mm_gdino_folder("tiny")


@pytest.fixture(scope="module")
def owl_folder():
    return owlv2_folder("tiny")


@pytest.fixture(scope="module")
def image_bytes():
    """A random image as uint8 (what transformers' processors take) and as the pack's floats."""
    generator = torch.Generator().manual_seed(3)
    pixels = torch.randint(0, 256, (H, W, 3), dtype=torch.uint8, generator=generator)
    return pixels, pixels.float()[None] / 255


def _transformers(folder):
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    processor = AutoProcessor.from_pretrained(str(folder), local_files_only=True)
    model = AutoModelForZeroShotObjectDetection.from_pretrained(str(folder), local_files_only=True).eval()
    return processor, model


def _clipped(boxes):
    boxes = boxes.clone()
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, W)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, H)
    return boxes


# --- loading ---------------------------------------------------------------------------------------


def test_each_folder_loads_as_its_config_says(mm_folder, owl_folder, tmp_path):
    mm = grounders.load_grounder(mm_folder)
    assert isinstance(mm, GroundingDino) and type(mm.model).__name__ == "MMGroundingDinoForObjectDetection"
    assert mm.variant.startswith("mm-grounding-dino") and not mm.model.training
    owl = grounders.load_grounder(owl_folder)
    assert isinstance(owl, Owlv2Detector) and type(owl.model).__name__ == "Owlv2ForObjectDetection"
    # the name says GroundingDINO; config.json says OWLv2, and decides
    renamed = copy_folder(owl_folder, tmp_path / "grounding-dino-swint-ogc")
    assert isinstance(grounders.load_grounder(renamed), Owlv2Detector)


# --- the same boxes as transformers ----------------------------------------------------------------


def test_mm_gdino_boxes_are_transformers_boxes(mm_folder, image_bytes):
    """Same model outputs as transformers' processor + model; the boxes are post-processing's, labelled
    with the phrase whose tokens score highest and scored by that phrase's best token.

    The processor gets the float image: given uint8 it resizes in uint8, rounding to whole levels,
    where the pack resizes ComfyUI's floats (given the same floats, both inputs are equal)."""
    _, image = image_bytes
    processor, model = _transformers(mm_folder)
    float_image = image[0].permute(2, 0, 1)
    inputs = processor(images=float_image, text=[PHRASES], do_rescale=False, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    post = processor.post_process_grounded_object_detection(
        outputs, threshold=0.0, text_threshold=0.0, target_sizes=[(H, W)]
    )[0]
    probs = outputs.logits[0].sigmoid()
    ids = inputs["input_ids"][0].tolist()
    phrase_scores = []
    for phrase in PHRASES:  # each phrase's tokens, found in transformers' own input_ids
        tokens = processor.tokenizer(phrase, add_special_tokens=False)["input_ids"]
        start = next(i for i in range(len(ids)) if ids[i : i + len(tokens)] == tokens)
        phrase_scores.append(probs[:, start : start + len(tokens)].amax(dim=1))
    scores, best = torch.stack(phrase_scores, dim=1).max(dim=1)
    order = scores.argsort(descending=True)

    detector = grounders.load_grounder(mm_folder)
    found = detector.detect(image, PHRASES, 0.0, 0.0)[0]
    assert detector.forward_passes == 1 and found.image_size == (H, W)
    assert found.labels == [PHRASES[i] for i in best[order].tolist()]
    torch.testing.assert_close(found.scores, scores[order], atol=1e-5, rtol=0)
    torch.testing.assert_close(found.boxes, _clipped(post["boxes"][order]), atol=1e-3, rtol=0)
    assert torch.all(found.scores <= post["scores"][order] + 1e-6)  # transformers also counts [CLS], "."


@pytest.mark.parametrize("threshold", [0.0, 0.5])
def test_owlv2_boxes_are_transformers_post_processing(owl_folder, image_bytes, threshold):
    pixels, image = image_bytes
    processor, model = _transformers(owl_folder)
    inputs = processor(images=pixels.permute(2, 0, 1), text=[PHRASES], return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    post = processor.post_process_grounded_object_detection(
        outputs, threshold=threshold, target_sizes=[(H, W)], text_labels=[PHRASES]
    )[0]
    best_logits = outputs.logits[0].max(dim=1).values
    order = best_logits[best_logits.sigmoid() > threshold].argsort(descending=True)  # scores tie at 1.0

    detector = grounders.load_grounder(owl_folder)
    found = detector.detect(image, PHRASES, threshold, 0.25)[0]
    assert detector.forward_passes == 1 and len(found) == len(order) > 0
    assert found.labels == [post["text_labels"][i] for i in order.tolist()]
    torch.testing.assert_close(found.scores, post["scores"][order], atol=1e-5, rtol=0)
    torch.testing.assert_close(found.boxes, _clipped(post["boxes"][order]), atol=1e-3, rtol=0)
    assert found.phrases == PHRASES and found.phrase_scores.shape == (len(found), len(PHRASES))


# --- the detect contract -------------------------------------------------------------------------


def test_owlv2_ignores_text_threshold(owl_folder, image_bytes):
    detector = grounders.load_grounder(owl_folder)
    low, high = (detector.detect(image_bytes[1], PHRASES, 0.2, t)[0] for t in (0.0, 0.99))
    assert low.labels == high.labels and torch.equal(low.boxes, high.boxes) and len(low) > 0


@pytest.mark.parametrize("make", [mm_gdino_folder, owlv2_folder], ids=["mm-gdino", "owlv2"])
def test_a_batch_is_one_pass_with_each_images_own_boxes(make):
    detector = grounders.load_grounder(make("tiny"))
    images = torch.rand(3, 40, 56, 3, generator=torch.Generator().manual_seed(1))
    batch = detector.detect(images, PHRASES, 0.0, 0.0)
    assert detector.forward_passes == 1 and len(batch) == 3
    for i, found in enumerate(batch):
        alone = detector.detect(images[i : i + 1], PHRASES, 0.0, 0.0)[0]
        assert found.labels == alone.labels and set(found.labels) <= set(PHRASES)
        torch.testing.assert_close(found.boxes, alone.boxes, atol=1e-3, rtol=0)
    per_image = detector.detect(images[:2], [["tree"], ["small dog", "house"]], 0.0, 0.0)
    assert set(per_image[0].labels) == {"tree"} and set(per_image[1].labels) <= {"small dog", "house"}
    assert detector.detect(images[:1], [], 0.0, 0.0)[0].note == "no phrases to look for"


# --- folders that are not grounders --------------------------------------------------------------


def _config_folder(tmp_path, model_type, name="folder"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": model_type}))
    return folder


@pytest.mark.parametrize(
    "model_type,says",
    [
        ("florence2", "Florence-2 is a captioning model.*without a score per box"),
        ("owlvit", "OWL-ViT .v1. is not supported"),
        ("sam", "config.json is for a 'sam' model"),
    ],
)
def test_folders_of_other_models_say_what_they_are(tmp_path, model_type, says):
    folder = _config_folder(tmp_path, model_type, "Florence-2-base")
    with pytest.raises(GroundingDinoLoadError, match=f"Florence-2-base: {says}.*OWLv2 folder"):
        grounders.load_grounder(folder)


def test_broken_owlv2_folders_say_what_is_missing(owl_folder, tmp_path):
    no_tokenizer = copy_folder(
        owl_folder, tmp_path / "owlv2-a", leave_out=("tokenizer.json", "vocab.json", "merges.txt")
    )
    with pytest.raises(Owlv2LoadError, match="owlv2-a: the CLIP tokenizer's files are missing"):
        grounders.load_grounder(no_tokenizer)
    no_weights = copy_folder(owl_folder, tmp_path / "owlv2-b", leave_out=("model.safetensors",))
    with pytest.raises(Owlv2LoadError, match="owlv2-b: cannot load the Hugging Face OWLv2"):
        grounders.load_grounder(no_weights)
    # the hub's older tokenizer layout (vocab.json + merges.txt, no tokenizer.json) loads the same
    old_layout = copy_folder(owl_folder, tmp_path / "owlv2-c", leave_out=("tokenizer.json",))
    ids = grounders.load_grounder(old_layout).tokenizer(PHRASES)["input_ids"]
    assert ids == grounders.load_grounder(owl_folder).tokenizer(PHRASES)["input_ids"]


def test_unreadable_config_is_named(tmp_path):
    folder = tmp_path / "mm_grounding_dino_tiny"
    folder.mkdir()
    (folder / "config.json").write_text("{not json")
    with pytest.raises(GroundingDinoLoadError, match="mm_grounding_dino_tiny: no readable config.json"):
        grounders.load_grounder(folder)


# --- in ComfyUI ----------------------------------------------------------------------------------

REPOS = {"mm-gdino": "mm_grounding_dino_tiny_o365v1_goldg_v3det", "owlv2": "owlv2-base-patch16-ensemble"}


@pytest.fixture(scope="module")
def models(comfy, tmp_path_factory):
    """models/grounding-dino with both folders under their repositories' names, and SAM and CLIP."""
    root = tmp_path_factory.mktemp("grounder-models")
    copy_folder(mm_gdino_folder("tiny"), root / "grounding-dino" / REPOS["mm-gdino"])
    copy_folder(owlv2_folder("tiny"), root / "grounding-dino" / REPOS["owlv2"])
    sam = sam_checkpoint(root / "sams", size="tiny")
    clip = clip_checkpoint(root / "clip_filter")
    for folder in ("grounding-dino", "sams", "clip_filter"):
        comfy.add_models(folder, root / folder)
    return {"sam": sam.name, "clip": clip.name, "root": root}


@pytest.fixture(scope="module")
def street(comfy):
    from PIL import Image

    img = Image.new("RGB", (96, 64), (90, 140, 200))
    img.paste((200, 30, 30), (6, 30, 26, 50))
    img.save(comfy.work / "input" / "grounder-street.png")
    return "grounder-street.png"


@pytest.mark.parametrize("kind", list(REPOS))
def test_the_chain_runs_on_each_folder(comfy, models, street, kind):
    gdino = f"{REPOS[kind]}/model.safetensors"  # how ComfyUI lists a Hugging Face folder
    prompt = chain({**models, "gdino": gdino}, street, text_threshold=0.0)  # random weights score low
    results = comfy.run(prompt, capture=("gd", "det", "filter", "mask"))
    core = comfy.output(results, "gd").core
    assert core.source.name == REPOS[kind] and core.forward_passes >= 1
    found = comfy.output(results, "det")[0]
    assert len(found) > 0 and set(found.labels) <= set(found.phrases)
    assert comfy.output(results, "filter", 1) == "car"
    mask = comfy.output(results, "mask")
    assert mask.shape == (1, 64, 96) and float(mask.max()) <= 1.0


def test_a_broken_folder_names_the_node_and_the_folder(comfy, models):
    broken = models["root"] / "grounding-dino" / "owlv2-no-tokenizer"
    if not broken.exists():
        copy_folder(owlv2_folder("tiny"), broken, leave_out=("tokenizer.json", "vocab.json", "merges.txt"))
    prompt = {
        "gd": {
            "class_type": "GroundedIP2P_GroundingDINOLoader",
            "inputs": {"model_name": "owlv2-no-tokenizer/model.safetensors", "precision": "auto"},
        }
    }
    with pytest.raises(PromptError, match="Load GroundingDINO: owlv2-no-tokenizer: the CLIP tokenizer's files"):
        comfy.run(prompt, capture=("gd",))


@pytest.mark.parametrize("kind", ["mm", "owl"])
def test_a_cancel_before_the_forward_pass_skips_the_model(mm_folder, owl_folder, kind):
    class Cancelled(Exception):
        pass

    def cancel():
        raise Cancelled

    detector = grounders.load_grounder(mm_folder if kind == "mm" else owl_folder)
    with pytest.raises(Cancelled):
        detector.detect(torch.rand(1, H, W, 3), PHRASES, interrupt=cancel)
    assert detector.forward_passes == 0
