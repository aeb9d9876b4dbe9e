"""Print IP2PBlendedSampler's parity and background figures, measured in real ComfyUI on CPU.

    COMFYUI_PATH=/path/to/ComfyUI python -m bench.sampler_figures [--steps 20] [--size 64]

Uses the tests' random-weight full-size SD1.5-InstructPix2Pix checkpoint (built once, cached),
so the figures say the sampler does what it promises; they say nothing about edit quality.
- parity: relative L2 error of the unmasked result against ComfyUI's native IP2P path
  (InstructPixToPixConditioning + DualCFGGuider + SamplerCustomAdvanced), same seed;
- background: mean |out - src| over latent pixels outside the mask as a share of that inside,
  and the largest |out - src| outside, with the default window (start_t 100, end_t 1).
"""

from __future__ import annotations

import argparse
import time

from tests import checkpoints
from tests.comfy_harness import bench_harness
from tests.graphs import blended, graph, latent_region_masks, native, relative_error, with_encoded_source

SAMPLERS = ("euler", "euler_ancestral", "dpmpp_2m")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    comfy = bench_harness("bench-")
    ckpt = checkpoints.ip2p_checkpoint()
    comfy.add_models("checkpoints", ckpt.parent)

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (args.size, args.size, 4)).astype(np.uint8)
    rgba[..., 3] = 255
    q = args.size // 4
    rgba[q : 3 * q, q : 3 * q, 3] = 0  # edit the centre
    Image.fromarray(rgba, "RGBA").save(comfy.work / "input" / "bench.png")
    base = graph(ckpt.name, "bench.png")

    print(f"IP2PBlendedSampler figures: {args.steps} steps, {args.size}x{args.size} px, seed {args.seed}, CPU")
    print(f"{'sampler':<16} {'parity rel. error':>18}")
    for sampler in SAMPLERS:
        ours = comfy.output(comfy.run({**base, **blended(sampler, args.steps, args.seed)}), "out")["samples"]
        theirs = comfy.output(comfy.run({**base, **native(sampler, args.steps, args.seed)}), "out")["samples"]
        print(f"{sampler:<16} {relative_error(ours, theirs):>18.2e}")
    print(f"\n{'sampler':<16} {'background':<10} {'outside/inside':>15} {'max |out-src| outside':>22} {'seconds':>8}")
    for sampler in SAMPLERS:
        for background in ("inversion", "noised"):
            prompt = with_encoded_source(
                {**base, **blended(sampler, args.steps, args.seed, mask=True, background=background)}
            )
            t0 = time.perf_counter()
            results = comfy.run(prompt, capture=("out", "src"))
            seconds = time.perf_counter() - t0
            out, src = comfy.output(results, "out")["samples"], comfy.output(results, "src")["samples"]
            outside, inside = latent_region_masks(comfy, results, out)
            diff = (out - src).abs()
            ratio = float(diff[outside].mean() / diff[inside].mean())
            print(f"{sampler:<16} {background:<10} {ratio:>14.2e} {float(diff[outside].max()):>22.2e} {seconds:>8.1f}")


if __name__ == "__main__":
    main()
