"""A real ComfyUI server (``main.py`` in its own process) with this pack installed, for the browser test.

Everything lives in one temporary base directory (``--base-directory``): ``custom_nodes/grounded_ip2p``
(a link to this repository), ``models/`` with the random-weight test models under the names the
example workflows use, ``input/`` with the test photo, ``output/``, and ``user/default`` with the
frontend settings that keep first-run dialogs and toasts out of the way.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


class ComfyServer:
    """``python main.py --cpu`` on a free port, in its own process group (killed as a whole)."""

    def __init__(self, comfy_path: Path, base: Path, port: int | None = None):
        self.comfy_path, self.base = comfy_path, base
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base / "server.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> None:
        cmd = [
            sys.executable,
            "main.py",
            "--cpu",
            "--listen",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--base-directory",
            str(self.base),
            "--disable-auto-launch",
            "--disable-api-nodes",
            "--database-url",
            "sqlite:///:memory:",
        ]  # ComfyUI's own user folder stays untouched
        self._log = open(self.log_path, "wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            cmd,
            cwd=self.comfy_path,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.process.returncode} while starting:\n{self.log_tail()}")
            try:
                self.get("/object_info", timeout=5)
                return
            except (OSError, urllib.error.URLError):
                time.sleep(1)
        raise RuntimeError(f"ComfyUI did not answer /object_info within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> "ComfyServer":
        """Started (120 s to answer); stopped again if it does not come up."""
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def get(self, path: str, timeout: float = 30):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return json.loads(response.read())
