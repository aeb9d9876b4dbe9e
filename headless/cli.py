"""The `grounded-ip2p` command line.

grounded-ip2p parse "make the left car purple"     # human-readable analysis
grounded-ip2p parse --json < instructions.txt      # one JSON object per input line
grounded-ip2p models                               # the model files the example workflows need
grounded-ip2p models --download                    # fetch the missing ones (the only network use)
grounded-ip2p run --image in.png --instruction "make the left car purple" --out out.png
"""

from __future__ import annotations

import argparse
import json
import sys

from .. import __version__

PARSE_BATCH = 512


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grounded-ip2p",
        description="Instruction-based image editing that changes only what the instruction is about.",
    )
    parser.add_argument("--version", action="version", version=f"grounded-ip2p {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    parse = commands.add_parser(
        "parse",
        help="analyse edit instructions (target, direction, anchor, simplified text)",
        description="Analyse edit instructions. With text arguments, print a readable analysis "
        "of each; without, read one instruction per stdin line.",
    )
    parse.add_argument("text", nargs="*", help="instruction(s) to analyse; none: read stdin")
    parse.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per instruction, fields in a fixed order, nothing else on stdout",
    )
    models = commands.add_parser(
        "models",
        help="list the model files the example workflows need; --download fetches the missing ones",
        description="For each example workflow, list the model files its loaders need, the ComfyUI "
        "folder each belongs in and whether it is there. --download fetches the missing "
        "catalog files from their official URLs (the only time the pack uses the network); "
        "GIP2P_MODEL_MIRROR=http://host[:port][/prefix] replaces the scheme and host of "
        "those URLs. Exit code: 0 all present, 1 something missing or failed, 2 usage error.",
    )
    models.add_argument(
        "--workflow",
        action="append",
        metavar="NAME",
        help="only this example workflow (name with or without .json, or a path to a workflow file); repeatable",
    )
    models.add_argument("--json", action="store_true", help="one JSON object on stdout")
    models.add_argument(
        "--verify",
        action="store_true",
        help="also check size and sha256 of the files found (hashing GBs takes a while)",
    )
    models.add_argument(
        "--download",
        action="store_true",
        help="download the missing catalog files (to <name>.part, kept only once size and "
        "sha256 match); with --verify also those found not to match",
    )
    models.add_argument(
        "--comfyui",
        metavar="PATH",
        help="ComfyUI's folder (with main.py and models/); default: $COMFYUI_PATH, else found above the pack",
    )
    models.add_argument("--models-dir", metavar="PATH", help="ComfyUI's models folder itself")
    models.add_argument(
        "--workflows-dir", metavar="DIR", help="where the workflows are (default: the pack's example_workflows)"
    )
    add_run_parser(commands)
    return parser


def add_run_parser(commands) -> None:
    run = commands.add_parser(
        "run",
        help="edit an image from the command line (the main workflow, no UI)",
        description="Run an example workflow (default: grounded_edit) on one image, on a running "
        "ComfyUI server or in a local ComfyUI started for the run. Options left out keep the workflow's "
        "values. Prints the written files; one line and a non-zero exit code on errors.",
    )
    run.add_argument("--image", required=True, help="the photo to edit")
    run.add_argument("--instruction", help="the edit instruction, e.g. 'make the left car purple'")
    run.add_argument("--out", required=True, help="where to write the edited image (png/jpg)")
    run.add_argument(
        "--workflow",
        default="grounded_edit",
        help="an example workflow's name (see example_workflows/) or a UI-format .json file",
    )
    run.add_argument("--server", metavar="URL", help="a running ComfyUI, e.g. http://127.0.0.1:8188")
    run.add_argument(
        "--comfyui",
        metavar="PATH",
        help="the local ComfyUI to start for the run (default: $COMFYUI_PATH, else the one the pack is installed in)",
    )
    run.add_argument(
        "--models-dir",
        metavar="PATH",
        help="extra models folder (with checkpoints/, grounding-dino/, sams/, clip_filter/)",
    )
    run.add_argument("--cpu", action="store_true", help="start the local ComfyUI on the CPU (its --cpu)")
    run.add_argument("--ip2p", metavar="FILE", help="InstructPix2Pix checkpoint (models/checkpoints)")
    run.add_argument("--grounding-dino", metavar="FILE", help="GroundingDINO file (models/grounding-dino)")
    run.add_argument("--sam", metavar="FILE", help="SAM, HQ-SAM, MobileSAM or SAM 2 file (models/sams or models/sam2)")
    run.add_argument("--clip", metavar="FILE", help="CLIP file for the CLIP filter (models/clip_filter)")
    run.add_argument("--seed", type=int)
    run.add_argument("--steps", type=int)
    run.add_argument("--text-cfg", type=float, help="text guidance (default 7.5)")
    run.add_argument("--image-cfg", type=float, help="image guidance (default 1.5)")
    run.add_argument("--start-t", type=int, help="timestep where restoring the background starts (default 100)")
    run.add_argument("--end-t", type=int, help="timestep where it stops (default 1: until the end)")
    run.add_argument("--background", choices=["inversion", "noised"])
    run.add_argument(
        "--debug",
        action="store_true",
        help="also write the mask and the box overlay beside the output (<out>_mask.png, <out>_boxes.png)",
    )


def _stdin_lines():
    """One instruction per '\n'-terminated line of stdin, whatever else the line holds (a lone CR, a
    Unicode line separator, bytes that are not UTF-8: replaced)."""
    for raw in sys.stdin.buffer:
        yield raw.decode("utf-8", "replace").rstrip("\r\n")


# JSON allows these raw in strings, but they end a line for many readers (str.splitlines, JavaScript).
_LINE_BREAKS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def _json_line(data: dict) -> str:
    text = json.dumps(data, ensure_ascii=False)
    for char, escaped in _LINE_BREAKS.items():
        text = text.replace(char, escaped)
    return text


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
    from ..grounding.instruction import analyse_many
    from ..grounding.spacy_pipeline import load_english

    try:
        nlp = load_english()
    except RuntimeError as exc:
        print(f"grounded-ip2p parse: {exc}", file=sys.stderr)
        return 2
    lines = args.text if args.text else _stdin_lines()
    out = sys.stdout
    if hasattr(out, "reconfigure"):  # a terminal that cannot show a character gets its \u escape
        out.reconfigure(errors="backslashreplace")
    for batch in _batches(lines, PARSE_BATCH if not args.text else len(args.text) or 1):
        for text, analysis in zip(batch, analyse_many(batch, nlp=nlp)):
            if args.json:
                out.write(_json_line(analysis.to_dict()) + "\n")
            else:
                out.write(_readable(text, analysis) + "\n")
        out.flush()
    return 0


def run_models(args) -> int:
    from .model_catalog import run

    return run(args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "parse":
        return run_parse(args)
    if args.command == "models":
        return run_models(args)
    if args.command == "run":
        from .run_workflow import run

        return run(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
