"""Hostile input through a real ComfyUI server (``main.py --cpu`` with the pack and tiny models).

Each case queues one prompt over HTTP and asserts that (1) the answer is what the case documents:
refused at queue time, or failed at run time, with the node and what is wrong in the message, or
run with a documented fallback; (2) the server still answers; (3) the next good prompt gives the
same bytes as before the hostile one. Cancels (``POST /interrupt``) during the chain and the
sampler are covered the same way, with how long the stop took.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from .browser_server import ComfyServer, prepare_base
from .comfy_harness import comfy_path_or_none
from .conftest import NO_COMFY
from .server_cases import (
    CANCELS,
    PWNED,
    cancel_after,
    edit_prompt,
    mask_prompt,
    submit,
    write_big_photo,
    write_hostile_models,
    write_photos,
)

pytestmark = [pytest.mark.comfy, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    comfy_path = comfy_path_or_none()
    if comfy_path is None:
        pytest.skip(NO_COMFY)
    base = tmp_path_factory.mktemp("reliability")
    workflow = json.loads((REPO / "example_workflows" / "grounded_edit.json").read_text())
    prepare_base(base, [workflow], comfy_path)
    write_photos(base / "input")
    write_hostile_models(base / "models")
    with ComfyServer(comfy_path, base) as srv:
        yield srv
    assert not (comfy_path / PWNED).exists() and not (base / PWNED).exists(), "a pickle in a model file ran"


@pytest.fixture(scope="module")
def reference(server) -> list[bytes]:
    """The good prompt's saved mask before any hostile case."""
    first = submit(server, mask_prompt(run=0))
    assert first.kind == "ok" and first.images, first.text
    return first.images


_runs = iter(range(1, 10**6))


def still_good(server, reference: list[bytes]) -> None:
    assert server.alive(), server.log_tail()
    again = submit(server, mask_prompt(run=next(_runs)))
    assert again.kind == "ok" and again.images == reference, again.text


# --- the cases -------------------------------------------------------------------------------------


def sampler_prompt(**values):
    """The edit with only the sampler's output: a refused sampler leaves nothing else to run."""
    prompt = edit_prompt(**values)
    del prompt["save"], prompt["as_image"]
    return prompt


def instruction(text):
    return mask_prompt(instruction=text)


def image(name):
    return mask_prompt(image=name)


def loader(node_key, name):
    prompt = mask_prompt()
    prompt[node_key]["inputs"]["model_name"] = name
    return prompt


def solid_mask(value, width=96, height=64):
    prompt = edit_prompt()
    prompt["solid"] = {"class_type": "SolidMask", "inputs": {"value": value, "width": width, "height": height}}
    prompt["out"]["inputs"]["mask"] = ["solid", 0]
    return prompt


def widget(node_key, name, value):
    prompt = mask_prompt()
    prompt[node_key]["inputs"][name] = value
    return prompt


