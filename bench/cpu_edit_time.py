"""How long one InstructPix2Pix edit takes on this machine's CPU, at a given size.

    COMFYUI_PATH=/path/to/ComfyUI python -m bench.cpu_edit_time [--size 768] [--steps 1 2] [--threads N]

Runs IP2P Blended Sampler (with a mask, `noised` background) in real ComfyUI on the tests'
random-weight full-size SD1.5-InstructPix2Pix checkpoint: the same architecture and the same
arithmetic as the real weights, so the time is the real time (the result is noise). Each step is
one UNet call on a batch of three (text, image and unconditional branches). The run is timed at
two step counts; the cost of a step is their difference, and the time of a longer run is the fixed
part (VAE encode and decode, set-up) plus that many steps.
"""

from __future__ import annotations

import argparse
import os
import time

from tests import checkpoints
from tests.comfy_harness import bench_harness
from tests.graphs import blended, graph


def timed_run(comfy, prompt) -> float:
    started = time.perf_counter()
    comfy.run(prompt)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=768, help="image side in pixels")
    parser.add_argument("--steps", type=int, nargs=2, default=(1, 2), help="the two step counts timed")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--estimate", type=int, nargs="*", default=[4, 20], help="step counts to extrapolate to")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    comfy = bench_harness("bench-cpu-edit-")
    ckpt = checkpoints.ip2p_checkpoint()
    comfy.add_models("checkpoints", ckpt.parent)

    import numpy as np
    from PIL import Image

    rgba = np.random.default_rng(0).integers(0, 256, (args.size, args.size, 4)).astype(np.uint8)
    rgba[..., 3] = 255
    q = args.size // 4
    rgba[q : 3 * q, q : 3 * q, 3] = 0  # edit the centre
    Image.fromarray(rgba, "RGBA").save(comfy.work / "input" / "bench.png")
    base = graph(ckpt.name, "bench.png")

    def prompt(steps: int, seed: int) -> dict:
        return {**base, **blended("euler", steps, seed, mask=True, background="noised")}

    comfy.run(prompt(1, 0))  # load the checkpoint once; the timed runs below do not include it
    few, more = sorted(args.steps)
    t_few, t_more = timed_run(comfy, prompt(few, 1)), timed_run(comfy, prompt(more, 2))
    per_step = (t_more - t_few) / (more - few)
    fixed = t_few - few * per_step
    print(
        f"IP2P edit on the CPU: {args.size}x{args.size} px, torch threads {torch.get_num_threads()}, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"  {few} step(s): {t_few:.1f} s   {more} step(s): {t_more:.1f} s")
    print(f"  per step (one UNet call, batch 3): {per_step:.1f} s   fixed (VAE, set-up): {fixed:.1f} s")
    for steps in args.estimate:
        print(f"  {steps} steps: about {(fixed + steps * per_step) / 60:.1f} min")


if __name__ == "__main__":
    main()
