"""`grounded-ip2p run`: the pack's main workflow without the UI.

Runs an example workflow (by default `grounded_edit`) with the image, instruction, model files
and sampler settings from the command line, either in-process in a local ComfyUI (the one the
pack is installed in, `--comfyui`, or COMFYUI_PATH) or on a running ComfyUI server (`--server`).
Errors the user can fix (a missing image, an unreadable image, a missing model file, an unknown
workflow) are one line each and a non-zero exit code.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from ..grounding.model_folders import CLIP_FILTER, GROUNDING_DINO, LOADERS, SAM
from . import comfy_session
from .ui_to_api import WorkflowError, ui_to_api

PACK_DIR = Path(__file__).resolve().parents[1]
EXAMPLES = PACK_DIR / "example_workflows"
# (ComfyUI reads unet/ and clip/ as diffusion_models/ and text_encoders/)
MODEL_FOLDERS = (
    "checkpoints",
    *(loader.folder for loader in LOADERS),
    "diffusion_models",
    "unet",
    "text_encoders",
    "clip",
    "vae",
)
# (node type, input) set from each command-line option
OVERRIDES = {
    "instruction": [("GroundedIP2P_NounPhraseExtract", "instruction")],
    "ip2p": [("CheckpointLoaderSimple", "ckpt_name")],
    "grounding_dino": [(GROUNDING_DINO.node_id, GROUNDING_DINO.widget)],
    "sam": [(SAM.node_id, SAM.widget)],
    "clip": [(CLIP_FILTER.node_id, CLIP_FILTER.widget)],
    "seed": [("GroundedIP2P_BlendedSampler", "seed"), ("RandomNoise", "noise_seed"), ("KSampler", "seed")],
    "steps": [("GroundedIP2P_BlendedSampler", "steps"), ("BasicScheduler", "steps"), ("KSampler", "steps")],
    "text_cfg": [("GroundedIP2P_BlendedSampler", "text_cfg"), ("DualCFGGuider", "cfg_conds")],
    "image_cfg": [("GroundedIP2P_BlendedSampler", "image_cfg"), ("DualCFGGuider", "cfg_cond2_negative")],
    "start_t": [("GroundedIP2P_BlendedSampler", "start_t")],
    "end_t": [("GroundedIP2P_BlendedSampler", "end_t")],
    "background": [("GroundedIP2P_BlendedSampler", "background"), ("GroundedIP2P_RestoreBackground", "background")],
}


class RunError(Exception):
    """A problem the user can fix; printed as one line."""


def workflow_path(name: str) -> Path:
    path = Path(name)
    if path.suffix == ".json" and path.is_file():
        return path
    candidate = EXAMPLES / f"{path.stem}.json"
    if candidate.is_file():
        return candidate
    names = ", ".join(sorted(p.stem for p in EXAMPLES.glob("*.json")))
    raise RunError(f"no workflow '{name}': give a .json file or one of {names}")


def check_image(path: str) -> Path:
    from PIL import Image, UnidentifiedImageError

    image = Path(path)
    if not image.is_file():
        raise RunError(f"image not found: {image}")
    try:
        with Image.open(image) as im:
            im.verify()
    except (UnidentifiedImageError, OSError) as e:
        raise RunError(f"cannot read {image} as an image ({e.__class__.__name__})") from None
    return image


def build_prompt(workflow: dict, node_inputs: dict, image_name: str, options: dict, debug: bool) -> dict:
    """The API prompt: the workflow with the image, the options and (debug) extra outputs."""
    try:
        prompt = ui_to_api(workflow, node_inputs)
    except WorkflowError as e:
        raise RunError(str(e)) from None
    for node in prompt.values():
        if node["class_type"] == "LoadImage":
            node["inputs"]["image"] = image_name
    for option, targets in OVERRIDES.items():
        value = options.get(option)
        if value is None:
            continue
        hits = [
            node
            for node in prompt.values()
            for t, name in targets
            if node["class_type"] == t and name in node["inputs"] and not isinstance(node["inputs"][name], list)
        ]
        if not hits and option == "instruction":
            hits = [
                node
                for node in prompt.values()
                if node["class_type"] == "CLIPTextEncode"
                and node["inputs"].get("text") not in ("", None)
                and not isinstance(node["inputs"]["text"], list)
            ]
            for node in hits:
                node["inputs"]["text"] = value
            continue
        for node in hits:
            for t, name in targets:
                if node["class_type"] == t and name in node["inputs"]:
                    node["inputs"][name] = value
    if debug:
        _add_debug_outputs(prompt)
    return prompt


def _add_debug_outputs(prompt: dict) -> None:
    """Save the mask and the box overlay beside the output (prefixes 'debug_mask', 'debug_boxes')."""
    masks = [k for k, n in prompt.items() if n["class_type"] == "GroundedIP2P_SAMMask"]
    selects = [
        k for k, n in prompt.items() if n["class_type"] in ("GroundedIP2P_SelectBoxes", "GroundedIP2P_ClipFilter")
    ]
    images = [k for k, n in prompt.items() if n["class_type"] == "LoadImage"]
    if masks and images:
        m, img = masks[0], images[0]
        prompt["debug_mask_image"] = {"class_type": "MaskToImage", "inputs": {"mask": [m, 0]}}
        prompt["debug_mask_save"] = {
            "class_type": "SaveImage",
            "inputs": {"images": ["debug_mask_image", 0], "filename_prefix": "debug_mask"},
        }
        boxes = prompt[m]["inputs"]["boxes"] if isinstance(prompt[m]["inputs"].get("boxes"), list) else None
        if boxes or selects:
            prompt["debug_boxes"] = {
                "class_type": "GroundedIP2P_PreviewBoxes",
                "inputs": {"image": [img, 0], "boxes": boxes or [selects[0], 0], "mask": [m, 0], "mask_opacity": 0.45},
            }
            prompt["debug_boxes_save"] = {
                "class_type": "SaveImage",
                "inputs": {"images": ["debug_boxes", 0], "filename_prefix": "debug_boxes"},
            }


def _place_outputs(files: list[tuple[str, Path]], out: Path) -> list[Path]:
    """Copy the run's images to `out`: the edit to `out`, debug images beside it."""
    written = []
    edits = [f for prefix, f in files if not prefix.startswith("debug_")]
    for i, f in enumerate(edits):
        dest = out if i == 0 else out.with_name(f"{out.stem}_{i}{out.suffix}")
        written.append(_save_as(f, dest))
    for prefix, f in files:
        if prefix.startswith("debug_"):
            written.append(_save_as(f, out.with_name(f"{out.stem}_{prefix[6:]}.png")))
    return written


