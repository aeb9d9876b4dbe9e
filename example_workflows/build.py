"""Regenerates the grounded example workflows (UI format, what ComfyUI saves and users share).

    python example_workflows/build.py

Writing them from code keeps node ids, links and widget orders consistent; the tests convert
and run every workflow in this folder inside ComfyUI. Model names are the ones users have.
"""

from __future__ import annotations

import json
from pathlib import Path

from grounded_ip2p.headless.model_catalog import LOADERS as MODEL_LOADERS
from grounded_ip2p.headless.model_catalog import catalog_entry

HERE = Path(__file__).resolve().parent
IP2P = "instruct-pix2pix-00-22000.safetensors"
GDINO = "groundingdino_swint_ogc.pth"
SAM = "sam_vit_h_4b8939.pth"
CLIP = "ViT-L-14.pt"
CAR_PHOTO = (
    "Load your own photo first: a street or parking photo with two or more cars side by side, "
    "the one to recolour on the left (the workflow's example.png is a placeholder name)."
)


class Workflow:
    def __init__(self, title: str):
        self.title, self.nodes, self.links = title, {}, []

    def node(self, id, type, pos, widgets=(), inputs=(), outputs=(), title=None, size=(320, 130), widget_inputs=()):
        """inputs/outputs: (name, type) sockets; widget_inputs: widgets turned into sockets."""
        assert id not in self.nodes, f"node id {id} used twice"
        n = {
            "id": id,
            "type": type,
            "pos": list(pos),
            "size": list(size),
            "flags": {},
            "order": len(self.nodes),
            "mode": 0,
            "inputs": [{"name": a, "type": t, "link": None} for a, t in inputs],
            "outputs": [{"name": a, "type": t, "links": [], "slot_index": i} for i, (a, t) in enumerate(outputs)],
            "properties": {"Node name for S&R": type},
            "widgets_values": list(widgets),
        }
        n["inputs"] += [{"name": a, "type": t, "widget": {"name": a}, "link": None} for a, t in widget_inputs]
        if title:
            n["title"] = title
        self.nodes[id] = n

    def note(self, id, pos, text, size=(440, 260)):
        assert id not in self.nodes, f"node id {id} used twice"
        self.nodes[id] = {
            "id": id,
            "type": "Note",
            "pos": list(pos),
            "size": list(size),
            "flags": {},
            "order": len(self.nodes),
            "mode": 0,
            "inputs": [],
            "outputs": [],
            "properties": {},
            "widgets_values": [text],
            "title": "About this workflow",
            "color": "#432",
            "bgcolor": "#653",
        }

    def link(self, src, slot, dst, name):
        s, d = self.nodes[src], self.nodes[dst]
        index = next(i for i, x in enumerate(d["inputs"]) if x["name"] == name)
        link_id = max((link[0] for link in self.links), default=0) + 1
        s["outputs"][slot]["links"].append(link_id)
        d["inputs"][index]["link"] = link_id
        self.links.append([link_id, src, slot, dst, index, s["outputs"][slot]["type"]])

    def save(self, name: str) -> Path:
        for n in self.nodes.values():
            models = model_metadata(n)
            if models:
                n["properties"]["models"] = models
        data = {
            "last_node_id": max(self.nodes),
            "last_link_id": max(link[0] for link in self.links),
            "nodes": list(self.nodes.values()),
            "links": self.links,
            "groups": [],
            "config": {},
            "extra": {"title": self.title, "ds": {"scale": 0.75, "offset": [0, 0]}},
            "version": 0.4,
        }
        path = HERE / f"{name}.json"
        path.write_text(json.dumps(data, indent=1) + "\n")
        return path


def model_metadata(node: dict) -> list[dict]:
    """ComfyUI's model metadata for a loader node (``properties.models``: name, url, directory):
    the frontend's missing-models dialog lists each file the graph lacks with where to get it."""
    models = []
    for index, folder, _ in MODEL_LOADERS.get(node["type"], ()):
        name = node["widgets_values"][index]
        entry = catalog_entry(name, folder)
        if entry is not None:
            models.append({"name": name, "url": entry.url, "directory": folder})
    return models


def show_text(wf: Workflow, id: int, pos, source: tuple[int, int], title: str, size=(340, 130)) -> None:
    """A Preview Any node showing a text output in the graph (a node's info: what it decided)."""
    wf.node(id, "PreviewAny", pos, inputs=[("source", "*")], title=title, size=size)
    wf.link(*source, id, "source")


def editor(
    wf: Workflow,
    image_node: int,
    mask_node: tuple[int, int] | None,
    text_from: tuple[int, int] | None,
    instruction: str = "",
    x: int = 1500,
    seed: int = 42,
) -> None:
    """Checkpoint, the two text encoders, IP2P Blended Sampler, decode and save (ids 20-26)."""
    wf.node(
        20, "CheckpointLoaderSimple", (x, 40), [IP2P], outputs=[("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")]
    )
    wf.node(
        21,
        "CLIPTextEncode",
        (x, 220),
        [instruction],
        inputs=[("clip", "CLIP")],
        outputs=[("CONDITIONING", "CONDITIONING")],
        title="Instruction",
        widget_inputs=[("text", "STRING")] if text_from else (),
    )
    wf.node(
        22,
        "CLIPTextEncode",
        (x, 400),
        [""],
        inputs=[("clip", "CLIP")],
        outputs=[("CONDITIONING", "CONDITIONING")],
        title="Negative (empty)",
    )
    wf.node(
        23,
        "GroundedIP2P_BlendedSampler",
        (x + 380, 40),
        [seed, "fixed", 20, 7.5, 1.5, "euler_ancestral", "normal", 100, 1, "inversion"],
        inputs=[
            ("model", "MODEL"),
            ("positive", "CONDITIONING"),
            ("negative", "CONDITIONING"),
            ("vae", "VAE"),
            ("image", "IMAGE"),
            ("mask", "MASK"),
        ],
        outputs=[("LATENT", "LATENT"), ("info", "STRING")],
        size=(340, 380),
    )
    wf.node(
        24,
        "VAEDecode",
        (x + 760, 40),
        inputs=[("samples", "LATENT"), ("vae", "VAE")],
        outputs=[("IMAGE", "IMAGE")],
        size=(220, 60),
    )
    wf.node(25, "SaveImage", (x + 760, 160), ["grounded-ip2p"], inputs=[("images", "IMAGE")], size=(400, 420))
    wf.link(20, 1, 21, "clip")
    wf.link(20, 1, 22, "clip")
    if text_from:
        wf.link(*text_from, 21, "text")
    for slot, dst, name in ((0, 23, "model"), (2, 23, "vae"), (2, 24, "vae")):
        wf.link(20, slot, dst, name)
    wf.link(21, 0, 23, "positive")
    wf.link(22, 0, 23, "negative")
    wf.link(image_node, 0, 23, "image")
    if mask_node:
        wf.link(*mask_node, 23, "mask")
    wf.link(23, 0, 24, "samples")
    wf.link(24, 0, 25, "images")
    show_text(wf, 26, (x + 380, 450), (23, 1), "Sampler info (what was restored)", size=(340, 140))


