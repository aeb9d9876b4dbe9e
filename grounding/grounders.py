"""The grounders Load GroundingDINO takes, told apart by what the file or folder is.

- a file: an original IDEA-Research GroundingDINO checkpoint (`gdino.py`);
- a Hugging Face folder: by its config.json's `model_type`, never by its name: "grounding-dino"
  and "mm-grounding-dino" (`gdino.py`; MM-Grounding-DINO and LLMDet share GroundingDINO's inputs
  and outputs), "owlv2" (`owlv2.py`).

Every grounder has the same `detect(images, phrases, box_threshold, text_threshold)`, so the nodes
after GroundingDINO Detect do not know which one found the boxes.

Florence-2 folders (model_type "florence2") are refused: its phrase grounding generates the boxes
as text, one task prompt per pass, with no score per box and labels that are spans of its own
caption, so neither the one-pass-for-all-phrases contract nor box_threshold, the per-phrase scores
and CLIP Filter's choice between phrases would carry over.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .gdino import EXPECTED, GroundingDinoLoadError, load_grounding_dino, read_model_type
from .owlv2 import Owlv2LoadError, load_owlv2

LOAD_ERRORS = (GroundingDinoLoadError, Owlv2LoadError)
REFUSED = {
    "florence2": (
        "Florence-2 is a captioning model whose phrase grounding writes its boxes as text, without a score "
        "per box, one prompt per pass: it cannot feed GroundingDINO Detect's scored, per-phrase boxes"
    ),
    "owlvit": "OWL-ViT (v1) is not supported; its successor OWLv2 (google/owlv2-*) is",
}


def load_grounder(path: str | Path, config_path: str | Path | None = None, device="cpu", dtype=torch.float32):
    """The grounder in `path`: a GroundingDino or an Owlv2Detector. Raises one of LOAD_ERRORS,
    naming the file or folder, for anything else."""
    path = Path(path)
    if path.is_dir() and (path / "config.json").is_file():
        model_type = read_model_type(path)
        if model_type == "owlv2":
            return load_owlv2(path, device=device, dtype=dtype)
        if model_type in REFUSED:
            raise GroundingDinoLoadError(f"{path.name}: {REFUSED[model_type]}. {EXPECTED}")
    return load_grounding_dino(path, config_path, device=device, dtype=dtype)
