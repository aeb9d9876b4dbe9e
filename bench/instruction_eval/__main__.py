"""Field-level accuracy of the instruction analyser on the pack's evaluation set.

    python -m bench.instruction_eval [--split dev|heldout|heldout2|all] [--errors N]

The set, its fields and the scoring rule: bench/instruction_eval/README.md.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

from . import FIELDS, SPLITS, evaluate, load


def report(name: str, verdicts) -> None:
    print(f"{name}: {len(verdicts)} instructions, exact {_share([v.exact for v in verdicts])}")
    families = defaultdict(list)
    for v in verdicts:
        families[v.row["family"]].append(v)
    width = max(len(f) for f in families)
    print(f"  {'family':<{width}}  {'n':>4}  {'exact':>6}  " + "  ".join(f"{f[:8]:>8}" for f in FIELDS))
    for fam in sorted(families):
        vs = families[fam]
        cells = []
        for f in FIELDS:
            scored = [v.fields[f] for v in vs if f in v.fields]
            cells.append(f"{sum(scored) / len(scored):8.3f}" if scored else f"{'-':>8}")
        print(f"  {fam:<{width}}  {len(vs):>4}  {sum(v.exact for v in vs) / len(vs):6.3f}  " + "  ".join(cells))
    totals = []
    for f in FIELDS:
        scored = [v.fields[f] for v in verdicts if f in v.fields]
        totals.append(f"{sum(scored) / len(scored):8.3f}" if scored else f"{'-':>8}")
    print(
        f"  {'all':<{width}}  {len(verdicts):>4}  {sum(v.exact for v in verdicts) / len(verdicts):6.3f}  "
        + "  ".join(totals)
    )


def _share(flags) -> str:
    return f"{sum(flags) / max(len(flags), 1):.3f} ({sum(flags)}/{len(flags)})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=(*SPLITS, "all"), default="all")
    ap.add_argument("--errors", type=int, default=0, help="print N lines that are not exact, per split")
    args = ap.parse_args(argv)
    from grounded_ip2p.grounding.spacy_pipeline import load_english

    nlp = load_english()
    for split in SPLITS if args.split == "all" else (args.split,):
        verdicts = evaluate(load(split), nlp=nlp)
        report(split, verdicts)
        wrong = [v for v in verdicts if not v.exact][: args.errors]
        for v in wrong:
            bad = {f: (v.row.get(f), v.predicted[f]) for f, ok in v.fields.items() if not ok}
            print(f"    {v.row['id']}: {v.row['instruction']!r}  gold/got {bad}")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
