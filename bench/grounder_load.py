"""Load GroundingDINO's load time, peak memory and one detect pass for each grounder format, on the CPU.

    python -m bench.grounder_load                       # every format, full-size random weights
    python -m bench.grounder_load --formats owlv2_base_patch16

Each model is made once with random weights in its released architecture and layout (the tests'
builders: `tests/gdino_checkpoint.py` for the original GroundingDINO file, `tests/grounder_folders.py`
for the Hugging Face folders) under `.cache/bench-models/`, then loaded by `load_grounder` in a fresh
Python per format: the load time is the load alone (the packages already imported), the memory the
resident-memory peak during it above the process's size before it. Then one `detect` of four phrases
on one image at the model's native input size (GroundingDINO's 800 px short side: an 800 x 1200
photo; OWLv2's square: a 960 x 960 one for ViT-B/16), after one warm-up pass.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "bench-models"
PHRASES = ["red car", "tree", "small dog", "house"]
NATIVE = {"GroundingDino": (800, 1200), "Owlv2Detector": (960, 960)}


def _formats() -> dict:
    """Format name -> a function that returns its file or folder (built on first use)."""
    os.environ.setdefault("GIP2P_TEST_MODELS", str(CACHE))
    from tests import gdino_checkpoint, grounder_folders

    return {
        "groundingdino_swint_ogc": lambda: gdino_checkpoint.original_gdino_checkpoint(CACHE / "gdino-swint", "swint")[
            0
        ],
        "mm_grounding_dino_tiny": lambda: grounder_folders.mm_gdino_folder("full"),
        "owlv2_base_patch16": lambda: grounder_folders.owlv2_folder("full"),
    }


def measure_one(path: str, threads: int) -> dict:
    """In this process: import, then time and watch the memory of one `load_grounder`, then detect."""
    import torch

    torch.set_num_threads(threads)
    import transformers  # noqa: F401  (imports not timed)
    from grounded_ip2p.grounding import grounders

    from bench.memory import PeakRSS

    with PeakRSS() as rss:
        start = time.perf_counter()
        detector = grounders.load_grounder(path)
        seconds = time.perf_counter() - start
    params = sum(p.numel() for p in detector.model.parameters())
    height, width = NATIVE[type(detector).__name__]
    image = torch.rand(1, height, width, 3, generator=torch.Generator().manual_seed(0))
    detector.detect(image, PHRASES, 0.3, 0.25)
    start = time.perf_counter()
    detector.detect(image, PHRASES, 0.3, 0.25)
    detect = time.perf_counter() - start
    return {
        "variant": detector.variant,
        "seconds": seconds,
        "peak_above_mib": rss.above / 2**20,
        "params": params,
        "detect_seconds": detect,
        "input": f"{width} x {height}",
    }


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir()) if path.is_dir() else path.stat().st_size


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    formats = _formats()
    parser.add_argument("--formats", nargs="+", choices=list(formats), default=list(formats))
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process's file or folder
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(args.one, args.threads)))
        return 0
    print("| format | variant read | parameters | files | load time | peak memory above start | detect (image) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name in args.formats:
        path = formats[name]()
        child = [sys.executable, "-m", "bench.grounder_load", "--one", str(path), "--threads", str(args.threads)]
        out = subprocess.run(child, cwd=REPO, capture_output=True, text=True, check=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        print(
            f"| {name} | {row['variant']} | {row['params'] / 1e6:.1f} M | {_size(path) / 2**20:.0f} MiB "
            f"| {row['seconds']:.2f} s | {row['peak_above_mib']:.0f} MiB | {row['detect_seconds']:.1f} s "
            f"({row['input']}) |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
