"""Field-level scoring of the instruction analyser on the pack's own evaluation set (README.md here)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from bench.instruction_accuracy import singular

HERE = Path(__file__).resolve().parent
SPLITS = ("dev", "heldout", "heldout2")
FIELDS = ("kind", "target", "plural", "direction", "ordinal", "relation", "anchor", "phrase", "not_candidates")
KINDS = ("edit", "remove", "add", "global")
DIRECTIONS = ("left", "right", "top", "bottom", "center", "front", "back")
RELATIONS = ("absolute", "relative", "part")


def load(split: str) -> list[dict]:
    """The lines of one split, checked against the README's format."""
    rows = []
    path = HERE / f"{split}.jsonl"
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        _check(row, f"{path.name}:{n}")
        rows.append(row)
    return rows


def _check(row: dict, where: str) -> None:
    missing = [k for k in ("id", "family", "instruction", *FIELDS[:7]) if k not in row]
    if missing:
        raise ValueError(f"{where}: missing {missing}")
    if row["kind"] not in KINDS or row["direction"] not in (None, *DIRECTIONS):
        raise ValueError(f"{where}: kind or direction out of range")
    if row["relation"] not in (None, *RELATIONS) or not isinstance(row["plural"], bool):
        raise ValueError(f"{where}: relation or plural out of range")


def _forms(word) -> set[str]:
    """A word's singular readings: GGIP2P's rule and the plain "-s"/"-es" ("shoes" -> shoe)."""
    w = word.lower().strip()
    out = {w, singular(w)}
    if w.endswith("s"):
        out.add(w[:-1])
    if w.endswith("es"):
        out.add(w[:-2])
    return out


def same_word(gold, got) -> bool:
    """Equal, or equal once plural endings are folded; None only equals None."""
    if not gold or not got:
        return not gold and not got
    return bool(_forms(gold) & _forms(got))


def same_phrase(gold, got) -> bool:
    if not gold or not got:
        return not gold and not got
    g, p = gold.lower().split(), got.lower().split()
    return len(g) == len(p) and g[:-1] == p[:-1] and same_word(g[-1], p[-1])


@dataclass
class Verdict:
    row: dict
    predicted: dict
    fields: dict[str, bool] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        return all(self.fields.values())


def judge(row: dict, analysis, phrase_set) -> Verdict:
    """Compare one gold line with the analyser's result and the guided phrase set."""
    got = {
        "kind": analysis.kind,
        "target": analysis.target_head,
        "plural": analysis.plural,
        "direction": analysis.direction,
        "ordinal": analysis.ordinal,
        "relation": analysis.relation,
        "anchor": analysis.anchor_head,
        "phrase": phrase_set.target,
        "not_candidates": list(phrase_set.candidates),
    }
    v = Verdict(row, got)
    for name in FIELDS[:7]:
        gold, pred = row[name], got[name]
        v.fields[name] = same_word(gold, pred) if name in ("target", "anchor") else gold == pred
    if row.get("phrase"):
        v.fields["phrase"] = same_phrase(row["phrase"], got["phrase"])
    if row.get("not_candidates"):
        words = {w for c in phrase_set.candidates for w in c.lower().split()}
        v.fields["not_candidates"] = not any(w.lower() in words for w in row["not_candidates"])
    return v


def evaluate(rows: list[dict], nlp=None) -> list[Verdict]:
    from grounded_ip2p.grounding.instruction import analyse_many
    from grounded_ip2p.grounding.phrases import phrase_set_of

    analyses = analyse_many([r["instruction"] for r in rows], nlp=nlp)
    return [judge(r, a, phrase_set_of(r["instruction"], a)) for r, a in zip(rows, analyses)]
