"""Checks on a node's widget values when a prompt is queued, before anything runs.

ComfyUI checks numbers against their min and max, but a NaN passes those comparisons, and some
ComfyUI versions do not check a V3 combo's value against its options. A value from an API client
or an edited workflow file must not reach the core: every pack node validates its widget values
here, and the queue answers with the node, the input, the value and what it may be.

A node whose ``validate_inputs`` takes ``**kwargs`` gets every constant input and ComfyUI then
skips its own min/max checks for them, so this module does all of them.
"""

from __future__ import annotations

import math

from comfy_api.latest import io


def _options(spec) -> list | None:
    kind, extra = spec[0], (spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {})
    if isinstance(kind, list):
        return kind
    if kind == "COMBO":
        return list(extra.get("options") or [])
    return None


def problem(name: str, value, spec) -> str | None:
    """What is wrong with one widget value, or None."""
    kind, extra = spec[0], (spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {})
    options = _options(spec)
    if options is not None:
        if value not in options:
            shown = ", ".join(repr(o) for o in options[:12]) + (", ..." if len(options) > 12 else "")
            return f"{name} {value!r} is not one of its choices ({shown})"
        return None
    if kind in ("INT", "FLOAT"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{name} {value!r} is not a number"
        if not math.isfinite(value):
            return f"{name} is {value}: it must be a finite number"
        if "min" in extra and value < extra["min"]:
            return f"{name} {value} is below its minimum {extra['min']}"
        if "max" in extra and value > extra["max"]:
            return f"{name} {value} is above its maximum {extra['max']}"
    return None


def check(node: type[io.ComfyNode], values: dict) -> bool | str:
    """True, or one message naming the node and every wrong value (for ``validate_inputs``)."""
    specs = {}
    for section in ("required", "optional"):
        specs.update(node.INPUT_TYPES().get(section, {}))
    problems = []
    for name, value in values.items():
        found = problem(name, value, specs[name]) if name in specs else None
        if found:
            problems.append(node.explain(name, value) or found)
    if not problems:
        return True
    title = node.define_schema().display_name or node.__name__
    return f"{title}: " + "; ".join(problems)


class ValidatedNode(io.ComfyNode):
    """Base of the pack's nodes: widget values are checked when the prompt is queued."""

    @classmethod
    def validate_inputs(cls, **kwargs) -> bool | str:
        return check(cls, kwargs)

    @classmethod
    def explain(cls, name: str, value) -> str | None:
        """A node's own words for a wrong value (a loader: where the missing file goes), or None."""
        return None
