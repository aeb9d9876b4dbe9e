"""Every example workflow in ComfyUI's real web frontend: a ComfyUI server (``main.py --cpu``) with
the pack installed, driven by headless Chromium through Selenium.

For each ``example_workflows/*.json`` the test loads the workflow as a user would (``app.loadGraphData``),
and asserts that no dialog opens (the frontend lists missing node types in one), that queueing it
gives no validation error, that the run completes, and that its SaveImage files appear in the
server's output folder. Each loaded workflow is also photographed, fitted to the window: into the
pytest temp folder normally, and with ``GIP2P_UPDATE_SCREENSHOTS=1`` into ``docs/screenshots/<name>.png``
plus the template browser's thumbnail ``example_workflows/<name>.jpg``.

Skips, saying why, without ComfyUI (``COMFYUI_PATH``), Selenium or Chromium and its driver (Debian:
``apt-get install -y chromium chromium-driver``); under ``CI=true`` those fail instead.
"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest

from .browser_server import ComfyServer, find_chromium, prepare_base
from .comfy_harness import comfy_path_or_none
from .conftest import NO_COMFY

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "example_workflows").glob("*.json"))
from .test_workflows import NOT_EXECUTED  # noqa: E402  (edit-model workflows that load but cannot run here)

UPDATE = os.environ.get("GIP2P_UPDATE_SCREENSHOTS") == "1"
WINDOW = (1600, 1000)
THUMBNAIL_WIDTH = 400
RUN_TIMEOUT = 300  # seconds per workflow on a small CPU
STEPS = 2  # sampler steps for the run (CPU time); the screenshot shows the workflow's own value


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but " + reason)
    pytest.skip(reason)


# --- JavaScript run in the page --------------------------------------------------------------------

APP_READY = """
return !!(window.app && app.graph && app.canvas && window.comfyAPI && comfyAPI.api && comfyAPI.api.api
          && window.LiteGraph && Object.keys(LiteGraph.registered_node_types)
                                       .some(t => t.startsWith('GroundedIP2P_')));
"""

OPEN_DIALOGS = """
return [...document.querySelectorAll('.p-dialog')]
  .filter(e => e.getClientRects().length)
  .map(e => e.innerText.trim().replace(/\\s+/g, ' ').slice(0, 600));
"""

ERROR_TOASTS = """
return [...document.querySelectorAll('.p-toast-message-error')].map(e => e.innerText.trim().replace(/\\s+/g, ' '));
"""

# The missing-models dialog's entries: the label ("directory / name") and the URLs it offers
# (the label's hint and the buttons' titles; the error text of a source it will not download from).
MISSING_MODELS = """
return [...document.querySelectorAll('.comfy-missing-models li')].map(li => ({
  text: li.innerText.trim().replace(/\\s+/g, ' '),
  titles: [...li.querySelectorAll('[title]')].map(e => e.title),
}));
"""

# What each pack node shows of its info after the run (web/show_info.js).
INFO_SHOWN = """
return Object.fromEntries(app.graph.nodes.filter(n => n.type.startsWith('GroundedIP2P_'))
  .map(n => [String(n.id), n.widgets?.find(w => w.name === 'gip2p_info')?.value ?? null]));
