"""ComfyUI adapters (V3 schema). Relative imports only: ComfyUI owns the top-level names
``nodes``, ``utils``, ``comfy``..."""

import logging

from comfy_api.latest import ComfyExtension, io
from typing_extensions import override

from .. import __version__
from ..grounding.spacy_pipeline import INSTALL_HINT, pipeline_installed
from .core_boxes import CORE_BOX_NODES
from .grounded_mask import GroundedMask
from .grounding import GROUNDING_NODES
from .late_restore import RestoreBackground
from .loaders import LOADER_NODES
from .models import register_folders
from .preview import PreviewBoxes
from .sampler import IP2PBlendedSampler

log = logging.getLogger("grounded-ip2p")
register_folders()  # at import: ComfyUI 0.3.64 does not call on_load

NODE_CLASSES: list[type[io.ComfyNode]] = [
    IP2PBlendedSampler,
    RestoreBackground,
    *LOADER_NODES,
    GroundedMask,
    *GROUNDING_NODES,
    PreviewBoxes,
    *CORE_BOX_NODES,
]


log.info("grounded-ip2p %s: %d nodes", __version__, len(NODE_CLASSES))
if not pipeline_installed():
    log.warning("grounded-ip2p: Noun Phrase Extract will not run. %s", INSTALL_HINT)


class GroundedIP2PExtension(ComfyExtension):
    @override
    async def on_load(self) -> None:
        register_folders()  # again where ComfyUI calls it (idempotent), after its own set-up

    @override
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODE_CLASSES
