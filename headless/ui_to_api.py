"""Turn a UI-format workflow (what ComfyUI saves and users share) into an API-format prompt.

ComfyUI's backend only runs API-format prompts; the conversion normally happens in the web
frontend. This is the same mapping for the headless runner and the tests: widget values are
positional, in the order of the node's inputs, with one extra value after every widget that has
``control_after_generate`` (seeds). ``node_inputs`` is ComfyUI's ``INPUT_TYPES`` per node type
(in-process from ``NODE_CLASS_MAPPINGS``, or a server's ``/object_info``). No ComfyUI import.
"""

from __future__ import annotations

from typing import Any, Mapping

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
#: Frontend-only nodes: they hold notes or route links and never reach the backend.
VIRTUAL_NODES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
MUTED, BYPASSED = 2, 4


class WorkflowError(ValueError):
    pass


def _ordered_inputs(input_types: Mapping[str, Any]) -> list[tuple[str, Any, dict]]:
    out = []
    for section in ("required", "optional"):
        for name, spec in (input_types.get(section) or {}).items():
            spec = list(spec) if isinstance(spec, (list, tuple)) else [spec]
            type_ = spec[0]
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            out.append((name, type_, options))
    return out


def _is_widget(type_: Any, options: dict) -> bool:
    if options.get("forceInput"):
        return False
    return isinstance(type_, (list, tuple)) or type_ in WIDGET_TYPES


def _links(workflow: Mapping[str, Any]) -> dict:
    """link id -> (origin node id, origin slot), for both of the frontend's link formats."""
    links = {}
    for link in workflow["links"]:
        if isinstance(link, dict):
            links[link["id"]] = (link["origin_id"], link["origin_slot"])
        else:
            links[link[0]] = (link[1], link[2])
    return links


def _source(nodes: dict, links: dict, link_id):
    """Follow a link back through reroutes and bypassed nodes to a real output (None: muted or dangling)."""
    node_id, slot = links[link_id]
    node = nodes[node_id]
    if node["type"] == "Reroute" or node.get("mode") == BYPASSED:
        wanted = (node.get("outputs") or [{}])[slot].get("type")
        for inp in node.get("inputs") or []:
            if inp.get("link") is not None and (node["type"] == "Reroute" or inp.get("type") == wanted):
                return _source(nodes, links, inp["link"])
        return None
    if node.get("mode") == MUTED:
        return None
    return [str(node_id), slot]


def _check_no_subgraphs(workflow: Mapping[str, Any]) -> None:
    """Workflows saved by newer frontends may hold subgraphs (a node whose type is a subgraph id)."""
    subgraphs = {g.get("id") for g in (workflow.get("definitions") or {}).get("subgraphs") or []}
    for node in workflow["nodes"]:
        if node["type"] in subgraphs:
            raise WorkflowError(
                f"node {node['id']} is a subgraph; the converter does not expand subgraphs. Open the workflow in "
                f"ComfyUI, right-click the subgraph node, choose 'Unpack Subgraph', and save it again"
            )


def _widget_and_link_inputs(node: Mapping[str, Any], spec: Mapping[str, Any], source) -> dict:
    """One node's API inputs: its widget values in the order ComfyUI declares them, and its links."""
    linked = {inp["name"]: inp["link"] for inp in node.get("inputs") or [] if inp.get("link") is not None}
    raw = node.get("widgets_values")
    named = raw if isinstance(raw, dict) else {}
    values = [] if named or raw is None else list(raw)
    inputs: dict[str, Any] = {}
    for name, in_type, options in _ordered_inputs(spec):
        if _is_widget(in_type, options):
            value = named.get(name) if named else (values.pop(0) if values else None)
            if value is None and "default" in options:
                value = options["default"]  # a widget newer than the saved workflow: ComfyUI's default for it
            if options.get("control_after_generate") and values and not named:
                values.pop(0)  # "fixed" / "randomize": a frontend setting, not an input
            if name not in linked:
                if value is not None:
                    inputs[name] = value
                continue
        if name in linked:
            src = source(linked[name])
            if src is not None:
                inputs[name] = src
    return inputs


def ui_to_api(workflow: Mapping[str, Any], node_inputs: Mapping[str, Mapping[str, Any]]) -> dict:
    """Convert a UI-format workflow to an API prompt ``{id: {"class_type", "inputs"}}``."""
    if "nodes" not in workflow or "links" not in workflow:
        raise WorkflowError("not a UI-format workflow (no 'nodes'/'links'); API-format prompts need no conversion")
    _check_no_subgraphs(workflow)
    nodes = {n["id"]: n for n in workflow["nodes"]}
    links = _links(workflow)

    def source(link_id):
        return _source(nodes, links, link_id)

    prompt = {}
    for node in workflow["nodes"]:
        type_ = node["type"]
        if type_ in VIRTUAL_NODES or node.get("mode") in (MUTED, BYPASSED):
            continue
        if type_ not in node_inputs:
            raise WorkflowError(
                f"node {node['id']} is a {type_!r}, which this ComfyUI does not have (a missing custom node pack?)"
            )
        prompt[str(node["id"])] = {
            "class_type": type_,
            "inputs": _widget_and_link_inputs(node, node_inputs[type_], source),
        }
    return prompt
