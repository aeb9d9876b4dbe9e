"""The example workflows, converted as the frontend would and run in real ComfyUI; and the converter."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from grounded_ip2p.headless import model_catalog
from grounded_ip2p.headless import run_workflow as runner
from grounded_ip2p.headless.ui_to_api import VIRTUAL_NODES, WorkflowError, ui_to_api

from .grounding_models import LOADERS, provide

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "example_workflows").glob("*.json"))
# The workflows for other edit models are validated, not executed: their text encoders (Qwen2.5-VL
# 7B; T5-XXL with CLIP-L; SDXL's CLIP-L and CLIP-G in the CosXL checkpoint) are far too large to
# build here with random weights, and a loader does not load an empty placeholder file. What they
# do with the pack's Restore Background is tested on random-weight DiTs with made-up conditioning
# elsewhere (tests/edit_models.py); here their graphs are checked against this ComfyUI, and the part
# that needs no edit model (scaling, grounding, the feathered paste mask, the paste-back) is run.
NOT_EXECUTED = {
    "grounded_qwen_image_edit": "Qwen-Image-Edit 2511's text encoder is Qwen2.5-VL 7B",
    "grounded_flux_kontext": "Flux.1 Kontext's text encoders are T5-XXL and CLIP-L",
    "grounded_cosxl_edit": "CosXL Edit is a whole SDXL checkpoint (UNet, VAE, CLIP-L and CLIP-G)",
}
EXECUTED = [p for p in EXAMPLES if p.stem not in NOT_EXECUTED]
VALIDATED = [p for p in EXAMPLES if p.stem in NOT_EXECUTED]
MODEL_LOADERS = {"CheckpointLoaderSimple", "UNETLoader", "CLIPLoader", "DualCLIPLoader", "VAELoader"}

OBJECT_INFO = {
    "Loader": {"required": {"ckpt_name": (["a.safetensors", "b.safetensors"],)}},
    "Sampler": {
        "required": {
            "model": ("MODEL",),
            "seed": ("INT", {"control_after_generate": True}),
            "steps": ("INT", {}),
            "name": ("COMBO", {"options": ["x", "y"]}),
        },
        "optional": {"mask": ("MASK",), "strength": ("FLOAT", {})},
    },
}


def ui_node(id, type, inputs=(), widgets=(), mode=0, outputs=()):
    return {
        "id": id,
        "type": type,
        "mode": mode,
        "inputs": [dict(i) for i in inputs],
        "outputs": [{"name": o, "type": o} for o in outputs],
        "widgets_values": list(widgets),
    }


def test_converter_maps_widgets_links_and_skips_frontend_nodes():
    wf = {
        "nodes": [
            ui_node(1, "Loader", widgets=["b.safetensors"], outputs=["MODEL"]),
            ui_node(2, "Reroute", inputs=[{"name": "", "type": "*", "link": 1}], outputs=["MODEL"]),
            ui_node(
                3,
                "Sampler",
                inputs=[
                    {"name": "model", "type": "MODEL", "link": 2},
                    {"name": "steps", "type": "INT", "link": 3, "widget": {"name": "steps"}},
                ],
                widgets=[7, "randomize", 20, "y", 0.5],
            ),
            ui_node(4, "Note", widgets=["hello"]),
            ui_node(5, "Loader", widgets=["a.safetensors"], mode=2),
        ],
        "links": [[1, 1, 0, 2, 0, "MODEL"], [2, 2, 0, 3, 0, "MODEL"], [3, 6, 0, 3, 1, "INT"]],
    }
    wf["nodes"].append(ui_node(6, "Steps", outputs=["INT"]))
    info = dict(OBJECT_INFO, Steps={"required": {}})
    api = ui_to_api(wf, info)
    assert api == {
        "1": {"class_type": "Loader", "inputs": {"ckpt_name": "b.safetensors"}},
        "3": {
            "class_type": "Sampler",
            "inputs": {"model": ["1", 0], "seed": 7, "steps": ["6", 0], "name": "y", "strength": 0.5},
        },
        "6": {"class_type": "Steps", "inputs": {}},
    }


def test_converter_fills_a_widget_newer_than_the_workflow_with_its_default():
    """A workflow saved before a node gained a widget (ComfyUI added ImageScaleToTotalPixels'
    resolution_steps): the prompt gets the default the frontend would show."""
    info = {
        "Scale": {"required": {"method": (["lanczos"],), "megapixels": ("FLOAT", {}), "steps": ("INT", {"default": 1})}}
    }
    api = ui_to_api({"nodes": [ui_node(1, "Scale", widgets=["lanczos", 1.0])], "links": []}, info)
    assert api["1"]["inputs"] == {"method": "lanczos", "megapixels": 1.0, "steps": 1}


def test_converter_names_missing_node_types():
    with pytest.raises(WorkflowError, match="'Mystery'.*missing custom node pack"):
        ui_to_api({"nodes": [ui_node(1, "Mystery")], "links": []}, OBJECT_INFO)
    with pytest.raises(WorkflowError, match="not a UI-format"):
        ui_to_api({"1": {"class_type": "Loader", "inputs": {}}}, OBJECT_INFO)


@pytest.fixture(scope="session")
def models_root(tmp_path_factory):
    return tmp_path_factory.mktemp("workflow-models")


def photo(path: Path) -> None:
    """The user's own photo: a test image under the name the workflow uses."""
    from PIL import Image

    rgba = Image.new("RGBA", (64, 48), (120, 30, 200, 255))
    rgba.paste((0, 0, 0, 0), (16, 8, 40, 32))  # the painted mask
    rgba.save(path)


