"""Running ComfyUI from Python: the one place the runner, the tests and the benches start it.

Two ways, both found out by ComfyUI's features and never by its version string:
- ``ComfyProcess``: ComfyUI's own ``main.py`` on a loopback port, driven through ``ComfyClient``
  (its HTTP API) and ``ServerEvents`` (its websocket). ``grounded-ip2p run``, the browser test and
  the server tests use it; nothing depends on ComfyUI's executor internals.
- In-process (``prepare_import``, ``prompt_executor``, ``cached_outputs``, used by
  ``tests/comfy_harness.py`` and the benches): the executor is called directly so that a test can
  reach the Python objects a node returns. Its internals changed after 0.3.64 (``PromptExecutor``
  wants ``cache_args``, the output cache's ``get`` became a coroutine); these functions handle both.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path


class ComfyNotFound(Exception):
    """A folder given for ComfyUI that is not one."""


def is_comfyui(path: Path) -> bool:
    """A ComfyUI folder: ``main.py`` with its ``comfy`` package or its ``models`` folder."""
    return (path / "main.py").is_file() and ((path / "comfy").is_dir() or (path / "models").is_dir())


def locate_comfyui(explicit: str | None = None, start: Path | None = None) -> tuple[Path, str] | None:
    """ComfyUI's folder and how it was found: ``explicit`` (``--comfyui``), else ``$COMFYUI_PATH``,
    else the first folder above ``start`` (the pack lives in ``ComfyUI/custom_nodes/<pack>``).

    None when nothing is found; ComfyNotFound when a folder that was named is not ComfyUI.
    """
    for value, origin in ((explicit, "--comfyui"), (os.environ.get("COMFYUI_PATH"), "COMFYUI_PATH")):
        if value:
            path = Path(value).expanduser()
            if not is_comfyui(path):
                raise ComfyNotFound(f"{origin} {value}: not a ComfyUI folder (no main.py)")
            return path.resolve(), origin
    if start is not None:
        here = Path(start).resolve()
        for parent in (here, *here.parents):
            if is_comfyui(parent):
                return parent, f"found above the pack ({parent})"
    return None


def prepare_import(comfy_path: Path, cpu: bool = False) -> None:
    """Put ComfyUI on ``sys.path`` and set its start-up flags, before ``comfy.model_management`` loads.

    ``utils.extra_config`` is imported before ``nodes``, as ``main.py`` does (``nodes`` puts
    ``ComfyUI/comfy`` first on the path).
    """
    if str(comfy_path) not in sys.path:
        sys.path.insert(0, str(comfy_path))
    from comfy.cli_args import args

    args.cpu = args.cpu or cpu
    # Newer ComfyUI renamed --disable-api-nodes to --offline (the old name warns).
    if hasattr(args, "offline"):
        args.offline = True
    else:
        args.disable_api_nodes = True
    import utils.extra_config  # noqa: F401


def stand_in_prompt_server() -> None:
    """What newer ComfyUI's node set-up reaches on ``PromptServer.instance`` when no server runs
    (its node-replacement registry); nothing on 0.3.64, which has none."""
    import server

    if hasattr(server.PromptServer, "instance"):
        return
    try:
        from app.node_replace_manager import NodeReplaceManager
    except ImportError:
        return
    from types import SimpleNamespace

    server.PromptServer.instance = SimpleNamespace(node_replace_manager=NodeReplaceManager())


def prompt_executor(server):
    """``execution.PromptExecutor`` with the classic cache, on old and new ComfyUI alike."""
    import execution

    kwargs = {"cache_type": execution.CacheType.CLASSIC}
    if "cache_args" in inspect.signature(execution.PromptExecutor.__init__).parameters:
        kwargs["cache_args"] = {"lru": 0, "ram": 0, "ram_inactive": 0}
    return execution.PromptExecutor(server, **kwargs)


def cached_outputs(executor, node_id: str):
    """A node's cached outputs after a run: 0.3.64's synchronous ``get``, or newer ``get_local``."""
    cache = executor.caches.outputs
    if hasattr(cache, "get_local"):
        entry = cache.get_local(node_id)
    else:
        entry = cache.get(node_id)
        if inspect.isawaitable(entry):
            entry = asyncio.run(entry)
    # Newer ComfyUI caches an execution.CacheEntry(ui, outputs); 0.3.64 the outputs list itself.
    return getattr(entry, "outputs", entry)


# ------------------------------------------------------------------------------------------
# ComfyUI's own server: main.py in a child process, and its HTTP API
# ------------------------------------------------------------------------------------------


class ServerError(Exception):
    """The server could not be reached, would not start, or refused a request."""

    def __init__(self, message: str, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.status, self.body = status, body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_options(comfy_path: Path) -> set[str]:
    """The command-line options of this ComfyUI's ``main.py`` (read from ``comfy.cli_args``)."""
    if str(comfy_path) not in sys.path:
        sys.path.insert(0, str(comfy_path))
    from comfy.cli_args import parser

    return {option for action in parser._actions for option in action.option_strings}


