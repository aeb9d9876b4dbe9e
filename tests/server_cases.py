"""A ComfyUI server's side of the reliability suite and the load bench: its photos and hostile model
files, the prompts, and how a queued prompt ended (tests/test_server_reliability.py, bench/server_load.py)."""

from __future__ import annotations

import io
import json
import pickle
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from grounded_ip2p.headless.comfy_session import ServerError

from .graphs import chain, edit

MODELS = {"gdino": "groundingdino_swint_ogc.pth", "sam": "sam_vit_h_4b8939.pth", "clip": "ViT-L-14.pt"}
CKPT = "instruct-pix2pix-00-22000.safetensors"
PHOTO = "street.png"
INSTRUCTION = "make the left car purple"
PWNED = "grounded_ip2p_pickle_ran"  # a file the malicious pickles would create


class Pwned:
    """Unpickling this would create PWNED in the current folder: a loader must never unpickle it."""

    def __reduce__(self):
        return (open, (PWNED, "w"))


# --- the server's files ------------------------------------------------------------------------


def write_photos(input_dir: Path) -> None:
    from PIL import Image

    street = Image.new("RGB", (96, 64), (90, 140, 200))
    for x0, colour in ((6, (200, 30, 30)), (38, (30, 160, 40)), (70, (220, 200, 40))):
        street.paste(colour, (x0, 30, x0 + 20, 50))
    street.save(input_dir / PHOTO)
    Image.new("RGB", (1, 1), (10, 20, 30)).save(input_dir / "one_pixel.png")
    Image.new("RGB", (7, 9), (10, 20, 30)).save(input_dir / "seven_by_nine.png")
    Image.new("I;16", (64, 48), 30000).save(input_dir / "sixteen_bit.png")
    Image.new("CMYK", (64, 48), (10, 200, 30, 0)).save(input_dir / "cmyk.jpg")
    Image.new("P", (64, 48), 3).save(input_dir / "palette.png")
    Image.new("LA", (64, 48), (128, 100)).save(input_dir / "gray_alpha.png")
    buffer = io.BytesIO()
    street.save(buffer, "PNG")
    (input_dir / "truncated.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (input_dir / "not_an_image.png").write_bytes(b"this is text, not a PNG\n" * 10)
    # a decompression bomb: a tiny file that claims 40000 x 40000 pixels
    Image.new("1", (40000, 40000)).save(input_dir / "bomb.png", optimize=True)


def write_hostile_models(models: Path) -> None:
    sams, gdino, clip = models / "sams", models / "grounding-dino", models / "clip_filter"
    (sams / "text_file.pth").write_text("not a model\n")
    real = (sams / MODELS["sam"]).read_bytes()
    (sams / "truncated.pth").write_bytes(real[: len(real) // 3])
    with open(sams / "pickle_raw.pth", "wb") as f:
        pickle.dump({"model": Pwned()}, f)
    with zipfile.ZipFile(sams / "pickle_zip.pth", "w") as z:  # torch.save's zip layout, a bad pickle in it
        z.writestr("archive/data.pkl", pickle.dumps({"model": Pwned()}))
        z.writestr("archive/version", "3\n")
    (gdino / "sam_in_gdino.pth").write_bytes(real)  # the wrong kind for the loader
    (clip / "sam_in_clip.pth").write_bytes(real)


# --- prompts ---------------------------------------------------------------------------------------


def mask_prompt(image=PHOTO, instruction=None, run: int = 0, **options) -> dict:
    """The chain to a saved mask. ``run`` changes the instruction's trailing blanks, which the
    analysis ignores, so that ComfyUI runs it again instead of answering from its cache."""
    prompt = chain(
        MODELS, image, (INSTRUCTION if instruction is None else instruction) + " " * run, box_threshold=0.0, **options
    )
    prompt["as_image"] = {"class_type": "MaskToImage", "inputs": {"mask": ["mask", 0]}}
    prompt["save"] = {"class_type": "SaveImage", "inputs": {"images": ["as_image", 0], "filename_prefix": "mask"}}
    return prompt


def edit_prompt(run: int = 0, steps: int = 2, **sampler) -> dict:
    """The chain into IP2P Blended Sampler (graphs.edit), saving the mask and the decoded edit;
    ``sampler``: IP2P Blended Sampler inputs to change."""
    prompt = edit(MODELS, PHOTO, CKPT, steps=steps, instruction=INSTRUCTION + " " * run, box_threshold=0.0)
    prompt["out"]["inputs"].update(sampler)
    prompt["as_image"] = {"class_type": "MaskToImage", "inputs": {"mask": ["mask", 0]}}
    prompt["save"] = {"class_type": "SaveImage", "inputs": {"images": ["as_image", 0], "filename_prefix": "mask"}}
    prompt["decode"] = {"class_type": "VAEDecode", "inputs": {"samples": ["out", 0], "vae": ["ckpt", 2]}}
    prompt["save_edit"] = {"class_type": "SaveImage", "inputs": {"images": ["decode", 0], "filename_prefix": "edit"}}
    return prompt


@dataclass
class Outcome:
    kind: str  # refused | failed | interrupted | ok
    text: str = ""
    images: list[bytes] = field(default_factory=list)  # pixel bytes of each saved image
    seconds: float = 0.0


def submit(server, prompt: dict, timeout: float = 300) -> Outcome:
    started = time.monotonic()
    try:
        answer = server.client.queue(prompt, "reliability")
    except ServerError as e:
        if e.status != 400:
            raise
        return Outcome("refused", e.body, seconds=time.monotonic() - started)
    if answer.get("node_errors"):  # queued for the outputs that validated only: still a refusal
        server.client.wait(answer["prompt_id"], timeout)
        return Outcome("refused", json.dumps(answer["node_errors"]), seconds=time.monotonic() - started)
    entry = server.client.wait(answer["prompt_id"], timeout)
    return outcome_of(server, entry, started)


def pixels(png: bytes) -> bytes:
    """An output image's pixel bytes (the file also holds the prompt, which differs run to run)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        return im.mode.encode() + repr(im.size).encode() + im.tobytes()


def outcome_of(server, entry: dict, started: float) -> Outcome:
    status = entry["status"]
    seconds = time.monotonic() - started
    messages = dict((kind, data) for kind, data in status.get("messages", []))
    if "execution_interrupted" in messages:
        return Outcome("interrupted", json.dumps(messages["execution_interrupted"]), seconds=seconds)
    if status.get("status_str") != "success":
        return Outcome("failed", json.dumps(messages.get("execution_error", messages)), seconds=seconds)
    images = [
        pixels(server.client.view(item))
        for node in entry.get("outputs", {}).values()
        for item in node.get("images", [])
        if item.get("type") == "output"
    ]
    return Outcome("ok", images=images, seconds=seconds)


# --- cancels ---------------------------------------------------------------------------------------


def write_big_photo(input_dir: Path, side: int) -> None:
    """`big.png`: a noise photo of side x side px, the largest a cancel is tried on."""
    from PIL import Image

    Image.effect_noise((side, side), 60).convert("RGB").save(input_dir / "big.png")


def cancel_after(server, prompt: dict, node_type: str, timeout: float = 300) -> Outcome:
    """Queue ``prompt``, send /interrupt once the node of ``node_type`` is running, and return
    the outcome with ``seconds`` = the time from the interrupt to the end of the run."""
    import threading

    from grounded_ip2p.headless.comfy_session import ServerEvents

    wanted = {k for k, n in prompt.items() if n["class_type"] == node_type}
    running = threading.Event()

    def on_event(kind, data):
        if kind == "executing" and str(data.get("node")) in wanted:
            running.set()

    with ServerEvents(server.url, "reliability-cancel", on_event):
        answer = server.client.queue(prompt, "reliability-cancel")
        assert running.wait(timeout), f"{node_type} never started"
        time.sleep(0.3)  # inside the node's work
        sent = time.monotonic()
        server.client.post("/interrupt", {})
        entry = server.client.wait(answer["prompt_id"], timeout)
    outcome = outcome_of(server, entry, sent)
    outcome.seconds = time.monotonic() - sent
    return outcome


CANCELS = [
    ("GroundedIP2P_GroundingDINODetect", lambda run: mask_prompt(image="big.png", run=run)),
    ("GroundedIP2P_ClipFilter", lambda run: mask_prompt(image="big.png", run=run)),
    ("GroundedIP2P_SAMMask", lambda run: mask_prompt(image="big.png", run=run)),
    ("GroundedIP2P_BlendedSampler", lambda run: edit_prompt(run=run, steps=200)),
]


def bench_server(prefix: str):
    """A ComfyServer for a bench: the pack, the test models and the photos in a fresh folder under
    ``$COMFYUI_PATH``'s ComfyUI (exits saying why without one). Use it as a context manager."""
    import tempfile

    from .browser_server import ComfyServer, prepare_base
    from .comfy_harness import comfy_path_or_none

    comfy_path = comfy_path_or_none()
    if comfy_path is None:
        raise SystemExit("set COMFYUI_PATH to a ComfyUI checkout")
    base = Path(tempfile.mkdtemp(prefix=prefix))
    workflow = json.loads(
        (Path(__file__).resolve().parents[1] / "example_workflows" / "grounded_edit.json").read_text()
    )
    prepare_base(base, [workflow], comfy_path)
    write_photos(base / "input")
    return ComfyServer(comfy_path, base)