@pytest.mark.parametrize("path", EXECUTED, ids=[p.stem for p in EXECUTED])
def test_example_workflow_runs_in_comfyui(comfy, ip2p_checkpoint, path, models_root):
    from PIL import Image

    workflow = json.loads(path.read_text())
    # models first: the loaders' file lists are read when the node info is
    for node in workflow["nodes"]:
        folder = LOADERS.get(node["type"])
        if folder:
            provide(comfy, models_root, folder, node["widgets_values"][0])
    node_inputs = {name: cls.INPUT_TYPES() for name, cls in comfy.nodes.NODE_CLASS_MAPPINGS.items()}
    prompt = ui_to_api(workflow, node_inputs)
    for node in prompt.values():
        if node["class_type"] == "LoadImage":
            photo(comfy.work / "input" / node["inputs"]["image"])
        if "steps" in node["inputs"]:
            node["inputs"]["steps"] = 2  # CPU time
    before = set((comfy.work / "output").rglob("*.png"))
    comfy.run(prompt, capture=())
    written = set((comfy.work / "output").rglob("*.png")) - before
    assert written, "the workflow saved no image"
    # the edit keeps the photo's size; comparisons stitch and upscale it by whole factors
    for p in written:
        w, h = Image.open(p).size
        assert w % 64 == 0 and h % 48 == 0 and w // 64 >= 1 and h // 48 >= 1, (p.name, w, h)


def test_built_workflows_are_up_to_date(tmp_path, monkeypatch):
    """The JSON files that example_workflows/build.py writes match what it writes now."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_examples", EXAMPLES[0].parent / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    monkeypatch.setattr(build, "HERE", tmp_path)
    for make in build.BUILDERS:
        fresh = make()
        assert fresh.read_text() == (EXAMPLES[0].parent / fresh.name).read_text(), (
            f"{fresh.name} is stale: run `python example_workflows/build.py`"
        )


def test_not_executed_workflows_exist():
    assert set(NOT_EXECUTED) == {p.stem for p in VALIDATED}


def _link_problems(workflow: dict, classes: dict) -> list[str]:
    """Each link against both ends: the UI sockets it names and ComfyUI's own types for them."""
    nodes = {n["id"]: n for n in workflow["nodes"]}
    problems = []
    seen = set()
    for link_id, src, slot, dst, dst_slot, type_ in workflow["links"]:
        seen.add(link_id)
        if src not in nodes or dst not in nodes:
            problems.append(f"link {link_id}: node {src} or {dst} does not exist")
            continue
        out = nodes[src]["outputs"][slot]
        inp = nodes[dst]["inputs"][dst_slot]
        if out["type"] != type_ or link_id not in out["links"] or inp["link"] != link_id:
            problems.append(f"link {link_id}: the UI sockets of nodes {src} and {dst} do not name it as {type_}")
        returns = classes[nodes[src]["type"]].RETURN_TYPES
        if slot >= len(returns) or returns[slot] != type_:
            problems.append(f"link {link_id}: {nodes[src]['type']} output {slot} is not {type_} ({returns})")
        spec = classes[nodes[dst]["type"]].INPUT_TYPES()
        declared = {**spec.get("required", {}), **spec.get("optional", {})}.get(inp["name"])
        accepted = None if declared is None else declared[0]
        if accepted is None:
            problems.append(f"link {link_id}: {nodes[dst]['type']} has no input {inp['name']!r}")
        elif accepted != "*" and type_ not in str(accepted).split(","):
            problems.append(f"link {link_id}: {nodes[dst]['type']}.{inp['name']} takes {accepted}, not {type_}")
    for n in nodes.values():
        for inp in n["inputs"]:
            if inp["link"] is not None and inp["link"] not in seen:
                problems.append(f"node {n['id']} input {inp['name']!r} names a link that does not exist")
        for out in n["outputs"]:
            problems += [
                f"node {n['id']} output {out['name']!r} names missing link {i}" for i in out["links"] if i not in seen
            ]
    return problems