"""

CLOSE_DIALOGS = """
document.querySelectorAll('.p-dialog .p-dialog-close-button, .p-toast-close-button').forEach(b => b.click());
"""

LOAD = """
const [workflow, name, done] = arguments;
// what the frontend will not find (its missing-node dialog lists the same types)
const missing = (workflow.nodes || []).map(n => n.type).filter(t => !(t in LiteGraph.registered_node_types));
(async () => {
  await app.loadGraphData(workflow, true, true, name);
  // one tab in the picture: close the earlier workflows' tabs (and the start-up "Unsaved Workflow")
  const store = app.extensionManager.workflow;
  try {
    for (const other of [...store.openWorkflows]) if (other !== store.activeWorkflow) await store.closeWorkflow(other);
  } catch (e) { console.warn('could not close the other workflow tabs', e); }
  return {missing, nodes: app.graph.nodes.length};
})().then(done, e => done({missing, error: String(e && e.stack || e)}));
"""

IMAGES_SHOWN = """
const loaders = app.graph.nodes.filter(n => n.type === 'LoadImage');
return loaders.every(n => n.imgs && n.imgs.length && n.imgs.every(i => i.complete && i.naturalWidth > 0));
"""

# Fit the view to every node and group, inside the canvas (the canvas element already excludes the
# side bar and the menu; its bottom right corner has the zoom controls).
FIT_VIEW = """
const c = app.canvas, el = c.canvas;
let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
for (const item of [...app.graph.nodes, ...(app.graph.groups || [])]) {
  const [x, y, w, h] = item.boundingRect;
  x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x + w); y1 = Math.max(y1, y + h);
}
const cw = el.width / devicePixelRatio, ch = el.height / devicePixelRatio;
const margin = 24, controls = 64;
const aw = cw - 2 * margin, ah = ch - margin - controls;
const scale = Math.min(aw / (x1 - x0), ah / (y1 - y0), 1);
c.ds.scale = scale;
c.ds.offset[0] = (margin + aw / 2) / scale - (x0 + x1) / 2;
c.ds.offset[1] = (margin + ah / 2) / scale - (y0 + y1) / 2;
c.setDirty(true, true);
c.draw(true, true);
const r = el.getBoundingClientRect();  // where the graph now is in the window (for the thumbnail)
const screen = [r.left + (x0 + c.ds.offset[0]) * scale, r.top + (y0 + c.ds.offset[1]) * scale,
                (x1 - x0) * scale, (y1 - y0) * scale];
return {bounds: [x0, y0, x1 - x0, y1 - y0], scale, screen, canvas: [r.left, r.top, cw, ch - controls]};
"""

FEW_STEPS = """
let changed = 0;
for (const node of app.graph.nodes)
  for (const w of node.widgets || [])
    if (w.name === 'steps' && typeof w.value === 'number') { w.value = arguments[0]; changed++; }
app.canvas.setDirty(true, true);
return changed;
"""

# Queue as the Run button does; the response of POST /prompt (or its error) is caught on the way.
QUEUE = """
const done = arguments[arguments.length - 1];
const api = comfyAPI.api.api;
window.__gip2pQueued = [];
if (!api.__gip2pWrapped) {
  const original = api.queuePrompt.bind(api);
  api.queuePrompt = async (...args) => {
    try {
      const res = await original(...args);
      window.__gip2pQueued.push({ok: true, response: res});
      return res;
    } catch (e) {
      window.__gip2pQueued.push({ok: false, response: e.response ?? null, error: String(e)});
      throw e;
    }
  };
  api.__gip2pWrapped = true;
}
app.queuePrompt(0, 1).then(
  ok => done({ok, queued: window.__gip2pQueued, nodeErrors: app.lastNodeErrors ?? null}),
  e => done({ok: false, queued: window.__gip2pQueued, error: String(e)}));
