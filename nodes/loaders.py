"""Loaders for the grounding models, from ComfyUI's model folders (never from the network)."""

from __future__ import annotations

import os

from comfy_api.latest import io

from ..grounding.clip_score import ClipLoadError, load_clip
from ..grounding.grounders import LOAD_ERRORS as GROUNDER_ERRORS
from ..grounding.grounders import load_grounder
from ..grounding.model_folders import CLIP_FILTER, GROUNDING_DINO, SAM
from ..grounding.sam import SamLoadError, load_sam
from .models import PRECISIONS, file_fingerprint, load_cached, missing_file_hint, model_files, resolve
from .types import ClipModel, GroundingDinoModel, SamModel
from .validation import ValidatedNode

CATEGORY = "grounded-ip2p/loaders"
PRECISION_TIP = (
    "auto: fp16 on a GPU that supports it, else fp32. The CPU always runs fp32. The model "
    "is moved to the GPU only while it runs and offloaded by ComfyUI when memory is needed."
)


def _hf_folder(path: str) -> str:
    """A Hugging Face folder is listed by its weight file; the loaders want the folder."""
    folder = os.path.dirname(path)
    return folder if os.path.isfile(os.path.join(folder, "config.json")) else path


def _load(node: str, kind: str, loader, name: str, precision: str, build, errors, auto_half=True):
    path = _hf_folder(resolve(node, loader.folders, name))
    try:
        return load_cached(kind, path, precision, build, auto_half)
    except errors as e:
        raise ValueError(f"{node}: {e}") from None


class ModelFileLoader(ValidatedNode):
    """A loader of one model file from its folder (``LOADER``, an entry of the loader table):
    ComfyUI's cache knows the file by what it resolves to, and a missing file says where it goes."""

    LOADER = None

    @classmethod
    def fingerprint_inputs(cls, model_name, precision):
        return file_fingerprint(cls.LOADER.folders, model_name), precision

    @classmethod
    def explain(cls, name, value):
        return missing_file_hint(cls.LOADER, value) if name == cls.LOADER.widget else None


class GroundingDINOLoader(ModelFileLoader):
    LOADER = GROUNDING_DINO
    NODE = "Load GroundingDINO"

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=GROUNDING_DINO.node_id,
            display_name="Load GroundingDINO",
            category=CATEGORY,
            description="Loads a text-prompted detector from models/grounding-dino: the original "
            "groundingdino_swint_ogc.pth / groundingdino_swinb_cogcoor.pth (with their .cfg.py "
            "beside them), or a Hugging Face GroundingDINO, MM-Grounding-DINO (LLMDet too) or OWLv2 "
            "folder, told apart by its config.json. Runs on transformers' own classes, offline: no "
            "CUDA extension to build; GroundingDINO's BERT tokenizer ships with the pack, an OWLv2 "
            "folder brings its own.",
            inputs=[
                io.Combo.Input(
                    GROUNDING_DINO.widget,
                    options=model_files(GROUNDING_DINO.folders),
                    tooltip="A file in models/grounding-dino (a Hugging Face folder by its model.safetensors).",
                ),
                io.Combo.Input(
                    "precision",
                    options=list(PRECISIONS),
                    default="auto",
                    tooltip="auto: fp32 (GroundingDINO's text-image fusion is the part most likely "
                    "to overflow in half precision; fp16 halves its ~700 MB if you need "
                    "the memory). The model is moved to the GPU only while it runs.",
                ),
            ],
            outputs=[GroundingDinoModel.Output(display_name="grounding_dino")],
        )

    @classmethod
    def execute(cls, model_name, precision) -> io.NodeOutput:
        def build(path, dtype):
            core = load_grounder(path, dtype=dtype)
            return core, core.model

        return io.NodeOutput(
            _load(
                cls.NODE,
                "GroundingDINO",
                GROUNDING_DINO,
                model_name,
                precision,
                build,
                GROUNDER_ERRORS,
                auto_half=False,
            )
        )


class SAMLoader(ModelFileLoader):
    LOADER = SAM
    NODE = "Load SAM"

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=SAM.node_id,
            display_name="Load SAM",
            category=CATEGORY,
            description="Loads a Segment Anything model from models/sams or models/sam2: the original SAM "
            "(sam_vit_h_4b8939.pth, sam_vit_l_0b3195.pth, sam_vit_b_01ec64.pth), HQ-SAM (sam_hq_vit_h/l/b.pth, "
            "sam_hq_vit_tiny.pth), MobileSAM (mobile_sam.pt) or SAM 2 / 2.1 (sam2_hiera_*.pt, "
            "sam2.1_hiera_*.pt, or their .safetensors repacks). The kind and size are read from the "
            "weights, not the file name.",
            inputs=[
                io.Combo.Input(
                    SAM.widget,
                    options=model_files(SAM.folders),
                    tooltip="A SAM, HQ-SAM, MobileSAM or SAM 2 file in models/sams or models/sam2.",
                ),
                io.Combo.Input("precision", options=list(PRECISIONS), default="auto", tooltip=PRECISION_TIP),
            ],
            outputs=[SamModel.Output(display_name="sam")],
        )

    @classmethod
    def execute(cls, model_name, precision) -> io.NodeOutput:
        def build(path, dtype):
            core = load_sam(path).to(dtype)
            return core, core

        return io.NodeOutput(_load(cls.NODE, "SAM", SAM, model_name, precision, build, SamLoadError))


class ClipFilterLoader(ModelFileLoader):
    LOADER = CLIP_FILTER
    NODE = "Load CLIP (filter)"

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=CLIP_FILTER.node_id,
            display_name="Load CLIP (filter)",
            category=CATEGORY,
            description="Loads the CLIP model (image and text towers) that CLIP Filter scores phrases with, "
            "from models/clip_filter: OpenAI / open_clip ViT-L-14 weights, or the Hugging Face "
            "openai/clip-vit-large-patch14 folder (what the reference uses).",
            inputs=[
                io.Combo.Input(
                    CLIP_FILTER.widget,
                    options=model_files(CLIP_FILTER.folders),
                    tooltip="A file (or a Hugging Face folder's model file) in models/clip_filter.",
                ),
                io.Combo.Input("precision", options=list(PRECISIONS), default="auto", tooltip=PRECISION_TIP),
            ],
            outputs=[ClipModel.Output(display_name="clip")],
        )

    @classmethod
    def execute(cls, model_name, precision) -> io.NodeOutput:
        def build(path, dtype):
            core = load_clip(path).to(dtype)
            return core, core

        return io.NodeOutput(_load(cls.NODE, "CLIP filter", CLIP_FILTER, model_name, precision, build, ClipLoadError))


LOADER_NODES = [GroundingDINOLoader, SAMLoader, ClipFilterLoader]
