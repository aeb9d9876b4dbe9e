"""Run ComfyUI in-process with this pack installed as a custom node (CPU only).

The recipe of ComfyUI's own execution tests, without the HTTP server: ComfyUI is imported through
``headless.comfy_session`` (the CPU flag before ``comfy.model_management``, ``utils.extra_config``
before ``nodes``, the executor built for the ComfyUI at hand), and every prompt is deep-copied
before it runs.
"""

from __future__ import annotations

import asyncio
import copy
import os
import sys
import uuid
from pathlib import Path

from grounded_ip2p.headless import comfy_session

REPO = Path(__file__).resolve().parents[1]
PACK_NAME = "grounded_ip2p"


class _Server:
    """What PromptExecutor and the progress handler touch on the server."""

    client_id = None
    last_node_id = None
    last_prompt_id = None
    sockets_metadata: dict = {}

    def __init__(self):
        self.events: list[tuple[str, dict]] = []

    def send_sync(self, event, data, sid=None):
        self.events.append((event, data))

    def queue_updated(self):
        pass


class PromptError(RuntimeError):
    def __init__(self, message, details):
        super().__init__(message)
        self.details = details


class ComfyHarness:
    def __init__(self, comfy_path: Path, work: Path):
        self.path = comfy_path
        self.work = work
        comfy_session.prepare_import(comfy_path, cpu=True)
        import folder_paths

        custom = work / "custom_nodes"
        custom.mkdir(parents=True, exist_ok=True)
        link = custom / PACK_NAME
        if not link.exists():
            link.symlink_to(REPO, target_is_directory=True)
        folder_paths.add_model_folder_path("custom_nodes", str(custom), is_default=True)
        for name in ("input", "output", "temp"):
            (work / name).mkdir(exist_ok=True)
        folder_paths.set_input_directory(str(work / "input"))
        folder_paths.set_output_directory(str(work / "output"))
        folder_paths.set_temp_directory(str(work / "temp"))
        self.folder_paths = folder_paths

        import execution

        import nodes

        comfy_session.stand_in_prompt_server()
        asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
        self.nodes = nodes
        self.execution = execution
        self.server = _Server()
        self.progress: list[tuple[int, int]] = []
        self.on_progress = None  # tests may set a callable(value, total) to act mid-run

        import comfy.model_management
        import comfy.utils

        def progress_hook(value, total, preview, prompt_id=None, node_id=None):
            # What main.py's hook does: progress events, and the check that makes "cancel" work.
            self.progress.append((value, total))
            if self.on_progress is not None:
                self.on_progress(value, total)
            comfy.model_management.throw_exception_if_processing_interrupted()

        comfy.utils.set_progress_bar_global_hook(progress_hook)
        comfy.utils.PROGRESS_BAR_ENABLED = False  # no terminal bars in test logs; the hook still runs
        self.executor = comfy_session.prompt_executor(self.server)

    def free_memory(self) -> None:
        """Forget every cached node output and the models ComfyUI holds, so that a test which
        starts its own ComfyUI process has the machine's memory; later prompts load again."""
        import gc

        import comfy.model_management

        self.executor.reset()
        comfy.model_management.unload_all_models()
        comfy.model_management.soft_empty_cache()
        gc.collect()

    def add_models(self, folder: str, path: Path) -> None:
        self.folder_paths.add_model_folder_path(folder, str(path), is_default=True)

    def node_class(self, node_id: str):
        return self.nodes.NODE_CLASS_MAPPINGS[node_id]

    def run(self, prompt: dict, capture: tuple[str, ...] = ("out",), extra_data: dict | None = None) -> dict:
        """Validate and execute an API-format prompt; return ``{node_id: outputs}`` of its nodes.

        Each node named in ``capture`` gets a PreviewAny sink so that it runs even when it is not
        an output node. ``extra_data`` goes to the executor as the server's would (a ``client_id``
        there makes ComfyUI send its per-node "executing" events).
        """
        prompt = dict(prompt)
        for node in capture:
            if node in prompt:
                prompt[f"sink_{node}"] = {"class_type": "PreviewAny", "inputs": {"source": [node, 0]}}
        prompt_id = str(uuid.uuid4())
        valid, error, good_outputs, node_errors = asyncio.run(self.execution.validate_prompt(prompt_id, prompt, None))
        if not valid:
            raise PromptError(f"prompt failed validation: {error}", node_errors)
        self.server.events.clear()
        self.progress.clear()
        self.executor.execute(copy.deepcopy(prompt), prompt_id, dict(extra_data or {}), good_outputs)
        if not self.executor.success:
            errors = [
                (e, d) for e, d in self.executor.status_messages if e in ("execution_error", "execution_interrupted")
            ]
            event, data = errors[0] if errors else ("execution_error", {})
            raise PromptError(data.get("exception_message", event), errors)
        return {node: comfy_session.cached_outputs(self.executor, node) for node in prompt}

    def pack_module(self):
        """The pack's node module as ComfyUI imported it."""
        return sys.modules[self.node_class("GroundedIP2P_BlendedSampler").__module__]

    def output(self, results: dict, node: str, index: int = 0):
        entry = results[node]
        value = entry.outputs if hasattr(entry, "outputs") else entry
        return value[index][0]


def comfy_path_or_none() -> Path | None:
    """The ComfyUI at ``$COMFYUI_PATH``, if there is one."""
    value = os.environ.get("COMFYUI_PATH")
    return Path(value).resolve() if value and comfy_session.is_comfyui(Path(value)) else None


def bench_harness(prefix: str) -> ComfyHarness:
    """ComfyUI in-process for a bench script, in a fresh temporary folder; exits saying why without one."""
    import tempfile

    path = comfy_path_or_none()
    if path is None:
        raise SystemExit("set COMFYUI_PATH to a ComfyUI checkout")
    return ComfyHarness(path, Path(tempfile.mkdtemp(prefix=prefix)))


def sampler_and_scheduler_names() -> tuple[list[str], list[str]]:
    """ComfyUI's ``SAMPLER_NAMES`` and ``SCHEDULER_NAMES``, for parametrising tests at collection time.

    Imports ``comfy.samplers`` the way the harness does (CPU flag first); empty lists when there is
    no ComfyUI, so the tests that use them skip with the ``comfy`` fixture's reason.
    """
    path = comfy_path_or_none()
    if path is None:
        return [], []
    comfy_session.prepare_import(path, cpu=True)
    import comfy.samplers

    return list(comfy.samplers.SAMPLER_NAMES), list(comfy.samplers.SCHEDULER_NAMES)