def photo_and_grounding_loaders(wf: Workflow) -> None:
    """LoadImage (1) and the three grounding loaders (2-4), down the left edge."""
    wf.node(
        1,
        "LoadImage",
        (40, 420),
        ["example.png", "image"],
        outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")],
        size=(320, 360),
    )
    wf.node(
        2,
        "GroundedIP2P_GroundingDINOLoader",
        (40, 40),
        [GDINO, "auto"],
        outputs=[("grounding_dino", "GIP2P_GROUNDING_DINO")],
        size=(320, 90),
    )
    wf.node(
        3, "GroundedIP2P_ClipFilterLoader", (40, 160), [CLIP, "auto"], outputs=[("clip", "GIP2P_CLIP")], size=(320, 90)
    )
    wf.node(4, "GroundedIP2P_SAMLoader", (40, 280), [SAM, "auto"], outputs=[("sam", "GIP2P_SAM")], size=(320, 90))


def grounding_chain(wf: Workflow, instruction: str, preview: bool = True, image: tuple[int, int] = (1, 0)) -> None:
    """LoadImage and the loaders (1-4), Noun Phrase Extract (5), Detect (6), CLIP Filter (7),
    Select Boxes (8), SAM Mask (9), and optionally Preview Boxes (10) and the scores (11).

    ``image``: the output the detector, the filter, SAM and the preview look at (default the
    photo itself; a scaled copy of it when the edit model works on a scaled image)."""
    photo_and_grounding_loaders(wf)
    wf.node(
        5,
        "GroundedIP2P_NounPhraseExtract",
        (400, 40),
        [instruction, "guided"],
        outputs=[("phrases", "GIP2P_PHRASES"), ("target", "STRING"), ("simplified", "STRING"), ("info", "STRING")],
        size=(340, 200),
    )
    wf.node(
        6,
        "GroundedIP2P_GroundingDINODetect",
        (400, 300),
        [0.3, 0.25, ""],
        inputs=[("grounding_dino", "GIP2P_GROUNDING_DINO"), ("image", "IMAGE"), ("phrases", "GIP2P_PHRASES")],
        outputs=[("boxes", "GIP2P_BOXES"), ("info", "STRING")],
        size=(340, 150),
    )
    wf.node(
        7,
        "GroundedIP2P_ClipFilter",
        (780, 40),
        ["prefer analysed target"],
        inputs=[("clip", "GIP2P_CLIP"), ("image", "IMAGE"), ("boxes", "GIP2P_BOXES")],
        outputs=[("boxes", "GIP2P_BOXES"), ("phrase", "STRING"), ("scores", "STRING")],
        size=(320, 120),
    )
    wf.node(
        8,
        "GroundedIP2P_SelectBoxes",
        (780, 200),
        [True],
        inputs=[("boxes", "GIP2P_BOXES")],
        outputs=[("boxes", "GIP2P_BOXES"), ("info", "STRING")],
        size=(320, 80),
    )
    wf.node(
        9,
        "GroundedIP2P_SAMMask",
        (1140, 40),
        ["union", 11, 0.0, "edit whole image"],
        inputs=[("sam", "GIP2P_SAM"), ("image", "IMAGE"), ("boxes", "GIP2P_BOXES")],
        outputs=[("mask", "MASK"), ("info", "STRING")],
        size=(320, 200),
    )
    wf.link(2, 0, 6, "grounding_dino")
    wf.link(*image, 6, "image")
    wf.link(5, 0, 6, "phrases")
    wf.link(3, 0, 7, "clip")
    wf.link(*image, 7, "image")
    wf.link(6, 0, 7, "boxes")
    wf.link(7, 0, 8, "boxes")
    wf.link(4, 0, 9, "sam")
    wf.link(*image, 9, "image")
    wf.link(8, 0, 9, "boxes")
    if preview:
        wf.node(
            10,
            "GroundedIP2P_PreviewBoxes",
            (780, 340),
            [0.45],
            inputs=[("image", "IMAGE"), ("boxes", "GIP2P_BOXES"), ("mask", "MASK")],
            outputs=[("image", "IMAGE")],
            size=(340, 380),
        )
        wf.link(*image, 10, "image")
        wf.link(8, 0, 10, "boxes")
        wf.link(9, 0, 10, "mask")
        wf.node(11, "PreviewAny", (1140, 300), inputs=[("source", "*")], title="CLIP scores", size=(320, 160))
        wf.link(7, 2, 11, "source")
        show_text(wf, 18, (780, 750), (9, 1), "Mask info (what was segmented, any fallback)", size=(340, 120))


