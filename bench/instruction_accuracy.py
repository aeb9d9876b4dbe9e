"""Instruction-analysis accuracy on the GGIP2P instruction data.

    python -m bench.instruction_accuracy [--data DIR] [--errors N]

Scoring (the agreed rule, see DIR/README.md): lower-case, plural -> singular on both sides; a row
is correct when gold is "" and the prediction has no target and no anchor, or gold equals the
predicted target head or anchor head.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

_t0 = time.perf_counter()

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "benchmarks" / "ggip2p"
PRONOUNS = {
    "he",
    "him",
    "his",
    "himself",
    "she",
    "her",
    "hers",
    "herself",
    "they",
    "them",
    "their",
    "theirs",
    "themselves",
}


def singular(word: str) -> str:
    w = (word or "").strip().lower()
    if len(w) <= 3 or w in PRONOUNS or w.endswith(("ss", "us", "is")):
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("ches", "shes", "xes", "sses", "zes", "oes")):
        return w[:-2]
    if w.endswith("ves") and len(w) > 4:
        return w[:-3] + "f"
    if w.endswith("s"):
        return w[:-1]
    return w


def row_correct(gold: str, pred) -> bool:
    gold = singular(gold)
    if not gold:
        return pred.target is None and pred.anchor is None
    heads = {singular(h) for h in (pred.target_head, pred.anchor_head) if h}
    return gold in heads


def pronoun_resolved(text: str, pred) -> bool:
    """Whether the person a pronoun names reaches the detector as a noun: the target ("make him
    smile" -> man) or the owner of the target ("make his hat snowy" -> hat, owned by a man)."""
    from grounded_ip2p.grounding.phrases import phrase_set_of

    if pred.target_head in PRONOUNS:
        return bool(pred.grounding_phrase) and pred.grounding_phrase not in PRONOUNS
    anchor = phrase_set_of(text, pred).anchor
    return pred.anchor_head in PRONOUNS and bool(anchor) and anchor not in PRONOUNS


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder with instruct_target.json and test_pairs.csv"
    )
    ap.add_argument("--errors", type=int, default=0, help="print N misclassified rows")
    args = ap.parse_args(argv)

    from grounded_ip2p.grounding.instruction import analyse_many
    from grounded_ip2p.grounding.spacy_pipeline import load_english

    rows = json.loads((args.data / "instruct_target.json").read_text(encoding="utf-8"))
    nlp = load_english()
    t1 = time.perf_counter()
    preds = analyse_many([r["sentence"] for r in rows], nlp=nlp)
    t2 = time.perf_counter()

    ok_all = ok_empty = ok_full = n_empty = n_full = 0
    errors = []
    for r, p in zip(rows, preds):
        gold = r["target"].strip()
        good = row_correct(gold, p)
        ok_all += good
        if gold:
            n_full += 1
            ok_full += good
        else:
            n_empty += 1
            ok_empty += good
        if not good:
            errors.append((r, p))
    n = len(rows)
    print(f"instruct_target.json: {n} instructions")
    print(f"  overall accuracy        {ok_all / n:.3f}  ({ok_all}/{n})")
    print(f"  gold == '' (no target)  {ok_empty / max(n_empty, 1):.3f}  ({ok_empty}/{n_empty})")
    print(f"  gold != '' (object)     {ok_full / max(n_full, 1):.3f}  ({ok_full}/{n_full})")
    print(
        f"  speed: {n / (t2 - t1):.0f} instructions/s analysis only, "
        f"{n / (t2 - _t0):.0f} instructions/s including process start and model load "
        f"({t2 - _t0:.2f} s total)"
    )

    pairs_path = args.data / "test_pairs.csv"
    if pairs_path.exists():
        with pairs_path.open(encoding="utf-8", newline="") as fh:
            pairs = list(csv.DictReader(fh))
        ppreds = analyse_many([p["instruct"] for p in pairs], nlp=nlp)
        by_type: dict[str, list] = {}
        for row, p in zip(pairs, ppreds):
            by_type.setdefault(row["Type"].strip(), []).append((row, p))
        print(f"test_pairs.csv: {len(pairs)} instructions")
        for typ in ("Absolute Direction", "Relative Direction", "Pronoun", "Neutral"):
            items = by_type.get(typ, [])
            if typ == "Absolute Direction":
                hits = [p.relation == "absolute" for _, p in items]
                what = "relation == absolute"
            elif typ == "Relative Direction":
                hits = [p.relation == "relative" for _, p in items]
                what = "relation == relative"
            elif typ == "Pronoun":
                hits = [pronoun_resolved(row["instruct"], p) for row, p in items]
                what = "pronoun resolved"
            else:
                kinds = {}
                for _, p in items:
                    kinds[p.kind] = kinds.get(p.kind, 0) + 1
                rels = sum(p.relation is not None for _, p in items)
                print(f"  {typ:<20} {len(items)} rows (report only): kinds {kinds}, with a relation {rels}")
                continue
            k = sum(hits)
            print(f"  {typ:<20} {k / max(len(items), 1):.3f}  ({k}/{len(items)})  [{what}]")
            if args.errors:
                for (row, p), h in zip(items, hits):
                    if not h:
                        errors.append(({"sentence": row["instruct"], "target": f"<{typ}>"}, p))

    if args.errors:
        print(f"\nfirst {args.errors} misclassified rows:")
        for r, p in errors[: args.errors]:
            print(
                f"  gold={r['target']!r:<14} kind={p.kind:<6} target={p.target!r} head={p.target_head!r} "
                f"anchor={p.anchor!r} rel={p.relation} dir={p.direction} | {r['sentence']}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
