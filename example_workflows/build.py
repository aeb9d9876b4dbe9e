"""Regenerates the grounded example workflows (UI format, what ComfyUI saves and users share).

    python example_workflows/build.py

Writing them from code keeps node ids, links and widget orders consistent; the tests convert
and run every workflow in this folder inside ComfyUI. Model names are the ones users have.
"""
from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
IP2P = "instruct-pix2pix-00-22000.safetensors"
GDINO = "groundingdino_swint_ogc.pth"
SAM = "sam_vit_h_4b8939.pth"
CLIP = "ViT-L-14.pt"


class Workflow:
    def __init__(self, title: str):
        self.title, self.nodes, self.links = title, {}, []

    def node(self, id, type, pos, widgets=(), inputs=(), outputs=(), title=None, size=(320, 130),
             widget_inputs=()):
        """inputs/outputs: (name, type) sockets; widget_inputs: widgets turned into sockets."""
        n = {"id": id, "type": type, "pos": list(pos), "size": list(size), "flags": {}, "order": len(self.nodes),
             "mode": 0, "inputs": [{"name": a, "type": t, "link": None} for a, t in inputs],
             "outputs": [{"name": a, "type": t, "links": [], "slot_index": i} for i, (a, t) in enumerate(outputs)],
             "properties": {"Node name for S&R": type}, "widgets_values": list(widgets)}
        n["inputs"] += [{"name": a, "type": t, "widget": {"name": a}, "link": None} for a, t in widget_inputs]
        if title:
            n["title"] = title
        self.nodes[id] = n

    def note(self, id, pos, text, size=(440, 260)):
        self.nodes[id] = {"id": id, "type": "Note", "pos": list(pos), "size": list(size), "flags": {},
                          "order": len(self.nodes), "mode": 0, "inputs": [], "outputs": [], "properties": {},
                          "widgets_values": [text], "title": "About this workflow", "color": "#432", "bgcolor": "#653"}

    def link(self, src, slot, dst, name):
        s, d = self.nodes[src], self.nodes[dst]
        index = next(i for i, x in enumerate(d["inputs"]) if x["name"] == name)
        link_id = max((link[0] for link in self.links), default=0) + 1
        s["outputs"][slot]["links"].append(link_id)
        d["inputs"][index]["link"] = link_id
        self.links.append([link_id, src, slot, dst, index, s["outputs"][slot]["type"]])

    def save(self, name: str) -> Path:
        data = {"last_node_id": max(self.nodes), "last_link_id": max(link[0] for link in self.links),
                "nodes": list(self.nodes.values()), "links": self.links, "groups": [], "config": {},
                "extra": {"title": self.title, "ds": {"scale": 0.75, "offset": [0, 0]}}, "version": 0.4}
        path = HERE / f"{name}.json"
        path.write_text(json.dumps(data, indent=1) + "\n")
        return path


def editor(wf: Workflow, image_node: int, mask_node: tuple[int, int] | None, text_from: tuple[int, int] | None,
           instruction: str = "", x: int = 1500, seed: int = 42) -> None:
    """Checkpoint, the two text encoders, IP2P Blended Sampler, decode and save (ids 20-26)."""
    wf.node(20, "CheckpointLoaderSimple", (x, 40), [IP2P], outputs=[("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")])
    wf.node(21, "CLIPTextEncode", (x, 220), [instruction], inputs=[("clip", "CLIP")],
            outputs=[("CONDITIONING", "CONDITIONING")], title="Instruction",
            widget_inputs=[("text", "STRING")] if text_from else ())
    wf.node(22, "CLIPTextEncode", (x, 400), [""], inputs=[("clip", "CLIP")],
            outputs=[("CONDITIONING", "CONDITIONING")], title="Negative (empty)")
    wf.node(23, "GroundedIP2P_BlendedSampler", (x + 380, 40),
            [seed, "fixed", 20, 7.5, 1.5, "euler_ancestral", "normal", 100, 1, "inversion"],
            inputs=[("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"), ("vae", "VAE"),
                    ("image", "IMAGE"), ("mask", "MASK")], outputs=[("LATENT", "LATENT")], size=(340, 380))
    wf.node(24, "VAEDecode", (x + 760, 40), inputs=[("samples", "LATENT"), ("vae", "VAE")],
            outputs=[("IMAGE", "IMAGE")], size=(220, 60))
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