def grounded_edit() -> Path:
    wf = Workflow("Grounded InstructPix2Pix: instruction -> mask -> blended edit")
    grounding_chain(wf, "make the left car purple")
    editor(wf, image_node=1, mask_node=(9, 0), text_from=(5, 2))
    wf.note(
        30,
        (40, 820),
        (
            f"{CAR_PHOTO}\n\n"
            "The pack's main job: type an instruction, get only that object edited.\n\n"
            "Noun Phrase Extract reads the instruction (target 'car', direction 'left', simplified "
            "instruction 'make the car purple'); GroundingDINO Detect finds every candidate in one pass; "
            "CLIP Filter keeps the phrase really in the image; Select Boxes keeps the left car; SAM Mask "
            "segments it; IP2P Blended Sampler edits and restores everything outside the mask in the last "
            "~10% of the steps.\n\n"
            "Models (put them in ComfyUI/models/...):\n"
            f"- checkpoints/{IP2P}\n"
            f"- grounding-dino/{GDINO} + GroundingDINO_SwinT_OGC.cfg.py\n"
            f"- sams/{SAM} (vit_l / vit_b work too)\n"
            f"- clip_filter/{CLIP}\n"
            "`grounded-ip2p models --download` fetches the missing ones.\n\n"
            "Nothing detected? SAM Mask's no_detection decides: edit the whole image, or keep it."
        ),
    )
    return wf.save("grounded_edit")


def quick_grounded_edit() -> Path:
    """The common case in six nodes: Grounded Mask instead of the five grounding nodes."""
    wf = Workflow("Quick grounded edit: Grounded Mask (one node) -> IP2P Blended Sampler")
    photo_and_grounding_loaders(wf)
    wf.node(
        5,
        "GroundedIP2P_GroundedMask",
        (400, 40),
        ["make the left car purple", 0.3, 11, "edit whole image"],
        inputs=[
            ("grounding_dino", "GIP2P_GROUNDING_DINO"),
            ("sam", "GIP2P_SAM"),
            ("image", "IMAGE"),
            ("clip", "GIP2P_CLIP"),
        ],
        outputs=[
            ("mask", "MASK"),
            ("preview", "IMAGE"),
            ("simplified", "STRING"),
            ("info", "STRING"),
            ("boxes", "GIP2P_BOXES"),
        ],
        size=(420, 640),
    )
    wf.link(2, 0, 5, "grounding_dino")
    wf.link(4, 0, 5, "sam")
    wf.link(1, 0, 5, "image")
    wf.link(3, 0, 5, "clip")
    editor(wf, image_node=1, mask_node=(5, 0), text_from=(5, 2), x=860)
    wf.note(
        30,
        (40, 820),
        (
            f"{CAR_PHOTO}\n\n"
            "The shortest grounded edit: Grounded Mask turns the instruction into the mask of what it is about "
            "(it runs Noun Phrase Extract, GroundingDINO Detect, CLIP Filter, Select Boxes and SAM Mask with "
            "their defaults, and shows the boxes, the mask and what it understood on the node). IP2P Blended "
            "Sampler edits with the simplified instruction and keeps everything outside the mask. The "
            "grounded_edit workflow has the same chain as separate nodes, to inspect or change each step.\n\n"
            "Models (put them in ComfyUI/models/...):\n"
            f"- checkpoints/{IP2P}\n"
            f"- grounding-dino/{GDINO} + GroundingDINO_SwinT_OGC.cfg.py\n"
            f"- sams/{SAM} (vit_l / vit_b work too)\n"
            f"- clip_filter/{CLIP}\n"
            "`grounded-ip2p models --download` fetches the missing ones."
        ),
    )
    return wf.save("quick_grounded_edit")


def relative_edit() -> Path:
    wf = Workflow("Relative edit: 'the lamp right of the bed', with the box preview")
    grounding_chain(wf, "change the lamp right of the bed to a candle")
    editor(wf, image_node=1, mask_node=(9, 0), text_from=(5, 2))
    wf.note(
        30,
        (40, 820),
        (
            "Load your own photo first: a bedroom with a bed and a lamp on the bed's right (and, to see the "
            "selection at work, another lamp elsewhere).\n\n"
            "A relative instruction: only the lamp on the bed's right is edited, never the bed or another "
            "lamp.\n\n"
            "Noun Phrase Extract finds the target 'lamp', the anchor 'bed' and the direction 'right'; "
            "GroundingDINO Detect looks for both in one pass; Select Boxes keeps the lamp box nearest the "
            "bed on its right and rejects lamps on the wrong side (then nothing is selected and SAM Mask's "
            "no_detection fallback applies). Preview Boxes shows the chosen box and the mask in red.\n\n"
            "Try also: 'make the left car purple', 'make the second car from the left red', 'turn all the "
            "cups blue' (plural: every cup).\n\n"
            "Models: as in grounded_edit (checkpoints/instruct-pix2pix-00-22000.safetensors, "
            "grounding-dino/groundingdino_swint_ogc.pth + GroundingDINO_SwinT_OGC.cfg.py, "
            "sams/sam_vit_h_4b8939.pth, clip_filter/ViT-L-14.pt)."
        ),
    )
    return wf.save("relative_edit")