"""


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    comfy_path = comfy_path_or_none()
    if comfy_path is None:
        _unavailable(NO_COMFY)
    browser, driver = find_chromium()
    if not (browser and driver):
        _unavailable(
            "Chromium and its driver are not installed (the browser test drives ComfyUI's web "
            "frontend in headless Chromium): `apt-get install -y chromium chromium-driver` "
            "(`.ci/run` does this)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        _unavailable("selenium is not installed: `pip install -e .[test]`")
    base = tmp_path_factory.mktemp("comfy-server")
    prepare_base(base, [json.loads(p.read_text()) for p in EXAMPLES if p.stem not in NOT_EXECUTED], comfy_path)
    with ComfyServer(comfy_path, base) as srv:
        yield srv


@pytest.fixture(scope="module")
def page(server):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = find_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        # the page itself 1600x1000 (--window-size sizes the window, whose page area is smaller)
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": WINDOW[0], "height": WINDOW[1], "deviceScaleFactor": 1, "mobile": False},
        )
        driver.set_script_timeout(120)
        driver.get(server.url + "/")
        _wait(lambda: driver.execute_script(APP_READY), 90, "the ComfyUI frontend did not start")
        time.sleep(2)  # settings, extensions and the first (empty) workflow finish loading
        driver.execute_script(CLOSE_DIALOGS)
        # what the frontend logs on its own before any workflow (offline noise, its own start-up errors)
        baseline = {entry["message"] for entry in driver.get_log("browser")}
        yield Page(driver, baseline)
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def screenshot_dir(tmp_path_factory) -> Path:
    """Where screenshots go in normal runs (GIP2P_UPDATE_SCREENSHOTS=1 writes into the repository)."""
    return tmp_path_factory.mktemp("screenshots")


class Page:
    def __init__(self, driver, baseline: set[str]):
        self.driver, self.baseline = driver, baseline

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def js_async(self, script, *args):
        return self.driver.execute_async_script(script, *args)

    def severe_logs(self) -> list[str]:
        """SEVERE browser console entries since the last call: JS exceptions and console.error, not
        network noise (favicon, user.css, unreachable api.comfy.org) nor what the frontend logs anyway."""
        return [
            e["message"]
            for e in self.driver.get_log("browser")
            if e["level"] == "SEVERE" and e.get("source") != "network" and e["message"] not in self.baseline
        ]


def expected_missing_models(workflow: dict, models_dir: Path) -> list[dict]:
    """The workflow's model metadata (``properties.models``) for the files ``models_dir`` lacks."""
    wanted = [m for n in workflow["nodes"] for m in n.get("properties", {}).get("models", [])]
    unique = {m["url"]: m for m in wanted}.values()
    return [m for m in unique if not (models_dir / m["directory"] / m["name"]).exists()]


def check_missing_models_dialog(page, name: str, expected: list[dict]) -> None:
    """No dialog when nothing is missing; else the missing-models dialog, listing each file that is
    missing with its folder and URL, and nothing else."""
    dialogs = page.js(OPEN_DIALOGS)
    if not expected:
        assert not dialogs, f"{name}: a dialog opened on loading the workflow: {dialogs}"
        return
    entries = _wait(lambda: page.js(MISSING_MODELS), 10, f"{name}: no missing-models dialog; dialogs: {dialogs}")
    assert len(dialogs) == 1, f"{name}: other dialogs opened too: {dialogs}"
    for model in expected:
        label = f"{model['directory']} / {model['name']}"
        match = [e for e in entries if e["text"].startswith(label)]
        assert match, f"{name}: the dialog does not list {label}: {entries}"
        assert model["url"] in match[0]["titles"], f"{name}: {label} is listed without its URL: {match[0]}"
    assert len(entries) == len(expected), f"{name}: the dialog lists {entries}, expected {expected}"
    page.js(CLOSE_DIALOGS)


def _wait(condition, timeout, message=None, interval=0.5):
    """condition()'s first true value; fails with `message` at the timeout (None: returns None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    if message is not None:
        pytest.fail(f"{message} (after {timeout} s)")
    return None


def _screenshot_paths(name: str, tmp_dir: Path) -> tuple[Path, Path]:
    if UPDATE:
        return REPO / "docs" / "screenshots" / f"{name}.png", REPO / "example_workflows" / f"{name}.jpg"
    return tmp_dir / f"{name}.png", tmp_dir / f"{name}.jpg"


def _thumbnail_box(graph, canvas, aspect=WINDOW[0] / WINDOW[1], pad=12):
    """The graph's box in the window, padded and widened to the window's aspect, inside the canvas
    (less its bottom band with the zoom controls)."""
    x, y, w, h = graph[0] - pad, graph[1] - pad, graph[2] + 2 * pad, graph[3] + 2 * pad
    if w / h > aspect:
        y, h = y - (w / aspect - h) / 2, w / aspect
    else:
        x, w = x - (h * aspect - w) / 2, h * aspect
    cx, cy, cw, ch = canvas
    x0, y0 = max(x, cx), max(y, cy)
    x1, y1 = min(x + w, cx + cw), min(y + h, cy + ch)
    return round(x0), round(y0), round(x1), round(y1)


def _save_screenshot(png: bytes, fit: dict, name: str, tmp_dir: Path) -> Path:
    """The window as PNG, and the JPEG thumbnail: the graph's part of the same picture (no menus)."""
    from PIL import Image

    shot, thumb = _screenshot_paths(name, tmp_dir)
    shot.parent.mkdir(parents=True, exist_ok=True)
    shot.write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == WINDOW, f"screenshot is {image.size}, not {WINDOW}"
    crop = image.crop(_thumbnail_box(fit["screen"], fit["canvas"]))
    height = round(crop.height * THUMBNAIL_WIDTH / crop.width)
    thumb.parent.mkdir(parents=True, exist_ok=True)
    crop.resize((THUMBNAIL_WIDTH, height), Image.LANCZOS).save(thumb, "JPEG", quality=88, optimize=True)
    return shot


