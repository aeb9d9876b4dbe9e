"""ComfyUI adapters (V3 schema). Relative imports only: ComfyUI owns the top-level names
``nodes``, ``utils``, ``comfy``..."""

from typing_extensions import override

from comfy_api.latest import ComfyExtension, io

from .sampler import IP2PBlendedSampler

NODE_CLASSES: list[type[io.ComfyNode]] = [IP2PBlendedSampler]


class GroundedIP2PExtension(ComfyExtension):
    @override
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODE_CLASSES