def add_object() -> Path:
    wf = Workflow("Add an object next to another one")
    grounding_chain(wf, "add a vase to the left of the lamp")
    editor(wf, image_node=1, mask_node=(9, 0), text_from=(5, 2))
    wf.nodes[9]["widgets_values"] = ["union", 11, 8.0, "edit whole image"]
    wf.note(
        30,
        (40, 820),
        (
            "Load your own photo first: a room with a lamp and some free space to the lamp's left.\n\n"
            "Adding an object needs a mask where nothing is yet. Noun Phrase Extract reads kind 'add', the "
            "anchor 'lamp' and the side 'left'; Select Boxes puts a rectangle beside the lamp's box (as large "
            "as the lamp: GGIP2P's trained size model is not public), and SAM Mask fills it as it is "
            "(feathered by 8 px here so the new object blends in). Without a side ('put a hat on the dog') "
            "the rectangle is the anchor's box; without an anchor ('add a sunset at the top') it is that half "
            "of the image.\n\n"
            "Models: as in grounded_edit."
        ),
    )
    return wf.save("add_object")


def with_core_nodes() -> Path:
    """The grounded edit beside ComfyUI's native InstructPix2Pix path, stitched and upscaled."""
    wf = Workflow("Grounded edit beside ComfyUI's native InstructPix2Pix, then upscaled")
    grounding_chain(wf, "make the left car purple", preview=False)
    editor(wf, image_node=1, mask_node=(9, 0), text_from=(5, 2))
    del wf.nodes[25]  # the stitched comparison is saved instead
    wf.nodes[24]["outputs"][0]["links"] = []
    wf.links = [link for link in wf.links if link[3] != 25]
    x, y = 1500, 640
    wf.node(
        40,
        "InstructPixToPixConditioning",
        (x, y),
        inputs=[("positive", "CONDITIONING"), ("negative", "CONDITIONING"), ("vae", "VAE"), ("pixels", "IMAGE")],
        outputs=[("positive", "CONDITIONING"), ("negative", "CONDITIONING"), ("latent", "LATENT")],
        size=(320, 110),
    )
    wf.node(
        41,
        "DualCFGGuider",
        (x + 380, y),
        [7.5, 1.5, "regular"],
        inputs=[("model", "MODEL"), ("cond1", "CONDITIONING"), ("cond2", "CONDITIONING"), ("negative", "CONDITIONING")],
        outputs=[("GUIDER", "GUIDER")],
        size=(320, 170),
    )
    wf.node(42, "RandomNoise", (x, y + 160), [42, "fixed"], outputs=[("NOISE", "NOISE")], size=(320, 90))
    wf.node(43, "KSamplerSelect", (x, y + 280), ["euler_ancestral"], outputs=[("SAMPLER", "SAMPLER")], size=(320, 60))
    wf.node(
        44,
        "BasicScheduler",
        (x, y + 370),
        ["normal", 20, 1.0],
        inputs=[("model", "MODEL")],
        outputs=[("SIGMAS", "SIGMAS")],
        size=(320, 110),
    )
    wf.node(
        45,
        "SamplerCustomAdvanced",
        (x + 380, y + 220),
        inputs=[
            ("noise", "NOISE"),
            ("guider", "GUIDER"),
            ("sampler", "SAMPLER"),
            ("sigmas", "SIGMAS"),
            ("latent_image", "LATENT"),
        ],
        outputs=[("output", "LATENT"), ("denoised_output", "LATENT")],
        size=(300, 110),
    )
    wf.node(
        46,
        "VAEDecode",
        (x + 760, y + 220),
        inputs=[("samples", "LATENT"), ("vae", "VAE")],
        outputs=[("IMAGE", "IMAGE")],
        size=(220, 60),
    )
    wf.node(
        47,
        "ImageStitch",
        (x + 1040, 40),
        ["right", True, 0, "white"],
        inputs=[("image1", "IMAGE"), ("image2", "IMAGE")],
        outputs=[("IMAGE", "IMAGE")],
        size=(300, 150),
        title="Left: grounded edit | right: native IP2P",
    )
    wf.node(
        48,
        "ImageScaleBy",
        (x + 1040, 240),
        ["lanczos", 2.0],
        inputs=[("image", "IMAGE")],
        outputs=[("IMAGE", "IMAGE")],
        size=(300, 90),
    )
    wf.node(
        49, "SaveImage", (x + 1040, 380), ["grounded-ip2p-vs-native"], inputs=[("images", "IMAGE")], size=(400, 420)
    )
    wf.link(21, 0, 40, "positive")
    wf.link(22, 0, 40, "negative")
    wf.link(20, 2, 40, "vae")
    wf.link(1, 0, 40, "pixels")
    wf.link(20, 0, 41, "model")
    wf.link(40, 0, 41, "cond1")
    wf.link(40, 1, 41, "cond2")
    wf.link(22, 0, 41, "negative")
    wf.link(20, 0, 44, "model")
    for src, name in ((42, "noise"), (41, "guider"), (43, "sampler"), (44, "sigmas")):
        wf.link(src, 0, 45, name)
    wf.link(40, 2, 45, "latent_image")
    wf.link(45, 0, 46, "samples")
    wf.link(20, 2, 46, "vae")
    wf.link(24, 0, 47, "image1")
    wf.link(46, 0, 47, "image2")
    wf.link(47, 0, 48, "image")
    wf.link(48, 0, 49, "images")
    wf.note(
        30,
        (40, 820),
        (
            f"{CAR_PHOTO}\n\n"
            "How the pack fits into a bigger graph. The same instruction, seed and scales go through the "
            "pack's grounded edit (top) and ComfyUI's own InstructPix2Pix path (InstructPixToPixConditioning "
            "+ DualCFGGuider + SamplerCustomAdvanced, bottom). Image Stitch puts them side by side, Upscale "
            "Image By doubles the size, Save Image writes the comparison. Outside the mask the left half keeps "
            "the photo; the native edit changes the whole image. Without a mask, IP2P Blended Sampler gives "
            "exactly the native result.\n\n"
            "Models: as in grounded_edit."
        ),
    )
    return wf.save("grounded_vs_native_upscaled")


# --- other edit models: the grounding chain and mask, Restore Background on the model, paste-back -----------

