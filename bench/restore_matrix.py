"""Print the background restore's figures for every sampler and scheduler ComfyUI lists.

    COMFYUI_PATH=/path/to/ComfyUI python -m bench.restore_matrix [--steps 3 20] [--model reduced|full]

The runs of ``tests/test_restore_matrix.py`` (IP2P Blended Sampler's function, 64x64 px, mask on a
block, default window 100 -> 1), on the tests' random-weight SD1.5-InstructPix2Pix (``reduced``:
the same ComfyUI classes at 32 channels, as the test; ``full``: the full-size UNet). Per run:

- ``max out`` and ``out/in``: the largest |out - src| outside the mask and the mean outside as a
  share of the mean inside, for the final latent (what the user gets);
- ``window only``: the largest |out - src| outside that the window's model calls left before the
  final latent was restored (what the late window alone achieves with that sampler);
- ``calls``: model calls in the window / all model calls of the sampler.

The figures say the restore does what it promises; they say nothing about edit quality.
"""

from __future__ import annotations

import argparse

import torch

from tests import checkpoints
from tests.comfy_harness import bench_harness
from tests.restore_cases import CapturedReports, background_figures, blended_run, edit_mask, source_latent

FAMILIES = {
    "first order": ("euler", "euler_cfg_pp", "ddim", "lcm", "ddpm"),
    "ancestral / SDE": (
        "euler_ancestral",
        "euler_ancestral_cfg_pp",
        "dpm_2_ancestral",
        "dpmpp_2s_ancestral",
        "dpmpp_2s_ancestral_cfg_pp",
        "dpmpp_sde",
        "dpmpp_sde_gpu",
        "dpmpp_2m_sde",
        "dpmpp_2m_sde_gpu",
        "dpmpp_2m_sde_heun",
        "dpmpp_2m_sde_heun_gpu",
        "dpmpp_3m_sde",
        "dpmpp_3m_sde_gpu",
        "er_sde",
        "seeds_2",
        "seeds_3",
        "res_multistep_ancestral",
        "res_multistep_ancestral_cfg_pp",
        "exp_heun_2_x0_sde",
        "sa_solver",
        "sa_solver_pece",
    ),
    "second order": ("heun", "heunpp2", "dpm_2", "exp_heun_2_x0"),
    "multistep": (
        "lms",
        "dpmpp_2m",
        "dpmpp_2m_cfg_pp",
        "ipndm",
        "ipndm_v",
        "deis",
        "res_multistep",
        "res_multistep_cfg_pp",
        "gradient_estimation",
        "gradient_estimation_cfg_pp",
        "cfgpp_ud10_ab",
        "uni_pc",
        "uni_pc_bh2",
    ),
    "adaptive": ("dpm_fast", "dpm_adaptive"),
}


def family_of(sampler: str) -> str:
    return next((name for name, members in FAMILIES.items() if sampler in members), "other")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[3, 20])
    parser.add_argument("--model", choices=["reduced", "full"], default="reduced")
    parser.add_argument("--samplers", nargs="*", help="default: all of ComfyUI's")
    args = parser.parse_args()
    comfy = bench_harness("bench-restore-")
    ckpt = checkpoints.ip2p_checkpoint()
    comfy.add_models("checkpoints", ckpt.parent)
    import comfy.samplers as samplers

    model, clip, vae = comfy.node_class("CheckpointLoaderSimple")().load_checkpoint(ckpt.name)[:3]
    encode = comfy.node_class("CLIPTextEncode")()
    positive, negative = encode.encode(clip, "make the car purple")[0], encode.encode(clip, "")[0]
    if args.model == "reduced":
        model = checkpoints.reduced_ip2p(model)
    image = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(0))
    parts = (model, positive, negative, vae, image, source_latent(vae, image))
    mask = edit_mask()

    rows = []
    runs = [(s, "normal") for s in (args.samplers or samplers.SAMPLER_NAMES)]
    runs += [("euler_ancestral", s) for s in samplers.SCHEDULER_NAMES if s != "normal"]
    print(f"Background restore, {args.model} SD1.5-IP2P, 64x64 px, window 100 -> 1, CPU")
    print(
        f"{'sampler':<28} {'scheduler':<16} {'steps':>5} {'mode':<9} {'max out':>9} {'out/in':>9} "
        f"{'window only':>11} {'calls':>7}"
    )
    for sampler, scheduler in runs:
        for steps in args.steps:
            for mode in ("inversion", "noised"):
                with CapturedReports() as captured:
                    out, source, _ = blended_run(parts, sampler, scheduler, steps, mode, mask)
                report = captured.reports[-1]
                max_out, ratio = background_figures(out, source, mask)
                rows.append((sampler, scheduler, steps, mode, max_out, report.residual))
                print(
                    f"{sampler:<28} {scheduler:<16} {steps:>5} {mode:<9} {max_out:>9.2e} {ratio:>9.2e} "
                    f"{report.residual:>11.2e} {report.calls:>3}/{report.calls_total:<3}",
                    flush=True,
                )

    print("\nWorst per sampler family (all step counts, both modes, scheduler 'normal'):")
    print(f"{'family':<18} {'max out':>9} {'window only':>11}")
    for family in [*FAMILIES, "other"]:
        members = [r for r in rows if r[1] == "normal" and family_of(r[0]) == family]
        if members:
            print(f"{family:<18} {max(r[4] for r in members):>9.2e} {max(r[5] for r in members):>11.2e}")
    schedulers = [r for r in rows if r[0] == "euler_ancestral"]
    print(f"{'schedulers':<18} {max(r[4] for r in schedulers):>9.2e} {max(r[5] for r in schedulers):>11.2e}")


if __name__ == "__main__":
    main()
