"""What Restore Background (Model Patch) costs over the unpatched model, in real ComfyUI on CPU.

    COMFYUI_PATH=/path/to/ComfyUI python -m bench.restore_cost [--models qwen flux] [--size 256]
        [--steps 8] [--repeats 3] [--sampler euler] [--background noised] [--start-percent 0.7]

The tests' reduced-depth random-weight Qwen-Image (1 block) and Flux (1 double + 1 single block)
DiTs, every other size real, through core KSampler with the same seed, sampler and steps, patched
(mask on a block, window ``--start-percent`` -> 1.0; 0.7 puts 2-3 of 8 steps in it) and unpatched,
interleaved. It reports:

- work ratio: model calls patched / unpatched (``noised`` adds none; ``inversion`` one per window level);
- wall ratio: the median KSampler time patched / unpatched;
- copies: ``aten::_to_copy`` and ``aten::copy_`` calls on tensors (not on the 0-dim wrappers of
  Python numbers) in one patched run minus one unpatched run,
  from torch's profiler, at ``--steps`` and at twice as many steps: the device and dtype copies the
  patch adds. The same count at both step counts means none of them is inside the step loop (they
  happen once per run, when the run starts and at the final latent).

The figures say what the patch costs; they say nothing about edit quality.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from tests.comfy_harness import bench_harness
from tests.restore_cases import RESTORE_NODE, CapturedReports, edit_mask, flux_edit_case, qwen_edit_case

BUILDERS = {"qwen": qwen_edit_case, "flux": flux_edit_case}


def counted(model):
    """A clone of ``model`` that counts its model calls in ``clone.calls``."""
    clone = model.clone()
    calls = [0]

    def wrapper(apply_model, args):
        calls[0] += 1
        return apply_model(args["input"], args["timestep"], **args["c"])

    clone.set_model_unet_function_wrapper(wrapper)
    return clone, calls


def copies(run) -> int:
    """Tensor copies in ``run()``; 0-dim ones (a Python number wrapped for an op) do not count."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
        run()
    return sum(
        e.count
        for e in prof.key_averages(group_by_input_shape=True)
        if e.key in ("aten::_to_copy", "aten::copy_") and e.input_shapes and e.input_shapes[0] != []
    )


def measure(comfy, name, args) -> dict:
    import nodes

    case = BUILDERS[name]()
    size = args.size // 8
    latent = torch.zeros(*case.latent.shape[:-2], size, size)
    source = torch.randn(*case.source.shape[:-2], size, size, generator=torch.Generator().manual_seed(1))
    positive = [[c[0], {**c[1], "reference_latents": [source]}] for c in case.positive]
    negative = [[c[0], {**c[1], "reference_latents": [source]}] for c in case.negative]
    patched = (
        comfy.node_class(RESTORE_NODE)
        .execute(
            model=case.model,
            source={"samples": source},
            mask=edit_mask(args.size),
            start_percent=args.start_percent,
            end_percent=1.0,
            background=args.background,
        )
        .args[0]
    )

    def run(model, steps=args.steps):
        return nodes.common_ksampler(
            model, 7, steps, case.cfg, args.sampler, "simple", positive, negative, {"samples": latent.clone()}
        )[0]["samples"]

    plain_counted, plain_calls = counted(case.model)
    patched_counted, patched_calls = counted(patched)
    run(plain_counted)  # warm-up: load the model, first-call allocations
    plain_calls[0] = 0
    times = {"plain": [], "patched": []}
    with CapturedReports() as captured:
        for _ in range(args.repeats):
            for label, model in (("plain", plain_counted), ("patched", patched_counted)):
                t0 = time.perf_counter()
                run(model)
                times[label].append(time.perf_counter() - t0)
    extra_copies = [
        copies(lambda: run(patched, n)) - copies(lambda: run(case.model, n)) for n in (args.steps, 2 * args.steps)
    ]
    return {
        "model": name,
        "latent": tuple(latent.shape),
        "calls": (patched_calls[0], plain_calls[0]),
        "work": patched_calls[0] / plain_calls[0],
        "plain": statistics.median(times["plain"]),
        "patched": statistics.median(times["patched"]),
        "copies": extra_copies,
        "window": captured.reports[-1].calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(BUILDERS), default=list(BUILDERS))
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sampler", default="euler")
    parser.add_argument("--background", choices=["noised", "inversion"], default="noised")
    parser.add_argument("--start-percent", type=float, default=0.7)
    args = parser.parse_args()
    comfy = bench_harness("bench-restore-cost-")
    print(
        f"Restore Background cost: {args.size}x{args.size} px, {args.steps} steps, {args.sampler}, "
        f"{args.background}, window {args.start_percent} -> 1.0, median of {args.repeats}, CPU ({torch.get_num_threads()} threads)"
    )
    print(
        f"{'model':<6} {'latent':<20} {'in window':>9} {'calls':>9} {'work ratio':>10} {'plain s':>8} {'patched s':>9} "
        f"{'wall ratio':>10} {f'extra copies at {args.steps}/{2 * args.steps} steps':>28}"
    )
    for name in args.models:
        r = measure(comfy, name, args)
        calls = f"{r['calls'][0]}/{r['calls'][1]}"
        print(
            f"{r['model']:<6} {str(r['latent']):<20} {r['window']:>9} {calls:>9} {r['work']:>10.3f} {r['plain']:>8.2f} "
            f"{r['patched']:>9.2f} {r['patched'] / r['plain']:>10.3f} {'/'.join(map(str, r['copies'])):>28}",
            flush=True,
        )


if __name__ == "__main__":
    main()
