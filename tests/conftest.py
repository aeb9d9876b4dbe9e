"""Shared fixtures. Node tests run inside a real ComfyUI (COMFYUI_PATH) and skip, saying why,
where there is none; core tests need no ComfyUI."""

from __future__ import annotations

import os

import pytest

from . import checkpoints
from .comfy_harness import ComfyHarness, comfy_path_or_none

NO_COMFY = (
    "COMFYUI_PATH is not set (or has no main.py): node tests run inside a real ComfyUI. "
    "Set one up with `../shared/tools/comfyui-setup /tmp/ComfyUI && export COMFYUI_PATH=/tmp/ComfyUI`, "
    "or run `.ci/run`."
)


@pytest.fixture(scope="module")
def nlp():
    """The English spaCy pipeline the analyser uses (skips, saying why, where none is installed)."""
    from grounded_ip2p.grounding import spacy_pipeline

    try:
        return spacy_pipeline.load_english()
    except RuntimeError as exc:
        pytest.skip(str(exc))


SLOW_MODULES = {"test_restore_matrix", "test_restore_patch", "test_edit_models", "test_gdino"}


def pytest_collection_modifyitems(items):
    """Tiers: `-m core` (no ComfyUI), `comfy`, `slow`, `browser`; see README, Tests."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if module == "test_browser":
            item.add_marker(pytest.mark.browser)
        elif "comfy" in item.fixturenames:
            item.add_marker(pytest.mark.comfy)
        else:
            item.add_marker(pytest.mark.core)
        if module in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def comfy(tmp_path_factory) -> ComfyHarness:
    path = comfy_path_or_none()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but " + NO_COMFY)
        pytest.skip(NO_COMFY)
    harness = ComfyHarness(path, tmp_path_factory.mktemp("comfy"))
    _HARNESSES.append(harness)
    return harness


SERVER_MODULES = {"test_runner", "test_server_reliability", "test_browser", "test_install"}


@pytest.fixture(autouse=True, scope="module")
def _memory_for_own_servers(request):
    """Before a module that starts its own ComfyUI processes, the in-process ComfyUI lets go of
    its models and cached outputs (with everything the suite loaded before, the two together
    came close to the machine's memory)."""
    if request.module.__name__.rsplit(".", 1)[-1] in SERVER_MODULES and _HARNESSES:
        _HARNESSES[0].free_memory()


_HARNESSES: list[ComfyHarness] = []


@pytest.fixture(scope="session")
def ip2p_checkpoint(comfy):
    """The random-weight SD1.5-InstructPix2Pix checkpoint, registered in ComfyUI's checkpoints folder."""
    path = checkpoints.ip2p_checkpoint()
    comfy.add_models("checkpoints", path.parent)
    return path.name


@pytest.fixture(scope="session")
def ip2p_loaded(comfy, ip2p_checkpoint):
    """The IP2P checkpoint loaded (model, positive "make the car purple", empty negative, vae)."""
    model, clip, vae = comfy.node_class("CheckpointLoaderSimple")().load_checkpoint(ip2p_checkpoint)[:3]
    encode = comfy.node_class("CLIPTextEncode")()
    return model, encode.encode(clip, "make the car purple")[0], encode.encode(clip, "")[0], vae
