"""The analysis of one parsed instruction: which object the edit is about, where it is, and what the
editor should be told.

`analyse_doc` runs phases in order over one `_Reading` (the doc, its verb and mentions, and the
fields found so far); a phase that settles the answer early (a scene-level edit, a line that is not
an instruction) returns it, and the rest are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from .imperative import find_verb, kind_for
from .lexicon import (
    ATTRIBUTE_NOUNS,
    COLOR_WORDS,
    COMPARATIVES,
    CONTAINER_NOUNS,
    DEPTH_REGIONS,
    DEPTH_WORDS,
    DIRECTION_WORDS,
    ENGLISH_CUES,
    GLOBAL_WORDS,
    LOC_PREPS,
    LOCATIVE_TO_VERBS,
    MATERIAL_WORDS,
    NEAR_TO,
    ORDINALS,
    PERSON_PRONOUNS,
    PICTURE_OBJECT_MODIFIERS,
    PICTURE_OBJECT_VERBS,
    PICTURE_WORDS,
    PORTION_NOUNS,
    PREFIX_SKIP,
    PREP_DIRECTION,
    QUANTITY_NOUNS,
    RESULT_PREPS,
    SCENE_REGIONS,
    STYLE_WORDS,
    TRANSFORM_VERBS,
    is_noun,
    low,
)
from .mentions import (
    Mention,
    direction_of,
    find_mentions,
    grounding_phrase,
    head_word,
    inline_direction,
    is_indefinite,
    is_plural,
    object_phrases,
    object_word,
    owned_by_pronoun,
    span_text,
)


@dataclass
class InstructionAnalysis:
    """What an instruction asks for.

    kind: "edit" | "remove" | "add" | "global" (a scene-level edit: no object to ground);
    target / target_head / grounding_phrase: the object edited, its head word, and what a detector
    should look for ("the two left cars" / "cars" / "cars"); for "add", the target is set only
    when the new thing goes onto an existing one;
    direction / ordinal / relation: "left"|"right"|"top"|"bottom"|"center", 1-based ordinal, and
    "absolute" (a place in the picture) or "relative" (a place next to `anchor`);
    anchor / anchor_head: the reference object ("the bed" in "the lamp right of the bed");
    simplified: the instruction for the editor, without the locating words (edits and removals);
    phrases: every noun phrase that may name an object of the picture.
    """

    kind: str = "global"
    target: str | None = None
    target_head: str | None = None
    grounding_phrase: str | None = None
    plural: bool = False
    direction: str | None = None
    ordinal: int | None = None
    relation: str | None = None
    anchor: str | None = None
    anchor_head: str | None = None
    simplified: str = ""
    phrases: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            f.name: (list(getattr(self, f.name)) if f.name == "phrases" else getattr(self, f.name))
            for f in fields(self)
        }


def as_global(res: InstructionAnalysis) -> InstructionAnalysis:
    """Make `res` a scene-level edit: no object, no place (the phrases and simplified text stay)."""
    res.kind = "global"
    res.target = res.target_head = res.grounding_phrase = None
    res.plural = False
    res.direction = res.ordinal = res.relation = res.anchor = res.anchor_head = None
    return res


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------
@dataclass
class _Reading:
    """One instruction under analysis: the parse, and what the phases have found so far."""

    doc: Any
    text: str
    res: InstructionAnalysis
    verb: int | None  # index of the imperative verb (None: a description)
    lemma: str | None
    base: int  # where the verb's objects start (0 without a verb)
    mentions: list[Mention]
    kind: str | None  # "edit" | "remove" | "add" (None until known)
    loc_to: bool  # the verb's "to"/"into" name a place ("move ... to the left")
    target: Mention | None = None
    tidx: int | None = None  # index of `target` in `mentions`
    loc_from: int | None = None  # first mention index to read locating phrases from
    anchor: Mention | None = None
    direction: str | None = None
    relation: str | None = None
    ordinal: int | None = None
    drop: set[int] = field(default_factory=set)  # token indices removed in ``simplified``
    global_region: bool = False  # a scene-level edit restricted to a region ("the left side")
    not_antecedent: set[int] = field(default_factory=set)  # mentions a plural pronoun must not stand for
    not_objects: set[int] = field(default_factory=set)  # mentions that name no object: contents, scene parts
    one_stands_for: int | None = None  # the token "the one" refers to

    def gap(self, idx: int):
        """The tokens between mention idx and the one before it (or the verb's objects' start)."""
        prev_end = self.mentions[idx - 1].end if idx > 0 else self.base
        return self.doc[prev_end : self.mentions[idx].start]

    def intro(self, idx: int) -> list[str]:
        """The words of `gap(idx)`, lower-case: "on the left of", "into", "instead of"."""
        return [low(t) for t in self.gap(idx)]

    def is_result(self, words: list[str]) -> bool:
        """Whether the words before a mention introduce what the object becomes ("into a sofa",
        "with a cactus"), rather than a place."""
        if not words or words[-2:] in NEAR_TO:
            return False  # "the lamp next to the bed": a place, not the result
        if self.loc_to or self.kind == "add":
            return any(w in ("with", "as", "like", "instead", "than", "for") for w in words)
        if words[-1] in LOC_PREPS and words[-1] not in ("to", "into"):
            return False
        return any(w in RESULT_PREPS for w in words)

    @staticmethod
    def is_loc(words: list[str]) -> bool:
        return bool(words) and (words[-1] in LOC_PREPS or words[-2:] in NEAR_TO)

    def of_phrase(self, idx: int) -> bool:
        """Mention idx exists, is a noun phrase, and follows a bare "of" ("the color of the road")."""
        return idx < len(self.mentions) and self.intro(idx) == ["of"] and self.mentions[idx].kind == "np"

    def owner(self, idx: int) -> bool:
        """`of_phrase(idx)` naming an object, not the scene: "the roof of the cabin"."""
        return self.of_phrase(idx) and head_word(self.doc, self.mentions[idx]) not in GLOBAL_WORDS


Phase = Callable[[_Reading], InstructionAnalysis | None]
SCENE_PREPS = ("in", "on", "at", "into", "across", "up", "toward", "towards")


def analyse_doc(doc, text: str) -> InstructionAnalysis:
    """Analyse one parsed instruction (`text` is its text). May raise on an unexpected parse; the
    callers in `instruction` fall back to a global edit."""
    res = InstructionAnalysis(simplified=text)
    if len(doc) == 0:
        return res
    r = _read_verb_and_mentions(doc, text, res)
    for phase in _PHASES:
        done = phase(r)
        if done is not None:
            return done
    return _fill_result(r)


def _read_verb_and_mentions(doc, text: str, res: InstructionAnalysis) -> _Reading:
    verb, lemma, begin = find_verb(doc)
    base = begin if verb is not None else 0
    # "put in a herd of elk" vs "put in the twilight zone": a particle only before a new thing
    if (
        verb is not None
        and lemma == "add"
        and begin > 0
        and low(doc[begin - 1]) == "in"
        and low(doc[verb]) in ("put", "bring", "set")
        and begin < len(doc)
        and low(doc[begin]) in ("the", "this", "that")
    ):
        base = begin - 1
    mentions = find_mentions(doc, base, lemma)
    res.phrases = object_phrases(doc, mentions)
    return _Reading(
        doc=doc,
        text=text,
        res=res,
        verb=verb,
        lemma=lemma,
        base=base,
        mentions=mentions,
        kind=kind_for(lemma) if verb is not None else None,
        loc_to=lemma in LOCATIVE_TO_VERBS,
    )


# --------------------------------------------------------------------------------------------
# Phases: the target
# --------------------------------------------------------------------------------------------
def _target_instead_of(r: _Reading) -> None:
    """ "use a gnome instead of a pilot", "instead of the ball ..., put ...": the replaced thing."""
    for idx, m in enumerate(r.mentions):
        if r.intro(idx)[-2:] == ["instead", "of"] and m.kind == "np" and not _scene_or_style(r.doc, m):
            if r.verb is None or r.lemma in (
                "use",
                "put",
                "add",
                "have",
                "place",
                "draw",
                "show",
                "make",
                "let",
                "insert",
            ):
                r.tidx, r.target, r.kind, r.loc_from = idx, m, "edit", idx + 1
            return


def _target_of_description(r: _Reading) -> InstructionAnalysis | None:
    """No imperative: a description ("She is wearing a kimono", "A cloud above the valley") is
    about its first noun phrase; anything else is a global edit (or not English)."""
    if r.target is not None or r.verb is not None:
        return None
    doc, res = r.doc, r.res
    if not r.mentions or low(doc[0]) in (
        "as",
        "in",
        "with",
        "by",
        "like",
        "at",
        "to",
        "into",
        "more",
        "less",
        "very",
        "too",
        "from",
        "of",
        "for",
        "on",
        "without",
        "behind",
        "under",
        "over",
        "above",
        "below",
        "inside",
        "near",
    ):
        return res
    if any(w not in PREFIX_SKIP for w in r.intro(0)):
        return res
    first = r.mentions[0]
    if first.kind == "region":
        return res
    if not any(low(t) in ENGLISH_CUES for t in doc):
        res.phrases = []
        return res  # "asdf qwer", "mach das Auto rot"
    r.tidx, r.target, r.loc_from = 0, first, 1
    r.kind = "add" if low(doc[first.start]) in ("a", "an", "some", "another") or doc[first.start].like_num else "edit"
    return None


def _target_of_verb(r: _Reading) -> InstructionAnalysis | None:
    """The imperative's first mention is its object, unless it is the result ("change to a castle":
    a global edit) or a place ("put on the left a ...": locating phrases from the first mention)."""
    if r.target is not None or r.verb is None or not r.mentions:
        return None
    first_words = r.intro(0)
    if first_words and r.is_result(first_words):
        return as_global(r.res)  # "change to a castle", "swap with a faery"
    if r.is_loc(first_words):
        r.loc_from = 0  # "put on the left a ...", "Locate in a desert"
    else:
        r.tidx, r.target, r.loc_from = 0, r.mentions[0], 1
    return None


def _region_target(r: _Reading) -> None:
    """A region as the object: "the left side of the car" is the car (on its left); "the left side"
    alone is a scene-level edit restricted to that region."""
    if r.target is None or r.target.kind != "region":
        return
    d = direction_of(r.doc, r.target)
    if r.owner(r.tidx + 1):
        r.direction, r.relation = d, "absolute"
        r.drop.update(range(r.target.start, r.mentions[r.tidx + 1].start))
        r.tidx += 1
        r.target = r.mentions[r.tidx]
        r.loc_from = r.tidx + 1
    else:
        r.global_region = True
        r.direction, r.relation = d, ("absolute" if d else None)
        r.target = None
        r.loc_from = None


def _settle_target(r: _Reading) -> InstructionAnalysis | None:
    """From the object as named to the object edited, and whether it is added or edited."""
    if r.target is None:
        return None
    if r.lemma == "apply" and not _applied_to(r):
        return as_global(r.res)  # "apply a film noir look"
    named = r.target
    _follow_of_nouns(r)
    hw = head_word(r.doc, r.target)
    if r.target.kind == "pron" and hw not in PERSON_PRONOUNS:
        return as_global(r.res)  # "make it night", "put it in a lake"
    if hw == "one" and r.target.kind == "np":
        r.one_stands_for = _antecedent_of_one(r)  # "the one in the middle"
    elif hw in PICTURE_WORDS and not (r.kind == "add" and is_indefinite(r.doc, r.target)):
        if not _picture_as_object(r):
            return as_global(r.res)  # "make the photo black and white"
    elif hw in GLOBAL_WORDS and not (r.kind == "add" and is_indefinite(r.doc, r.target)):
        return as_global(r.res)
    if low(r.doc[r.target.head]) in ATTRIBUTE_NOUNS and r.target is named:
        if not _attribute_owner(r):
            return as_global(r.res)  # "change the color to green"
        named = r.target
    if _recipient(r):
        named = r.target
    indefinite = is_indefinite(r.doc, named)
    if r.kind == "add" and r.verb is not None and not indefinite:
        r.kind = "edit"  # "put the cat on the sofa": it exists already
    elif r.kind == "edit" and r.verb is not None and indefinite and r.lemma not in TRANSFORM_VERBS:
        r.kind = "add"  # "have a fire on the right", "draw a cat"
    return None


def _applied_to(r: _Reading) -> bool:
    """ "apply a vintage filter to the sky": the sky is the object; False when nothing is named."""
    for idx in range(r.tidx + 1, len(r.mentions)):
        m = r.mentions[idx]
        if (
            r.intro(idx)[-1:] in (["to"], ["on"], ["onto"])
            and m.kind == "np"
            and head_word(r.doc, m) not in GLOBAL_WORDS
        ):
            r.tidx, r.target, r.loc_from, r.kind = idx, m, idx + 1, "edit"
            return True
    return False


def _antecedent_of_one(r: _Reading) -> int | None:
    """The noun "one" stands for: the last noun before it ("of the three cups, paint the one in the
    middle red" -> cups), or None when the instruction names none."""
    for k in range(r.target.start - 1, -1, -1):
        tok = r.doc[k]
        if is_noun(tok) and low(tok) not in GLOBAL_WORDS and k != r.verb and low(tok) not in DIRECTION_WORDS:
            return k
    return None


def _picture_as_object(r: _Reading) -> bool:
    """Whether a picture word names a thing in the picture: the verb can only mean one ("remove
    the painting", "hang the photo"), a modifier says so ("the framed photo", "the left painting"),
    or a place follows ("the picture above the sofa", "the photo on the left")."""
    if r.lemma in PICTURE_OBJECT_VERBS:
        return True
    t = r.target
    for tok in r.doc[t.start : t.head]:
        word = low(tok)
        if word in PICTURE_OBJECT_MODIFIERS or word in DIRECTION_WORDS or word in ORDINALS or word in DEPTH_WORDS:
            return True
    nxt = r.tidx + 1
    if nxt >= len(r.mentions):
        return False
    words, m = r.intro(nxt), r.mentions[nxt]
    named_thing = m.kind == "np" and not _scene_or_style(r.doc, m)
    if r.is_result(words):
        return named_thing  # "change the painting into a sculpture", not "... into a watercolor"
    if not r.is_loc(words) or words[-1] in ("of", "from"):
        return False  # "the picture of a dog", "the image from a movie"
    return m.kind == "region" or named_thing


def _scene_or_style(doc, m: Mention) -> bool:
    """Whether a phrase names a look rather than a thing: "a watercolor", "the night", "red"."""
    word = low(doc[m.head])
    return (
        head_word(doc, m) in GLOBAL_WORDS
        or word in PICTURE_WORDS
        or word in STYLE_WORDS
        or word in COLOR_WORDS
        or word in MATERIAL_WORDS
    )


def _follow_of_nouns(r: _Reading) -> None:
    """Attribute, quantity and portion nouns: "the color of the road" -> the road; "a pair of shoes"
    -> shoes; "the slice of pizza" -> pizza."""
    while low(r.doc[r.target.head]) in ATTRIBUTE_NOUNS | QUANTITY_NOUNS | PORTION_NOUNS and r.of_phrase(r.tidx + 1):
        r.not_objects.add(r.tidx)
        r.tidx += 1
        r.target = r.mentions[r.tidx]
        r.loc_from = r.tidx + 1


def _attribute_owner(r: _Reading) -> bool:
    """ "The tiger's fur color" -> the tiger; "the road color" -> the road. False: no owner named."""
    t = r.target
    if t.possessor is not None:
        r.target = t.possessor
        return True
    if t.head - 1 >= t.start and is_noun(r.doc[t.head - 1]):
        r.target = Mention(t.start, t.head, t.head - 1, "np", poss_pron=t.poss_pron)
        return True
    return False


def _recipient(r: _Reading) -> bool:
    """ "Give wings to the left elephant": the recipient is the object (an edit of it)."""
    if (
        r.lemma in ("give", "hand", "offer", "grant")
        and is_indefinite(r.doc, r.target)
        and r.tidx + 1 < len(r.mentions)
        and r.intro(r.tidx + 1) == ["to"]
        and r.mentions[r.tidx + 1].kind != "region"
    ):
        r.tidx += 1
        r.target = r.mentions[r.tidx]
        r.loc_from = r.tidx + 1
        r.kind = "edit"
        return True
    return False


# --------------------------------------------------------------------------------------------
# Phases: the place
# --------------------------------------------------------------------------------------------
def _read_locating_phrases(r: _Reading) -> None:
    """The locating phrases after the object (for additions: after the new thing), up to the first
    word that is not about the place: the direction, relation and anchor."""
    idx = r.loc_from if r.loc_from is not None else len(r.mentions)
    while idx is not None and idx < len(r.mentions):
        idx = _locating_step(r, idx)


def _locating_step(r: _Reading, idx: int) -> int | None:
    """Read mention idx as part of a locating phrase; return the next mention to read, None to stop."""
    m = r.mentions[idx]
    words = r.intro(idx)
    if _ends_locating(r, idx, words):
        return None
    prep_dir = _preposition_direction(words)
    if m.kind == "region":
        return _locate_in_region(r, idx, words, prep_dir)
    if (
        r.kind == "add"
        and r.target is not None
        and m.kind == "pron"
        and words in (["on"], ["onto"], ["to"])
        and head_word(r.doc, m) in PERSON_PRONOUNS
        and idx == len(r.mentions) - 1
    ):
        # "put a crown on her", "add a scarf to him": the new thing is worn; the person is edited
        r.not_antecedent.add(r.tidx)
        r.tidx, r.target, r.kind = idx, m, "edit"
        return None
    if m.kind == "np" and head_word(r.doc, m) in SCENE_REGIONS and words[-1] in SCENE_PREPS:
        # "in the background", "in the sky": a part of the scene, not a reference object
        r.direction = r.direction or SCENE_REGIONS[head_word(r.doc, m)]
        r.relation = r.relation or "absolute"
        r.drop.update(range(m.start - len(words), m.end))
        r.not_objects.add(idx)
        return idx + 1
    if words == ["of"] and not prep_dir:
        return idx + 1  # "the dress of the girl to the left of ..."
    if (words[-1] == "of" and prep_dir) or r.is_loc(words):
        return _locate_by_reference(r, idx, words, prep_dir)
    return None


def _ends_locating(r: _Reading, idx: int, words: list[str]) -> bool:
    """Whether mention idx is past the locating phrases: after another verb, with no words before
    it, a new scene ("have him standing next to a car"), or what the object becomes."""
    m = r.mentions[idx]
    gap = r.gap(idx)
    if any(_is_verbish(t) for t in gap) and not (
        r.is_loc(words) and ((r.kind == "add" or r.target is None) or _relative_clause(gap))
    ):
        return True
    if not words:
        return True
    if (
        r.kind == "edit"
        and r.target is not None
        and low(r.doc[m.start]) in ("a", "an")
        and any(t.tag_ in ("VBG", "VBN") for t in gap)
    ):
        return True  # "have him standing next to a car": the new scene, not a reference object
    to_dir = (
        words[-1] in ("to", "into")
        and m.kind == "region"
        or (
            len(words) >= 2
            and words[-1] == "of"
            and words[0] in ("to", "into")
            and any(w in DIRECTION_WORDS for w in words)
        )
    )
    return r.is_result(words) and not to_dir


def _preposition_direction(words: list[str]) -> str | None:
    """The direction the words before a mention give: "above" -> top, "to the left of" -> left."""
    prep_dir = None
    for w in words:
        if w in PREP_DIRECTION and w not in ("left", "right", "top", "bottom"):
            prep_dir = prep_dir or PREP_DIRECTION[w]
        if w in DIRECTION_WORDS:
            prep_dir = prep_dir or DIRECTION_WORDS[w]
    return prep_dir


def _locate_in_region(r: _Reading, idx: int, words: list[str], prep_dir: str | None) -> int | None:
    """ "on the left", "at the bottom of the scene" (absolute), "on the left of the bed", "on her
    left side" (relative to the bed / to her)."""
    m = r.mentions[idx]
    d = direction_of(r.doc, m) or prep_dir
    lead = m.start - len(words)
    if m.possessor is not None or m.poss_pron is not None:
        r.anchor = m.possessor or Mention(m.poss_pron, m.poss_pron + 1, m.poss_pron, "pron")
        r.direction, r.relation = r.direction or d, "relative"
        r.drop.update(range(lead, m.end))
        return None
    if idx + 1 < len(r.mentions) and r.intro(idx + 1) == ["of"]:
        nxt = r.mentions[idx + 1]
        r.direction = r.direction or d
        r.drop.update(range(lead, nxt.end))
        if head_word(r.doc, nxt) in GLOBAL_WORDS or nxt.kind == "region":
            r.relation = r.relation or "absolute"  # "at the bottom of the scene"
            return idx + 2
        r.relation, r.anchor = "relative", nxt
        return None
    r.direction = r.direction or d or DEPTH_REGIONS.get(low(r.doc[m.head]))  # "the taxi at the front"
    r.relation = r.relation or "absolute"
    r.drop.update(range(lead, m.end))
    return idx + 1


def _locate_by_reference(r: _Reading, idx: int, words: list[str], prep_dir: str | None) -> int | None:
    """ "on the table", "next to the roof of the cabin": mention idx is the reference object, unless
    it names the scene, a colour, or (for additions) a new place ("put a bear in a cave")."""
    m = r.mentions[idx]
    if _not_a_reference(r, m, words, prep_dir):
        if prep_dir:
            r.drop.update(range(m.start - len(words), m.end))
        return idx + 1
    r.anchor = m
    r.direction, r.relation = r.direction or prep_dir, "relative"
    r.drop.update(range(m.start - len(words), m.end))
    # "the roof of the cabin", "the cabin's roof": the owner is the reference object
    if r.owner(idx + 1):
        idx += 1
        r.anchor = r.mentions[idx]
        r.drop.update(range(m.end, r.anchor.end))
    elif r.anchor.possessor is not None:
        r.anchor = r.anchor.possessor
    _region_after_reference(r, idx)
    if r.direction is None:
        d_in, _ = inline_direction(r.doc, r.anchor)
        if d_in:
            r.direction, r.relation = d_in, "absolute"  # "the cameras on the bottom shelf"
    return None


def _not_a_reference(r: _Reading, m: Mention, words: list[str], prep_dir: str | None) -> bool:
    hw = head_word(r.doc, m)
    if hw in GLOBAL_WORDS or low(r.doc[m.head]) in COLOR_WORDS or (m.kind == "pron" and hw not in PERSON_PRONOUNS):
        return True
    # "put a bear in a cave", "a beach in Hawaii"
    return (r.kind == "add" or r.target is None or r.loc_to) and (
        low(r.doc[m.start]) in ("a", "an")
        or (words[-1] == "in" and r.doc[m.head].tag_ in ("NNP", "NNPS") and not prep_dir)
    )


def _region_after_reference(r: _Reading, idx: int) -> None:
    """ "on the wall to the left of the closet" (the closet is the reference) / "on the person on
    the left" (an absolute place)."""
    if not (idx + 1 < len(r.mentions) and r.mentions[idx + 1].kind == "region" and r.is_loc(r.intro(idx + 1))):
        return
    region = r.mentions[idx + 1]
    lead = region.start - len(r.intro(idx + 1))
    rd = direction_of(r.doc, region)
    if r.owner(idx + 2):
        r.anchor, r.direction = r.mentions[idx + 2], rd or r.direction
        r.drop.update(range(lead, r.anchor.end))
    elif rd:
        r.direction, r.relation = rd, "absolute"
        r.drop.update(range(lead, region.end))


def _relative_clause(gap) -> bool:
    """'that's perched on', 'standing in', 'located at': a clause that only locates the object."""
    for t in gap:
        word = low(t)
        if (
            word in ("that", "which", "who", "is", "are", "'s", "was", "were", "being", "currently", "just", "right")
            or t.tag_ in ("VBG", "VBN", "RB")
            or word in LOC_PREPS
            or t.tag_ == "DT"
        ):
            continue
        return False
    return True


def _is_verbish(t) -> bool:
    """A verb (other than a direction or preposition mis-tagged as one), or a copula-like word."""
    if t.tag_ in ("VB", "VBZ", "VBP", "VBD", "MD") and low(t) not in DIRECTION_WORDS and low(t) not in LOC_PREPS:
        return True
    return low(t) in ("is", "are", "be", "was", "were", "wear", "look", "looks", "wearing")


def _target_details(r: _Reading) -> None:
    """Direction and ordinal words inside the object ("the second left car"), and its owner as the
    reference object ("the left man's beard", "the fur of the tiger")."""
    t = r.target
    if t is None:
        return
    d_in, idx_in = inline_direction(r.doc, t)
    if d_in is not None:
        r.direction = r.direction or d_in
        r.relation = r.relation or "absolute"
        r.drop.update(idx_in)
    for tok in r.doc[t.start : t.end]:
        if low(tok) in ORDINALS:
            r.ordinal = ORDINALS[low(tok)]
            r.drop.add(tok.i)
    if r.anchor is None and t.possessor is not None and r.kind != "add":
        r.anchor, r.relation = t.possessor, r.relation or "part"  # "the woman's dress"
    if r.tidx is not None and r.owner(r.tidx + 1) and low(r.doc[t.head]) in CONTAINER_NOUNS:
        r.not_objects.add(r.tidx + 1)  # "the glass of water": the glass, and no reference object
    elif (
        r.anchor is None
        and r.tidx is not None
        and r.kind != "add"
        and r.owner(r.tidx + 1)
        and low(r.doc[t.head]) not in QUANTITY_NOUNS
    ):
        r.anchor, r.relation = r.mentions[r.tidx + 1], r.relation or "part"  # "the roof of the cabin"
    if r.anchor is None and owned_by_pronoun(r.doc, t):
        # "his shirt": the shirt is segmented; the person is its owner
        r.anchor = Mention(t.poss_pron, t.poss_pron + 1, t.poss_pron, "pron")
        r.relation = r.relation or "part"


_PHASES: tuple[Phase, ...] = (
    _target_instead_of,
    _target_of_description,
    _target_of_verb,
    _region_target,
    _settle_target,
    _read_locating_phrases,
    _target_details,
)


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------
def _fill_result(r: _Reading) -> InstructionAnalysis:
    """Write what the phases found into the result. An addition names a target only when the new
    thing goes onto an existing object; an edit without a target is a global edit."""
    res, doc, target = r.res, r.doc, r.target
    if r.kind == "add":
        if target is not None and is_indefinite(doc, target):
            target = None
        res.kind = "add"
    elif target is None:
        as_global(res)
        if r.global_region:
            res.direction, res.relation = r.direction, r.relation
        return res
    else:
        res.kind = r.kind or "edit"
    relation = r.relation
    if target is not None:
        res.target = span_text(doc, target.start, target.end)
        res.target_head = object_word(doc, target)
        antecedents = [m for k, m in enumerate(r.mentions) if k not in r.not_antecedent]
        owner = target.possessor
        owner_words = set(range(owner.start, owner.end + 1)) if owner is not None and owner is r.anchor else set()
        # "the woman's dress": the detector looks for the dress; the woman is found as the anchor
        res.grounding_phrase = grounding_phrase(doc, target, antecedents, r.drop | owner_words)
        res.plural = is_plural(doc, target)
        if object_word(doc, target) == "one":
            stands_for = r.one_stands_for
            res.target_head = low(doc[stands_for]) if stands_for is not None else "one"
            res.grounding_phrase = doc[stands_for].text.lower() if stands_for is not None else "object"
    if r.anchor is not None:
        res.anchor = span_text(doc, r.anchor.start, r.anchor.end)
        res.anchor_head = head_word(doc, r.anchor)
        if relation is None:
            relation = "relative"
    res.direction = r.direction
    res.ordinal = r.ordinal
    res.relation = relation
    results = _result_mentions(r)
    res.phrases = object_phrases(doc, [m for k, m in enumerate(r.mentions) if k not in results])
    res.simplified = _simplify(doc, r.drop) if res.kind in ("edit", "remove") else r.text
    return res


def _result_mentions(r: _Reading) -> set[int]:
    """The mentions that name nothing the detector should look for: what the object becomes or is
    made of ("purple", "silk", "a dog" in "make the car purple", "turn the dress into silk",
    "replace the cat with a dog"; "Monet" in "in the style of Monet"), what a container holds, the
    counting word of "a slice of pizza", and parts of the scene ("in the background")."""
    out = set(r.not_objects)
    if r.kind == "add" or r.tidx is None:
        return out
    scene_words = GLOBAL_WORDS | ATTRIBUTE_NOUNS
    for idx in range(r.tidx + 1, len(r.mentions)):
        m = r.mentions[idx]
        if m is r.anchor:
            continue
        words = r.intro(idx)
        previous = r.mentions[idx - 1]
        if (
            low(r.doc[m.head]) in COLOR_WORDS | MATERIAL_WORDS | COMPARATIVES
            or (words and r.is_result(words))
            or (words == ["of"] and (idx - 1 in out or low(r.doc[previous.head]) in scene_words))
        ):
            out.add(idx)
    return out


def _simplify(doc, drop: set[int]) -> str:
    """The instruction without the tokens in `drop`, spaces and punctuation tidied."""
    if not drop:
        return doc.text
    s = "".join(t.text_with_ws for t in doc if t.i not in drop)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"\s+([.,!?;:])", r"\1", s)
    return s
