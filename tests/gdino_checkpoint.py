"""Random-weight GroundingDINO checkpoints in the original IDEA-Research format, for tests.

`original_gdino_checkpoint(dest_dir, size)` puts `groundingdino_swint_ogc.pth` (`{"model": state_dict}`,
as released) and `GroundingDINO_SwinT_OGC.cfg.py` in `dest_dir`, the names ComfyUI users have in
`models/grounding-dino`. "swint" is the real Swin-T model (its real cfg); "tiny" keeps the names
but is a small model (a few MB, fast on CPU) whose cfg describes it. The weights come from the
original model code (see reference_gdino.py), seeded, and are built once into the test model
cache (`GIP2P_TEST_MODELS`, default `<repo>/.cache/test-models`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import torch

from . import reference_gdino
from .checkpoints import cache_dir

PTH_NAME = "groundingdino_swint_ogc.pth"
CFG_NAME = "GroundingDINO_SwinT_OGC.cfg.py"
SIZES = {"tiny": (reference_gdino.TINY_CFG, True), "swint": (reference_gdino.SWINT_CFG, False)}


def _cached_checkpoint(size: str) -> Path:
    """The cached random checkpoint of this size, built on first use (written atomically); the
    folder name carries a digest of the recipe, so a changed recipe never reuses a stale file."""
    cfg_text, tiny = SIZES[size]
    recipe = repr((cfg_text, tiny, reference_gdino.TINY_SWIN, reference_gdino.TINY_BERT)).encode()
    path = cache_dir() / f"gdino-{size}-{hashlib.sha256(recipe).hexdigest()[:10]}" / PTH_NAME
    if path.exists():
        return path
    model = reference_gdino.build_original(cfg_text, tiny=tiny)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save({"model": model.state_dict()}, partial)
    os.replace(partial, path)
    return path


def _link_or_copy(source: Path, dest: Path) -> None:
    if dest.exists():
        dest.unlink()
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


def original_gdino_checkpoint(dest_dir, size: str = "tiny") -> tuple[Path, Path]:
    """(pth_path, cfg_path) of a random-weight original-format GroundingDINO in `dest_dir`.

    Skips the calling test (fails under CI=true) when the original code is not available.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, not {size!r}")
    reference_gdino.require_source()
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    pth, cfg = dest_dir / PTH_NAME, dest_dir / CFG_NAME
    _link_or_copy(_cached_checkpoint(size), pth)
    cfg.write_text(SIZES[size][0], encoding="utf-8")
    return pth, cfg