class ComfyClient:
    """ComfyUI's HTTP API at ``url``: what the runner and the tests use."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def request(self, path: str, data: bytes | None = None, headers: dict | None = None, timeout: float = 60) -> bytes:
        request = urllib.request.Request(self.url + path, data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.read()
        except urllib.error.HTTPError as e:
            body = e.read().decode("utf-8", "replace")
            raise ServerError(
                f"server answered {e.code} for {path.split('?')[0]}: {body[:300]}", e.code, body
            ) from None
        except (urllib.error.URLError, OSError) as e:
            raise ServerError(f"cannot reach the ComfyUI server at {self.url} ({e})") from None

    def get(self, path: str, timeout: float = 60):
        return json.loads(self.request(path, timeout=timeout))

    def post(self, path: str, payload: dict, timeout: float = 60):
        body = self.request(path, json.dumps(payload).encode(), {"Content-Type": "application/json"}, timeout)
        return json.loads(body) if body.strip() else None

    def upload_image(self, image: Path) -> str:
        """Put ``image`` in the server's input folder; its name there, as LoadImage takes it."""
        boundary = uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="overwrite"\r\n\r\ntrue\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{image.name}"\r\n'
                f"Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + image.read_bytes()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        answer = json.loads(self.request("/upload/image", body, headers))
        return f"{answer['subfolder']}/{answer['name']}" if answer.get("subfolder") else answer["name"]

    def queue(self, prompt: dict, client_id: str) -> dict:
        """``POST /prompt``; a refused prompt raises ServerError with the server's JSON as ``body``."""
        return self.post("/prompt", {"prompt": prompt, "client_id": client_id})

    def history(self, prompt_id: str) -> dict | None:
        """The prompt's history entry once it has finished (success, error or cancel), else None."""
        entry = self.get(f"/history/{prompt_id}").get(prompt_id)
        if entry and entry.get("status", {}).get("completed") is not None:
            return entry
        return None

    def wait(self, prompt_id: str, timeout: float, poll: float = 0.25) -> dict:
        deadline = time.monotonic() + timeout
        while (entry := self.history(prompt_id)) is None:
            if time.monotonic() > deadline:
                raise ServerError(f"the server did not finish within {timeout:.0f} s")
            time.sleep(poll)
        return entry

    def view(self, item: dict) -> bytes:
        """The bytes of an output image (an entry of a history's ``images`` list)."""
        query = urllib.parse.urlencode({k: item.get(k, "") for k in ("filename", "subfolder", "type")})
        return self.request(f"/view?{query}")


class ServerEvents:
    """The server's websocket messages for one client id, handed to ``on_event(type, data)`` from a
    background thread. Best effort: without aiohttp (ComfyUI's own dependency) or a connection there
    are simply no events; the history stays the authority on how a prompt ended."""

    def __init__(self, url: str, client_id: str, on_event):
        self.ws_url = url.replace("http", "ws", 1).rstrip("/") + f"/ws?clientId={client_id}"
        self.on_event = on_event
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "ServerEvents":
        self._thread.start()
        self.connected.wait(5)  # events of a prompt queued before the connection would be lost
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        try:
            import aiohttp
        except ImportError:
            self.connected.set()
            return
        try:
            asyncio.run(self._listen(aiohttp))
        except Exception:  # noqa: BLE001 - a lost connection only costs the progress display
            pass
        finally:
            self.connected.set()

    async def _listen(self, aiohttp) -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(self.ws_url, heartbeat=30) as ws:
            self.connected.set()
            while not self._stop.is_set():
                try:
                    message = await ws.receive(timeout=0.2)
                except asyncio.TimeoutError:
                    continue
                if message.type == aiohttp.WSMsgType.TEXT:
                    event = json.loads(message.data)
                    self.on_event(event.get("type"), event.get("data") or {})
                elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    return


class ComfyProcess:
    """ComfyUI's ``main.py`` in a child process on a free loopback port, in its own process group
    (stopped as a whole), its log in ``log_path``.

    ``base``: a ``--base-directory`` for everything (models, custom nodes, input, output, user);
    ``dirs``: input/output/temp folders; ``model_paths``: extra_model_paths YAML files. Flags are
    chosen by what this ComfyUI's ``main.py`` accepts: ``--offline`` or the older
    ``--disable-api-nodes``, and an in-memory database where there is one.
    """

    def __init__(
        self,
        comfy_path: Path,
        log_path: Path,
        *,
        cpu: bool = True,
        base: Path | None = None,
        dirs: dict[str, Path] | None = None,
        model_paths: list[Path] = (),
        port: int | None = None,
    ):
        self.comfy_path, self.log_path, self.base = Path(comfy_path), Path(log_path), base
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = ComfyClient(self.url)
        self.process: subprocess.Popen | None = None
        self.command = [sys.executable, "main.py", *self._flags(cpu, base, dirs or {}, model_paths)]

    def _flags(self, cpu, base, dirs, model_paths) -> list[str]:
        known = server_options(self.comfy_path)
        flags = ["--listen", "127.0.0.1", "--port", str(self.port), "--disable-auto-launch"]
        flags += ["--offline"] if "--offline" in known else ["--disable-api-nodes"]
        if "--database-url" in known:
            flags += ["--database-url", "sqlite:///:memory:"]
        if cpu:
            flags.append("--cpu")
        if base is not None:
            flags += ["--base-directory", str(base)]
        for name, path in dirs.items():
            flags += [f"--{name}-directory", str(path)]
        for path in model_paths:
            flags += ["--extra-model-paths-config", str(path)]
        return flags

    def start(self, timeout: float = 180) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            self.command,
            cwd=self.comfy_path,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"ComfyUI exited with {self.process.returncode} while starting", body=self.log_tail())
            try:
                self.client.request("/system_stats", timeout=5)
                return
            except ServerError:
                time.sleep(0.5)
        raise ServerError(f"ComfyUI did not answer within {timeout:.0f} s", body=self.log_tail())

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

    def __enter__(self) -> "ComfyProcess":
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

    def get(self, path: str, timeout: float = 30):
        return self.client.get(path, timeout)

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""
