"""Does the restore window's width change IP2P Blended Sampler's run time? (start_t = end_t included)

    COMFYUI_PATH=/path/to/ComfyUI python -m bench.window_cost [--steps 8] [--repeats 3]

Runs the sampler with a mask on the tests' full-size random SD1.5-InstructPix2Pix checkpoint
(64x64 px, euler) for several windows, in both background modes, interleaved (one run of each
window per round, so drift on the machine hits all alike), and prints each window's median time.
A window that no step's noise level falls in (start_t = end_t) restores nothing and says so in
the log; it should cost what the default window costs.
"""

from __future__ import annotations

import argparse
import statistics
import time

from tests import checkpoints
from tests.comfy_harness import bench_harness
from tests.graphs import blended, graph

WINDOWS = ((100, 1), (100, 100), (50, 50), (500, 500), (999, 999), (999, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import numpy as np
    from PIL import Image

    comfy = bench_harness("bench-window-")
    ckpt = checkpoints.ip2p_checkpoint()
    comfy.add_models("checkpoints", ckpt.parent)
    rgba = np.random.default_rng(0).integers(0, 256, (64, 64, 4)).astype(np.uint8)
    rgba[..., 3] = 255
    rgba[16:48, 16:48, 3] = 0
    Image.fromarray(rgba, "RGBA").save(comfy.work / "input" / "bench.png")
    base = graph(ckpt.name, "bench.png")
    comfy.run({**base, **blended("euler", 1, 0, mask=True)})  # load the models once
    times = {(bg, w): [] for bg in ("inversion", "noised") for w in WINDOWS}
    for round_ in range(args.repeats):
        for bg, (start_t, end_t) in times:
            prompt = blended("euler", args.steps, 1000 * round_ + start_t + end_t, mask=True, background=bg)
            prompt["out"]["inputs"].update(start_t=start_t, end_t=end_t)
            t0 = time.perf_counter()
            comfy.run({**base, **prompt})
            times[(bg, (start_t, end_t))].append(time.perf_counter() - t0)
    print(f"IP2P Blended Sampler, {args.steps} steps, 64x64 px, CPU: median of {args.repeats} runs")
    for (bg, (start_t, end_t)), ts in times.items():
        print(f"  {bg:<9} start_t {start_t:>3} end_t {end_t:>3}: {statistics.median(ts):7.2f} s")


if __name__ == "__main__":
    main()
