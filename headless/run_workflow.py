"""`grounded-ip2p run`: the pack's main workflow without the UI.

Runs an example workflow (by default `grounded_edit`) with the image, instruction, model files
and sampler settings from the command line, on a running ComfyUI server (`--server`) or on a local
ComfyUI (the one the pack is installed in, `--comfyui`, or COMFYUI_PATH) whose own main.py is
started for the run on a loopback port. Both take the same HTTP path.
Errors the user can fix (a missing image, an unreadable image, a missing model file, an unknown
workflow) are one line each and a non-zero exit code.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import uuid
from pathlib import Path

from ..grounding.model_folders import CLIP_FILTER, GROUNDING_DINO, LOADERS, SAM
from . import comfy_session
from .progress import ProgressBar
from .ui_to_api import WorkflowError, ui_to_api

PACK_DIR = Path(__file__).resolve().parents[1]
EXAMPLES = PACK_DIR / "example_workflows"
# (ComfyUI reads unet/ and clip/ as diffusion_models/ and text_encoders/)
MODEL_FOLDERS = (
    "checkpoints",
    *(folder for loader in LOADERS for folder in loader.folders),
    "diffusion_models",
    "unet",
    "text_encoders",
    "clip",
    "vae",
)
# (node type, input) set from each command-line option
OVERRIDES = {
    "instruction": [("GroundedIP2P_NounPhraseExtract", "instruction"), ("GroundedIP2P_GroundedMask", "instruction")],
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


def _save(prompt: dict, name: str, image: list, prefix: str) -> None:
    prompt[name] = {"class_type": "SaveImage", "inputs": {"images": image, "filename_prefix": prefix}}


def _add_debug_outputs(prompt: dict) -> None:
    """Save the mask and the box overlay beside the output (prefixes 'debug_mask', 'debug_boxes')."""
    one_node = [k for k, n in prompt.items() if n["class_type"] == "GroundedIP2P_GroundedMask"]
    if one_node:  # Grounded Mask has both as outputs
        prompt["debug_mask_image"] = {"class_type": "MaskToImage", "inputs": {"mask": [one_node[0], 0]}}
        _save(prompt, "debug_mask_save", ["debug_mask_image", 0], "debug_mask")
        _save(prompt, "debug_boxes_save", [one_node[0], 1], "debug_boxes")
        return
    masks = [k for k, n in prompt.items() if n["class_type"] == "GroundedIP2P_SAMMask"]
    selects = [
        k for k, n in prompt.items() if n["class_type"] in ("GroundedIP2P_SelectBoxes", "GroundedIP2P_ClipFilter")
    ]
    images = [k for k, n in prompt.items() if n["class_type"] == "LoadImage"]
    if masks and images:
        m, img = masks[0], images[0]
        prompt["debug_mask_image"] = {"class_type": "MaskToImage", "inputs": {"mask": [m, 0]}}
        _save(prompt, "debug_mask_save", ["debug_mask_image", 0], "debug_mask")
        boxes = prompt[m]["inputs"]["boxes"] if isinstance(prompt[m]["inputs"].get("boxes"), list) else None
        if boxes or selects:
            prompt["debug_boxes"] = {
                "class_type": "GroundedIP2P_PreviewBoxes",
                "inputs": {"image": [img, 0], "boxes": boxes or [selects[0], 0], "mask": [m, 0], "mask_opacity": 0.45},
            }
            _save(prompt, "debug_boxes_save", ["debug_boxes", 0], "debug_boxes")


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
    """Written whole or not at all: to a temporary name beside ``dest``, then renamed."""
    from PIL import Image

    part = dest.with_name(f".{dest.name}.part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.suffix.lower() == source.suffix.lower():
            shutil.copyfile(source, part)
        else:
            with Image.open(source) as im:
                im.convert("RGB").save(part, format=Image.registered_extensions().get(dest.suffix.lower(), "PNG"))
        os.replace(part, dest)
    except OSError as e:
        raise RunError(f"cannot write {dest} ({e.strerror or e})") from None
    finally:
        part.unlink(missing_ok=True)
    return dest


def check_output(path: str) -> Path:
    """The output file's folder exists (or can be made) and takes files, before anything runs."""
    out = Path(path)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise RunError(f"--out {path}: give a .png, .jpg or .webp file name")
    probe = out.parent / f".grounded-ip2p-{uuid.uuid4().hex}.probe"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise RunError(f"cannot write to {out.parent} ({e.strerror or e})") from None
    return out


# ------------------------------------------------------------------------------------------
# Running a prompt on a ComfyUI server (a running one, or ComfyUI's main.py started for the run)
# ------------------------------------------------------------------------------------------