def _save_as(source: Path, dest: Path) -> Path:
    from PIL import Image

    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.suffix.lower() == source.suffix.lower():
        shutil.copyfile(source, dest)
    else:
        with Image.open(source) as im:
            im.convert("RGB").save(dest)
    return dest


class ProgressBar:
    """A one-line terminal progress bar on stderr."""

    def __init__(self, stream=sys.stderr):
        self.stream, self.started, self.last = stream, time.perf_counter(), ""

    def update(self, label: str, value: float, total: float) -> None:
        width = 30
        done = int(width * value / total) if total else 0
        line = f"\r{label[:28]:<28} [{'#' * done}{'.' * (width - done)}] {int(value)}/{int(total)}"
        line += f"  {time.perf_counter() - self.started:5.1f}s"
        if line != self.last and self.stream.isatty() or value == total:
            self.stream.write(line)
            self.stream.flush()
            self.last = line

    def done(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


# ------------------------------------------------------------------------------------------
# In-process ComfyUI
# ------------------------------------------------------------------------------------------


def find_comfyui(explicit: str | None) -> Path:
    found = comfy_session.find_comfyui(explicit, PACK_DIR)
    if found is not None:
        return found
    raise RunError(
        "no ComfyUI found: install the pack in ComfyUI/custom_nodes, or pass --comfyui PATH "
        "(or set COMFYUI_PATH), or use --server URL"
    )


class _Server:
    """What ComfyUI's executor sends to; it reports each node as it starts (for the progress bar)."""

    client_id = last_node_id = last_prompt_id = None
    sockets_metadata: dict = {}

    def __init__(self, on_node=None):
        self.on_node = on_node

    def send_sync(self, event, data, sid=None):
        if event == "executing" and data.get("node") is not None and self.on_node is not None:
            self.on_node(str(data["node"]))

    def queue_updated(self):
        pass


def run_in_process(
    comfy_path: Path,
    workflow: dict,
    image: Path,
    out: Path,
    options: dict,
    debug: bool,
    cpu: bool,
    models_dir: str | None,
) -> list[Path]:
    comfy_session.prepare_import(comfy_path, cpu)
    import folder_paths

    work = Path(tempfile.mkdtemp(prefix="grounded-ip2p-run-"))
    try:
        for name in ("input", "output", "temp"):
            (work / name).mkdir()
        folder_paths.set_input_directory(str(work / "input"))
        folder_paths.set_output_directory(str(work / "output"))
        folder_paths.set_temp_directory(str(work / "temp"))
        installed = any(
            (Path(p) / PACK_DIR.name).resolve() == PACK_DIR
            for p in folder_paths.get_folder_paths("custom_nodes")
            if (Path(p) / PACK_DIR.name).exists()
        )
        if not installed:  # run the pack from where it is
            (work / "custom_nodes").mkdir()
            (work / "custom_nodes" / "grounded_ip2p").symlink_to(PACK_DIR, target_is_directory=True)
            folder_paths.add_model_folder_path("custom_nodes", str(work / "custom_nodes"), is_default=True)
        import comfy.utils
        import execution

        import nodes

        asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
        if models_dir:
            for folder in MODEL_FOLDERS:
                if (Path(models_dir) / folder).is_dir():
                    folder_paths.add_model_folder_path(folder, str(Path(models_dir) / folder), is_default=True)
        shutil.copyfile(image, work / "input" / image.name)
        node_inputs = {name: cls.INPUT_TYPES() for name, cls in nodes.NODE_CLASS_MAPPINGS.items()}
        prompt = build_prompt(workflow, node_inputs, image.name, options, debug)

        # The bar names the node that runs (its display name, as in the UI) and, for a node with
        # steps, its progress; ComfyUI reports nodes as they start when the prompt has a client id.
        titles = {
            node_id: nodes.NODE_DISPLAY_NAME_MAPPINGS.get(node["class_type"], node["class_type"])
            for node_id, node in prompt.items()
        }
        bar = ProgressBar()
        current = {"title": "starting"}

        def on_node(node_id):
            current["title"] = titles.get(node_id, node_id)
            bar.update(current["title"], 0, 0)

        server = _Server(on_node)
        comfy.utils.set_progress_bar_global_hook(
            lambda value, total, preview, prompt_id=None, node_id=None: bar.update(
                titles.get(str(node_id), current["title"]), value, total
            )
        )
        comfy.utils.PROGRESS_BAR_ENABLED = False
        prompt_id = str(uuid.uuid4())
        valid, error, outputs, node_errors = asyncio.run(execution.validate_prompt(prompt_id, prompt, None))
        if not valid or node_errors:  # ComfyUI runs the outputs that validate: the edit may not be one of them
            raise RunError(_validation_message(error, node_errors, prompt))
        executor = comfy_session.prompt_executor(server)
        executor.execute(prompt, prompt_id, {"client_id": "grounded-ip2p-run"}, outputs)
        bar.done()
        if not executor.success:
            messages = [
                d.get("exception_message", e)
                for e, d in executor.status_messages
                if e in ("execution_error", "execution_interrupted")
            ]
            raise RunError((messages[0] if messages else "the run failed").strip().splitlines()[0])
        files = []
        for node_id, node in prompt.items():
            if node["class_type"] == "SaveImage":
                prefix = node["inputs"].get("filename_prefix", "")
                for item in executor.history_result.get("outputs", {}).get(node_id, {}).get("images") or []:
                    files.append((prefix, work / "output" / item.get("subfolder", "") / item["filename"]))
        return _place_outputs(files, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _validation_message(error: dict, node_errors: dict, prompt: dict) -> str:
    """One line: the first problem with the node and input it is about (a missing model file)."""
    for node_id, info in (node_errors or {}).items():
        for err in info.get("errors", []):
            details = err.get("details", "")
            extra = err.get("extra_info", {})
            name = extra.get("input_name", "")
            if err.get("type") == "value_not_in_list":
                value = extra.get("received_value", "")
                return (
                    f"{info.get('class_type', prompt.get(node_id, {}).get('class_type'))}: '{value}' is not "
                    f"available for {name} — put the file in ComfyUI's models folder for it "
                    f"(see `grounded-ip2p models`)"
                )
            return f"{info.get('class_type')}: {err.get('message', '')}: {details}".strip(": ")
    if isinstance(error, dict):
        return f"{error.get('message', 'invalid workflow')}: {error.get('details', '')}".strip(": ")
    return str(error)


# ------------------------------------------------------------------------------------------
# A running ComfyUI server
# ------------------------------------------------------------------------------------------


def _http(url: str, data: bytes | None = None, headers: dict | None = None, timeout: float = 60):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace")
        raise RunError(f"server answered {e.code} for {urllib.parse.urlparse(url).path}: {body[:300]}") from None
    except (urllib.error.URLError, OSError) as e:
        raise RunError(f"cannot reach the ComfyUI server at {url} ({e})") from None


def _upload(server: str, image: Path) -> str:
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
    answer = json.loads(
        _http(f"{server}/upload/image", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    )
    return f"{answer['subfolder']}/{answer['name']}" if answer.get("subfolder") else answer["name"]


def run_on_server(
    server: str, workflow: dict, image: Path, out: Path, options: dict, debug: bool, timeout: float = 3600
) -> list[Path]:
    server = server.rstrip("/")
    node_inputs = {name: info["input"] for name, info in json.loads(_http(f"{server}/object_info")).items()}
    prompt = build_prompt(workflow, node_inputs, _upload(server, image), options, debug)
    client_id = uuid.uuid4().hex
    try:
        answer = json.loads(
            _http(
                f"{server}/prompt",
                json.dumps({"prompt": prompt, "client_id": client_id}).encode(),
                {"Content-Type": "application/json"},
            )
        )
    except RunError as e:
        text = str(e)
        if "{" in text:
            try:
                data = json.loads(text[text.index("{") :])
                raise RunError(
                    _validation_message(data.get("error", {}), data.get("node_errors", {}), prompt)
                ) from None
            except ValueError:
                pass
        raise
    if answer.get("node_errors"):  # queued for the outputs that validated only (the edit may not be one)
        raise RunError(_validation_message(answer.get("error", {}), answer["node_errors"], prompt))
    prompt_id = answer["prompt_id"]
    bar = ProgressBar()
    started = time.perf_counter()
    while True:
        history = json.loads(_http(f"{server}/history/{prompt_id}")).get(prompt_id)
        if history and history.get("status", {}).get("completed") is not None:
            break
        if time.perf_counter() - started > timeout:
            raise RunError(f"the server did not finish within {timeout:.0f} s")
        bar.update("queued/running on server", 0, 1)
        time.sleep(0.5)
    bar.update("done", 1, 1)
    bar.done()
    status = history["status"]
    if status.get("status_str") != "success":
        messages = [m[1].get("exception_message", "") for m in status.get("messages", []) if m[0] == "execution_error"]
        raise RunError((messages[0] if messages else "the run failed on the server").strip().splitlines()[0])
    download = Path(tempfile.mkdtemp(prefix="grounded-ip2p-run-"))
    try:
        files = []
        for node_id, node in prompt.items():
            if node["class_type"] != "SaveImage":
                continue
            for item in history.get("outputs", {}).get(node_id, {}).get("images", []):
                query = urllib.parse.urlencode({k: item.get(k, "") for k in ("filename", "subfolder", "type")})
                local = download / f"{len(files)}_{item['filename']}"
                local.write_bytes(_http(f"{server}/view?{query}"))
                files.append((node["inputs"].get("filename_prefix", ""), local))
        return _place_outputs(files, out)
    finally:
        shutil.rmtree(download, ignore_errors=True)


def run(args) -> int:
    """The `run` subcommand: 0 on success, 1 for a problem the message explains."""
    try:
        image = check_image(args.image)
        wf_path = workflow_path(args.workflow)
        workflow = json.loads(wf_path.read_text())
        options = {k: getattr(args, k, None) for k in OVERRIDES}
        out = Path(args.out)
        if args.server:
            written = run_on_server(args.server, workflow, image, out, options, args.debug)
        else:
            written = run_in_process(
                find_comfyui(args.comfyui), workflow, image, out, options, args.debug, args.cpu, args.models_dir
            )
        if not written:
            raise RunError(f"the workflow {wf_path.name} saved no image")
    except RunError as e:
        print(f"grounded-ip2p run: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("grounded-ip2p run: interrupted", file=sys.stderr)
        return 130
    for path in written:
        print(path)
    return 0
