"""`grounded-ip2p parse --json` on fuzzed input: every line gets exactly one JSON answer.

    python -m bench.parse_fuzz [--lines 10000] [--seed 0]

The lines (tests/instruction_fuzz.py) mix random Unicode (any plane, control characters, line
separators other than '\\n', bytes that are not UTF-8), very long lines, empty and blank lines, and
ordinary instructions. Prints the throughput, process start included.
"""

from __future__ import annotations

import argparse

from tests.instruction_fuzz import check, fuzz_lines, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    lines = fuzz_lines(args.lines, args.seed)
    res, seconds = run(lines)
    answers = check(res, len(lines))
    kinds = {}
    for a in answers:
        kinds[a["kind"]] = kinds.get(a["kind"], 0) + 1
    print(f"{len(lines)} fuzzed lines ({sum(map(len, lines)) / 1e6:.1f} MB): {len(answers)} JSON answers, exit 0")
    print(f"{seconds:.1f} s, {len(lines) / seconds:.0f} lines/s (process start included); kinds: {kinds}")


if __name__ == "__main__":
    main()
