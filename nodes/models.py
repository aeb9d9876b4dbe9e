"""Model folders and memory management for the grounding models.

Each loaded model (GroundingDINO, SAM, the CLIP filter) is wrapped in ComfyUI's own
`ModelPatcher`, so ComfyUI moves it to the GPU only while a node runs it and offloads it when
the IP2P model (or anything else) needs the memory: the whole chain fits next to SD1.5 on a
small card.
"""

from __future__ import annotations

import logging
import os
import threading

import comfy.model_management as mm
import comfy.model_patcher
import folder_paths
import torch

from ..grounding.model_folders import LOADERS

log = logging.getLogger("grounded-ip2p")

WEIGHT_EXTENSIONS = {".pth", ".pt", ".bin", ".safetensors"}
# folder name in ComfyUI's models directory -> what belongs there (used in messages)
FOLDERS = {folder: loader.holds for loader in LOADERS for folder in loader.folders}
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def register_folders() -> None:
    """Make `models/<name>` for each grounding model known to folder_paths (extra_model_paths.yaml
    entries under the same names keep working; a folder another pack registered is shared)."""
    for name in FOLDERS:
        default = os.path.join(folder_paths.models_dir, name)
        try:  # so that the folder a missing-model message names is there to put the file in
            os.makedirs(default, exist_ok=True)
        except OSError:  # a read-only install: the folder may still come from extra_model_paths.yaml
            log.debug("could not create %s", default, exc_info=True)
        if name in folder_paths.folder_names_and_paths:
            paths, exts = folder_paths.folder_names_and_paths[name]
            if default not in paths:
                paths.append(default)
            if exts:
                exts.update(WEIGHT_EXTENSIONS)
        else:
            folder_paths.folder_names_and_paths[name] = ([default], set(WEIGHT_EXTENSIONS))


def model_files(folders: tuple[str, ...]) -> list[str]:
    """The weight files a loader offers: every weight file of its folders (Hugging Face folders
    appear as `<folder>/model.safetensors`)."""
    names = {f for folder in folders for f in folder_paths.get_filename_list(folder)}
    return sorted(f for f in names if os.path.splitext(f)[1].lower() in WEIGHT_EXTENSIONS)


def _where(folders: tuple[str, ...]) -> str:
    return ", ".join(p for folder in folders for p in folder_paths.get_folder_paths(folder)) or ", ".join(
        f"models/{folder}" for folder in folders
    )


def missing_file_hint(loader, name: str) -> str:
    """Where a model file that is not there belongs (the loader table's folders and contents)."""
    return (
        f"model file {name!r} is not in {_where(loader.folders)}: put {loader.holds} there "
        f"(`grounded-ip2p models` lists where to get it) and refresh the list (R)"
    )


def find_file(folders: tuple[str, ...], name: str) -> str | None:
    """The full path of `name` in the first of `folders` that has it."""
    for folder in folders:
        path = folder_paths.get_full_path(folder, name) if name else None
        if path is not None and os.path.exists(path):
            return path
    return None


def resolve(node: str, folders: tuple[str, ...], name: str) -> str:
    """The full path of a model file, or an error that says where it belongs."""
    path = find_file(folders, name)
    if path is None:
        raise FileNotFoundError(
            f"{node}: model file '{name}' not found. Put {FOLDERS[folders[0]]} in {_where(folders)} "
            f"(then press R in ComfyUI to refresh the list)."
        )
    return path


def file_fingerprint(folders: tuple[str, ...], name: str):
    """What identifies a model file's contents for ComfyUI's cache (a loader's fingerprint_inputs):
    the file it resolves to, its size and modification time. Another file under the same name (a
    replaced download, another models folder listed first) is loaded again instead of the cached one."""
    path = find_file(folders, name)
    if path is None:
        return name  # validation or the loader says what is missing
    stat = os.stat(path)
    return os.path.realpath(path), stat.st_size, stat.st_mtime_ns


def dtype_for(precision: str, device: torch.device, auto_half: bool = True) -> torch.dtype:
    """'auto': fp16 on a GPU that does it well (when `auto_half`), else fp32; explicit choices
    are kept, except that half precision on the CPU falls back to fp32 (slow and unsupported by
    some layers)."""
    if device.type == "cpu":
        return torch.float32
    if precision == "auto":
        return torch.float16 if auto_half and mm.should_use_fp16(device) else torch.float32
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


class _Holder(torch.nn.Module):
    """A plain container for the model: ModelPatcher sets `.device` on what it manages, which
    transformers and segment-anything models expose as a read-only property."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net
        self.device = None


class ManagedModel:
    """A grounding model (the core object from `grounding/`) plus the ModelPatcher that moves its
    weights. Call `ready()` before every use: it asks ComfyUI to load it onto the GPU (evicting
    other models if needed) and returns the core object."""

    def __init__(self, kind: str, core, module: torch.nn.Module, path: str, dtype: torch.dtype):
        self.kind, self.core, self.path, self.dtype = kind, core, path, dtype
        self.patcher = comfy.model_patcher.ModelPatcher(
            _Holder(module), load_device=mm.get_torch_device(), offload_device=mm.unet_offload_device()
        )

    def ready(self):
        mm.load_models_gpu([self.patcher], force_full_load=True)
        return self.core

    def __repr__(self) -> str:
        return f"<{self.kind} {os.path.basename(self.path)} {str(self.dtype).replace('torch.', '')}>"


_last: dict[str, tuple[tuple, ManagedModel]] = {}
_lock = threading.Lock()


def load_cached(kind: str, path: str, precision: str, build, auto_half: bool = True) -> ManagedModel:
    """`build(path, dtype) -> (core, module)`. The last model of each kind is kept, keyed by
    file, modification time and dtype, so two loaders of the same file, or a re-run after the
    graph changed, reuse it; loading another file of that kind lets the old one go."""
    dtype = dtype_for(precision, mm.get_torch_device(), auto_half)
    key = (os.path.realpath(path), os.path.getmtime(path), dtype)
    with _lock:
        if kind in _last and _last[kind][0] == key:
            return _last[kind][1]
        core, module = build(path, dtype)
        module.eval().requires_grad_(False)
        model = ManagedModel(kind, core, module, path, dtype)
        _last[kind] = (key, model)
        log.info("grounded-ip2p: loaded %s from %s (%s)", kind, path, dtype)
        return model