# The repackaged files ComfyUI's own templates load (Comfy-Org/workflow_templates:
# templates/image_qwen_image_edit_2511.json, templates/flux_kontext_dev_basic.json; CosXL Edit from
# comfyanonymous/ComfyUI_examples edit_models/). model_catalog.py has their URLs.
QWEN_EDIT = "qwen_image_edit_2511_bf16.safetensors"
QWEN_TE = "qwen_2.5_vl_7b_fp8_scaled.safetensors"
QWEN_VAE = "qwen_image_vae.safetensors"
KONTEXT = "flux1-dev-kontext_fp8_scaled.safetensors"
CLIP_L = "clip_l.safetensors"
T5XXL = "t5xxl_fp8_e4m3fn_scaled.safetensors"
FLUX_VAE = "ae.safetensors"
COSXL_EDIT = "cosxl_edit.safetensors"
EDIT_INSTRUCTION = "make the left car purple"
GROUNDING_MODELS = (
    "Grounding models (as in grounded_edit): grounding-dino/groundingdino_swint_ogc.pth + "
    "GroundingDINO_SwinT_OGC.cfg.py, sams/sam_vit_h_4b8939.pth, clip_filter/ViT-L-14.pt.\n"
    "`grounded-ip2p models --workflow {name}` lists what is missing; `--download` fetches it."
)
RESTORE = [0.9, 1.0, "noised"]  # start_percent, end_percent, background: the node's defaults


def scaled_grounding(wf: Workflow, scale_type: str, widgets=()) -> None:
    """The photo scaled for the edit model (12), and the grounding chain on that scaled image, so
    the mask, the source latent, the latent to sample and the paste-back all share one size."""
    wf.node(
        12,
        scale_type,
        (40, 810),
        list(widgets),
        inputs=[("image", "IMAGE")],
        outputs=[("IMAGE", "IMAGE")],
        size=(320, 82 if widgets else 50),
    )
    grounding_chain(wf, EDIT_INSTRUCTION, image=(12, 0))
    wf.link(1, 0, 12, "image")


def restore_background(wf: Workflow, id: int, pos, model: tuple[int, int], source: tuple[int, int]) -> None:
    """The pack's Restore Background on the edit model, with the SAM mask (9)."""
    wf.node(
        id,
        "GroundedIP2P_RestoreBackground",
        pos,
        RESTORE,
        inputs=[("model", "MODEL"), ("source", "LATENT"), ("mask", "MASK")],
        outputs=[("MODEL", "MODEL")],
        size=(320, 170),
    )
    wf.link(*model, id, "model")
    wf.link(*source, id, "source")
    wf.link(9, 0, id, "mask")


def paste_back(wf: Workflow, samples: tuple[int, int], vae: tuple[int, int], x: int, prefix: str) -> None:
    """Decode (40) and paste the edit onto the scaled photo (41) through the SAM mask grown by 16 px
    and blurred (13-16: a soft seam outside the edit), then save (42). ImageCompositeMasked resizes
    the mask to its `source` (the decoded edit), and resize_source fits the edit to the photo (the
    VAE crops sizes that are not a multiple of 8)."""
    wf.node(
        13,
        "GrowMask",
        (1140, 500),
        [16, True],
        inputs=[("mask", "MASK")],
        outputs=[("MASK", "MASK")],
        size=(320, 82),
        title="Paste mask: grow",
    )
    wf.node(14, "MaskToImage", (1140, 620), inputs=[("mask", "MASK")], outputs=[("IMAGE", "IMAGE")], size=(320, 30))
    wf.node(
        15,
        "ImageBlur",
        (1140, 690),
        [16, 6.0],
        inputs=[("image", "IMAGE")],
        outputs=[("IMAGE", "IMAGE")],
        size=(320, 82),
        title="Paste mask: feather",
    )
    wf.node(
        16, "ImageToMask", (1140, 810), ["red"], inputs=[("image", "IMAGE")], outputs=[("MASK", "MASK")], size=(320, 60)
    )
    wf.link(9, 0, 13, "mask")
    wf.link(13, 0, 14, "mask")
    wf.link(14, 0, 15, "image")
    wf.link(15, 0, 16, "image")
    wf.node(
        40,
        "VAEDecode",
        (x, 40),
        inputs=[("samples", "LATENT"), ("vae", "VAE")],
        outputs=[("IMAGE", "IMAGE")],
        size=(220, 50),
    )
    wf.node(
        41,
        "ImageCompositeMasked",
        (x, 130),
        [0, 0, True],
        inputs=[("destination", "IMAGE"), ("source", "IMAGE"), ("mask", "MASK")],
        outputs=[("IMAGE", "IMAGE")],
        size=(320, 150),
        title="Paste the edit onto the photo",
    )
    wf.node(42, "SaveImage", (x, 320), [prefix], inputs=[("images", "IMAGE")], size=(400, 420))
    wf.link(*samples, 40, "samples")
    wf.link(*vae, 40, "vae")
    wf.link(12, 0, 41, "destination")
    wf.link(40, 0, 41, "source")
    wf.link(16, 0, 41, "mask")
    wf.link(41, 0, 42, "images")


