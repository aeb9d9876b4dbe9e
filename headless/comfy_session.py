"""Running ComfyUI from Python: what the headless runner, the tests' harness and the benches share.

ComfyUI's executor internals changed after 0.3.64 (``PromptExecutor`` wants ``cache_args``, the
output cache's ``get`` became a coroutine, progress updates are throttled). These functions find
out which ComfyUI they run on by its features, never by its version string.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
from pathlib import Path


class ComfyNotFound(Exception):
    """A folder given for ComfyUI that is not one."""


def is_comfyui(path: Path) -> bool:
    """A ComfyUI folder: ``main.py`` with its ``comfy`` package or its ``models`` folder."""
    return (path / "main.py").is_file() and ((path / "comfy").is_dir() or (path / "models").is_dir())


def locate_comfyui(explicit: str | None = None, start: Path | None = None) -> tuple[Path, str] | None:
    """ComfyUI's folder and how it was found: ``explicit`` (``--comfyui``), else ``$COMFYUI_PATH``,
    else the first folder above ``start`` (the pack lives in ``ComfyUI/custom_nodes/<pack>``).

    None when nothing is found; ComfyNotFound when a folder that was named is not ComfyUI.
    """
    for value, origin in ((explicit, "--comfyui"), (os.environ.get("COMFYUI_PATH"), "COMFYUI_PATH")):
        if value:
            path = Path(value).expanduser()
            if not is_comfyui(path):
                raise ComfyNotFound(f"{origin} {value}: not a ComfyUI folder (no main.py)")
            return path.resolve(), origin
    if start is not None:
        here = Path(start).resolve()
        for parent in (here, *here.parents):
            if is_comfyui(parent):
                return parent, f"found above the pack ({parent})"
    return None


def prepare_import(comfy_path: Path, cpu: bool = False) -> None:
    """Put ComfyUI on ``sys.path`` and set its start-up flags, before ``comfy.model_management`` loads.

    ``utils.extra_config`` is imported before ``nodes``, as ``main.py`` does (``nodes`` puts
    ``ComfyUI/comfy`` first on the path).
    """
    if str(comfy_path) not in sys.path:
        sys.path.insert(0, str(comfy_path))
    from comfy.cli_args import args

    args.cpu = args.cpu or cpu
    # Newer ComfyUI renamed --disable-api-nodes to --offline (the old name warns).
    if hasattr(args, "offline"):
        args.offline = True
    else:
        args.disable_api_nodes = True
    import utils.extra_config  # noqa: F401


def prompt_executor(server):
    """``execution.PromptExecutor`` with the classic cache, on old and new ComfyUI alike."""
    import execution

    kwargs = {"cache_type": execution.CacheType.CLASSIC}
    if "cache_args" in inspect.signature(execution.PromptExecutor.__init__).parameters:
        kwargs["cache_args"] = {"lru": 0, "ram": 0, "ram_inactive": 0}
    return execution.PromptExecutor(server, **kwargs)


def cached_outputs(executor, node_id: str):
    """A node's cached outputs after a run: 0.3.64's synchronous ``get``, or newer ``get_local``."""
    cache = executor.caches.outputs
    if hasattr(cache, "get_local"):
        entry = cache.get_local(node_id)
    else:
        entry = cache.get(node_id)
        if inspect.isawaitable(entry):
            entry = asyncio.run(entry)
    return entry
