"""Fuzzed input for `grounded-ip2p parse --json` (tests/test_cli.py and bench/parse_fuzz.py).

The lines mix random Unicode (any plane, control characters, line separators other than '\\n',
bytes that are not UTF-8), very long lines, empty and blank lines, and ordinary instructions.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

INSTRUCTIONS = ["make the left car purple", "remove the cat", "give her gray hair", "add a hat to the dog"]
SPECIAL = ["\r", "\x00", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029", "\ufeff", "\u202e", "\t", "\x7f"]


def random_text(rng: random.Random, length: int) -> str:
    chars = []
    for _ in range(length):
        pick = rng.random()
        if pick < 0.15:
            chars.append(rng.choice(SPECIAL))
        elif pick < 0.55:
            chars.append(chr(rng.randint(0x20, 0x7E)))
        else:
            code = rng.randint(0x80, 0x10FFFF)
            chars.append(chr(code) if not 0xD800 <= code <= 0xDFFF else "?")
    return "".join(chars)


def fuzz_lines(count: int, seed: int = 0) -> list[bytes]:
    """``count`` lines as bytes (no b'\\n' inside any of them)."""
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        kind = i % 10
        if kind == 0:
            text = ""
        elif kind == 1:
            text = " " * rng.randint(1, 20)
        elif kind == 2:
            text = rng.choice(INSTRUCTIONS) + random_text(rng, rng.randint(0, 30))
        elif kind == 3 and i % 1000 == 3:
            text = random_text(rng, 20000)  # very long
        else:
            text = random_text(rng, rng.randint(1, 80))
        raw = text.replace("\n", " ").encode("utf-8", "surrogatepass")
        if kind == 4:
            raw += bytes([0xFF, 0xFE, 0xC3])  # not UTF-8
        lines.append(raw)
    return lines


def run(lines: list[bytes]) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "grounded_ip2p.headless.cli", "parse", "--json"],
        input=b"\n".join(lines) + b"\n",
        capture_output=True,
        timeout=1800,
    )
    return res, time.perf_counter() - started


def check(res: subprocess.CompletedProcess, count: int) -> list[dict]:
    """The answers, one per input line; AssertionError otherwise."""
    assert res.returncode == 0, res.stderr.decode("utf-8", "replace")[-2000:]
    assert not res.stderr.strip(), res.stderr.decode("utf-8", "replace")[-2000:]
    out = res.stdout.decode("utf-8").split("\n")
    assert out[-1] == "" and len(out) - 1 == count, f"{len(out) - 1} answers for {count} lines"
    return [json.loads(line) for line in out[:-1]]