# --- the test ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_workflow_in_the_web_frontend(page, server, path, screenshot_dir):
    name = path.stem
    workflow = json.loads(path.read_text())
    page.js(CLOSE_DIALOGS)
    page.severe_logs()  # drop what earlier workflows left
    started = time.monotonic()

    # 1. load it as a user does; no dialog (missing nodes, load error) may open, and the
    #    missing-models dialog only for the files this server lacks (the edit models that cannot run here)
    loaded = page.js_async(LOAD, workflow, name)
    assert not loaded.get("error"), f"{name}: loading failed: {loaded['error']}"
    assert not loaded["missing"], f"{name}: node types the frontend does not know: {loaded['missing']}"
    time.sleep(1)  # dialogs open asynchronously
    check_missing_models_dialog(page, name, expected_missing_models(workflow, server.base / "models"))
    toasts = page.js(ERROR_TOASTS)
    assert not toasts, f"{name}: error toast on loading the workflow: {toasts}"

    # 2. the screenshot: whole graph fitted to the window, the test photo shown in LoadImage
    shown = _wait(lambda: page.js(IMAGES_SHOWN), 15)  # without it the picture is poorer; the run checks the image
    fit = page.js(FIT_VIEW)
    time.sleep(1.0)  # DOM widgets (text boxes) follow the canvas on the next frames
    shot = _save_screenshot(page.driver.get_screenshot_as_png(), fit, name, screenshot_dir)

    if name in NOT_EXECUTED:  # the edit model's text encoders cannot be built here: loaded and shown only
        print(
            f"\n{name}: {loaded['nodes']} nodes, no missing nodes, no dialog; not queued ({NOT_EXECUTED[name]}); "
            f"screenshot {shot}"
        )
        return

    # 3. queue it (fewer steps) as the Run button does
    changed = page.js(FEW_STEPS, STEPS)
    output_dir = server.base / "output"
    before = set(output_dir.rglob("*.png"))
    queued = page.js_async(QUEUE)
    responses = queued.get("queued") or []
    assert responses, f"{name}: nothing was posted to /prompt: {queued}"
    assert responses[-1]["ok"], f"{name}: the server refused the prompt: {json.dumps(responses[-1])[:3000]}"
    # (app.queuePrompt's own return value is false even then: it tests `!{}` for no node errors)
    node_errors = queued.get("nodeErrors") or responses[-1]["response"].get("node_errors")
    assert not node_errors and not queued.get("error"), f"{name}: validation errors: {json.dumps(queued)[:3000]}"
    dialogs = page.js(OPEN_DIALOGS)
    assert not dialogs, f"{name}: a dialog opened on queueing: {dialogs}"
    prompt_id = responses[-1]["response"]["prompt_id"]

    # 4. the run completes (the server's history has the prompt, with success)
    def finished():
        if not server.alive():
            pytest.fail(f"ComfyUI died while running {name}:\n{server.log_tail()}")
        return server.get(f"/history/{prompt_id}").get(prompt_id)

    entry = _wait(finished, RUN_TIMEOUT, f"{name}: the run did not finish", interval=1)
    status = entry.get("status", {})
    errors = [m for m in status.get("messages", []) if m[0] in ("execution_error", "execution_interrupted")]
    assert status.get("status_str") == "success" and status.get("completed"), (
        f"{name}: the run failed: {json.dumps(errors)[:3000]}\n{server.log_tail(3000)}"
    )

    # 5. every SaveImage node wrote its files into the output folder
    saves = {str(n["id"]) for n in workflow["nodes"] if n["type"] == "SaveImage" and n.get("mode", 0) == 0}
    assert saves, f"{name}: the workflow has no SaveImage node"
    written = set(output_dir.rglob("*.png")) - before
    for node_id in sorted(saves):
        images = entry.get("outputs", {}).get(node_id, {}).get("images", [])
        assert images, f"{name}: SaveImage node {node_id} reported no image"
        for image in images:
            file = output_dir / image.get("subfolder", "") / image["filename"]
            assert image.get("type") == "output" and file in written, f"{name}: {file} was not written"

    # 6. each pack node that reported an info text shows it on the node
    pack_nodes = {str(n["id"]) for n in workflow["nodes"] if n["type"].startswith("GroundedIP2P_")}
    outputs = entry.get("outputs", {})
    cached = {
        n for kind, data in status.get("messages", []) if kind == "execution_cached" for n in data.get("nodes", [])
    }
    # (ComfyUI sends nothing for a node it took from its cache: a new page shows only what ran)
    texts = {
        k: "\n".join(v["text"]) for k, v in outputs.items() if k in pack_nodes and k not in cached and v.get("text")
    }

    def info_shown():
        shown = page.js(INFO_SHOWN)
        return shown if all(shown.get(k) for k in texts) else None

    shown_info = _wait(info_shown, 10) or page.js(INFO_SHOWN)
    for node_id, text in texts.items():
        assert shown_info.get(node_id) == text, (
            f"{name}: node {node_id} shows {shown_info.get(node_id)!r}, not {text!r}"
        )

    # 7. nothing went wrong in the page on the way (JS exceptions, console errors, error dialogs)
    time.sleep(0.5)
    dialogs = page.js(OPEN_DIALOGS) + page.js(ERROR_TOASTS)
    assert not dialogs, f"{name}: error shown in the frontend after the run: {dialogs}"
    severe = page.severe_logs()
    assert not severe, f"{name}: browser console errors: {severe}"
    print(
        f"\n{name}: {loaded['nodes']} nodes, no missing nodes, no dialog; steps->{STEPS} on {changed} sampler(s); "
        f"queued {prompt_id}; success; {len(written)} image(s) written "
        f"({', '.join(sorted(p.name for p in written))}); view scale {fit['scale']:.2f}, photo shown {bool(shown)}; "
        f"screenshot {shot}; info shown on {len(texts)} node(s); {time.monotonic() - started:.1f} s"
    )


