"""How long each node of the pack takes to stop after ``POST /interrupt``, through a real ComfyUI server.

    COMFYUI_PATH=/path/to/ComfyUI python -m bench.cancel_latency [--size 8000] [--repeats 3]

Starts `main.py --cpu` with the pack, the tiny grounding models and the full-size random IP2P
checkpoint (tests/browser_server.py), writes a noise photo of ``--size`` px square, and for each
node (GroundingDINO Detect, CLIP Filter and SAM Mask on that photo; IP2P Blended Sampler at
96x64 px and 200 steps) queues a prompt, sends /interrupt 0.3 s after the node starts and times
the interrupt to the prompt's end in the server's history. After each cancel the good prompt is
run again and its mask compared with the one before any cancel.
"""

from __future__ import annotations

import argparse

from tests.server_cases import CANCELS, bench_server, cancel_after, mask_prompt, submit, write_big_photo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8000, help="side of the square photo, px")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    run = iter(range(1, 10**6))
    with bench_server("bench-cancel-") as server:
        write_big_photo(server.base / "input", args.size)
        reference = submit(server, mask_prompt(run=next(run)))
        print(f"cancel latency, {args.size}x{args.size} px photo, CPU ({args.repeats} runs each)")
        for node_type, build in CANCELS:
            seconds, kinds, same = [], set(), True
            for _ in range(args.repeats):
                outcome = cancel_after(server, build(next(run)), node_type, timeout=1800)
                seconds.append(outcome.seconds)
                kinds.add(outcome.kind)
                again = submit(server, mask_prompt(run=next(run)))
                same = same and again.kind == "ok" and again.images == reference.images
            print(
                f"{node_type:<36} {' '.join(f'{s:6.2f}' for s in seconds)} s  (max {max(seconds):.2f} s; "
                f"ended {'/'.join(sorted(kinds))}; next prompt identical: {same})",
                flush=True,
            )


if __name__ == "__main__":
    main()