def _with_models(comfy, workflow: dict, models_root: Path, placeholders: Path) -> None:
    """The files the workflow's loaders name, under those names: tiny real grounding models (the
    grounding part runs), and empty placeholders for the edit model's files (validation only
    checks that a name is in its folder's list)."""
    for need in model_catalog.workflow_needs(workflow):
        if need.required_by is not None:  # a companion file (GroundingDINO's cfg): provide() makes it
            continue
        if need.folder in LOADERS.values():
            provide(comfy, models_root, need.folder, need.name)
        else:
            (placeholders / need.folder).mkdir(parents=True, exist_ok=True)
            (placeholders / need.folder / need.name).touch()
            comfy.add_models(need.folder, placeholders / need.folder)


def _without_edit_model(prompt: dict) -> dict:
    """The prompt less every node that needs the edit model's files; the paste-back then pastes the
    scaled photo (its destination) instead of the decoded edit."""
    prompt = json.loads(json.dumps(prompt))
    composite = [n for n in prompt.values() if n["class_type"] == "ImageCompositeMasked"]
    assert len(composite) == 1
    decoded = composite[0]["inputs"]["source"]
    composite[0]["inputs"]["source"] = composite[0]["inputs"]["destination"]
    removed = {k for k, n in prompt.items() if n["class_type"] in MODEL_LOADERS}
    grew = True
    while grew:
        more = {
            k
            for k, n in prompt.items()
            if k not in removed and any(isinstance(v, list) and v[0] in removed for v in n["inputs"].values())
        }
        grew, removed = bool(more), removed | more
    assert prompt[decoded[0]]["class_type"] == "VAEDecode" and decoded[0] in removed
    kept = {k: n for k, n in prompt.items() if k not in removed}
    assert "SaveImage" in {n["class_type"] for n in kept.values()}, "the paste-back depends on the edit model"
    return kept


