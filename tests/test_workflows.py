"""The example workflows, converted as the frontend would and run in real ComfyUI; and the converter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grounded_ip2p.workflow import WorkflowError, ui_to_api

from .grounding_models import LOADERS, provide

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "example_workflows").glob("*.json"))

OBJECT_INFO = {
    "Loader": {"required": {"ckpt_name": (["a.safetensors", "b.safetensors"],)}},
    "Sampler": {"required": {"model": ("MODEL",), "seed": ("INT", {"control_after_generate": True}),
                             "steps": ("INT", {}), "name": ("COMBO", {"options": ["x", "y"]})},
                "optional": {"mask": ("MASK",), "strength": ("FLOAT", {})}},
}


def ui_node(id, type, inputs=(), widgets=(), mode=0, outputs=()):
    return {"id": id, "type": type, "mode": mode, "inputs": [dict(i) for i in inputs],
            "outputs": [{"name": o, "type": o} for o in outputs], "widgets_values": list(widgets)}


def test_converter_maps_widgets_links_and_skips_frontend_nodes():
    wf = {"nodes": [ui_node(1, "Loader", widgets=["b.safetensors"], outputs=["MODEL"]),
                    ui_node(2, "Reroute", inputs=[{"name": "", "type": "*", "link": 1}], outputs=["MODEL"]),
                    ui_node(3, "Sampler", inputs=[{"name": "model", "type": "MODEL", "link": 2},
                                                  {"name": "steps", "type": "INT", "link": 3, "widget": {"name": "steps"}}],
                            widgets=[7, "randomize", 20, "y", 0.5]),
                    ui_node(4, "Note", widgets=["hello"]),
                    ui_node(5, "Loader", widgets=["a.safetensors"], mode=2)],
          "links": [[1, 1, 0, 2, 0, "MODEL"], [2, 2, 0, 3, 0, "MODEL"], [3, 6, 0, 3, 1, "INT"]]}
    wf["nodes"].append(ui_node(6, "Steps", outputs=["INT"]))
    info = dict(OBJECT_INFO, Steps={"required": {}})
    api = ui_to_api(wf, info)
    assert api == {"1": {"class_type": "Loader", "inputs": {"ckpt_name": "b.safetensors"}},
                   "3": {"class_type": "Sampler", "inputs": {"model": ["1", 0], "seed": 7, "steps": ["6", 0],
                                                             "name": "y", "strength": 0.5}},
                   "6": {"class_type": "Steps", "inputs": {}}}


def test_converter_names_missing_node_types():
    with pytest.raises(WorkflowError, match="'Mystery'.*missing custom node pack"):
        ui_to_api({"nodes": [ui_node(1, "Mystery")], "links": []}, OBJECT_INFO)
    with pytest.raises(WorkflowError, match="not a UI-format"):
        ui_to_api({"1": {"class_type": "Loader", "inputs": {}}}, OBJECT_INFO)


@pytest.fixture(scope="session")
def models_root(tmp_path_factory):
    return tmp_path_factory.mktemp("workflow-models")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
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
    # The user's own photo: a test image under the name the workflow uses.
    for node in prompt.values():
        if node["class_type"] == "LoadImage":
            rgba = Image.new("RGBA", (64, 48), (120, 30, 200, 255))
            rgba.paste((0, 0, 0, 0), (16, 8, 40, 32))  # the painted mask
            rgba.save(comfy.work / "input" / node["inputs"]["image"])
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
            f"{fresh.name} is stale: run `python example_workflows/build.py`")