def test_missing_models_dialog_offers_every_file_with_its_url(page, server, tmp_path_factory):
    """A ComfyUI with the pack and no model files at all: opening a grounded workflow lists every
    file it loads, in its folder (the pack's own folders included) and with its URL."""
    comfy_path = comfy_path_or_none()
    base = tmp_path_factory.mktemp("comfy-no-models")
    prepare_base(base, [], comfy_path)
    try:
        with ComfyServer(comfy_path, base) as bare:
            for name in ("quick_grounded_edit", "grounded_edit"):  # each in a fresh page, as a user opens it
                page.driver.get(bare.url + "/")
                page.js("localStorage.clear(); sessionStorage.clear();")  # no workflow restored from before
                page.driver.get(bare.url + "/")
                _wait(lambda: page.js(APP_READY), 90, "the ComfyUI frontend did not start")
                time.sleep(2)
                page.js(CLOSE_DIALOGS)
                workflow = json.loads((REPO / "example_workflows" / f"{name}.json").read_text())
                expected = expected_missing_models(workflow, base / "models")
                assert {m["directory"] for m in expected} == {"checkpoints", "grounding-dino", "sams", "clip_filter"}
                loaded = page.js_async(LOAD, workflow, name)
                assert not loaded.get("error") and not loaded["missing"], loaded
                time.sleep(1)
                check_missing_models_dialog(page, name, expected)
    finally:
        page.driver.get(server.url + "/")
        _wait(lambda: page.js(APP_READY), 90, "the ComfyUI frontend did not start again")
        time.sleep(2)
        page.js(CLOSE_DIALOGS)
