"""Load SAM's load time and peak memory for each segmenter file format, on the CPU.

    python -m bench.segmenter_load                      # every format, full-size random weights
    python -m bench.segmenter_load --formats mobile_sam sam2.1_hiera_t

Each file is made once with random weights in its released format and architecture (the tests'
builders, `tests/sam_checkpoint.py`) under `.cache/bench-models/`, then loaded by `load_sam` in a
fresh Python per format: the time is the load alone (the packages already imported), the memory the
resident-memory peak during it above the process's size before it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "bench-models"


def _formats() -> dict:
    """Format name -> a function that returns its file (built on first use)."""
    from tests import sam_checkpoint as files

    def sam2(version, size, safetensors=False):
        def make():
            path = files.sam2_checkpoint(CACHE / f"sam{version}-{size}", version, size)
            if not safetensors:
                return path
            repack = path.with_name(path.stem + "-fp16.safetensors")
            return repack if repack.exists() else files.sam2_safetensors(path, repack)

        return make

    return {
        "sam_vit_b": lambda: files.sam_checkpoint(CACHE / "sam-vit_b", "vit_b"),
        "hq_sam_vit_b": lambda: files.hq_sam_checkpoint(CACHE / "hq-sam-vit_b", "vit_b"),
        "mobile_sam": lambda: files.mobile_sam_checkpoint(CACHE / "mobile-sam", "published"),
        "light_hq_sam": lambda: files.light_hq_sam_checkpoint(CACHE / "light-hq-sam"),
        **{f"sam2.1_hiera_{size}": sam2("2.1", size) for size in ("t", "s", "b+", "l")},
        "sam2.1_hiera_l_fp16_safetensors": sam2("2.1", "l", safetensors=True),
    }


def measure_one(path: str, threads: int) -> dict:
    """In this process: import, then time and watch the memory of one `load_sam`."""
    import torch

    torch.set_num_threads(threads)
    from grounded_ip2p.grounding import sam, sam2_model, sam_hq  # noqa: F401  (imports not timed)

    from bench.memory import PeakRSS

    with PeakRSS() as rss:
        start = time.perf_counter()
        model = sam.load_sam(path)
        seconds = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    return {"variant": model.variant, "seconds": seconds, "peak_above_mib": rss.above / 2**20, "params": params}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    formats = _formats()
    parser.add_argument("--formats", nargs="+", choices=list(formats), default=list(formats))
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process's file
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(args.one, args.threads)))
        return 0
    print("| format | variant read | parameters | file | load time | peak memory above start |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name in args.formats:
        path = formats[name]()
        child = [sys.executable, "-m", "bench.segmenter_load", "--one", str(path), "--threads", str(args.threads)]
        out = subprocess.run(child, cwd=REPO, capture_output=True, text=True, check=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        print(
            f"| {name} | {row['variant']} | {row['params'] / 1e6:.1f} M | {path.stat().st_size / 2**20:.0f} MiB "
            f"| {row['seconds']:.2f} s | {row['peak_above_mib']:.0f} MiB |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
