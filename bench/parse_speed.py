"""Whole-file speed of `grounded-ip2p parse --json`, process start included.

    python -m bench.parse_speed [--data DIR]

Feeds the 4,467 GGIP2P instructions (one per line) to a fresh process and prints instructions
per second (goal: at least 500).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "benchmarks" / "ggip2p"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args()
    rows = json.loads((args.data / "instruct_target.json").read_text())
    text = "".join(r["sentence"].replace("\n", " ") + "\n" for r in rows)
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "grounded_ip2p.cli", "parse", "--json"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - t0
    answers = res.stdout.splitlines()
    assert len(answers) == len(rows), (len(answers), len(rows))
    print(
        f"{len(rows)} instructions in {seconds:.2f} s: {len(rows) / seconds:.0f} instructions/s "
        "(process start included)"
    )


if __name__ == "__main__":
    main()
