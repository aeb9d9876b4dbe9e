"""Random-weight grounding models under whatever file names a workflow's loaders use, in
ComfyUI's model folders (tiny architectures in the users' file formats)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from grounded_ip2p.grounding.model_folders import LOADERS as PACK_LOADERS
from safetensors.torch import load_file

from .clip_checkpoint import clip_checkpoint
from .gdino_checkpoint import original_gdino_checkpoint
from .sam_checkpoint import sam_checkpoint

LOADERS = {loader.node_id: loader.folder for loader in PACK_LOADERS}  # node type -> model folder


def _link(source: Path, dest: Path) -> None:
    if not dest.exists():
        os.link(source, dest)


def provide(comfy, root: Path, folder: str, name: str) -> Path:
    """`root/folder/name` holding a tiny random model of the kind the folder expects.

    With a harness as ``comfy``, the folder is also registered with that in-process ComfyUI;
    with ``None`` only the files are made (a ComfyUI server finds them in its models folder).
    """
    target = root / folder / name
    if target.exists():
        return target
    stock = root / "stock" / folder
    target.parent.mkdir(parents=True, exist_ok=True)
    if folder == "grounding-dino":
        pth, cfg = original_gdino_checkpoint(stock, size="tiny")
        _link(pth, target)
        _link(cfg, target.with_name(Path(name).stem + ".cfg.py"))
    elif folder == "sams":
        _link(sam_checkpoint(stock, size="tiny"), target)
    elif folder == "clip_filter":
        weights = clip_checkpoint(stock)
        if target.suffix == ".safetensors":
            _link(weights, target)
        else:  # OpenAI's ViT-L-14.pt name: the same state dict in torch's format
            torch.save(load_file(weights), target)
    else:
        raise ValueError(f"no test model for folder {folder!r}")
    if comfy is not None:
        comfy.add_models(folder, target.parent)
    return target
