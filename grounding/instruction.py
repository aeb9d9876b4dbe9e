"""Instruction analysis for grounded instruction-based image editing (GGIP2P style).

``analyse("change the lamp right of the bed to a candle")`` tells which object the edit is about
("the lamp"), what a detector should look for ("lamp"), where it is ("right", relative to the
anchor "the bed") and what the editor should be told ("change the lamp to a candle").

Plain Python + spaCy (part-of-speech tags from an English pipeline), hand-written rules, no
trained model of our own and no ComfyUI import. ``analyse`` never raises.

This module is the entry point: it cleans the text, parses it and falls back to a global edit on
anything unusable. The rules live in `lexicon` (word lists), `mentions` (noun phrases),
`imperative` (the verb) and `analysis` (the result and the phases that fill it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from .analysis import InstructionAnalysis, analyse_doc
from .lexicon import VERB_FORMS
from .spacy_pipeline import load_english

__all__ = ["InstructionAnalysis", "analyse", "analyse_many"]

log = logging.getLogger("grounded-ip2p")

MAX_CHARS = 500
_UNNEEDED_PIPES = ("ner", "lemmatizer", "entity_linker", "entity_ruler", "textcat", "textcat_multilabel")
# letters outside ASCII, Latin-1 / Latin Extended and typographic quotes and dashes
NON_ENGLISH_RE = re.compile(r"[^\x00-\x7F\u00C0-\u024F\u2018\u2019\u201C\u201D\u2013\u2014]")


def analyse(text: str, nlp=None) -> InstructionAnalysis:
    """Analyse one edit instruction. Never raises; unusable input gives a global edit."""
    try:
        clean = _clean(text)
    except Exception:
        log.warning(
            "instruction analysis: cannot turn a %s into text; treating it as a global edit",
            type(text).__name__,
            exc_info=True,
        )
        return InstructionAnalysis(kind="global", simplified="")
    if not _looks_english(clean):
        return InstructionAnalysis(kind="global", simplified=clean)
    nlp = nlp if nlp is not None else load_english()  # a missing pipeline is reported, not hidden
    try:
        doc = nlp(_first_sentence_with_verb(clean), disable=_disabled(nlp))
    except Exception:
        log.warning("instruction analysis: spaCy failed on %r; treating it as a global edit", clean, exc_info=True)
        return InstructionAnalysis(kind="global", simplified=clean)
    return _analyse_or_global(doc)


def analyse_many(texts: Iterable[str], nlp=None, batch_size: int = 256) -> list[InstructionAnalysis]:
    """Analyse many instructions with one ``nlp.pipe`` pass."""
    nlp = nlp if nlp is not None else load_english()
    cleaned = []
    for t in texts:
        try:
            cleaned.append(_clean(t))
        except Exception:
            log.warning(
                "instruction analysis: cannot turn a %s into text; treating it as a global edit",
                type(t).__name__,
                exc_info=True,
            )
            cleaned.append("")
    english = [_looks_english(c) for c in cleaned]
    to_parse = [_first_sentence_with_verb(c) for c, ok in zip(cleaned, english) if ok]
    docs = iter(nlp.pipe(to_parse, batch_size=batch_size, disable=_disabled(nlp)))
    out = []
    for c, ok in zip(cleaned, english):
        if not ok:
            out.append(InstructionAnalysis(kind="global", simplified=c))
            continue
        out.append(_analyse_or_global(next(docs)))
    return out


def _analyse_or_global(doc) -> InstructionAnalysis:
    """The analysis of a parsed instruction; a rule that trips over an unexpected parse is logged
    and the instruction treated as a global edit, so one odd line never stops a batch or a graph."""
    try:
        return analyse_doc(doc, doc.text)
    except Exception:
        log.warning("instruction analysis failed on %r; treating it as a global edit", doc.text, exc_info=True)
        return InstructionAnalysis(kind="global", simplified=doc.text)


def _disabled(nlp) -> list[str]:
    return [p for p in _UNNEEDED_PIPES if p in nlp.pipe_names]


def _clean(text) -> str:
    """At most MAX_CHARS characters, plain quotes, single spaces; None -> ""."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    text = text[:MAX_CHARS]
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = re.sub(r"\s+", " ", text).strip()
    return text


def _looks_english(text: str) -> bool:
    """At least two letters, at most 30% of them outside the Latin alphabets."""
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 2:
        return False
    return sum(1 for c in letters if NON_ENGLISH_RE.match(c)) <= len(letters) * 0.3


def _first_sentence_with_verb(text: str) -> str:
    """ "It's too hazy. -> Remove the fog from the center.": keep the part that gives an order."""
    parts = [p.strip() for p in re.split(r"->|=>|;|\.\s+", text) if p.strip()]
    if len(parts) > 1:
        for p in parts:
            w = p.split()[0].lower().strip(",.!") if p.split() else ""
            if w in VERB_FORMS and w not in ("set", "show"):
                return p
    return text