def qwen_image_edit() -> Path:
    wf = Workflow("Grounded Qwen-Image-Edit 2511: instruction -> mask -> Restore Background -> KSampler")
    scaled_grounding(wf, "ImageScaleToTotalPixels", ["lanczos", 1.0])
    x = 1500
    wf.node(20, "UNETLoader", (x, 40), [QWEN_EDIT, "default"], outputs=[("MODEL", "MODEL")], size=(360, 82))
    wf.node(21, "CLIPLoader", (x, 160), [QWEN_TE, "qwen_image", "default"], outputs=[("CLIP", "CLIP")], size=(360, 106))
    wf.node(22, "VAELoader", (x, 300), [QWEN_VAE], outputs=[("VAE", "VAE")], size=(360, 58))
    wf.node(
        23,
        "ModelSamplingAuraFlow",
        (x + 400, 40),
        [3.1],
        inputs=[("model", "MODEL")],
        outputs=[("MODEL", "MODEL")],
        size=(300, 58),
    )
    wf.node(
        24,
        "CFGNorm",
        (x + 400, 140),
        [1.0],
        inputs=[("model", "MODEL")],
        outputs=[("patched_model", "MODEL")],
        size=(300, 58),
    )
    for id, y, title in ((25, 240, "Instruction (simplified)"), (26, 470, "Negative (empty)")):
        wf.node(
            id,
            "TextEncodeQwenImageEditPlus",
            (x + 400, y),
            [""],
            inputs=[("clip", "CLIP"), ("vae", "VAE"), ("image1", "IMAGE"), ("image2", "IMAGE"), ("image3", "IMAGE")],
            outputs=[("CONDITIONING", "CONDITIONING")],
            title=title,
            size=(340, 190),
            widget_inputs=[("prompt", "STRING")] if id == 25 else (),
        )
        wf.link(21, 0, id, "clip")
        wf.link(22, 0, id, "vae")
        wf.link(12, 0, id, "image1")
    wf.link(5, 2, 25, "prompt")
    wf.node(
        27,
        "VAEEncode",
        (x, 400),
        inputs=[("pixels", "IMAGE"), ("vae", "VAE")],
        outputs=[("LATENT", "LATENT")],
        size=(340, 50),
        title="Source latent (also the latent to sample)",
    )
    wf.link(12, 0, 27, "pixels")
    wf.link(22, 0, 27, "vae")
    wf.link(20, 0, 23, "model")
    wf.link(23, 0, 24, "model")
    restore_background(wf, 28, (x + 780, 40), model=(24, 0), source=(27, 0))
    wf.node(
        29,
        "KSampler",
        (x + 780, 260),
        [42, "fixed", 20, 4.0, "euler", "simple", 1.0],
        inputs=[
            ("model", "MODEL"),
            ("positive", "CONDITIONING"),
            ("negative", "CONDITIONING"),
            ("latent_image", "LATENT"),
        ],
        outputs=[("LATENT", "LATENT")],
        size=(320, 262),
    )
    wf.link(28, 0, 29, "model")
    wf.link(25, 0, 29, "positive")
    wf.link(26, 0, 29, "negative")
    wf.link(27, 0, 29, "latent_image")
    paste_back(wf, samples=(29, 0), vae=(22, 0), x=x + 1140, prefix="grounded-qwen-image-edit")
    wf.note(
        30,
        (40, 940),
        (
            f"{CAR_PHOTO}\n\n"
            "Qwen-Image-Edit 2511 edits the whole ~1 MP image; Restore Background puts the photo back outside "
            "the SAM mask in the last 10% of sampling, and Image Composite Masked pastes the edit onto the "
            "scaled photo through a feathered copy of the mask, so everything outside it is the photo itself.\n\n"
            "Scale Image to Total Pixels (1 MP) comes first: the mask, the source latent (VAE Encode, also "
            "KSampler's latent_image at denoise 1.0) and the paste-back all use that one scaled image. "
            "Noun Phrase Extract's simplified instruction ('make the car purple') is the prompt.\n\n"
            "Models (ComfyUI/models/...; the files ComfyUI's Qwen-Image-Edit 2511 template uses):\n"
            f"- diffusion_models/{QWEN_EDIT}\n"
            f"- text_encoders/{QWEN_TE} (CLIPLoader type qwen_image)\n"
            f"- vae/{QWEN_VAE}\n"
            f"{GROUNDING_MODELS.format(name='grounded_qwen_image_edit')}\n\n"
            "2511 is newer than some ComfyUI releases (ComfyUI's own 2511 template was saved with ComfyUI "
            "0.5.1): update ComfyUI if it does not load. Template settings: 40 steps (20 here), cfg 4, "
            "shift 3.1."
        ),
        size=(700, 340),
    )
    return wf.save("grounded_qwen_image_edit")