# (id, prompt builder, expected kind, words the message must hold)
CASES = [
    # the instruction zoo: analysed, at worst a whole-image edit (SAM Mask's documented fallback)
    ("instruction-empty", lambda: instruction(""), "ok", ""),
    ("instruction-100k", lambda: instruction("make the car red " * 6000), "ok", ""),
    ("instruction-control", lambda: instruction("make \x01\x02\x1b[31m the car \x7f red"), "ok", ""),
    ("instruction-null", lambda: instruction("make the\x00 car red"), "ok", ""),
    ("instruction-rtl", lambda: instruction("\u202emake the car red\u202c"), "ok", ""),
    ("instruction-chinese", lambda: instruction("把左边的汽车变成紫色"), "ok", ""),
    ("instruction-arabic", lambda: instruction("اجعل السيارة حمراء"), "ok", ""),
    ("instruction-sql", lambda: instruction("'; DROP TABLE users; --"), "ok", ""),
    ("instruction-template", lambda: instruction("{{7*7}} ${jndi:ldap://x} %s%s%n"), "ok", ""),
    ("instruction-python", lambda: instruction("__import__('os').system('touch pwned')"), "ok", ""),
    ("instruction-emoji", lambda: instruction("make the 🚗 🟣 " * 50), "ok", ""),
    ("instruction-newlines", lambda: instruction("make the car\n\r\nred\u2028now"), "ok", ""),
    # images
    ("image-1x1", lambda: image("one_pixel.png"), "ok", ""),
    ("image-7x9", lambda: image("seven_by_nine.png"), "ok", ""),
    ("image-16bit", lambda: image("sixteen_bit.png"), "ok", ""),
    ("image-cmyk", lambda: image("cmyk.jpg"), "ok", ""),
    ("image-palette", lambda: image("palette.png"), "ok", ""),
    ("image-gray-alpha", lambda: image("gray_alpha.png"), "ok", ""),
    ("image-truncated", lambda: image("truncated.png"), "ok", ""),  # ComfyUI loads what is there
    ("image-not-an-image", lambda: image("not_an_image.png"), "failed", "LoadImage"),
    ("image-bomb", lambda: image("bomb.png"), "failed", "LoadImage"),
    ("image-missing", lambda: image("no_such_photo.png"), "refused", "image"),
    # masks into the sampler
    ("mask-all-zero", lambda: solid_mask(0.0), "ok", ""),
    ("mask-all-one", lambda: solid_mask(1.0), "ok", ""),
    ("mask-nan", lambda: solid_mask(math.nan), "failed", "NaN or infinite"),
    ("mask-inf", lambda: solid_mask(math.inf), "refused", "SolidMask"),  # ComfyUI's own max check
    ("mask-other-size", lambda: solid_mask(0.0, 33, 17), "ok", ""),
    # model files
    (
        "model-missing",
        lambda: loader("sam", "sam_vit_q.pth"),
        "refused",
        "Load SAM: model file 'sam_vit_q.pth' is not in",
    ),
    ("model-text-file", lambda: loader("sam", "text_file.pth"), "failed", "text_file.pth"),
    ("model-truncated", lambda: loader("sam", "truncated.pth"), "failed", "truncated.pth"),
    ("model-pickle-raw", lambda: loader("sam", "pickle_raw.pth"), "failed", "pickle_raw.pth"),
    ("model-pickle-zip", lambda: loader("sam", "pickle_zip.pth"), "failed", "pickle_zip.pth"),
    ("model-sam-as-gdino", lambda: loader("gd", "sam_in_gdino.pth"), "failed", "sam_in_gdino.pth"),
    ("model-sam-as-clip", lambda: loader("clip", "sam_in_clip.pth"), "failed", "sam_in_clip.pth"),
    # widget values
    ("steps-0", lambda: sampler_prompt(steps=0), "refused", "steps 0 is below its minimum 1"),
    ("steps-huge", lambda: sampler_prompt(steps=10**6), "refused", "above its maximum"),
    ("seed-negative", lambda: sampler_prompt(seed=-1), "refused", "seed -1 is below its minimum 0"),
    ("cfg-nan", lambda: sampler_prompt(text_cfg=math.nan), "refused", "text_cfg is nan"),
    ("cfg-inf", lambda: sampler_prompt(image_cfg=math.inf), "refused", "image_cfg is inf"),
    ("start-t-huge", lambda: sampler_prompt(start_t=10**9), "refused", "start_t 1000000000 is above its maximum"),
    ("scheduler-unknown", lambda: sampler_prompt(scheduler="nope"), "refused", "scheduler 'nope' is not one of"),
    ("sampler-unknown", lambda: sampler_prompt(sampler_name="nope"), "refused", "sampler_name 'nope' is not one of"),
    ("background-unknown", lambda: sampler_prompt(background="nope"), "refused", "background 'nope' is not one of"),
    ("threshold-nan", lambda: widget("det", "box_threshold", math.nan), "refused", "box_threshold is nan"),
    ("dilation-negative", lambda: widget("mask", "dilation", -3), "refused", "dilation -3 is below its minimum 0"),
    ("no-detection-unknown", lambda: widget("mask", "no_detection", "explode"), "refused", "no_detection 'explode'"),
    ("mode-unknown", lambda: widget("np", "mode", "poetry"), "refused", "mode 'poetry' is not one of"),
]


@pytest.mark.parametrize("case, build, kind, words", CASES, ids=[c[0] for c in CASES])
def test_hostile_case(server, reference, case, build, kind, words):
    outcome = submit(server, build())
    assert outcome.kind == kind, f"{case}: {outcome.kind}, expected {kind}: {outcome.text[:2000]}"
    if words:
        assert words in outcome.text, f"{case}: the message does not say {words!r}: {outcome.text[:2000]}"
    still_good(server, reference)


# --- cancels ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_photo(server):
    write_big_photo(server.base / "input", 4096)


@pytest.mark.parametrize("node_type, build", CANCELS, ids=[c[0].split("_", 1)[1] for c in CANCELS])
def test_cancel_stops_within_two_seconds(server, reference, big_photo, node_type, build):
    outcome = cancel_after(server, build(next(_runs)), node_type)
    print(f"\ncancel during {node_type}: stopped {outcome.seconds:.2f} s after /interrupt ({outcome.kind})")
    assert outcome.kind in ("interrupted", "ok"), outcome.text[:2000]
    assert outcome.seconds < 2.0, f"{node_type}: {outcome.seconds:.1f} s from /interrupt to the end"
    still_good(server, reference)
