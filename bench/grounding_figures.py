"""Print the grounding chain's figures, measured in real ComfyUI: model passes per instruction
(ours against what the reference spends), time, and peak memory of the chain.

    COMFYUI_PATH=/path/to/ComfyUI python -m bench.grounding_figures [--size 512] [--models full|tiny]

The chain is LoadImage -> Noun Phrase Extract -> GroundingDINO Detect -> CLIP Filter -> Select
Boxes -> SAM Mask, on random-weight models in the users' file formats: `full` is GroundingDINO
Swin-T (the original .pth layout), SAM ViT-B and CLIP ViT-L/14 at their real sizes; `tiny` the
tests' small models. Random weights make the boxes meaningless, so the detector keeps every query
to do the full work. Reference counts follow its code (docs/method.md §1.4-1.5):
one detector pass per phrase plus one for the winner, one SAM image embedding per mask call.
Peak memory: the process's resident memory above its level before the models were loaded
(sampled every 5 ms), so resident models count, on CPU; torch's peak allocation on a GPU.
Both thresholds are 0 so random weights still give boxes to select and segment.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from bench.memory import PeakRSS
from tests.comfy_harness import bench_harness
from tests.graphs import chain

INSTRUCTIONS = [  # (instruction, mode)
    ("make the left car purple", "guided"),
    ("change the lamp right of the bed to a candle", "guided"),
    ("replace the hat of the man beside the dog with a crown", "guided"),
    ("replace the hat of the man beside the dog with a crown", "noun chunks"),
]


def full_clip(dest: Path) -> Path:
    """A random-weight OpenAI-layout CLIP ViT-L/14 state dict (what ViT-L-14.pt holds), cached."""
    path = dest / "ViT-L-14.pt"
    if not path.exists():
        import open_clip

        model = open_clip.create_model("ViT-L-14", pretrained=None)
        dest.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
    return path


def model_files(models: str) -> dict[str, Path]:
    """The bench's model files ("full": Swin-T, SAM ViT-B, CLIP ViT-L/14; "tiny"), built once and cached."""
    from tests.checkpoints import cache_dir
    from tests.clip_checkpoint import clip_checkpoint
    from tests.gdino_checkpoint import original_gdino_checkpoint
    from tests.sam_checkpoint import sam_checkpoint

    root = cache_dir() / f"bench-grounding-{models}"
    pth, _ = original_gdino_checkpoint(root / "grounding-dino", size="swint" if models == "full" else "tiny")
    sam = sam_checkpoint(root / "sams", size="vit_b" if models == "full" else "tiny")
    clip = full_clip(root / "clip_filter") if models == "full" else clip_checkpoint(root / "clip_filter")
    return {"gdino": pth, "sam": sam, "clip": clip}


def provide_models(comfy, models: str) -> dict:
    """Register the bench's model folders with ComfyUI; return the file names the loaders take."""
    files = model_files(models)
    for folder, key in (("grounding-dino", "gdino"), ("sams", "sam"), ("clip_filter", "clip")):
        comfy.add_models(folder, files[key].parent)
    return {key: path.name for key, path in files.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    parser.add_argument("--models", choices=["full", "tiny"], default="full")
    args = parser.parse_args()
    comfy = bench_harness("bench-")
    names = provide_models(comfy, args.models)

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (args.size, args.size, 3)).astype(np.uint8)).save(
        comfy.work / "input" / "bench.png"
    )

    def loaded(node, name):
        return comfy.node_class(node).execute(name, "auto").args[0]

    cuda = torch.cuda.is_available()
    device = "GPU " + torch.cuda.get_device_name() if cuda else "CPU"
    print(f"Grounding chain figures: {args.models} models, {args.size}x{args.size} px, {device}")
    # warm-up run: loads the models and spaCy (their memory is counted once below, not per run)
    with PeakRSS() as load_peak:
        comfy.run(chain(names, "bench.png", instruction="make the dog red", text_threshold=0.0), capture=("mask",))
    gd = loaded("GroundedIP2P_GroundingDINOLoader", names["gdino"])
    sam = loaded("GroundedIP2P_SAMLoader", names["sam"])
    clip = loaded("GroundedIP2P_ClipFilterLoader", names["clip"])
    weights = sum(p.numel() * p.element_size() for m in (gd, sam, clip) for p in m.patcher.model.parameters())
    print(
        f"model weights: {weights / 2**20:.0f} MiB ({gd.core.variant} GroundingDINO, SAM {sam.core.variant}, "
        f"CLIP); first run incl. loading: peak +{load_peak.above / 2**20:.0f} MiB RSS"
    )

    print(
        f"\n{'instruction':<58} {'mode':<12} {'phrases':>7} {'detector passes':>16} {'reference*':>10} "
        f"{'SAM embeds':>10} {'CLIP img/txt':>12} {'seconds':>8} {'peak MiB':>9}"
    )
    print("(peak MiB: the chain's whole footprint, resident models included, over the process before loading)")
    for instruction, mode in INSTRUCTIONS:
        sam.core.forget_image()  # each run stands for a new photo: SAM embeds it (it keeps the last one)
        counts = (gd.core.forward_passes, sam.core.encoder_passes, clip.core.image_passes, clip.core.text_passes)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        prompt = chain(names, "bench.png", instruction=instruction, mode=mode, text_threshold=0.0)
        with PeakRSS() as peak:
            t0 = time.perf_counter()
            results = comfy.run(prompt, capture=("mask", "np"))
            seconds = time.perf_counter() - t0
        phrases = comfy.output(results, "np").to_detect
        candidates = comfy.output(results, "np").candidates
        mem = (torch.cuda.max_memory_allocated() if cuda else peak.peak - load_peak.start) / 2**20
        d = [
            gd.core.forward_passes - counts[0],
            sam.core.encoder_passes - counts[1],
            clip.core.image_passes - counts[2],
            clip.core.text_passes - counts[3],
        ]
        print(
            f"{instruction[:57]:<58} {mode:<12} {len(phrases):>7} {d[0]:>16} {len(candidates) + 1:>10} "
            f"{d[1]:>10} {f'{d[2]}/{d[3]}':>12} {seconds:>8.2f} {mem:>9.0f}"
        )
    print("* the reference's detector passes for the same candidates: one per phrase plus one for the winner")


if __name__ == "__main__":
    main()
