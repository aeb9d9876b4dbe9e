"""ComfyUI adapters (V3 schema). Relative imports only: ComfyUI owns the top-level names
``nodes``, ``utils``, ``comfy``..."""

from comfy_api.latest import ComfyExtension, io
from typing_extensions import override

from .grounding import GROUNDING_NODES
from .late_restore import RestoreBackground
from .loaders import LOADER_NODES
from .models import register_folders
from .preview import PreviewBoxes
from .sampler import IP2PBlendedSampler

register_folders()  # at import: ComfyUI 0.3.64 does not call on_load

NODE_CLASSES: list[type[io.ComfyNode]] = [
    IP2PBlendedSampler,
    RestoreBackground,
    *LOADER_NODES,
    *GROUNDING_NODES,
    PreviewBoxes,
]


class GroundedIP2PExtension(ComfyExtension):
    @override
    async def on_load(self) -> None:
        register_folders()  # again where ComfyUI calls it (idempotent), after its own set-up

    @override
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODE_CLASSES
