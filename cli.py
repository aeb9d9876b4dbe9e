"""The `grounded-ip2p` command line.

    grounded-ip2p parse "make the left car purple"     # human-readable analysis
    grounded-ip2p parse --json < instructions.txt      # one JSON object per input line
"""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__

PARSE_BATCH = 512


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grounded-ip2p",
        description="Instruction-based image editing that changes only what the instruction is about.",
    )
    parser.add_argument("--version", action="version", version=f"grounded-ip2p {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    parse = commands.add_parser(
        "parse", help="analyse edit instructions (target, direction, anchor, simplified text)",
        description="Analyse edit instructions. With text arguments, print a readable analysis "
                    "of each; without, read one instruction per stdin line.")
    parse.add_argument("text", nargs="*", help="instruction(s) to analyse; none: read stdin")
    parse.add_argument("--json", action="store_true",
                       help="one JSON object per instruction, fields in a fixed order, nothing else on stdout")
    return parser


def _stdin_lines():
    for line in sys.stdin:
        yield line.rstrip("\r\n")


def _batches(lines, size: int):
    """Batches for one nlp.pipe pass each; an interactive terminal gets an answer per line."""
    if sys.stdin.isatty():
        size = 1
    batch = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _readable(text: str, analysis) -> str:
    rows = [f"instruction: {text}"]
    rows += [f"  {key}: {value}" for key, value in analysis.to_dict().items()]
    return "\n".join(rows)


def run_parse(args) -> int:
    from .grounding.instruction import analyse_many
    from .grounding.spacy_pipeline import load_english

    try:
        nlp = load_english()
    except RuntimeError as exc:
        print(f"grounded-ip2p parse: {exc}", file=sys.stderr)
        return 2
    lines = args.text if args.text else _stdin_lines()
    out = sys.stdout
    for batch in _batches(lines, PARSE_BATCH if not args.text else len(args.text) or 1):
        for text, analysis in zip(batch, analyse_many(batch, nlp=nlp)):
            if args.json:
                out.write(json.dumps(analysis.to_dict(), ensure_ascii=False) + "\n")
            else:
                out.write(_readable(text, analysis) + "\n")
        out.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "parse":
        return run_parse(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
