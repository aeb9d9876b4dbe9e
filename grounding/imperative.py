"""The imperative verb of an instruction and the kind of edit it asks for.

Instructions come as bare imperatives ("remove the lamp"), wrapped in politeness ("please could you
add ..."), as wishes ("I want the sky purple", "let's see a dog") or with phrasal verbs ("get rid
of", "take out", "bring in"). `find_verb` reads through those to the verb and where its objects start.
"""

from __future__ import annotations

from .lexicon import ADD_VERBS, PREFIX_SKIP, REMOVE_VERBS, VERB_FORMS, low

# (verb index, verb lemma, index where the verb's objects start); (None, None, 0) for no imperative
VerbMatch = tuple[int | None, str | None, int]
_NO_VERB: VerbMatch = (None, None, 0)

# words of a wish before the verb: "I want", "I would like (you to)", "I'd prefer", "I'm"
_WISH_WORDS = ("want", "would", "'d", "like", "prefer", "wish", "need", "'m", "am", "to", "you")


def find_verb(doc) -> VerbMatch:
    """(verb index, verb lemma, index where the objects start) for an imperative, else (None, None, 0).

    A wish without a verb of our lists ("I want the sky purple") and "let ..." read as the verb
    "have"; phrasal verbs that remove or add ("take out", "get rid of", "bring in") read as
    "remove" / "add".
    """
    n = len(doc)
    i = _skip_preamble(doc)
    if i < n and low(doc[i]) == "i":
        j = i + 1
        while j < n and low(doc[j]) in _WISH_WORDS:
            j += 1
        if not (j < n and low(doc[j]) in VERB_FORMS and doc[j - 1].text.lower() == "to"):
            return i, "have", j
        i = j  # "I want you to remove the lamp"
    if i < n and low(doc[i]) in ("let", "let's", "lets"):
        return _let(doc, i)
    if i >= n:
        return _NO_VERB
    lemma = _verb_lemma(doc[i])
    if lemma is None:
        return _NO_VERB
    return _with_particle(doc, i, lemma)


def _skip_preamble(doc) -> int:
    """Index of the first word after "please", "now", "can you", "could you please" ..."""
    n = len(doc)
    i = 0
    while i < n and (low(doc[i]) in PREFIX_SKIP or doc[i].is_punct):
        i += 1
    if i < n and low(doc[i]) in ("of", "among", "from") and (i == 0 or low(doc[i - 1]) != "instead"):
        # "of the three cups, paint the one in the middle red": the group comes first
        comma = next((k for k in range(i + 1, min(n, i + 10)) if doc[k].text == ","), None)
        if comma is not None:
            i = comma + 1
            while i < n and low(doc[i]) in PREFIX_SKIP:
                i += 1
    if i + 1 < n and low(doc[i]) in ("can", "could", "would", "will") and low(doc[i + 1]) == "you":
        i += 2
        while i < n and low(doc[i]) in PREFIX_SKIP:
            i += 1
    return i


def _let(doc, i: int) -> VerbMatch:
    """ "let's see a dog", "let us have ...", "let the dogs run": the verb "have"."""
    j = i + 1
    if j < len(doc) and low(doc[j]) in ("'s", "us"):
        j += 1
    if j < len(doc) and low(doc[j]) in ("see", "have", "make", "show"):
        return j, "have", j + 1
    return i, "have", j


def _verb_lemma(tok) -> str | None:
    """The verb a word is (from our verb forms, else spaCy's lemma of a base-form verb), or None."""
    word = low(tok)
    lemma = VERB_FORMS.get(word)
    if lemma is None and tok.tag_ == "VB" and tok.pos_ == "VERB" and word not in ("be", "do"):
        lemma = tok.lemma_.lower() if tok.lemma_ else word
    return lemma


def _with_particle(doc, i: int, lemma: str) -> VerbMatch:
    """Phrasal verbs: get rid of, take out/away/off, switch out, bring in, turn up ..."""
    n = len(doc)
    j = i + 1
    if lemma == "get" and j + 1 < n and low(doc[j]) == "rid" and low(doc[j + 1]) == "of":
        return i, "remove", j + 2
    if lemma == "take" and j < n and low(doc[j]) in ("out", "away", "off", "down"):
        return i, "remove", j + 1
    if (
        j < n
        and low(doc[j]) in ("out", "up", "in", "down")
        and doc[j].tag_ in ("RP", "RB", "IN")
        and not (j + 1 < n and low(doc[j + 1]) in ("of",))
    ):
        if lemma in ("take",):
            return i, "remove", j + 1
        if lemma in ("bring", "put", "set") and low(doc[j]) == "in":
            return i, "add", j + 1
        if low(doc[j]) in ("out", "up"):
            j += 1
    # "take the cup away / out"
    if (
        lemma == "take"
        and j < n
        and low(doc[j]) != "out"
        and any(low(doc[k]) in ("away", "out", "off") for k in range(j, min(n, j + 8)))
    ):
        return i, "remove", j
    return i, lemma, j


def kind_for(lemma: str | None) -> str:
    """ "remove", "add" or "edit" for the verb of an imperative."""
    if lemma in REMOVE_VERBS:
        return "remove"
    if lemma in ADD_VERBS:
        return "add"
    return "edit"
