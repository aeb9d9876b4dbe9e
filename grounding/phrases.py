"""From an instruction to the phrases the detector looks for (NounPhraseExtract's core).

Two modes:
- "guided" (GGIP2P): the instruction analyser names the target, its anchor and the simplified
  instruction; the other noun phrases stay as candidates so the CLIP filter can still rescue a
  target the detector does not find.
- "noun chunks" (GIP2P, docs/method.md §1.3): spaCy's noun chunks, cleaned of what the reference
  wrongly keeps (bare pronouns, "the image"), and no target: the CLIP filter decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .instruction import InstructionAnalysis, analyse
from .lexicon import PLURAL_PRONOUNS, PRONOUN_GROUNDING
from .spacy_pipeline import load_english

MODES = ("guided", "noun chunks")
# what the detector looks for when the anchor is a person named by a pronoun ("his shirt")
PERSON_PHRASES = {**PRONOUN_GROUNDING, **{p: "people" for p in PLURAL_PRONOUNS}}

DETERMINERS = {
    "the",
    "a",
    "an",
    "this",
    "that",
    "these",
    "those",
    "some",
    "any",
    "all",
    "every",
    "each",
    "both",
    "its",
    "his",
    "her",
    "their",
    "my",
    "your",
    "our",
}
PICTURE_WORDS = {
    "image",
    "picture",
    "photo",
    "photograph",
    "scene",
    "frame",
    "shot",
    "painting",
    "background",
    "foreground",
    "style",
    "color",
    "colour",
    "everything",
}


@dataclass
class PhraseSet:
    """What NounPhraseExtract hands to the detector, the CLIP filter and the box selection.

    candidates: phrases to detect (detector wording, no leading determiner), target first when
    the analyser named one; target: the analyser's grounding phrase (None: let the CLIP filter
    choose); anchor: the reference object of a relative or additive instruction (detected too);
    simplified: the instruction for the editor; analysis: the analyser's full result (None in
    noun-chunk mode).
    """

    instruction: str
    candidates: list[str] = field(default_factory=list)
    target: Optional[str] = None
    anchor: Optional[str] = None
    simplified: str = ""
    analysis: Optional[InstructionAnalysis] = None

    @property
    def to_detect(self) -> list[str]:
        """Every phrase the detector should look for, once each: the candidates and the anchor."""
        out = list(self.candidates)
        if self.anchor and self.anchor not in out:
            out.append(self.anchor)
        return out

    def summary(self) -> str:
        lines = [
            f"candidates: {', '.join(self.candidates) or '(none)'}",
            f"target: {self.target or '(CLIP filter decides)'}",
        ]
        if self.analysis is not None:
            a = self.analysis
            lines.append(
                f"kind: {a.kind}, plural: {a.plural}, direction: {a.direction}, "
                f"ordinal: {a.ordinal}, relation: {a.relation}"
            )
        if self.anchor:
            lines.append(f"anchor: {self.anchor}")
        lines.append(f"simplified: {self.simplified}")
        return "\n".join(lines)


def detector_phrase(text: Optional[str]) -> Optional[str]:
    """`"The red car"` -> `"red car"`: lower-case, no leading determiners, no punctuation ends."""
    if not text:
        return None
    words = text.strip().strip(".,;:!?\"'").lower().split()
    while words and words[0] in DETERMINERS:
        words = words[1:]
    return " ".join(words) or None


def _unique(phrases) -> list[str]:
    out: list[str] = []
    for p in phrases:
        if p and p not in out:
            out.append(p)
    return out


def noun_chunk_phrases(instruction: str, nlp=None) -> list[str]:
    """spaCy's noun chunks (docs/method.md §1.3), cleaned: no pronoun-headed chunks ("it", "him"),
    no chunks about the picture itself ("the image"), determiners dropped, duplicates dropped."""
    nlp = nlp if nlp is not None else load_english()
    doc = nlp(instruction[:500])
    kept = []
    for chunk in doc.noun_chunks:
        head = chunk.root
        if head.pos_ == "PRON" or head.lower_ in PICTURE_WORDS:
            continue
        kept.append(detector_phrase(chunk.text))
    return _unique(kept)


def extract(instruction: str, mode: str = "guided", nlp=None) -> PhraseSet:
    """The PhraseSet of one instruction. Never raises on odd text (an empty or non-English
    instruction gives no candidates: a global edit); a missing spaCy pipeline raises RuntimeError
    with the install command."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    text = instruction if isinstance(instruction, str) else ""
    if mode == "noun chunks":
        return PhraseSet(text, noun_chunk_phrases(text, nlp) if text.strip() else [], simplified=text.strip())
    return phrase_set_of(text, analyse(text, nlp=nlp))


def phrase_set_of(instruction: str, a: InstructionAnalysis) -> PhraseSet:
    """The guided PhraseSet of an instruction from its analysis."""
    text = instruction
    target = detector_phrase(a.grounding_phrase)
    anchor = detector_phrase(a.anchor) or PERSON_PHRASES.get(a.anchor_head or "")
    others = [detector_phrase(p) for p in a.phrases]
    if a.kind == "global":
        candidates: list[str] = []
    else:
        # "left car" beside "car" is the same object with its locating word: detect it once
        candidates = _unique(
            [target] + [p for p in others if p != anchor and not (target and p and p.endswith(" " + target))]
        )
    return PhraseSet(text, candidates, target, anchor, a.simplified or text.strip(), a)