class RunProgress:
    """The server's websocket events drawn on the progress bar: one stage per node, named as in
    the UI, with its steps where it reports them."""

    def __init__(self, bar: ProgressBar, prompt: dict, titles: dict):
        self.bar, self.prompt, self.titles = bar, prompt, titles
        self.finished = threading.Event()

    def on_event(self, kind: str, data: dict) -> None:
        if kind == "executing":
            node = data.get("node")
            if node is None:
                self.finished.set()
                return
            class_type = self.prompt.get(str(node), {}).get("class_type", str(node))
            self.bar.stage(self.titles.get(class_type, class_type))
        elif kind == "progress":
            self.bar.update(data.get("value", 0), data.get("max"))
        elif kind in ("execution_success", "execution_error", "execution_interrupted"):
            self.finished.set()


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
            if err.get("type") == "custom_validation_failed" and " - " in details:
                return _terminal_words(details.split(" - ", 1)[1])  # the node's own message, named
            return f"{info.get('class_type')}: {err.get('message', '')}: {details}".strip(": ")
    if isinstance(error, dict):
        return f"{error.get('message', 'invalid workflow')}: {error.get('details', '')}".strip(": ")
    return str(error)


def _refusal_message(error: comfy_session.ServerError, prompt: dict) -> str:
    """One line for a prompt the server refused (validation), else the error itself."""
    try:
        data = json.loads(error.body)
    except ValueError:
        return str(error)
    return _validation_message(data.get("error", {}), data.get("node_errors", {}), prompt)


# What a node's message tells a UI user, said for the terminal.
UI_HINTS = {
    "(then press R in ComfyUI to refresh the list)": "(then run the command again)",
    " and refresh the list (R)": "",
}


def _terminal_words(text: str) -> str:
    for ui_words, terminal_words in UI_HINTS.items():
        text = text.replace(ui_words, terminal_words)
    return text


def _failure_message(status: dict) -> str:
    for kind, data in status.get("messages", []):
        if kind == "execution_error":
            return _terminal_words((data.get("exception_message") or "the run failed").strip().splitlines()[0])
        if kind == "execution_interrupted":
            return "the run was interrupted on the server"
    return "the run failed on the server"


def _cancel(client: comfy_session.ComfyClient, prompt_id: str) -> None:
    """Take our prompt off the queue, and stop it if it is the one running (nobody else's). Each
    request waits 5 s at most: a Ctrl-C must not hang on a busy server."""
    try:
        client.post("/queue", {"delete": [prompt_id]}, timeout=5)
        running = client.get("/queue", timeout=5).get("queue_running", [])
        if any(len(item) > 1 and item[1] == prompt_id for item in running):
            client.post("/interrupt", {"prompt_id": prompt_id}, timeout=5)
    except comfy_session.ServerError:
        pass


def run_on_server(
    server: str,
    workflow: dict,
    image: Path,
    out: Path,
    options: dict,
    debug: bool,
    timeout: float = 3600,
    bar: ProgressBar | None = None,
) -> list[Path]:
    client = comfy_session.ComfyClient(server)
    try:
        info = client.get("/object_info")
        prompt = build_prompt(
            workflow, {name: i["input"] for name, i in info.items()}, client.upload_image(image), options, debug
        )
    except comfy_session.ServerError as e:
        raise RunError(str(e)) from None
    titles = {name: i.get("display_name") or name for name, i in info.items()}
    bar = bar or ProgressBar()
    progress = RunProgress(bar, prompt, titles)
    client_id = uuid.uuid4().hex
    prompt_id = None
    try:
        with comfy_session.ServerEvents(client.url, client_id, progress.on_event):
            try:
                answer = client.queue(prompt, client_id)
            except comfy_session.ServerError as e:
                raise RunError(_refusal_message(e, prompt) if e.status == 400 else str(e)) from None
            if answer.get("node_errors"):  # queued for the outputs that validated only (maybe not the edit)
                raise RunError(_validation_message(answer.get("error", {}), answer["node_errors"], prompt))
            prompt_id = answer["prompt_id"]
            try:
                history = client.wait(prompt_id, timeout)
            except comfy_session.ServerError as e:
                raise RunError(str(e)) from None
            progress.finished.wait(2)  # the last events may still be on their way
    except KeyboardInterrupt:
        bar.finish(failed=True)
        if prompt_id is not None:
            _cancel(client, prompt_id)
        raise
    status = history["status"]
    bar.finish(failed=status.get("status_str") != "success")
    if status.get("status_str") != "success":
        raise RunError(_failure_message(status))
    download = Path(tempfile.mkdtemp(prefix="grounded-ip2p-run-"))
    try:
        files = []
        for node_id, node in prompt.items():
            if node["class_type"] != "SaveImage":
                continue
            for item in history.get("outputs", {}).get(node_id, {}).get("images", []):
                local = download / f"{len(files)}_{item['filename']}"
                local.write_bytes(client.view(item))
                files.append((node["inputs"].get("filename_prefix", ""), local))
        return _place_outputs(files, out)
    finally:
        shutil.rmtree(download, ignore_errors=True)


