"""The pack's model loaders: which node loads what from which ComfyUI model folder.

One table for the loader nodes, the model catalog, the headless runner, the tests and the benches.
Plain data: no ComfyUI import, so the command line can read it without starting ComfyUI.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Loader:
    node_id: str
    folder: str  # under ComfyUI's models/ (folder_paths name); where the model catalog puts files
    widget: str  # the file's combo input
    holds: str  # what belongs in the folder, for messages
    also: tuple[str, ...] = ()  # other folders the loader lists, where other packs keep the same files

    @property
    def folders(self) -> tuple[str, ...]:
        return (self.folder, *self.also)


GROUNDING_DINO = Loader(
    "GroundedIP2P_GroundingDINOLoader",
    "grounding-dino",
    "model_name",
    "GroundingDINO checkpoints: groundingdino_swint_ogc.pth with GroundingDINO_SwinT_OGC.cfg.py beside it "
    "(or SwinB), or a Hugging Face GroundingDINO, MM-Grounding-DINO or OWLv2 folder (e.g. "
    "owlv2-base-patch16-ensemble/ with its config.json, model.safetensors and tokenizer files)",
)
SAM = Loader(
    "GroundedIP2P_SAMLoader",
    "sams",
    "model_name",
    "Segment Anything checkpoints: SAM (sam_vit_h_4b8939.pth, sam_vit_l_0b3195.pth, sam_vit_b_01ec64.pth), "
    "HQ-SAM (sam_hq_vit_h.pth, sam_hq_vit_l.pth, sam_hq_vit_b.pth, sam_hq_vit_tiny.pth), MobileSAM "
    "(mobile_sam.pt) or SAM 2 / 2.1 (sam2_hiera_*.pt, sam2.1_hiera_*.pt, or their .safetensors repacks)",
    also=("sam2",),
)
CLIP_FILTER = Loader(
    "GroundedIP2P_ClipFilterLoader",
    "clip_filter",
    "model_name",
    "a CLIP model with both towers for the CLIP filter: OpenAI/open_clip ViT-L-14 weights (.pt/.safetensors) "
    "or the Hugging Face openai/clip-vit-large-patch14 folder",
)
LOADERS = (GROUNDING_DINO, SAM, CLIP_FILTER)
BY_NODE = {loader.node_id: loader for loader in LOADERS}
