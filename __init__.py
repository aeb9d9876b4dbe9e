"""grounded-ip2p: instruction-based image editing that changes only what the instruction is about.

ComfyUI loads this file as the pack's entry point and calls ``comfy_entrypoint``. The core
packages (``grounding``, ``sampling``) import no ComfyUI, so the pack also imports as a plain
library (``grounded_ip2p``) for the command line and the tests; the node adapters are imported
only when ComfyUI asks for them.
"""

__version__ = "0.1.0"

# Served by ComfyUI at /extensions/<pack folder>/; the frontend's node help panel reads
# docs/<node id>.md from there.
WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    from .nodes import GroundedIP2PExtension

    return GroundedIP2PExtension()