@pytest.mark.parametrize("path", VALIDATED, ids=[p.stem for p in VALIDATED])
def test_edit_model_workflow_validates_in_comfyui(comfy, path, models_root, tmp_path_factory):
    """Node types, links and ComfyUI's own validation with the users' file names; then the part
    without the edit model runs (see NOT_EXECUTED for why the edit itself does not)."""
    from PIL import Image

    workflow = json.loads(path.read_text())
    classes = comfy.nodes.NODE_CLASS_MAPPINGS
    missing = sorted({n["type"] for n in workflow["nodes"] if n["type"] not in VIRTUAL_NODES} - set(classes))
    assert not missing, f"node types this ComfyUI does not have: {missing}"
    assert not _link_problems(workflow, classes)
    types = {n["type"] for n in workflow["nodes"]}
    assert {"GroundedIP2P_RestoreBackground", "ImageCompositeMasked", "SaveImage"} <= types

    _with_models(comfy, workflow, models_root, tmp_path_factory.mktemp(f"placeholders-{path.stem}"))
    node_inputs = {name: cls.INPUT_TYPES() for name, cls in classes.items()}
    prompt = ui_to_api(workflow, node_inputs)
    for node in prompt.values():
        if node["class_type"] == "LoadImage":
            photo(comfy.work / "input" / node["inputs"]["image"])
    valid, error, outputs, node_errors = asyncio.run(comfy.execution.validate_prompt(str(uuid.uuid4()), prompt, None))
    assert valid and not node_errors, (error, node_errors)
    saves = [k for k, n in prompt.items() if n["class_type"] == "SaveImage"]
    assert saves and set(saves) <= set(outputs)
    # Restore Background: the SAM mask, and the source latent the sampler's latent comes from
    restore = next(n for n in prompt.values() if n["class_type"] == "GroundedIP2P_RestoreBackground")
    assert prompt[restore["inputs"]["mask"][0]]["class_type"] == "GroundedIP2P_SAMMask"
    assert prompt[restore["inputs"]["source"][0]]["class_type"] == "VAEEncode"

    part = _without_edit_model(prompt)
    for node in part.values():  # CPU time
        if node["class_type"] == "ImageScaleToTotalPixels":
            node["inputs"]["megapixels"] = 0.1
        if node["class_type"] == "ImageBlur":  # on CPU, torch's conv of MaskToImage's expanded image is slow
            node["inputs"]["blur_radius"] = 2
    before = set((comfy.work / "output").rglob("*.png"))
    results = comfy.run(part, capture=())
    written = set((comfy.work / "output").rglob("*.png")) - before
    composite = next(k for k, n in part.items() if n["class_type"] == "ImageCompositeMasked")
    scaled = comfy.output(results, part[composite]["inputs"]["destination"][0])
    paste_mask = comfy.output(results, part[composite]["inputs"]["mask"][0])
    assert paste_mask.shape[-2:] == scaled.shape[1:3] and float(paste_mask.min()) >= 0 and float(paste_mask.max()) <= 1
    assert len(written) == 1 and Image.open(next(iter(written))).size == (scaled.shape[2], scaled.shape[1])


@pytest.mark.parametrize("path", VALIDATED, ids=[p.stem for p in VALIDATED])
def test_runner_options_reach_the_edit_model_workflows(comfy, path):
    """`grounded-ip2p run` sets the instruction, seed, steps and background on these graphs too."""
    workflow = json.loads(path.read_text())
    node_inputs = {name: cls.INPUT_TYPES() for name, cls in comfy.nodes.NODE_CLASS_MAPPINGS.items()}
    options = {"instruction": "make the right car red", "seed": 7, "steps": 3, "background": "inversion"}
    prompt = runner.build_prompt(workflow, node_inputs, "photo.png", options, debug=False)
    by_type = {}
    for node in prompt.values():
        by_type.setdefault(node["class_type"], []).append(node["inputs"])
    assert [n["image"] for n in by_type["LoadImage"]] == ["photo.png"]
    assert [n["instruction"] for n in by_type["GroundedIP2P_NounPhraseExtract"]] == ["make the right car red"]
    assert [n["background"] for n in by_type["GroundedIP2P_RestoreBackground"]] == ["inversion"]
    seeds = [n["seed"] for n in by_type.get("KSampler", [])] + [n["noise_seed"] for n in by_type.get("RandomNoise", [])]
    steps = [n["steps"] for n in by_type.get("KSampler", [])] + [n["steps"] for n in by_type.get("BasicScheduler", [])]
    assert seeds == [7] and steps == [3]


def _boxes(workflow: dict):
    """Each node's box on the canvas, its title bar (30 px above `pos`) included."""
    for n in workflow["nodes"]:
        (x, y), (w, h) = n["pos"], n["size"]
        yield n["id"], (x, y - 30, x + w, y + h)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_workflow_nodes_do_not_overlap(path):
    boxes = list(_boxes(json.loads(path.read_text())))
    overlaps = [
        (a, b)
        for i, (a, ra) in enumerate(boxes)
        for b, rb in boxes[i + 1 :]
        if ra[0] < rb[2] and rb[0] < ra[2] and ra[1] < rb[3] and rb[1] < ra[3]
    ]
    assert not overlaps