def flux_kontext() -> Path:
    wf = Workflow("Grounded Flux.1 Kontext dev: instruction -> mask -> Restore Background -> KSampler")
    scaled_grounding(wf, "FluxKontextImageScale")
    x = 1500
    wf.node(20, "UNETLoader", (x, 40), [KONTEXT, "default"], outputs=[("MODEL", "MODEL")], size=(360, 82))
    wf.node(
        21, "DualCLIPLoader", (x, 160), [CLIP_L, T5XXL, "flux", "default"], outputs=[("CLIP", "CLIP")], size=(360, 130)
    )
    wf.node(22, "VAELoader", (x, 330), [FLUX_VAE], outputs=[("VAE", "VAE")], size=(360, 58))
    wf.node(
        27,
        "VAEEncode",
        (x, 430),
        inputs=[("pixels", "IMAGE"), ("vae", "VAE")],
        outputs=[("LATENT", "LATENT")],
        size=(340, 50),
        title="Source latent (also the latent to sample)",
    )
    wf.node(
        23,
        "CLIPTextEncode",
        (x + 400, 40),
        [""],
        inputs=[("clip", "CLIP")],
        outputs=[("CONDITIONING", "CONDITIONING")],
        title="Instruction (simplified)",
        size=(320, 130),
        widget_inputs=[("text", "STRING")],
    )
    wf.node(
        24,
        "ReferenceLatent",
        (x + 400, 210),
        inputs=[("conditioning", "CONDITIONING"), ("latent", "LATENT")],
        outputs=[("CONDITIONING", "CONDITIONING")],
        size=(320, 50),
    )
    wf.node(
        25,
        "FluxGuidance",
        (x + 400, 300),
        [2.5],
        inputs=[("conditioning", "CONDITIONING")],
        outputs=[("CONDITIONING", "CONDITIONING")],
        size=(320, 58),
    )
    wf.node(
        26,
        "ConditioningZeroOut",
        (x + 400, 400),
        inputs=[("conditioning", "CONDITIONING")],
        outputs=[("CONDITIONING", "CONDITIONING")],
        size=(320, 30),
        title="Negative (zero)",
    )
    wf.link(12, 0, 27, "pixels")
    wf.link(22, 0, 27, "vae")
    wf.link(21, 0, 23, "clip")
    wf.link(5, 2, 23, "text")
    wf.link(23, 0, 24, "conditioning")
    wf.link(27, 0, 24, "latent")
    wf.link(24, 0, 25, "conditioning")
    wf.link(23, 0, 26, "conditioning")
    restore_background(wf, 28, (x + 760, 40), model=(20, 0), source=(27, 0))
    wf.node(
        29,
        "KSampler",
        (x + 760, 260),
        [42, "fixed", 20, 1.0, "euler", "simple", 1.0],
        inputs=[
            ("model", "MODEL"),
            ("positive", "CONDITIONING"),
            ("negative", "CONDITIONING"),
            ("latent_image", "LATENT"),
        ],
        outputs=[("LATENT", "LATENT")],
        size=(320, 262),
    )
    wf.link(28, 0, 29, "model")
    wf.link(25, 0, 29, "positive")
    wf.link(26, 0, 29, "negative")
    wf.link(27, 0, 29, "latent_image")
    paste_back(wf, samples=(29, 0), vae=(22, 0), x=x + 1120, prefix="grounded-flux-kontext")
    wf.note(
        30,
        (40, 940),
        (
            f"{CAR_PHOTO}\n\n"
            "Flux.1 Kontext dev edits the whole image; Restore Background puts the photo back outside the SAM "
            "mask in the last 10% of sampling, and Image Composite Masked pastes the edit onto the scaled "
            "photo through a feathered copy of the mask.\n\n"
            "FluxKontextImageScale comes first (it picks Kontext's nearest preferred size and crops to its "
            "aspect): the mask, the source latent (VAE Encode: Reference Latent, Restore Background's source "
            "and KSampler's latent_image at denoise 1.0) and the paste-back all use that one scaled image. "
            "Guidance is Flux Guidance 2.5 with KSampler cfg 1 and a zeroed negative, as in ComfyUI's "
            "template; the prompt is Noun Phrase Extract's simplified instruction.\n\n"
            "Models (ComfyUI/models/...; the files ComfyUI's Flux Kontext dev template uses):\n"
            f"- diffusion_models/{KONTEXT}\n"
            f"- text_encoders/{CLIP_L} and text_encoders/{T5XXL} (DualCLIPLoader type flux)\n"
            f"- vae/{FLUX_VAE}\n"
            f"{GROUNDING_MODELS.format(name='grounded_flux_kontext')}"
        ),
        size=(700, 340),
    )
    return wf.save("grounded_flux_kontext")


def cosxl_edit() -> Path:
    wf = Workflow("Grounded CosXL Edit: instruction -> mask -> Restore Background -> SamplerCustomAdvanced")
    scaled_grounding(wf, "ImageScaleToTotalPixels", ["lanczos", 1.0])
    x = 1500
    wf.node(
        20,
        "CheckpointLoaderSimple",
        (x, 40),
        [COSXL_EDIT],
        outputs=[("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")],
        size=(360, 98),
    )
    wf.node(
        21,
        "CLIPTextEncode",
        (x, 180),
        [""],
        inputs=[("clip", "CLIP")],
        outputs=[("CONDITIONING", "CONDITIONING")],
        title="Instruction (simplified)",
        size=(360, 130),
        widget_inputs=[("text", "STRING")],
    )
    wf.node(
        22,
        "CLIPTextEncode",
        (x, 350),
        [""],
        inputs=[("clip", "CLIP")],
        outputs=[("CONDITIONING", "CONDITIONING")],
        title="Negative (empty)",
        size=(360, 130),
    )
    wf.node(
        24,
        "VAEEncode",
        (x, 520),
        inputs=[("pixels", "IMAGE"), ("vae", "VAE")],
        outputs=[("LATENT", "LATENT")],
        size=(220, 50),
        title="Source latent",
    )
    wf.node(
        23,
        "InstructPixToPixConditioning",
        (x + 400, 40),
        inputs=[("positive", "CONDITIONING"), ("negative", "CONDITIONING"), ("vae", "VAE"), ("pixels", "IMAGE")],
        outputs=[("positive", "CONDITIONING"), ("negative", "CONDITIONING"), ("latent", "LATENT")],
        size=(320, 110),
    )
    wf.link(20, 1, 21, "clip")
    wf.link(20, 1, 22, "clip")
    wf.link(5, 2, 21, "text")
    wf.link(12, 0, 24, "pixels")
    wf.link(20, 2, 24, "vae")
    wf.link(21, 0, 23, "positive")
    wf.link(22, 0, 23, "negative")
    wf.link(20, 2, 23, "vae")
    wf.link(12, 0, 23, "pixels")
    restore_background(wf, 25, (x + 400, 190), model=(20, 0), source=(24, 0))
    wf.node(
        26,
        "DualCFGGuider",
        (x + 400, 400),
        [5.0, 1.5, "regular"],
        inputs=[("model", "MODEL"), ("cond1", "CONDITIONING"), ("cond2", "CONDITIONING"), ("negative", "CONDITIONING")],
        outputs=[("GUIDER", "GUIDER")],
        size=(320, 130),
    )
    wf.link(25, 0, 26, "model")
    wf.link(23, 0, 26, "cond1")
    wf.link(23, 1, 26, "cond2")
    wf.link(22, 0, 26, "negative")
    wf.node(27, "RandomNoise", (x + 760, 40), [42, "fixed"], outputs=[("NOISE", "NOISE")], size=(320, 82))
    wf.node(28, "KSamplerSelect", (x + 760, 160), ["euler"], outputs=[("SAMPLER", "SAMPLER")], size=(320, 58))
    wf.node(
        29,
        "BasicScheduler",
        (x + 760, 260),
        ["normal", 20, 1.0],
        inputs=[("model", "MODEL")],
        outputs=[("SIGMAS", "SIGMAS")],
        size=(320, 106),
    )
    wf.link(25, 0, 29, "model")
    wf.node(
        31,
        "SamplerCustomAdvanced",
        (x + 760, 410),
        inputs=[
            ("noise", "NOISE"),
            ("guider", "GUIDER"),
            ("sampler", "SAMPLER"),
            ("sigmas", "SIGMAS"),
            ("latent_image", "LATENT"),
        ],
        outputs=[("output", "LATENT"), ("denoised_output", "LATENT")],
        size=(320, 110),
    )
    for src, name in ((27, "noise"), (26, "guider"), (28, "sampler"), (29, "sigmas")):
        wf.link(src, 0, 31, name)
    wf.link(23, 2, 31, "latent_image")
    paste_back(wf, samples=(31, 0), vae=(20, 2), x=x + 1120, prefix="grounded-cosxl-edit")
    wf.note(
        30,
        (40, 940),
        (
            f"{CAR_PHOTO}\n\n"
            "CosXL Edit (Stability's SDXL InstructPix2Pix-style model) through ComfyUI's own nodes: "
            "InstructPixToPixConditioning + DualCFGGuider (text 5.0, image 1.5) + SamplerCustomAdvanced, as "
            "in ComfyUI's CosXL Edit example. Restore Background patches the model, with VAE Encode of the "
            "image as its source, so the photo comes back outside the SAM mask in the last 10% of sampling; "
            "Image Composite Masked pastes the edit onto the photo through a feathered copy of the mask.\n\n"
            "Scale Image to Total Pixels (1 MP, SDXL's size) comes first; the mask, the latents and the "
            "paste-back all use that scaled image.\n\n"
            "Model (ComfyUI/models/...):\n"
            f"- checkpoints/{COSXL_EDIT} (huggingface.co/stabilityai/cosxl: accept its licence there and "
            "download it while logged in; `--download` cannot fetch a gated file)\n"
            f"{GROUNDING_MODELS.format(name='grounded_cosxl_edit')}"
        ),
        size=(700, 340),
    )
    return wf.save("grounded_cosxl_edit")