def grounding_chain(wf: Workflow, instruction: str, preview: bool = True) -> None:
    """LoadImage (1), the loaders (2-4), Noun Phrase Extract (5), Detect (6), CLIP Filter (7),
    Select Boxes (8), SAM Mask (9), and optionally Preview Boxes (10) and the scores (11)."""
    wf.node(1, "LoadImage", (40, 420), ["example.png", "image"], outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")],
            size=(320, 360))
    wf.node(2, "GroundedIP2P_GroundingDINOLoader", (40, 40), [GDINO, "auto"],
            outputs=[("grounding_dino", "GIP2P_GROUNDING_DINO")], size=(320, 90))
    wf.node(3, "GroundedIP2P_ClipFilterLoader", (40, 160), [CLIP, "auto"], outputs=[("clip", "GIP2P_CLIP")],
            size=(320, 90))
    wf.node(4, "GroundedIP2P_SAMLoader", (40, 280), [SAM, "auto"], outputs=[("sam", "GIP2P_SAM")], size=(320, 90))
    wf.node(5, "GroundedIP2P_NounPhraseExtract", (400, 40), [instruction, "guided"],
            outputs=[("phrases", "GIP2P_PHRASES"), ("target", "STRING"), ("simplified", "STRING"), ("info", "STRING")],
            size=(340, 200))
    wf.node(6, "GroundedIP2P_GroundingDINODetect", (400, 300), [0.3, 0.25, ""],
            inputs=[("grounding_dino", "GIP2P_GROUNDING_DINO"), ("image", "IMAGE"), ("phrases", "GIP2P_PHRASES")],
            outputs=[("boxes", "GIP2P_BOXES"), ("info", "STRING")], size=(340, 150))
    wf.node(7, "GroundedIP2P_ClipFilter", (780, 40), ["prefer analysed target"],
            inputs=[("clip", "GIP2P_CLIP"), ("image", "IMAGE"), ("boxes", "GIP2P_BOXES")],
            outputs=[("boxes", "GIP2P_BOXES"), ("phrase", "STRING"), ("scores", "STRING")], size=(320, 120))
    wf.node(8, "GroundedIP2P_SelectBoxes", (780, 200), [True], inputs=[("boxes", "GIP2P_BOXES")],
            outputs=[("boxes", "GIP2P_BOXES"), ("info", "STRING")], size=(320, 80))
    wf.node(9, "GroundedIP2P_SAMMask", (1140, 40), ["union", 11, 0.0, "edit whole image"],
            inputs=[("sam", "GIP2P_SAM"), ("image", "IMAGE"), ("boxes", "GIP2P_BOXES")],
            outputs=[("mask", "MASK"), ("info", "STRING")], size=(320, 200))
    wf.link(2, 0, 6, "grounding_dino")
    wf.link(1, 0, 6, "image")
    wf.link(5, 0, 6, "phrases")
    wf.link(3, 0, 7, "clip")
    wf.link(1, 0, 7, "image")
    wf.link(6, 0, 7, "boxes")
    wf.link(7, 0, 8, "boxes")
    wf.link(4, 0, 9, "sam")
    wf.link(1, 0, 9, "image")
    wf.link(8, 0, 9, "boxes")
    if preview:
        wf.node(10, "GroundedIP2P_PreviewBoxes", (780, 340), [0.45],
                inputs=[("image", "IMAGE"), ("boxes", "GIP2P_BOXES"), ("mask", "MASK")],
                outputs=[("image", "IMAGE")], size=(340, 380))
        wf.link(1, 0, 10, "image")
        wf.link(8, 0, 10, "boxes")
        wf.link(9, 0, 10, "mask")
        wf.node(11, "PreviewAny", (1140, 300), inputs=[("source", "*")], title="CLIP scores", size=(320, 160))
        wf.link(7, 2, 11, "source")


def grounded_edit() -> Path:
    wf = Workflow("Grounded InstructPix2Pix: instruction -> mask -> blended edit")
    grounding_chain(wf, "make the left car purple")
    editor(wf, image_node=1, mask_node=(9, 0), text_from=(5, 2))
    wf.note(30, (40, 820), (
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
        "Nothing detected? SAM Mask's no_detection decides: edit the whole image, or keep it."))
    return wf.save("grounded_edit")


def relative_edit() -> Path:
    wf = Workflow("Relative edit: 'the lamp right of the bed', with the box preview")
    grounding_chain(wf, "change the lamp right of the bed to a candle")
    editor(wf, image_node=1, mask_node=(9, 0), text_from=(5, 2))
    wf.note(30, (40, 820), (
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
        "sams/sam_vit_h_4b8939.pth, clip_filter/ViT-L-14.pt)."))
    return wf.save("relative_edit")