# ------------------------------------------------------------------------------------------
# A local ComfyUI, started for the run
# ------------------------------------------------------------------------------------------

GPU_PROBLEMS = (
    "Torch not compiled with CUDA enabled",
    "Found no NVIDIA driver",
    "No CUDA GPUs are available",
    "no CUDA-capable device",
    "CUDA driver version is insufficient",
)


def find_comfyui(explicit: str | None) -> Path:
    try:
        found = comfy_session.locate_comfyui(explicit, PACK_DIR)
    except comfy_session.ComfyNotFound as e:
        raise RunError(str(e)) from None
    if found is None:
        raise RunError(
            "no ComfyUI found: install the pack in ComfyUI/custom_nodes, or pass --comfyui PATH "
            "(or set COMFYUI_PATH), or use --server URL"
        )
    return found[0]


def _pack_installed(comfy_path: Path) -> bool:
    custom = comfy_path / "custom_nodes"
    return custom.is_dir() and any(entry.resolve() == PACK_DIR for entry in custom.iterdir() if entry.is_dir())


def _extra_paths(work: Path, comfy_path: Path, models_dir: str | None) -> list[Path]:
    """An extra_model_paths file for ComfyUI: the pack (linked in when this ComfyUI does not have
    it installed) and ``--models-dir``'s folders. JSON, which is YAML too."""
    entry: dict[str, str] = {}
    if not _pack_installed(comfy_path):
        (work / "custom_nodes").mkdir()
        (work / "custom_nodes" / "grounded_ip2p").symlink_to(PACK_DIR, target_is_directory=True)
        entry["custom_nodes"] = str(work / "custom_nodes")
    if models_dir:
        root = Path(models_dir).expanduser().resolve()
        if not root.is_dir():
            raise RunError(f"--models-dir {models_dir}: no such folder")
        entry.update({folder: str(root / folder) for folder in MODEL_FOLDERS if (root / folder).is_dir()})
    if not entry:
        return []
    path = work / "extra_model_paths.yaml"
    path.write_text(json.dumps({"grounded_ip2p_run": entry}, indent=1))
    return [path]


def _startup_message(error: comfy_session.ServerError, cpu: bool, log: Path) -> str:
    if not cpu and any(problem in error.body for problem in GPU_PROBLEMS):
        return "no usable GPU found: add --cpu to run on the CPU (slow)"
    lines = [line.strip() for line in error.body.splitlines() if line.strip()]
    last = lines[-1] if lines else str(error)
    return f"ComfyUI did not start: {last} (its log: {log})"


def run_local(
    comfy_path: Path,
    workflow: dict,
    image: Path,
    out: Path,
    options: dict,
    debug: bool,
    cpu: bool,
    models_dir: str | None,
) -> list[Path]:
    """ComfyUI's own main.py on a loopback port for this run, then the same path as ``--server``.

    Its input, output and temp folders are temporary; its models are the ComfyUI's own (with its
    extra_model_paths.yaml) plus ``--models-dir``.
    """
    work = Path(tempfile.mkdtemp(prefix="grounded-ip2p-run-"))
    try:
        dirs = {name: work / name for name in ("input", "output", "temp")}
        for folder in dirs.values():
            folder.mkdir()
        server = comfy_session.ComfyProcess(
            comfy_path, work / "comfyui.log", cpu=cpu, dirs=dirs, model_paths=_extra_paths(work, comfy_path, models_dir)
        )
        bar = ProgressBar("starting ComfyUI")
        try:
            server.start()
        except comfy_session.ServerError as e:
            bar.finish(failed=True)
            log = Path(tempfile.gettempdir()) / "grounded-ip2p-comfyui.log"
            shutil.copyfile(server.log_path, log)
            raise RunError(_startup_message(e, cpu, log)) from None
        finally:
            if not server.alive():
                server.stop()
        try:
            return run_on_server(server.url, workflow, image, out, options, debug, bar=bar)
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args) -> int:
    """The `run` subcommand: 0 on success, 1 for a problem the message explains."""
    try:
        image = check_image(args.image)
        wf_path = workflow_path(args.workflow)
        workflow = json.loads(wf_path.read_text())
        options = {k: getattr(args, k, None) for k in OVERRIDES}
        out = check_output(args.out)
        if args.server:
            written = run_on_server(args.server, workflow, image, out, options, args.debug)
        else:
            written = run_local(
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
