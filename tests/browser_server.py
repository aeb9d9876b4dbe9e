"""A real ComfyUI server (``main.py`` in its own process) with this pack installed, for the browser test.

Everything lives in one temporary base directory (``--base-directory``): ``custom_nodes/grounded_ip2p``
(a link to this repository), ``models/`` with the random-weight test models under the names the
example workflows use, ``input/`` with the test photo, ``output/``, and ``user/default`` with the
frontend settings that keep first-run dialogs and toasts out of the way.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from grounded_ip2p.headless import comfy_session

from . import checkpoints
from .grounding_models import LOADERS, provide

REPO = Path(__file__).resolve().parents[1]
PACK_NAME = "grounded_ip2p"
CHECKPOINT_LOADERS = {"CheckpointLoaderSimple": 0, "CheckpointLoader": 1}
IMAGE_LOADERS = ("LoadImage", "LoadImageMask")

# Frontend settings (ComfyUI frontend 1.27): no template browser on first run, no release
# notifications, no minimap or canvas-info overlay in screenshots, and nodes drawn in full detail
# at any zoom (so a screenshot of the whole graph still shows titles and widgets).
SETTINGS = {
    "Comfy.TutorialCompleted": True,
    "Comfy.Notification.ShowVersionUpdates": False,
    "Comfy.Minimap.Visible": False,
    "Comfy.Graph.CanvasInfo": False,
    "LiteGraph.Canvas.MinFontSizeForLOD": 0,
    # kept on: they are what the test checks
    "Comfy.Workflow.ShowMissingNodesWarning": True,
    "Comfy.Workflow.ShowMissingModelsWarning": True,
}


def find_chromium() -> tuple[str | None, str | None]:
    """(browser, chromedriver) paths, None where absent (Debian: `chromium`, `chromium-driver`)."""
    browser = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    return browser, driver


def ip2p_checkpoint(comfy_path: Path) -> Path:
    """The cached random IP2P checkpoint, built (in a child process, with ComfyUI importable) if missing."""
    path = checkpoints.cache_dir() / checkpoints.IP2P_CHECKPOINT
    if path.exists():
        return path
    code = (
        "import sys; sys.path.append(%r)\n"
        "from comfy.cli_args import args; args.cpu = True\n"
        "from tests.checkpoints import ip2p_checkpoint; print(ip2p_checkpoint())\n" % str(comfy_path)
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
    return path


def write_photo(path: Path) -> None:
    """The user's photo: RGBA 64x48 with a transparent hole (the hand-painted mask of LoadImage)."""
    from PIL import Image

    rgba = Image.new("RGBA", (64, 48), (120, 30, 200, 255))
    rgba.paste((0, 0, 0, 0), (16, 8, 40, 32))
    path.parent.mkdir(parents=True, exist_ok=True)
    rgba.save(path)


def prepare_base(base: Path, workflows: list[dict], comfy_path: Path) -> None:
    """The base directory with every model and input image that `workflows` name."""
    (base / "custom_nodes").mkdir(parents=True, exist_ok=True)
    link = base / "custom_nodes" / PACK_NAME
    if not link.exists():
        link.symlink_to(REPO, target_is_directory=True)
    for name in ("input", "output", "temp"):
        (base / name).mkdir(exist_ok=True)
    user = base / "user" / "default"
    user.mkdir(parents=True, exist_ok=True)
    (user / "comfy.settings.json").write_text(json.dumps(SETTINGS, indent=1))

    models = base / "models"
    checkpoint = None
    for workflow in workflows:
        for node in workflow.get("nodes", []):
            kind, values = node.get("type"), node.get("widgets_values") or []
            if kind in CHECKPOINT_LOADERS and len(values) > CHECKPOINT_LOADERS[kind]:
                checkpoint = checkpoint or ip2p_checkpoint(comfy_path)
                target = models / "checkpoints" / values[CHECKPOINT_LOADERS[kind]]
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    target.symlink_to(checkpoint)
            elif kind in LOADERS and values:
                provide(None, models, LOADERS[kind], values[0])
            elif kind in IMAGE_LOADERS and values and not (base / "input" / values[0]).exists():
                write_photo(base / "input" / values[0])


def ComfyServer(comfy_path: Path, base: Path) -> comfy_session.ComfyProcess:
    """ComfyUI's ``main.py --cpu`` on a free port with everything in ``base`` (see prepare_base)."""
    return comfy_session.ComfyProcess(comfy_path, base / "server.log", cpu=True, base=base)