BUILDERS = [
    quick_grounded_edit,
    grounded_edit,
    relative_edit,
    add_object,
    with_core_nodes,
    qwen_image_edit,
    flux_kontext,
    cosxl_edit,
]
# Workflows without a screenshot from the browser test (GIP2P_UPDATE_SCREENSHOTS=1) get a drawn
# placeholder thumbnail; a screenshot, once taken, is never overwritten here.
PLACEHOLDER_THUMBNAILS = {
    "grounded_qwen_image_edit",
    "grounded_flux_kontext",
    "grounded_cosxl_edit",
    "quick_grounded_edit",
}


def placeholder_thumbnail(path: Path, width: int = 400, height: int = 227) -> Path:
    """A JPEG beside the workflow for ComfyUI's template browser: the graph's nodes and links drawn
    as boxes and lines under the workflow's title (needs Pillow)."""
    from PIL import Image, ImageDraw, ImageFont

    data = json.loads(path.read_text())
    nodes = {n["id"]: n for n in data["nodes"]}
    x0 = min(n["pos"][0] for n in nodes.values())
    y0 = min(n["pos"][1] - 30 for n in nodes.values())
    x1 = max(n["pos"][0] + n["size"][0] for n in nodes.values())
    y1 = max(n["pos"][1] + n["size"][1] for n in nodes.values())
    top, pad = 44, 8
    scale = min((width - 2 * pad) / (x1 - x0), (height - top - pad) / (y1 - y0))
    ox = (width - (x1 - x0) * scale) / 2

    def at(x, y):
        return ox + (x - x0) * scale, top + (y - y0) * scale

    image = Image.new("RGB", (width, height), (32, 32, 36))
    draw = ImageDraw.Draw(image)
    for _, src, _, dst, _, _ in data["links"]:
        (ax, ay), (bx, by) = at(*nodes[src]["pos"]), at(*nodes[dst]["pos"])
        aw = nodes[src]["size"][0] * scale
        draw.line([(ax + aw, ay + 4), (bx, by + 4)], fill=(110, 140, 170), width=1)
    for n in nodes.values():
        (ax, ay), (bx, by) = (
            at(n["pos"][0], n["pos"][1] - 30),
            at(n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1]),
        )
        pack = n["type"].startswith("GroundedIP2P_")
        fill = (101, 85, 51) if n["type"] == "Note" else (58, 86, 64) if pack else (58, 58, 66)
        draw.rectangle([ax, ay, bx, by], fill=fill, outline=(140, 140, 150))
    try:
        font = ImageFont.load_default(size=15)
    except TypeError:  # Pillow < 10.1: the bitmap font
        font = ImageFont.load_default()
    title = data["extra"]["title"]
    head, _, tail = title.partition(":")
    draw.text((pad, 6), head + (":" if tail else ""), fill=(235, 235, 235), font=font)
    draw.text((pad, 24), tail.strip(), fill=(190, 190, 190), font=font)
    out = path.with_suffix(".jpg")
    image.save(out, "JPEG", quality=88, optimize=True)
    return out


if __name__ == "__main__":
    for build in BUILDERS:
        path = build()
        print(path)
        if path.stem in PLACEHOLDER_THUMBNAILS and not path.with_suffix(".jpg").exists():
            print(placeholder_thumbnail(path))
