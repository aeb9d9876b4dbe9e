"""Noun-phrase mentions of an instruction, and what can be read off one.

spaCy's own noun chunks split or merge the phrases of editing instructions badly ("the lamp right of
the bed", "make the bridge rusty", "turn the books stack on the right ..."), so the mentions are
re-segmented here from spaCy's part-of-speech tags with the word lists of `lexicon`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .lexicon import (
    AUXILIARIES,
    BARE_PREDICATES,
    BARE_VERB_COMPLEMENT_VERBS,
    COLOR_MODIFIERS,
    COLOR_WORDS,
    COMPLEMENT_VERBS,
    DATIVE_VERBS,
    DEPTH_REGIONS,
    DEPTH_WORDS,
    DETERMINERS,
    DIRECTION_WORDS,
    GLOBAL_WORDS,
    LINKING_VERBS,
    LOC_PREPS,
    MATERIAL_WORDS,
    MULTIWORD_FIRST,
    MULTIWORD_MAX,
    MULTIWORD_OBJECTS,
    NOUN_TAGS,
    ORDINALS,
    OWNER_PRONOUNS,
    PERSON_PRONOUNS,
    PLURAL_PRONOUNS,
    PLURAL_QUANT,
    POSSESSIVE_PRONOUNS,
    PREFIX_SKIP,
    PRONOUN_GROUNDING,
    REGION_MODS,
    REGION_NOUNS,
    SCENE_REGIONS,
    VERB_FORMS,
    VERB_RESULT_WORDS,
    is_noun,
    low,
)

# words read as a pronoun mention whatever spaCy tags them
PRONOUN_WORDS = (
    "him",
    "them",
    "he",
    "she",
    "they",
    "it",
    "me",
    "us",
    "you",
    "i",
    "we",
    "hers",
    "theirs",
    "themselves",
    "himself",
    "herself",
    "itself",
)
DETERMINER_TAGS = ("DT", "PDT", "PRP$")
# tags of the words that may stand inside a noun phrase
_NP_INTERNAL_TAGS = ("JJ", "JJR", "JJS", "CD", "HYPH", "POS", "VBG", "VBN", "AFX", "FW") + NOUN_TAGS
# region heads that name a region without a direction word ("the left", "the foreground")
_DIRECTIONAL_REGION_HEADS = (
    "left",
    "right",
    "top",
    "bottom",
    "center",
    "centre",
    "middle",
    "foreground",
    "front",
    "back",
)


@dataclass
class Mention:
    start: int
    end: int  # exclusive
    head: int  # token index of the head noun / pronoun
    kind: str  # "np" | "pron" | "region"
    poss_pron: int | None = None  # index of a possessive personal pronoun (her hair)
    possessor: Mention | None = None  # "her cheek" in "her cheek's left side"


# --------------------------------------------------------------------------------------------
# Segmentation
# --------------------------------------------------------------------------------------------
def _np_internal(tok) -> bool:
    """Whether a token can stand inside a noun phrase (modifiers, nouns, numbers, hyphens)."""
    word = low(tok)
    if word in DIRECTION_WORDS or word in ORDINALS or word in COLOR_WORDS or word in ("far", "most"):
        return True
    if word in PREFIX_SKIP:
        return False  # "paint her nails red please"
    if tok.tag_ in _NP_INTERNAL_TAGS:
        return True
    return tok.pos_ in ("ADJ", "NOUN", "PROPN", "NUM")


def _is_determiner(tok) -> bool:
    word = low(tok)
    return word in DETERMINERS or tok.tag_ in DETERMINER_TAGS or word in POSSESSIVE_PRONOUNS


def _np_start(tok) -> bool:
    if _is_determiner(tok):
        return True
    if tok.tag_ in ("POS", "HYPH", "VBG", "VBN"):
        return False
    return _np_internal(tok)


def multiword_object_at(doc, k: int) -> int:
    """The length of the multiword object name ("fire hydrant") starting at token k, else 0."""
    if low(doc[k]) not in MULTIWORD_FIRST:
        return 0
    for n in range(min(MULTIWORD_MAX, len(doc) - k), 1, -1):
        if tuple(low(t) for t in doc[k : k + n]) in MULTIWORD_OBJECTS:
            return n
    return 0


def _nounish(tok) -> bool:
    """A noun, or a direction word that can head a phrase ("the left"; not "upper", "lower")."""
    word = low(tok)
    if (word in DIRECTION_WORDS and word not in ("upper", "lower", "central")) or word in DEPTH_REGIONS:
        return True
    return is_noun(tok)


def find_mentions(doc, begin: int, verb_lemma: str | None) -> list[Mention]:
    """The mentions of `doc` from token `begin` (where the verb's objects start) on.

    verb_lemma: the imperative's verb; it decides whether "her" right after it is a recipient ("give
    her a hat") and whether the object may be followed by what it becomes ("make the bridge rusty").
    """
    out: list[Mention] = []
    i = begin
    while i < len(doc):
        i = _read_mention(doc, i, begin, verb_lemma, out)
    return out


def _read_mention(doc, i: int, begin: int, verb_lemma: str | None, out: list[Mention]) -> int:
    """Append the mention starting at token i, if one does, to `out`; return where to read on."""
    tok = doc[i]
    if _standalone_pronoun(doc, i, begin, verb_lemma):
        out.append(Mention(i, i + 1, i, "pron"))
        return i + 1
    if low(tok) in ("this", "that") and (i + 1 >= len(doc) or not _np_internal(doc[i + 1])):
        out.append(Mention(i, i + 1, i, "pron"))
        return i + 1
    if not (_np_start(tok) or multiword_object_at(doc, i)):
        return i + 1
    return _read_noun_phrase(doc, i, begin, verb_lemma, out)


def _standalone_pronoun(doc, i: int, begin: int, verb_lemma: str | None) -> bool:
    """A personal pronoun, except possessive "her" + noun ("her hair"), which starts a noun phrase.

    Right after a dative verb "her" is the recipient ("give her gray hair")."""
    tok = doc[i]
    word = low(tok)
    nxt = doc[i + 1] if i + 1 < len(doc) else None
    if (
        word == "her"
        and verb_lemma in BARE_VERB_COMPLEMENT_VERBS
        and nxt is not None
        and low(nxt) in BARE_PREDICATES
        and (_ends_clause(doc, i + 1) or doc[i + 2].tag_ in ("IN", "TO", "RP"))
    ):
        return True  # "make her laugh", "have her swim in a river"
    if word == "her" and i == begin and verb_lemma in DATIVE_VERBS and not (nxt is not None and low(nxt) == "to"):
        return True  # "give her gray hair": the recipient, then what she gets
    if not (tok.tag_ == "PRP" or word in PRONOUN_WORDS):
        return False
    possessive_her = (
        word == "her"
        and nxt is not None
        and _np_internal(nxt)
        and not (i == begin and verb_lemma in DATIVE_VERBS)
        and low(nxt) not in ("to",)
        and not (verb_lemma in BARE_VERB_COMPLEMENT_VERBS and low(nxt) in BARE_PREDICATES and _ends_clause(doc, i + 1))
    )
    return not possessive_her


@dataclass
class _PhraseScan:
    """What reading the words of one noun phrase found."""

    end: int  # first token not read
    last_noun: int | None = None  # the head so far
    poss_pron: int | None = None  # a possessive pronoun among the determiners
    possessor: Mention | None = None  # "the cat" in "the cat's tail"
    dir_of: bool = False  # stopped at a direction word followed by "of"
    complement: int | None = None  # start of a small-clause predicate after the object
    named_last: bool = False  # the head ends a multiword object name ("wine glass")


def _read_noun_phrase(doc, i: int, begin: int, verb_lemma: str | None, out: list[Mention]) -> int:
    j, poss = _skip_determiners(doc, i)
    scan = _scan_phrase(doc, i, j, poss, i == begin, verb_lemma)
    if scan.last_noun is None:
        # no noun: maybe a bare possessive pronoun or a region ("the left" tagged ADJ)
        if scan.poss_pron is not None:
            out.append(Mention(scan.poss_pron, scan.poss_pron + 1, scan.poss_pron, "pron"))
        return max(scan.end, i + 1)
    last_noun = scan.last_noun
    end = last_noun + 1
    resume = None
    if scan.complement is not None:
        # the predicate ("rusty", "poison ivy") names no object of the picture
        resume = scan.complement
        while resume < len(doc) and _np_internal(doc[resume]):
            resume += 1
        run = _colour_run_start(doc, j, resume, verb_lemma)
        if run is not None and run < scan.complement:
            last_noun, end = run - 1, run  # "make the curtains sky blue": spaCy's predicate is "blue"
    if not scan.named_last and end == last_noun + 1 and last_noun == scan.last_noun:
        last_noun, end = _without_trailing_result(doc, j, last_noun, scan.end, i == begin, verb_lemma)
    m = Mention(i, end, last_noun, "np", poss_pron=scan.poss_pron, possessor=scan.possessor)
    if _is_region(doc, m):
        m.kind = "region"
    out.append(m)
    if resume is not None:
        return resume
    if scan.dir_of and end == scan.end:
        return scan.end + 1  # the direction word belongs to the gap: "right of"
    return end


def _without_trailing_result(
    doc, j: int, last_noun: int, stop: int, is_object: bool, verb_lemma: str | None
) -> tuple[int, int]:
    """(head, end) of a phrase (its words j..stop-1) without what the object becomes at its end:
    "the pond purple", "her nails bright red", "the curtains sky blue", "the table wooden", "the
    window brighter"; after a scene word, the verb's complement ("turn the weather stormy")."""
    run = _colour_run_start(doc, j, stop, verb_lemma)
    if run is not None:
        return run - 1, run
    last, p = low(doc[last_noun]), last_noun - 1
    if last in VERB_RESULT_WORDS and verb_lemma in COMPLEMENT_VERBS:
        if p >= j and _nounish(doc[p]) and not (last in MATERIAL_WORDS and low(doc[p]) in DIRECTION_WORDS):
            return p, p + 1  # (not "the right glass")
    elif (
        verb_lemma in COMPLEMENT_VERBS
        and p >= j
        and _nounish(doc[p])
        and (
            _predicate_of_verb(doc, last_noun)
            or (is_object and low(doc[p]) in GLOBAL_WORDS and doc[last_noun].tag_ == "JJ")
            or (is_object and _ends_clause(doc, last_noun) and _adjective_form(low(doc[last_noun])))
        )
    ):
        return p, p + 1
    return last_noun, last_noun + 1


def _colour_run_start(doc, j: int, stop: int, verb_lemma: str | None) -> int | None:
    """Where a colour at the end of a phrase starts ("sky blue", "bright red", "light grey"), when
    an object comes before it; None without one. The shortest reading that leaves an object wins
    for "the sky light blue" (the sky, light blue)."""
    last = stop - 1
    if last <= j or low(doc[last]) not in COLOR_WORDS:
        return None
    s = last
    while s - 1 > j and _colour_part(doc[s - 1]):
        s -= 1
    starts = [k for k in range(s, last + 1) if _nounish(doc[k - 1]) and low(doc[k - 1]) not in COLOR_WORDS]
    objects = [k for k in starts if low(doc[k - 1]) not in DIRECTION_WORDS]  # before regions ("the left")
    return (objects or starts or [None])[0]


def _colour_part(tok) -> bool:
    word = low(tok)
    return word in COLOR_WORDS or word in COLOR_MODIFIERS or (tok.tag_ in ("JJ", "RB") and not _nounish(tok))


def _adjective_form(word: str) -> bool:
    """Whether a word has an adjective's ending that spaCy often tags as a noun after another noun:
    "make the beach sandy", "make the cathedral gothic" ("-y" after a consonant, "-ic", "-ous")."""
    if len(word) < 4:
        return False
    return (word.endswith("y") and word[-2] not in "aeiou") or word.endswith(("ic", "ous"))


def _predicate_of_verb(doc, k: int) -> bool:
    """Whether the last word of a clause is what the verb makes of its object: spaCy parses "make
    the mountains in the background snowy" with "snowy" as the verb's complement."""
    tok = doc[k]
    return (
        tok.dep_ in ("oprd", "acomp", "ccomp", "xcomp")
        and tok.head.i < k
        and tok.head.pos_ in ("VERB", "AUX")
        and _ends_clause(doc, k)
    )


def _skip_determiners(doc, i: int) -> tuple[int, int | None]:
    """(first token after the determiners starting at i, index of a possessive pronoun among them)."""
    j = i
    poss = None
    if _is_determiner(doc[i]):
        while j < len(doc) and _is_determiner(doc[j]):
            if low(doc[j]) in OWNER_PRONOUNS:
                poss = j
            j += 1
    return j, poss


def _scan_phrase(doc, i: int, j: int, poss: int | None, is_object: bool, verb_lemma: str | None) -> _PhraseScan:
    """Read the modifiers and nouns of the phrase that starts at i (its determiners end at j)."""
    n = len(doc)
    scan = _PhraseScan(end=j, poss_pron=poss)
    k = j
    while k < n:
        named = multiword_object_at(doc, k)
        if named:
            scan.last_noun = k + named - 1  # "the fire hydrant": one object, whatever the tags
            scan.named_last = True
            k += named
            continue
        compound = not _np_internal(doc[k]) and _verb_tagged_compound(doc, k, scan.last_noun, is_object, verb_lemma)
        if not (compound or _np_internal(doc[k])):
            break
        word = low(doc[k])
        # "the lamp right of the bed": a direction word followed by "of" ends the NP
        if word in DIRECTION_WORDS and scan.last_noun is not None and k + 1 < n and low(doc[k + 1]) == "of":
            scan.dir_of = True
            break
        if word in DEPTH_WORDS and scan.last_noun is not None:
            break  # "the cup nearest to the plate": the place starts here
        if (
            verb_lemma in BARE_VERB_COMPLEMENT_VERBS
            and word in BARE_PREDICATES
            and scan.last_noun is not None
            and _ends_clause(doc, k)
        ):
            scan.complement = k  # "make the person in the foreground smile": what the object does
            break
        if is_object and verb_lemma in COMPLEMENT_VERBS and _small_clause_predicate(doc, k, scan.last_noun):
            scan.complement = k  # "make the bridge rusty": the object, then what it becomes
            break
        if doc[k].tag_ == "POS" or word in ("'s", "'"):
            if scan.last_noun is not None:
                scan.possessor = Mention(i, k, scan.last_noun, "np", poss_pron=scan.poss_pron)
                scan.poss_pron = None
            k += 1
            continue
        if _starts_second_phrase(doc, k, scan.last_noun):
            break
        if compound or _nounish(doc[k]):
            scan.last_noun = k
            scan.named_last = False
        elif doc[k].tag_ in ("VBG", "VBN") and not (k + 1 < n and _np_internal(doc[k + 1])):
            break
        k += 1
    scan.end = k
    return scan


def _ends_clause(doc, k: int) -> bool:
    """Whether token k is the last word before the end or a punctuation mark."""
    return k + 1 >= len(doc) or doc[k + 1].is_punct or low(doc[k + 1]) in ("and", "but", "please")


def _starts_second_phrase(doc, k: int, last_noun: int | None) -> bool:
    """ "The left woman short pink hair", "the wallpaper Scandinavian": after a lower-case common
    noun, an adjective before another noun or a capitalised word starts a second phrase."""
    if last_noun is None:
        return False
    noun, tok = doc[last_noun], doc[k]
    if low(noun) != noun.text or noun.tag_ not in ("NN", "NNS") or low(tok) in DIRECTION_WORDS:
        return False
    if (
        tok.tag_ in ("JJ", "JJR", "JJS")
        and low(tok) not in ORDINALS
        and any(is_noun(doc[q]) for q in range(k + 1, min(len(doc), k + 4)))
    ):
        return True
    return tok.text[:1].isupper() and tok.tag_ in ("NNP", "NNPS", "NN", "JJ")


def _small_clause_predicate(doc, k: int, last_noun: int | None) -> bool:
    """Whether token k starts the predicate of a small clause after the object: spaCy parses
    "make the bridge rusty" as bridge <-nsubj- rusty <-ccomp- make (tagging "rusty" as a noun)."""
    if last_noun is None or last_noun != k - 1:
        return False
    subj, pred = doc[last_noun], doc[k]
    if pred.tag_ in ("VB", "VBD", "VBP", "VBZ", "MD") or low(subj) in DIRECTION_WORDS:
        return False  # "have the top rose be wilted": "rose" is the noun, "top" its modifier
    if subj.dep_ == "dobj" and pred.dep_ == "oprd" and pred.head.i == subj.head.i:
        return True  # "turn the weather stormy"
    return (
        subj.dep_ == "nsubj"
        and subj.head.i == k
        and pred.head.i < subj.i
        and pred.head.pos_ in ("VERB", "AUX")
        and pred.dep_ in ("ccomp", "xcomp", "oprd", "acomp", "dobj")
    )


def _verb_tagged_compound(doc, k: int, last_noun: int | None, is_object: bool, verb_lemma: str | None) -> bool:
    """ "Turn the books stack on the right into ...": a noun after a noun, mis-tagged as a verb.

    Only in the direct object of an imperative whose verb cannot take an object followed by a bare
    verb (unlike "make the birds fly", "let the dogs run"), and only before a preposition ("on",
    "next to") or the end.
    """
    if not is_object or verb_lemma is None or verb_lemma in BARE_VERB_COMPLEMENT_VERBS:
        return False
    if last_noun is None or last_noun != k - 1 or doc[last_noun].tag_ not in ("NN", "NNS"):
        return False
    tok = doc[k]
    word = low(tok)
    if (
        tok.tag_ not in ("VB", "VBP", "VBZ")
        or not tok.text.isalpha()
        or not tok.text.islower()
        or word in VERB_FORMS
        or word in AUXILIARIES
        or word in LINKING_VERBS
    ):
        return False
    nxt = doc[k + 1] if k + 1 < len(doc) else None
    return nxt is None or nxt.is_punct or nxt.tag_ in ("IN", "TO") or low(nxt) in LOC_PREPS


def _is_region(doc, m: Mention) -> bool:
    """Whether a phrase names a part of the picture ("the left side", "the top corner") rather than
    an object: a region noun with nothing but determiners, direction words and region modifiers."""
    head = low(doc[m.head])
    if head not in REGION_NOUNS:
        return False
    has_dir = False
    for t in doc[m.start : m.end]:
        word = low(t)
        if t.i == m.head:
            continue
        if word in DIRECTION_WORDS:
            has_dir = True
        elif not (_region_modifier(t) or (m.possessor is not None and m.possessor.start <= t.i < m.possessor.end)):
            return False
    return has_dir or head in _DIRECTIONAL_REGION_HEADS


def _region_modifier(tok) -> bool:
    """A word that may stand before a region noun: "the", "her", "'s", "far", "upper", "whole" ..."""
    word = low(tok)
    return (
        word in DETERMINERS
        or tok.tag_ in DETERMINER_TAGS + ("POS",)
        or word in REGION_MODS
        or word in POSSESSIVE_PRONOUNS + ("'s",)
    )


# --------------------------------------------------------------------------------------------
# Reading a mention
# --------------------------------------------------------------------------------------------
def span_text(doc, start: int, end: int) -> str:
    return "".join(t.text_with_ws for t in doc[start:end]).strip()


def owned_by_pronoun(doc, m: Mention) -> bool:
    """ "his shirt", "her left cheek", "their hats": a thing of a person named by a possessive
    pronoun (not a region of them: "her left side")."""
    return (
        m.kind == "np"
        and m.poss_pron is not None
        and m.head != m.poss_pron
        and low(doc[m.poss_pron]) in OWNER_PRONOUNS
        and low(doc[m.head]) not in REGION_NOUNS
    )


def object_word(doc, m: Mention) -> str:
    """The word of the object itself: the head noun of "his shirt" (where `head_word` gives the
    person), else `head_word`."""
    return low(doc[m.head]) if owned_by_pronoun(doc, m) else head_word(doc, m)


def head_word(doc, m: Mention) -> str:
    """The word the mention is about, lower-case: the head noun, the pronoun, the person of "her
    hair", or the owner of a region ("the car's left side" -> car)."""
    if m.kind == "pron":
        return low(doc[m.head])
    if m.possessor is not None:
        return head_word(doc, m.possessor) if low(doc[m.head]) in REGION_NOUNS else low(doc[m.head])
    if m.poss_pron is not None and low(doc[m.poss_pron]) in PERSON_PRONOUNS:
        return low(doc[m.poss_pron])
    return low(doc[m.head])


def is_plural(doc, m: Mention) -> bool:
    hw = object_word(doc, m)
    if hw in PLURAL_PRONOUNS:
        return True
    if hw in PERSON_PRONOUNS:
        return False
    if doc[m.head].tag_ in ("NNS", "NNPS"):
        return True
    return any(low(t) in PLURAL_QUANT for t in doc[m.start : m.end])


def is_indefinite(doc, m: Mention) -> bool:
    """A new thing: "a vase", "some trees", "two cats", bare nouns ("more trees", "Bigfoot")."""
    first = doc[m.start]
    word = low(first)
    if word in ("a", "an", "some", "more", "another", "several", "many", "few", "extra", "additional") or (
        first.like_num and word not in ORDINALS
    ):
        return True
    if m.kind != "np" or m.poss_pron is not None or m.possessor is not None:
        return False
    if word in DETERMINERS or first.tag_ in DETERMINER_TAGS:
        return False
    return not any(low(t) in ORDINALS for t in doc[m.start : m.end])


def grounding_phrase(doc, m: Mention, mentions: list[Mention], drop: set[int]) -> str:
    """What the detector should look for: "man"/"woman" for a personal pronoun, the plural noun a
    plural pronoun stands for (else "people"), else the phrase without determiners, ordinals,
    direction words and the tokens in `drop` ("his shirt" -> "shirt")."""
    hw = object_word(doc, m)
    if hw in PRONOUN_GROUNDING:
        return PRONOUN_GROUNDING[hw]
    if hw in PLURAL_PRONOUNS:
        return _plural_antecedent(doc, m, mentions) or "people"
    words = []
    for t in doc[m.start : m.end]:
        word = low(t)
        if (
            t.i in drop
            or word in DETERMINERS
            or t.tag_ in DETERMINER_TAGS
            or word in ORDINALS
            or word in DIRECTION_WORDS
            or word in DEPTH_WORDS
            or word in ("far",)
            or word in POSSESSIVE_PRONOUNS
        ):
            continue
        words.append(t.text_with_ws)
    phrase = "".join(words).strip()
    phrase = re.sub(r"^[-\s]+|[-\s]+$", "", phrase)
    return phrase or doc[m.head].text


def _plural_antecedent(doc, m: Mention, mentions: list[Mention]) -> str | None:
    """The head of the first plural noun phrase before `m` ("the dogs ... them" -> dogs)."""
    for other in mentions:
        if other is m or other.kind != "np" or other.start > m.start:
            continue
        if doc[other.head].tag_ in ("NNS", "NNPS") and low(doc[other.head]) not in GLOBAL_WORDS:
            return low(doc[other.head])
    return None


def direction_of(doc, m: Mention) -> str | None:
    """The direction a region names ("the left side" -> left; "the top left corner" -> left)."""
    vertical = None
    for t in doc[m.start : m.end]:
        word = low(t)
        if word in DIRECTION_WORDS:
            if word in ("top", "bottom") and t.i < m.head and low(doc[m.head]) in ("left", "right", "corner"):
                # "the top left corner": prefer the horizontal word when present ("the top corner": top)
                vertical = vertical or DIRECTION_WORDS[word]
                continue
            return DIRECTION_WORDS[word]
    return vertical or SCENE_REGIONS.get(low(doc[m.head]))


def inline_direction(doc, m: Mention) -> tuple[str | None, list[int]]:
    """Direction adjectives inside an object NP ("the left car", "the left-hand building"): the
    direction, and the indices of the tokens that say it (dropped from the simplified instruction)."""
    found = None
    idx: list[int] = []
    for k in range(m.start, m.end):
        word = low(doc[k])
        if k == m.head:
            continue
        if word in DIRECTION_WORDS:
            found = found or DIRECTION_WORDS[word]
            idx.append(k)
            # "left-hand", "right-side", "top-most"
            if (
                k + 2 < m.end
                and doc[k + 1].tag_ == "HYPH"
                and low(doc[k + 2]) in ("hand", "side", "most")
                and k + 2 != m.head
            ):
                idx += [k + 1, k + 2]
            if k - 1 >= m.start and low(doc[k - 1]) in ("far", "very", "extreme"):
                idx.append(k - 1)
        elif word in ("left-hand", "right-hand", "right-side", "left-side", "top-most"):
            found = found or DIRECTION_WORDS[word.split("-")[0]]
            idx.append(k)
        elif word in DEPTH_WORDS:
            found = found or DEPTH_WORDS[word]  # "the nearest car"
            idx.append(k)
    return found, sorted(set(idx))


def object_phrases(doc, mentions: list[Mention]) -> list[str]:
    """The distinct noun phrases that may name objects of the picture (no pronouns, regions or
    scene words), in order: the detector's candidates."""
    out: list[str] = []
    for m in mentions:
        if m.kind in ("pron", "region"):
            continue
        if low(doc[m.head]) in GLOBAL_WORDS:
            continue
        text = span_text(doc, m.start, m.end)
        if text.lower() not in (p.lower() for p in out):
            out.append(text)
    return out
