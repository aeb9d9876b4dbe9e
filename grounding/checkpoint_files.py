"""Reading model checkpoint files into state dicts, without running anything stored in them.

`read_state_dict` is the one reader the grounding loaders (GroundingDINO, SAM, CLIP) share:

- `.safetensors` files are read by safetensors (tensors only, by construction);
- other files (`.pth`, `.pt`, `.bin`, ...) by `torch.load(weights_only=True)`, whose unpickler
  rebuilds tensors, containers and plain values only, plus `argparse.Namespace` (the training
  arguments that DINO-family checkpoints store next to the weights; it holds plain values);
- TorchScript archives (OpenAI's CLIP `.pt` files) only when the caller asks for them: their
  parameters are then read by the TorchScript runtime (`torch.jit.load`), not by pickle, and no
  method of the scripted module is called. Otherwise they are refused, as `torch.load` refuses
  them under `weights_only=True`.

The usual containers are unwrapped: `{"model": state_dict}` (the released GroundingDINO files, DINO
and DETR training scripts), `{"state_dict": state_dict}` (open_clip and Lightning training
checkpoints), and the `module.` prefix that DistributedDataParallel leaves on every key. Entries
that are not tensors (step counters, metadata) are left out.

Every failure raises `CheckpointFileError`, whose `reason` reads after the file name ("it cannot be
read as a state dict (...)"); each loader turns it into its own `ModelFileError` subclass, whose
message also says which file it expected.
"""

from __future__ import annotations

import argparse
import warnings
import zipfile
from pathlib import Path

import torch

CONTAINER_KEYS = ("model", "state_dict")
MODULE_PREFIX = "module."
# What torch's message for a pickle refused by `weights_only` names the refused object after.
_REFUSED = "WeightsUnpickler error:"


class ModelFileError(Exception):
    """A model file that cannot be loaded; the message names the file, says why, and what to use.

    The base of the loaders' own errors (GroundingDinoLoadError, SamLoadError, ClipLoadError).
    """


class CheckpointFileError(ModelFileError, ValueError):
    """A file that cannot be read as a state dict of tensors. `reason` (which starts with "it")
    says why; str() is "<file name>: <reason>"."""

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path.name}: {reason}")


def is_torchscript(path: str | Path) -> bool:
    """Whether the file is a TorchScript archive: a zip with a `constants.pkl` record."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.rsplit("/", 1)[-1] == "constants.pkl" for name in archive.namelist())


def strip_module_prefix(state_dict: dict) -> dict:
    """Keys without the `module.` prefix that DistributedDataParallel training leaves."""
    return {k.removeprefix(MODULE_PREFIX): v for k, v in state_dict.items()}


def _unreadable(path: Path, exc: Exception) -> CheckpointFileError:
    """The reader's failure as a reason: for a pickle that `weights_only` refused, the object it
    refused (torch's message otherwise opens with how to load the file unsafely)."""
    lines = str(exc).splitlines()
    refused = next((line.split(_REFUSED, 1)[1].strip() for line in lines if _REFUSED in line), None)
    if refused:
        detail = refused.split(". ")[0].rstrip(".")
        return CheckpointFileError(path, f"it holds Python objects other than tensors, which are not loaded ({detail})")
    return CheckpointFileError(path, f"it cannot be read as a state dict ({type(exc).__name__}: {(lines or [''])[0]})")


def _load(path: Path, torchscript: bool):
    """What the file holds, read by a reader that runs nothing from it."""
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    if is_torchscript(path):
        if not torchscript:
            raise CheckpointFileError(path, "it is a TorchScript archive (a scripted model), not a state dict")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, still loads
            return torch.jit.load(str(path), map_location="cpu").state_dict()
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(str(path), map_location="cpu", weights_only=True)


def read_state_dict(path: str | Path, *, torchscript: bool = False) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file by name, on the CPU, containers unwrapped (see the module).

    `torchscript=True` also reads TorchScript archives (their parameters and buffers). Raises
    CheckpointFileError for a missing file, a file no reader accepts (truncated, not a checkpoint,
    pickled code), or one that holds no state dict of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointFileError(path, "it does not exist (no such file)")
    try:
        obj = _load(path, torchscript)
    except CheckpointFileError:
        raise
    except Exception as exc:  # truncated files, pickles with code in them, unknown formats: all unreadable
        raise _unreadable(path, exc) from exc
    if isinstance(obj, dict):
        obj = next((obj[k] for k in CONTAINER_KEYS if isinstance(obj.get(k), dict)), obj)
    if not isinstance(obj, dict):
        raise CheckpointFileError(path, f"it holds a {type(obj).__name__}, not a state dict")
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointFileError(path, f"it holds no tensors (keys {list(obj)[:5]})")
    return strip_module_prefix(tensors)


__all__ = ["CheckpointFileError", "ModelFileError", "is_torchscript", "read_state_dict", "strip_module_prefix"]
