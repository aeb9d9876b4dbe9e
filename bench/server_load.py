"""A long queue through a real ComfyUI server: memory drift and failures over many prompts.

    COMFYUI_PATH=/path/to/ComfyUI python -m bench.server_load [--prompts 200] [--every 10] [--unload-every 25]

Starts `main.py --cpu` with the pack, the tiny grounding models and the full-size random IP2P
checkpoint (tests/browser_server.py), then queues small prompts one after another: the whole
grounding chain and IP2P Blended Sampler (2 steps, 96x64 px), each with another instruction so
that nothing is answered from ComfyUI's cache. Every ``--unload-every`` prompts it asks ComfyUI to
unload its models (`POST /free`), so they are loaded again. The server's RSS is read every
``--every`` prompts; the drift is the last reading against the first one after the warm-up.
"""

from __future__ import annotations

import argparse
import time

from tests.server_cases import bench_server, edit_prompt, submit

MiB = 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--every", type=int, default=10, help="read the server's RSS every N prompts")
    parser.add_argument("--unload-every", type=int, default=25, help="POST /free every N prompts (0: never)")
    parser.add_argument("--warm-up", type=int, default=20, help="prompts before the drift's first reading")
    args = parser.parse_args()
    import psutil

    readings, failures = [], []
    with bench_server("bench-server-load-") as server:
        process = psutil.Process(server.process.pid)
        started = time.monotonic()
        for i in range(1, args.prompts + 1):
            outcome = submit(server, edit_prompt(run=i))
            if outcome.kind != "ok":
                failures.append((i, outcome.kind, outcome.text[:300]))
            if args.unload_every and i % args.unload_every == 0:
                server.client.post("/free", {"unload_models": True, "free_memory": True})
            if i % args.every == 0:
                rss = process.memory_info().rss
                readings.append((i, rss))
                print(
                    f"prompt {i:4d}: server RSS {rss / MiB:8.1f} MiB  {time.monotonic() - started:7.1f} s", flush=True
                )
    after = [r for r in readings if r[0] >= args.warm_up] or readings
    first, last = after[0][1], after[-1][1]
    peak = max(r for _, r in after)
    print(
        f"\n{args.prompts} prompts, {len(failures)} failed; RSS after warm-up (prompt {after[0][0]}): "
        f"{first / MiB:.1f} MiB -> {last / MiB:.1f} MiB ({100 * (last - first) / first:+.1f} %), "
        f"peak {peak / MiB:.1f} MiB ({100 * (peak - first) / first:+.1f} %)"
    )
    for failure in failures[:10]:
        print("failed:", failure)


if __name__ == "__main__":
    main()