def add_object() -> Path:
    wf = Workflow("Add an object next to another one")
    grounding_chain(wf, "add a vase to the left of the lamp")
    editor(wf, image_node=1, mask_node=(9, 0), text_from=(5, 2))
    wf.nodes[9]["widgets_values"] = ["union", 11, 8.0, "edit whole image"]
    wf.note(30, (40, 820), (
        "Adding an object needs a mask where nothing is yet. Noun Phrase Extract reads kind 'add', the "
        "anchor 'lamp' and the side 'left'; Select Boxes puts a rectangle beside the lamp's box (as large "
        "as the lamp: GGIP2P's trained size model is not public), and SAM Mask fills it as it is "
        "(feathered by 8 px here so the new object blends in). Without a side ('put a hat on the dog') "
        "the rectangle is the anchor's box; without an anchor ('add a sunset at the top') it is that half "
        "of the image.\n\n"
        "Models: as in grounded_edit."))
    return wf.save("add_object")


def with_core_nodes() -> Path:
    """The grounded edit beside ComfyUI's native InstructPix2Pix path, stitched and upscaled."""
    wf = Workflow("Grounded edit beside ComfyUI's native InstructPix2Pix, then upscaled")
    grounding_chain(wf, "make the left car purple", preview=False)
    editor(wf, image_node=1, mask_node=(9, 0), text_from=(5, 2))
    del wf.nodes[25]                                    # the stitched comparison is saved instead
    wf.nodes[24]["outputs"][0]["links"] = []
    wf.links = [link for link in wf.links if link[3] != 25]
    x, y = 1500, 640
    wf.node(40, "InstructPixToPixConditioning", (x, y), inputs=[
        ("positive", "CONDITIONING"), ("negative", "CONDITIONING"), ("vae", "VAE"), ("pixels", "IMAGE")],
        outputs=[("positive", "CONDITIONING"), ("negative", "CONDITIONING"), ("latent", "LATENT")], size=(320, 110))
    wf.node(41, "DualCFGGuider", (x + 380, y), [7.5, 1.5, "regular"], inputs=[
        ("model", "MODEL"), ("cond1", "CONDITIONING"), ("cond2", "CONDITIONING"), ("negative", "CONDITIONING")],
        outputs=[("GUIDER", "GUIDER")], size=(320, 170))
    wf.node(42, "RandomNoise", (x, y + 160), [42, "fixed"], outputs=[("NOISE", "NOISE")], size=(320, 90))
    wf.node(43, "KSamplerSelect", (x, y + 280), ["euler_ancestral"], outputs=[("SAMPLER", "SAMPLER")], size=(320, 60))
    wf.node(44, "BasicScheduler", (x, y + 370), ["normal", 20, 1.0], inputs=[("model", "MODEL")],
            outputs=[("SIGMAS", "SIGMAS")], size=(320, 110))
    wf.node(45, "SamplerCustomAdvanced", (x + 380, y + 220), inputs=[
        ("noise", "NOISE"), ("guider", "GUIDER"), ("sampler", "SAMPLER"), ("sigmas", "SIGMAS"),
        ("latent_image", "LATENT")], outputs=[("output", "LATENT"), ("denoised_output", "LATENT")], size=(300, 110))
    wf.node(46, "VAEDecode", (x + 760, y + 220), inputs=[("samples", "LATENT"), ("vae", "VAE")],
            outputs=[("IMAGE", "IMAGE")], size=(220, 60))
    wf.node(47, "ImageStitch", (x + 1040, 40), ["right", True, 0, "white"],
            inputs=[("image1", "IMAGE"), ("image2", "IMAGE")], outputs=[("IMAGE", "IMAGE")], size=(300, 150),
            title="Left: grounded edit | right: native IP2P")
    wf.node(48, "ImageScaleBy", (x + 1040, 240), ["lanczos", 2.0], inputs=[("image", "IMAGE")],
            outputs=[("IMAGE", "IMAGE")], size=(300, 90))
    wf.node(49, "SaveImage", (x + 1040, 380), ["grounded-ip2p-vs-native"], inputs=[("images", "IMAGE")],
            size=(400, 420))
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
    wf.note(30, (40, 820), (
        "How the pack fits into a bigger graph. The same instruction, seed and scales go through the "
        "pack's grounded edit (top) and ComfyUI's own InstructPix2Pix path (InstructPixToPixConditioning "
        "+ DualCFGGuider + SamplerCustomAdvanced, bottom). Image Stitch puts them side by side, Upscale "
        "Image By doubles the size, Save Image writes the comparison. Outside the mask the left half keeps "
        "the photo; the native edit changes the whole image. Without a mask, IP2P Blended Sampler gives "
        "exactly the native result.\n\n"
        "Models: as in grounded_edit."))
    return wf.save("grounded_vs_native_upscaled")


BUILDERS = [grounded_edit, relative_edit, add_object, with_core_nodes]

if __name__ == "__main__":
    for build in BUILDERS:
        print(build())
