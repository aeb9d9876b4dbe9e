"""Every node has its help page where ComfyUI's frontend looks for it, covering every input."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "web" / "docs"


def test_every_node_has_a_help_page_naming_its_inputs(comfy):
    import nodes as comfy_nodes

    pack = [name for name, cls in comfy_nodes.NODE_CLASS_MAPPINGS.items() if name.startswith("GroundedIP2P_")]
    assert len(pack) >= 10
    for name in pack:
        page = DOCS / f"{name}.md"
        assert page.is_file(), f"no help page for {name}"
        text = page.read_text()
        inputs = comfy_nodes.NODE_CLASS_MAPPINGS[name].INPUT_TYPES()
        for section in ("required", "optional"):
            for input_name in inputs.get(section, {}):
                assert f"**{input_name}**" in text, f"{name}'s help does not explain '{input_name}'"


def test_comfyui_serves_the_docs_folder(comfy):
    import nodes as comfy_nodes

    served = {Path(p).resolve() for p in comfy_nodes.EXTENSION_WEB_DIRS.values()}
    assert DOCS.parent.resolve() in served


def test_every_input_has_a_tooltip(comfy):
    import nodes as comfy_nodes

    for name, cls in comfy_nodes.NODE_CLASS_MAPPINGS.items():
        if not name.startswith("GroundedIP2P_"):
            continue
        for section, inputs in cls.INPUT_TYPES().items():
            if section not in ("required", "optional"):
                continue
            for input_name, spec in inputs.items():
                options = spec[1] if len(spec) > 1 else {}
                assert options.get("tooltip"), f"{name}.{input_name} has no tooltip"
