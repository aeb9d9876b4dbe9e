"""Instruction analysis for grounded instruction-based image editing (GGIP2P style).

``analyse("change the lamp right of the bed to a candle")`` tells which object the edit is about
("the lamp"), what a detector should look for ("lamp"), where it is ("right", relative to the
anchor "the bed") and what the editor should be told ("change the lamp to a candle").

Plain Python + spaCy (part-of-speech tags from an English pipeline), hand-written rules, no
trained model of our own and no ComfyUI import. ``analyse`` never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Iterable, Optional

from .spacy_pipeline import load_english

MAX_CHARS = 500
_UNNEEDED_PIPES = ("ner", "lemmatizer", "entity_linker", "entity_ruler", "textcat", "textcat_multilabel")

# --------------------------------------------------------------------------------------------
# Word lists
# --------------------------------------------------------------------------------------------
REMOVE_VERBS = {"remove", "delete", "erase", "eliminate", "drop", "omit", "exclude", "clear",
                "discard", "subtract", "rid", "hide", "vanish", "crop", "cut"}
ADD_VERBS = {"add", "put", "place", "insert", "include", "position", "hang", "attach", "install",
             "plant", "inject", "stick", "paste", "mount", "introduce", "append", "draw",
             "create", "show", "sit", "seat", "lay", "stand", "spawn", "build", "set", "bring",
             "throw", "perch", "float", "drape"}
# verbs where "to"/"into"/"with"/"as"/"like" introduce the result, not a place
EDIT_VERBS = {"make", "have", "turn", "change", "replace", "swap", "convert", "transform",
              "morph", "switch", "alter", "modify", "paint", "color", "colour", "dye", "shape",
              "give", "dress", "wear", "render", "exchange", "substitute", "trade", "let",
              "recolor", "recolour", "tint", "shade", "edit", "adjust", "increase", "decrease",
              "enlarge", "shrink", "reduce", "grow", "move", "shift", "rotate", "flip", "cover",
              "fill", "arrange", "combine", "use", "light", "brighten", "darken", "blur",
              "sharpen", "age", "redesign", "restyle", "style", "update", "upgrade", "rebuild",
              "reshape", "resize", "widen", "lengthen", "shorten", "thicken", "raise", "lower",
              "open", "close", "cast", "wrap", "decorate", "coat", "fix", "repair", "clean",
              "polish", "rename", "redo", "animate", "depict", "transplant", "relocate",
              "mutate", "stretch", "tilt", "see", "get", "take", "keep", "bend", "melt",
              "freeze", "burn", "break", "smash", "crack", "age", "splash", "spray", "sprinkle",
              "transfer", "evolve", "locate", "generate", "display", "establish", "emit",
              "drag", "arrange", "print", "produce", "render", "imagine", "envision",
              "infest", "scatter", "intensify", "infuse", "minimize", "minimise", "maximize",
              "sprinkle", "lighten", "deepen", "soften", "dim", "brighten", "enhance", "boost",
              "reverse", "invert", "swap", "fly", "float", "cover", "surround", "line", "frame",
              "place", "portray", "visualize", "visualise", "picture", "present", "morph", "upscale", "zoom", "colorize", "colourise",
              "colorise", "colourize", "illuminate", "highlight", "mirror", "duplicate", "copy",
              "multiply", "double", "paint", "outline", "bold", "emphasize", "emphasise"}
# verbs for which "to"/"into" name a place ("move the lamp to the left of the bed")
LOCATIVE_TO_VERBS = ADD_VERBS | {"move", "shift", "relocate", "drag", "push", "pull", "bring", "send",
                                 "position", "arrange", "transport", "carry", "slide", "locate"}
# verbs that transform an existing object even when it is named with "a" ("replace a bird ...")
TRANSFORM_VERBS = {"turn", "change", "replace", "swap", "convert", "transform", "morph", "switch",
                   "alter", "modify", "exchange", "substitute", "trade", "paint", "color", "colour",
                   "dye", "remove", "recolor", "recolour", "give", "dress", "wear", "shape",
                   "resize", "enlarge", "shrink", "move", "rotate", "flip", "delete", "erase"}
DATIVE_VERBS = {"give", "hand", "offer", "grant", "buy", "bring", "get", "wear", "lend", "send",
                "show", "dress"}
ALL_VERBS = REMOVE_VERBS | ADD_VERBS | EDIT_VERBS | {"take", "get"}
VERB_FORMS = {}
for _v in list(ALL_VERBS):
    for _f in (_v, _v + "s", _v + "ed", _v + "d"):
        VERB_FORMS.setdefault(_f, _v)
VERB_FORMS.update({"made": "make", "turned": "turn", "put": "put", "set": "set", "drew": "draw",
                   "took": "take", "got": "get", "gave": "give", "wore": "wear",
                   "colored": "color", "taken": "take"})

RESULT_PREPS = {"to", "into", "with", "as", "like", "for", "instead", "than"}
LOC_PREPS = {"on", "in", "at", "near", "beside", "besides", "behind", "above", "below", "under",
             "underneath", "beneath", "over", "onto", "inside", "within", "from", "by", "around",
             "across", "along", "against", "atop", "between", "among", "amongst", "outside",
             "next", "front", "off", "through", "beyond", "upon", "into", "to", "toward",
             "towards", "alongside", "opposite", "nearby", "close", "top", "bottom", "left",
             "right", "underside"}
# two-word prepositions ending in "to" that name a place ("next to the bed"), never a result
NEAR_TO = (["next", "to"], ["close", "to"], ["adjacent", "to"], ["closest", "to"], ["nearest", "to"])
PREP_DIRECTION = {"above": "top", "over": "top", "atop": "top", "top": "top", "onto": None,
                  "below": "bottom", "under": "bottom", "underneath": "bottom",
                  "beneath": "bottom", "bottom": "bottom", "left": "left", "right": "right"}

DIRECTION_WORDS = {
    "left": "left", "leftmost": "left", "left-most": "left", "lefthand": "left",
    "right": "right", "rightmost": "right", "right-most": "right", "righthand": "right",
    "top": "top", "upper": "top", "uppermost": "top", "topmost": "top", "highest": "top",
    "bottom": "bottom", "lower": "bottom", "lowest": "bottom", "lowermost": "bottom",
    "bottommost": "bottom",
    "center": "center", "centre": "center", "middle": "center", "central": "center",
    "centermost": "center", "midst": "center",
}
# nouns that name a region rather than an object ("the left", "the right side", "the top corner")
REGION_NOUNS = {"foreground", "left", "right", "top", "bottom", "center", "centre", "middle", "side", "sides",
                "corner", "corners", "edge", "edges", "half", "part", "portion", "section",
                "area", "region", "end", "midst", "hand", "upper", "lower", "front", "back",
                "leftmost", "rightmost", "topmost", "uppermost"}
REGION_MODS = {"far", "very", "extreme", "upper", "lower", "top", "bottom", "left", "right",
               "center", "centre", "middle", "-", "hand", "most", "side", "front", "back",
               "whole", "entire", "outer", "inner"}
ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
            "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "1st": 1, "2nd": 2, "3rd": 3,
            "4th": 4, "5th": 5}
COLOR_WORDS = {"red", "blue", "green", "yellow", "purple", "pink", "orange", "black", "white",
               "gray", "grey", "brown", "gold", "golden", "silver", "violet", "beige", "cyan",
               "magenta", "turquoise", "teal", "maroon", "navy", "lavender", "crimson", "bronze",
               "indigo", "tan", "ivory", "scarlet", "lilac", "khaki", "olive", "blonde", "blond",
               "colorful", "colourful", "transparent", "rainbow"}
PRONOUN_GROUNDING = {"he": "man", "him": "man", "his": "man", "himself": "man",
                     "she": "woman", "her": "woman", "hers": "woman", "herself": "woman"}
PLURAL_PRONOUNS = {"they", "them", "their", "theirs", "themselves"}
PERSON_PRONOUNS = set(PRONOUN_GROUNDING) | PLURAL_PRONOUNS
# words that never name a specific object of the picture
GLOBAL_WORDS = {"it", "this", "that", "its", "itself", "image", "picture", "photo",
                "photograph", "pic", "scene", "scenery", "setting", "location", "lighting",
                "style", "everything", "view", "atmosphere", "mood", "season", "weather",
                "time", "era", "version", "me", "you", "we", "us", "i", "one", "something",
                "anything", "all", "whole", "look", "vibe", "aesthetic", "theme", "feel",
                "tone", "overall", "setting", "night", "daytime", "nighttime", "morning",
                "evening", "afternoon", "dusk", "dawn", "twilight", "midnight", "noon", "winter",
                "summer", "autumn", "springtime", "wintertime", "summertime", "sunset", "sunrise", "environment", "place",
                "landscape", "these", "those", "there", "here", "what", "which", "who"}
ATTRIBUTE_NOUNS = {"color", "colour", "colors", "colours", "texture", "shade", "material",
                   "pattern", "size", "shape", "surface", "amount", "hue", "tint", "style",
                   "design", "appearance", "number", "length", "height", "width", "brightness"}
QUANTITY_NOUNS = {"pair", "pairs", "group", "groups", "bunch", "couple", "lot", "lots", "set",
                  "piece", "pieces", "herd", "flock", "crowd", "row", "pile", "stack", "bouquet",
                  "swarm", "school", "pack", "family", "kind", "type", "sort", "bit", "few",
                  "handful", "number", "dozen", "collection", "cluster", "team", "line"}
DETERMINERS = {"the", "a", "an", "this", "that", "these", "those", "some", "any", "each",
               "every", "all", "both", "another", "several", "many", "few", "no", "more",
               "other", "such", "its", "my", "your", "our"}
PLURAL_QUANT = {"all", "both", "these", "those", "several", "many", "two", "three", "four",
                "five", "six", "seven", "eight", "nine", "ten", "multiple", "few"}
PREFIX_SKIP = {"please", "now", "then", "just", "also", "instead", "ok", "okay", "so", "and",
               "kindly", "simply", "go", "ahead", "lets", "let's"}
# function words that show a verb-less line is an English description ("She is ...")
ENGLISH_CUES = {"is", "are", "was", "were", "be", "has", "have", "had", "wearing", "wears", "the",
                "a", "an", "in", "on", "with", "of", "at", "should", "will", "would", "looks",
                "look", "becomes", "become", "he", "she", "they", "his", "her", "their", "him",
                "them", "'s", "gets", "get", "stands", "sits", "holds", "holding", "and", "to",
                "from", "by", "for", "above", "below", "near", "behind", "under", "over"}
# verbs whose object may be followed by a bare verb ("make the birds fly", "let the dogs run")
BARE_VERB_COMPLEMENT_VERBS = {"make", "have", "let", "help", "see", "watch", "hear", "feel", "get"}
# verbs that take an object and then what it becomes ("make the bridge rusty", "paint the door red")
COMPLEMENT_VERBS = {"make", "paint", "color", "colour", "dye", "turn", "keep", "leave", "get", "render",
                    "have", "set", "tint", "recolor", "recolour"}
# verbs that follow a subject in sloppy causatives ("morph the lake look like a spider")
LINKING_VERBS = {"look", "seem", "appear", "become", "feel", "sound", "smell", "taste", "resemble",
                 "stay", "remain", "go", "come", "get", "turn", "grow", "wear", "hold", "sit", "stand"}
AUXILIARIES = {"be", "is", "are", "am", "do", "does", "have", "has", "can", "could", "will", "would",
               "shall", "should", "may", "might", "must", "need", "dare"}
NON_ENGLISH_RE = re.compile(r"[^\x00-\x7F\u00C0-\u024F\u2018\u2019\u201C\u201D\u2013\u2014]")


@dataclass
class InstructionAnalysis:
    kind: str = "global"
    target: Optional[str] = None
    target_head: Optional[str] = None
    grounding_phrase: Optional[str] = None
    plural: bool = False
    direction: Optional[str] = None
    ordinal: Optional[int] = None
    relation: Optional[str] = None
    anchor: Optional[str] = None
    anchor_head: Optional[str] = None
    simplified: str = ""
    phrases: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {f.name: (list(getattr(self, f.name)) if f.name == "phrases" else getattr(self, f.name))
                for f in fields(self)}


# --------------------------------------------------------------------------------------------
# Mentions: noun phrases re-segmented from spaCy's tags with the rules above
# --------------------------------------------------------------------------------------------
@dataclass
class _Mention:
    start: int
    end: int            # exclusive
    head: int           # token index of the head noun / pronoun
    kind: str           # "np" | "pron" | "region"
    poss_pron: Optional[int] = None   # index of a possessive personal pronoun (her hair)
    possessor: Optional["_Mention"] = None   # "her cheek" in "her cheek's left side"


def _low(tok) -> str:
    return tok.text.lower().replace("\u2019", "'")


def _is_noun(tok) -> bool:
    return tok.tag_ in ("NN", "NNS", "NNP", "NNPS") or tok.pos_ in ("NOUN", "PROPN")


def _np_internal(tok) -> bool:
    low = _low(tok)
    if low in DIRECTION_WORDS or low in ORDINALS or low in COLOR_WORDS or low == "far":
        return True
    if tok.tag_ in ("JJ", "JJR", "JJS", "CD", "NN", "NNS", "NNP", "NNPS", "HYPH", "POS", "VBG",
                    "VBN", "AFX", "FW"):
        return True
    return tok.pos_ in ("ADJ", "NOUN", "PROPN", "NUM")


def _np_start(tok) -> bool:
    low = _low(tok)
    if low in DETERMINERS or tok.tag_ in ("DT", "PDT", "PRP$") or low in ("her", "his", "their"):
        return True
    if tok.tag_ in ("POS", "HYPH", "VBG", "VBN"):
        return False
    return _np_internal(tok)


def _nounish(tok) -> bool:
    low = _low(tok)
    if low in DIRECTION_WORDS and low not in ("upper", "lower", "central"):
        return True
    return _is_noun(tok) or tok.tag_ in ("CD",) and False


def _mentions(doc, begin: int, verb_lemma: Optional[str]) -> list[_Mention]:
    out: list[_Mention] = []
    n = len(doc)
    i = begin
    while i < n:
        tok = doc[i]
        low = _low(tok)
        # personal pronouns stand alone (except possessive "her"/"his"/"their" + noun)
        if tok.tag_ == "PRP" or low in ("him", "them", "he", "she", "they", "it", "me", "us",
                                          "you", "i", "we", "hers", "theirs", "themselves",
                                          "himself", "herself", "itself"):
            nxt = doc[i + 1] if i + 1 < n else None
            if low == "her" and nxt is not None and _np_internal(nxt) and not (
                    i == begin and verb_lemma in DATIVE_VERBS) and _low(nxt) not in ("to",):
                pass  # possessive her: handled as an NP below
            else:
                out.append(_Mention(i, i + 1, i, "pron"))
                i += 1
                continue
        if low in ("this", "that") and (i + 1 >= n or not _np_internal(doc[i + 1])):
            out.append(_Mention(i, i + 1, i, "pron"))
            i += 1
            continue
        if not _np_start(tok):
            i += 1
            continue
        j = i
        poss = None
        if low in DETERMINERS or tok.tag_ in ("DT", "PDT", "PRP$") or low in ("her", "his", "their"):
            while j < n and (_low(doc[j]) in DETERMINERS or doc[j].tag_ in ("DT", "PDT", "PRP$")
                             or _low(doc[j]) in ("her", "his", "their")):
                if _low(doc[j]) in ("her", "his", "their"):
                    poss = j
                j += 1
        k = j
        last_noun = None
        possessor = None
        dir_of = False
        complement = None
        while k < n:
            compound = not _np_internal(doc[k]) and _verb_tagged_compound(doc, k, last_noun, i == begin,
                                                                          verb_lemma)
            if not (compound or _np_internal(doc[k])):
                break
            lk = _low(doc[k])
            # "the lamp right of the bed": a direction word followed by "of" ends the NP
            if lk in DIRECTION_WORDS and last_noun is not None and k + 1 < n and _low(doc[k + 1]) == "of":
                dir_of = True
                break
            if i == begin and verb_lemma in COMPLEMENT_VERBS and _small_clause_predicate(doc, k, last_noun):
                complement = k      # "make the bridge rusty": the object, then what it becomes
                break
            if doc[k].tag_ == "POS" or lk in ("'s", "'"):
                if last_noun is not None:
                    possessor = _Mention(i, k, last_noun, "np", poss_pron=poss)
                    poss = None
                k += 1
                continue
            if last_noun is not None and _low(doc[last_noun]) == doc[last_noun].text \
                    and doc[last_noun].tag_ in ("NN", "NNS") and lk not in DIRECTION_WORDS:
                # "the left woman short pink hair", "the wallpaper Scandinavian": a second phrase
                if doc[k].tag_ in ("JJ", "JJR", "JJS") and lk not in ORDINALS and any(
                        _is_noun(doc[q]) for q in range(k + 1, min(n, k + 4))):
                    break
                if doc[k].text[:1].isupper() and doc[k].tag_ in ("NNP", "NNPS", "NN", "JJ"):
                    break
            if compound or _nounish(doc[k]):
                last_noun = k
            elif doc[k].tag_ in ("VBG", "VBN") and not (k + 1 < n and _np_internal(doc[k + 1])):
                break
            k += 1
        if last_noun is None:
            # no noun: maybe a bare possessive pronoun or a region ("the left" tagged ADJ)
            if poss is not None:
                out.append(_Mention(poss, poss + 1, poss, "pron"))
            i = max(k, i + 1)
            continue
        end = last_noun + 1
        # "the pond purple", "the left yellow": a trailing colour word is the result, not the object
        if _low(doc[last_noun]) in COLOR_WORDS and last_noun - 1 >= j and _nounish(doc[last_noun - 1]):
            end = last_noun
            last_noun = last_noun - 1
        m = _Mention(i, end, last_noun, "np", poss_pron=poss, possessor=possessor)
        if _is_region(doc, m):
            m.kind = "region"
        out.append(m)
        i = end
        if dir_of and end == k:
            i = k + 1       # the direction word belongs to the gap: "right of"
        if complement is not None:
            i = complement  # the predicate ("rusty", "poison ivy") names no object of the picture
            while i < n and _np_internal(doc[i]):
                i += 1
    return out


def _small_clause_predicate(doc, k: int, last_noun: Optional[int]) -> bool:
    """Whether token k starts the predicate of a small clause after the object: spaCy parses
    "make the bridge rusty" as bridge <-nsubj- rusty <-ccomp- make (tagging "rusty" as a noun)."""
    if last_noun is None or last_noun != k - 1:
        return False
    subj, pred = doc[last_noun], doc[k]
    if pred.tag_ in ("VB", "VBD", "VBP", "VBZ", "MD") or _low(subj) in DIRECTION_WORDS:
        return False        # "have the top rose be wilted": "rose" is the noun, "top" its modifier
    return (subj.dep_ == "nsubj" and subj.head.i == k and pred.head.i < subj.i
            and pred.head.pos_ in ("VERB", "AUX") and pred.dep_ in ("ccomp", "xcomp", "oprd", "acomp", "dobj"))


def _verb_tagged_compound(doc, k: int, last_noun: Optional[int], is_object: bool,
                          verb_lemma: Optional[str]) -> bool:
    """"Turn the books stack on the right into ...": a noun after a noun, mis-tagged as a verb.

    Only in the direct object of an imperative whose verb cannot take an object followed by a bare
    verb (unlike "make the birds fly", "let the dogs run"), and only before a preposition ("on",
    "next to") or the end.
    """
    if not is_object or verb_lemma is None or verb_lemma in BARE_VERB_COMPLEMENT_VERBS:
        return False
    if last_noun is None or last_noun != k - 1 or doc[last_noun].tag_ not in ("NN", "NNS"):
        return False
    tok = doc[k]
    low = _low(tok)
    if tok.tag_ not in ("VB", "VBP", "VBZ") or not tok.text.isalpha() or not tok.text.islower() \
            or low in VERB_FORMS or low in AUXILIARIES or low in LINKING_VERBS:
        return False
    nxt = doc[k + 1] if k + 1 < len(doc) else None
    return nxt is None or nxt.is_punct or nxt.tag_ in ("IN", "TO") or _low(nxt) in LOC_PREPS


def _is_region(doc, m: _Mention) -> bool:
    head = _low(doc[m.head])
    if head not in REGION_NOUNS:
        return False
    has_dir = False
    for t in doc[m.start:m.end]:
        low = _low(t)
        if t.i == m.head:
            continue
        if low in DIRECTION_WORDS:
            has_dir = True
        elif low in DETERMINERS or t.tag_ in ("DT", "PDT", "PRP$", "POS") or low in REGION_MODS \
                or low in ("her", "his", "their", "'s"):
            continue
        elif m.possessor is not None and m.possessor.start <= t.i < m.possessor.end:
            continue
        else:
            return False
    return has_dir or head in ("left", "right", "top", "bottom", "center", "centre", "middle", "foreground")


def _direction_of(doc, m: _Mention) -> Optional[str]:
    vertical = None
    for t in doc[m.start:m.end]:
        low = _low(t)
        if low in DIRECTION_WORDS:
            if low in ("top", "bottom") and t.i < m.head and _low(doc[m.head]) in ("left", "right", "corner"):
                # "the top left corner": prefer the horizontal word when present ("the top corner": top)
                vertical = vertical or DIRECTION_WORDS[low]
                continue
            return DIRECTION_WORDS[low]
    return vertical


def _inline_direction(doc, m: _Mention) -> tuple[Optional[str], list[int]]:
    """Direction adjectives inside an object NP ("the left car", "the left-hand building")."""
    found = None
    idx: list[int] = []
    toks = list(range(m.start, m.end))
    for k in toks:
        low = _low(doc[k])
        if k == m.head:
            continue
        if low in DIRECTION_WORDS:
            found = found or DIRECTION_WORDS[low]
            idx.append(k)
            # "left-hand", "right-side", "top-most"
            if k + 2 < m.end and doc[k + 1].tag_ == "HYPH" and _low(doc[k + 2]) in ("hand", "side", "most") and k + 2 != m.head:
                idx += [k + 1, k + 2]
            if k - 1 >= m.start and _low(doc[k - 1]) in ("far", "very", "extreme"):
                idx.append(k - 1)
        elif low in ("left-hand", "right-hand", "right-side", "left-side", "top-most"):
            found = found or DIRECTION_WORDS[low.split("-")[0]]
            idx.append(k)
    return found, sorted(set(idx))


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def _span_text(doc, start: int, end: int) -> str:
    return "".join(t.text_with_ws for t in doc[start:end]).strip()


def _head_word(doc, m: _Mention) -> str:
    if m.kind == "pron":
        return _low(doc[m.head])
    if m.possessor is not None:
        return _head_word(doc, m.possessor) if _low(doc[m.head]) in REGION_NOUNS else _low(doc[m.head])
    if m.poss_pron is not None and _low(doc[m.poss_pron]) in PERSON_PRONOUNS:
        return _low(doc[m.poss_pron])
    return _low(doc[m.head])


def _is_plural(doc, m: _Mention) -> bool:
    hw = _head_word(doc, m)
    if hw in PLURAL_PRONOUNS:
        return True
    if hw in PERSON_PRONOUNS:
        return False
    if doc[m.head].tag_ in ("NNS", "NNPS"):
        return True
    return any(_low(t) in PLURAL_QUANT for t in doc[m.start:m.end])


def _grounding(doc, m: _Mention, mentions: list[_Mention], drop: set[int]) -> str:
    hw = _head_word(doc, m)
    if hw in PRONOUN_GROUNDING:
        return PRONOUN_GROUNDING[hw]
    if hw in PLURAL_PRONOUNS:
        for other in mentions:
            if other is m or other.kind != "np" or other.start > m.start:
                continue
            if doc[other.head].tag_ in ("NNS", "NNPS") and _low(doc[other.head]) not in GLOBAL_WORDS:
                return _low(doc[other.head])
        return "people"
    words = []
    for t in doc[m.start:m.end]:
        low = _low(t)
        if t.i in drop or low in DETERMINERS or t.tag_ in ("DT", "PDT", "PRP$") or low in ORDINALS \
                or low in DIRECTION_WORDS or low in ("far",):
            continue
        if low in ("her", "his", "their"):
            continue
        words.append(t.text_with_ws)
    phrase = "".join(words).strip()
    phrase = re.sub(r"^[-\s]+|[-\s]+$", "", phrase)
    return phrase or doc[m.head].text


def _first_sentence_with_verb(text: str) -> str:
    # "It's too hazy. -> Remove the fog from the center." : keep the part that gives an order
    parts = [p.strip() for p in re.split(r"->|=>|;|\.\s+", text) if p.strip()]
    if len(parts) > 1:
        for p in parts:
            w = p.split()[0].lower().strip(",.!") if p.split() else ""
            if w in VERB_FORMS and w not in ("set", "show"):
                return p
    return text


def _clean(text: str) -> str:
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    text = text[:MAX_CHARS]
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = re.sub(r"\s+", " ", text).strip()
    return text


def _looks_english(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 2:
        return False
    if sum(1 for c in letters if NON_ENGLISH_RE.match(c)) > len(letters) * 0.3:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Core
# --------------------------------------------------------------------------------------------
def _find_verb(doc) -> tuple[Optional[int], Optional[str], int]:
    """(verb index, verb lemma, index where the objects start) for an imperative, else None."""
    n = len(doc)
    i = 0
    while i < n and (_low(doc[i]) in PREFIX_SKIP or doc[i].is_punct):
        i += 1
    # "can you", "could you please"
    if i + 1 < n and _low(doc[i]) in ("can", "could", "would", "will") and _low(doc[i + 1]) == "you":
        i += 2
        while i < n and _low(doc[i]) in PREFIX_SKIP:
            i += 1
    # "I want/prefer/would like (you to) ...", "let's see", "let"
    if i < n and _low(doc[i]) == "i":
        j = i + 1
        while j < n and _low(doc[j]) in ("want", "would", "'d", "like", "prefer", "wish", "need", "'m", "am", "to", "you"):
            j += 1
        if j < n and _low(doc[j]) in VERB_FORMS and doc[j - 1].text.lower() == "to":
            i = j
        else:
            return i, "have", j
    if i < n and _low(doc[i]) in ("let", "let's", "lets"):
        j = i + 1
        if j < n and _low(doc[j]) in ("'s", "us"):
            j += 1
        if j < n and _low(doc[j]) in ("see", "have", "make", "show"):
            return j, "have", j + 1
        return i, "have", j
    if i >= n:
        return None, None, 0
    low = _low(doc[i])
    lemma = VERB_FORMS.get(low)
    if lemma is None and doc[i].tag_ == "VB" and doc[i].pos_ == "VERB" and low not in ("be", "do"):
        lemma = doc[i].lemma_.lower() if doc[i].lemma_ else low
    if lemma is None:
        return None, None, 0
    j = i + 1
    # phrasal verbs: get rid of, take out/away/off, switch out, turn into ...
    if lemma == "get" and j + 1 < n and _low(doc[j]) == "rid" and _low(doc[j + 1]) == "of":
        return i, "remove", j + 2
    if lemma == "take" and j < n and _low(doc[j]) in ("out", "away", "off", "down"):
        return i, "remove", j + 1
    if j < n and _low(doc[j]) in ("out", "up", "in", "down") and doc[j].tag_ in ("RP", "RB", "IN") \
            and not (j + 1 < n and _low(doc[j + 1]) in ("of",)):
        if lemma in ("take",):
            return i, "remove", j + 1
        if lemma in ("bring", "put", "set") and _low(doc[j]) == "in":
            return i, "add", j + 1
        if _low(doc[j]) in ("out", "up"):
            j += 1
    if lemma == "take" and j < n and _low(doc[j]) != "out":
        # "take the cup away / out"
        for k in range(j, min(n, j + 8)):
            if _low(doc[k]) in ("away", "out", "off"):
                return i, "remove", j
    return i, lemma, j


def _kind_for(lemma: Optional[str]) -> str:
    if lemma in REMOVE_VERBS or lemma == "remove":
        return "remove"
    if lemma in ADD_VERBS:
        return "add"
    return "edit"


def _is_indefinite(doc, m: _Mention) -> bool:
    """A new thing: "a vase", "some trees", "two cats", "Bigfoot"-less bare nouns ("more trees")."""
    first = doc[m.start]
    low = _low(first)
    if low in ("a", "an", "some", "more", "another", "several", "many", "few", "extra", "additional") \
            or (first.like_num and low not in ORDINALS):
        return True
    if m.kind != "np" or m.poss_pron is not None or m.possessor is not None:
        return False
    if low in DETERMINERS or first.tag_ in ("DT", "PDT", "PRP$"):
        return False
    if any(_low(t) in ORDINALS for t in doc[m.start:m.end]):
        return False
    return True


def _analyse_doc(doc, text: str) -> InstructionAnalysis:
    res = InstructionAnalysis(simplified=text)
    n = len(doc)
    if n == 0:
        return res
    v, lemma, begin = _find_verb(doc)
    base = begin if v is not None else 0
    # "put in a herd of elk" vs "put in the twilight zone": a particle only before a new thing
    if v is not None and lemma == "add" and begin > 0 and _low(doc[begin - 1]) == "in" \
            and _low(doc[v]) in ("put", "bring", "set") and begin < n and _low(doc[begin]) in ("the", "this", "that"):
        base = begin = begin - 1
    mentions = _mentions(doc, base, lemma)
    res.phrases = _phrases(doc, mentions)
    kind = _kind_for(lemma) if v is not None else None
    loc_to = lemma in LOCATIVE_TO_VERBS

    def intro(idx: int) -> list[str]:
        prev_end = mentions[idx - 1].end if idx > 0 else base
        return [_low(t) for t in doc[prev_end:mentions[idx].start]]

    def is_result(words: list[str]) -> bool:
        if not words or words[-2:] in NEAR_TO:
            return False                    # "the lamp next to the bed": a place, not the result
        if loc_to or kind == "add":
            return any(w in ("with", "as", "like", "instead", "than", "for") for w in words)
        if words[-1] in LOC_PREPS and words[-1] not in ("to", "into"):
            return False
        return any(w in RESULT_PREPS for w in words)

    def is_loc(words: list[str]) -> bool:
        return bool(words) and (words[-1] in LOC_PREPS or words[-2:] in NEAR_TO)

    target: Optional[_Mention] = None
    tidx: Optional[int] = None
    loc_from: Optional[int] = None      # first mention index to read locating phrases from
    anchor: Optional[_Mention] = None
    direction = relation = None
    ordinal = None
    drop: set[int] = set()              # token indices removed in ``simplified``
    global_region = False
    not_antecedent: set[int] = set()    # mentions a plural pronoun must not stand for

    # "use a gnome instead of a pilot", "instead of the ball ..., put ..."
    for idx, m in enumerate(mentions):
        w = intro(idx)
        if len(w) >= 2 and w[-2:] == ["instead", "of"] and m.kind == "np":
            if v is None or lemma in ("use", "put", "add", "have", "place", "draw", "show", "make", "let", "insert"):
                tidx, target = idx, m
                kind = "edit"
                loc_from = idx + 1
            break

    if target is not None:
        pass
    elif v is None:
        # no imperative: a description ("She is wearing a kimono", "A cloud above the valley")
        first_tok = _low(doc[0])
        if not mentions or first_tok in ("as", "in", "with", "by", "like", "at", "to", "into", "more",
                                         "less", "very", "too", "from", "of", "for", "on", "without",
                                         "behind", "under", "over", "above", "below", "inside", "near"):
            return res
        if intro(0) and any(w not in PREFIX_SKIP for w in intro(0)):
            return res
        m0 = mentions[0]
        if m0.kind == "region":
            return res
        if not any(_low(t) in ENGLISH_CUES or t.tag_ in ("VBZ", "VBP", "VBD", "MD") and _low(t) in ENGLISH_CUES
                   for t in doc):
            res.phrases = []
            return res                             # "asdf qwer", "mach das Auto rot"
        tidx, target = 0, m0
        first = _low(doc[m0.start])
        kind = "add" if first in ("a", "an", "some", "another") or doc[m0.start].like_num else "edit"
        loc_from = 1
    elif mentions:
        w0 = intro(0)
        if w0 and is_result(w0):
            return _finish(res, "global")          # "change to a castle", "swap with a faery"
        if w0 and is_loc(w0) and any(t in LOC_PREPS for t in w0):
            loc_from = 0                           # "put on the left a ...", "Locate in a desert"
        else:
            tidx, target = 0, mentions[0]
            loc_from = 1

    if target is not None and target.kind == "region":
        d = _direction_of(doc, target)
        if tidx + 1 < len(mentions) and intro(tidx + 1) == ["of"] and mentions[tidx + 1].kind == "np" \
                and _head_word(doc, mentions[tidx + 1]) not in GLOBAL_WORDS:
            # "make the left side of the car red": the car, on its left
            direction, relation = d, "absolute"
            drop.update(range(target.start, mentions[tidx + 1].start))
            tidx += 1
            target = mentions[tidx]
            loc_from = tidx + 1
        else:
            # "make the left side snowy": a scene-level edit restricted to a region
            global_region = True
            direction, relation = d, ("absolute" if d else None)
            target = None
            loc_from = None

    if target is not None:
        # attribute / quantity nouns: "the color of the road" -> the road; "a pair of shoes"
        orig = target
        while (_low(doc[target.head]) in ATTRIBUTE_NOUNS | QUANTITY_NOUNS and tidx + 1 < len(mentions)
               and intro(tidx + 1) == ["of"] and mentions[tidx + 1].kind == "np"):
            tidx += 1
            target = mentions[tidx]
            loc_from = tidx + 1
        hw = _head_word(doc, target)
        if target.kind == "pron" and hw not in PERSON_PRONOUNS:
            return _finish(res, "global")          # "make it night", "put it in a lake"
        if hw in GLOBAL_WORDS and not (kind == "add" and _is_indefinite(doc, target)):
            return _finish(res, "global")
        if _low(doc[target.head]) in ATTRIBUTE_NOUNS and target is orig:
            if target.possessor is not None:       # "the tiger's fur color" -> the tiger
                target = target.possessor
            elif target.head - 1 >= target.start and _is_noun(doc[target.head - 1]):
                # "the road color" -> the road
                target = _Mention(target.start, target.head, target.head - 1, "np", poss_pron=target.poss_pron)
            else:
                return _finish(res, "global")      # "change the color to green"
            orig = target
        # "give wings to the left elephant": the recipient is the object
        if lemma in ("give", "hand", "offer", "grant", "add") and _is_indefinite(doc, target) \
                and tidx + 1 < len(mentions) and intro(tidx + 1) == ["to"] and mentions[tidx + 1].kind != "region" \
                and lemma != "add":
            tidx += 1
            target = orig = mentions[tidx]
            loc_from = tidx + 1
            kind = "edit"
        indefinite = _is_indefinite(doc, orig)
        if kind == "add" and v is not None and not indefinite:
            kind = "edit"                          # "put the cat on the sofa": it exists already
        elif kind == "edit" and v is not None and indefinite and lemma not in TRANSFORM_VERBS:
            kind = "add"                           # "have a fire on the right", "draw a cat"

    # locating phrases after the object (for additions: after the new thing)
    idx = loc_from if loc_from is not None else len(mentions)
    while idx < len(mentions):
        m = mentions[idx]
        words = intro(idx)
        gap = doc[(mentions[idx - 1].end if idx > 0 else base):m.start]
        if any(_is_verbish(doc, t) for t in gap) and not (
                is_loc(words) and ((kind == "add" or target is None) or _relative_clause(gap))):
            break
        if not words:
            break
        if kind == "edit" and target is not None and _low(doc[m.start]) in ("a", "an") \
                and any(t.tag_ in ("VBG", "VBN") for t in gap):
            break       # "have him standing next to a car": the new scene, not a reference object
        to_dir = words[-1] in ("to", "into") and m.kind == "region" or (
            len(words) >= 2 and words[-1] == "of" and words[0] in ("to", "into")
            and any(w in DIRECTION_WORDS for w in words))
        if is_result(words) and not to_dir:
            break
        prep_dir = None
        for w in words:
            if w in PREP_DIRECTION and w not in ("left", "right", "top", "bottom"):
                prep_dir = prep_dir or PREP_DIRECTION[w]
            if w in DIRECTION_WORDS:
                prep_dir = prep_dir or DIRECTION_WORDS[w]
        if m.kind == "region":
            d = _direction_of(doc, m) or prep_dir
            lead = m.start - len(words)
            if m.possessor is not None or m.poss_pron is not None:
                anchor = m.possessor or _Mention(m.poss_pron, m.poss_pron + 1, m.poss_pron, "pron")
                direction, relation = direction or d, "relative"
                drop.update(range(lead, m.end))
                break
            if idx + 1 < len(mentions) and intro(idx + 1) == ["of"]:
                nxt = mentions[idx + 1]
                direction = direction or d
                drop.update(range(lead, nxt.end))
                if _head_word(doc, nxt) in GLOBAL_WORDS or nxt.kind == "region":
                    relation = relation or "absolute"     # "at the bottom of the scene"
                    idx += 2
                    continue
                relation, anchor = "relative", nxt
                break
            direction = direction or d
            relation = relation or "absolute"
            drop.update(range(lead, m.end))
            idx += 1
            continue
        if kind == "add" and target is not None and m.kind == "pron" and words in (["on"], ["onto"], ["to"]) \
                and _head_word(doc, m) in PERSON_PRONOUNS and idx == len(mentions) - 1:
            # "put a crown on her", "add a scarf to him": the new thing is worn; the person is edited
            not_antecedent.add(tidx)
            tidx, target, kind = idx, m, "edit"
            break
        if words == ["of"] and not prep_dir:
            idx += 1                                 # "the dress of the girl to the left of ..."
            continue
        if (words[-1] == "of" and prep_dir) or is_loc(words):
            hw = _head_word(doc, m)
            skip = hw in GLOBAL_WORDS or _low(doc[m.head]) in COLOR_WORDS or (
                m.kind == "pron" and hw not in PERSON_PRONOUNS)
            if (kind == "add" or target is None or loc_to) and (_low(doc[m.start]) in ("a", "an") or (
                    words[-1] == "in" and doc[m.head].tag_ in ("NNP", "NNPS") and not prep_dir)):
                skip = True                           # "put a bear in a cave", "a beach in Hawaii"
            if skip:
                if prep_dir:
                    drop.update(range(m.start - len(words), m.end))
                idx += 1
                continue
            anchor = m
            direction, relation = direction or prep_dir, "relative"
            drop.update(range(m.start - len(words), m.end))
            # "the roof of the cabin", "the cabin's roof": the owner is the reference object
            if idx + 1 < len(mentions) and intro(idx + 1) == ["of"] and mentions[idx + 1].kind == "np" \
                    and _head_word(doc, mentions[idx + 1]) not in GLOBAL_WORDS:
                idx += 1
                anchor = mentions[idx]
                drop.update(range(m.end, anchor.end))
            elif anchor.possessor is not None:
                anchor = anchor.possessor
            # "on the wall to the left of the closet" / "on the person on the left"
            if idx + 1 < len(mentions) and mentions[idx + 1].kind == "region" and is_loc(intro(idx + 1)):
                r = mentions[idx + 1]
                rd = _direction_of(doc, r)
                if idx + 2 < len(mentions) and intro(idx + 2) == ["of"] and mentions[idx + 2].kind == "np" \
                        and _head_word(doc, mentions[idx + 2]) not in GLOBAL_WORDS:
                    anchor, direction = mentions[idx + 2], rd or direction
                    drop.update(range(r.start - len(intro(idx + 1)), anchor.end))
                elif rd:
                    direction, relation = rd, "absolute"
                    drop.update(range(r.start - len(intro(idx + 1)), r.end))
            if direction is None:
                d_in, _ = _inline_direction(doc, anchor)
                if d_in:
                    direction, relation = d_in, "absolute"     # "the cameras on the bottom shelf"
            break
        break

    if target is not None:
        d_in, idx_in = _inline_direction(doc, target)
        if d_in is not None:
            direction = direction or d_in
            relation = relation or "absolute"
            drop.update(idx_in)
        for t in doc[target.start:target.end]:
            if _low(t) in ORDINALS:
                ordinal = ORDINALS[_low(t)]
                drop.add(t.i)
        # a possessor is the reference object: "the left man's beard" -> the man
        if anchor is None and target.possessor is not None:
            anchor = target.possessor
        # "the fur of the tiger": the owner is the reference object
        if anchor is None and tidx is not None and tidx + 1 < len(mentions) and kind != "add" \
                and intro(tidx + 1) == ["of"] and mentions[tidx + 1].kind == "np" \
                and _head_word(doc, mentions[tidx + 1]) not in GLOBAL_WORDS \
                and _low(doc[target.head]) not in QUANTITY_NOUNS:
            anchor = mentions[tidx + 1]

    if kind == "add":
        if target is not None and _is_indefinite(doc, target):
            target = None
        res.kind = "add"
    elif target is None:
        _finish(res, "global")
        if global_region:
            res.direction, res.relation = direction, relation
        return res
    else:
        res.kind = kind or "edit"

    if target is not None:
        res.target = _span_text(doc, target.start, target.end)
        res.target_head = _head_word(doc, target)
        res.grounding_phrase = _grounding(doc, target, [m for k, m in enumerate(mentions)
                                                        if k not in not_antecedent], drop)
        res.plural = _is_plural(doc, target)
    if anchor is not None:
        res.anchor = _span_text(doc, anchor.start, anchor.end)
        res.anchor_head = _head_word(doc, anchor)
        if relation is None:
            relation = "relative"
    res.direction = direction
    res.ordinal = ordinal
    res.relation = relation
    res.simplified = _simplify(doc, drop) if res.kind in ("edit", "remove") else text
    return res


def _gap_tokens(doc, mentions, idx, begin):
    prev_end = mentions[idx - 1].end if idx > 0 else begin
    return doc[prev_end:mentions[idx].start]


def _relative_clause(gap) -> bool:
    """'that's perched on', 'standing in', 'located at': a clause that only locates the object."""
    for t in gap:
        low = _low(t)
        if low in ("that", "which", "who", "is", "are", "'s", "was", "were", "being", "currently",
                   "just", "right") or t.tag_ in ("VBG", "VBN", "RB") or low in LOC_PREPS or t.tag_ == "DT":
            continue
        return False
    return True


def _is_verbish(doc, t) -> bool:
    if t.tag_ in ("VB", "VBZ", "VBP", "VBD", "MD") and _low(t) not in DIRECTION_WORDS and _low(t) not in LOC_PREPS:
        return True
    return _low(t) in ("is", "are", "be", "was", "were", "wear", "look", "looks", "wearing")


def _simplify(doc, drop: set[int]) -> str:
    if not drop:
        return doc.text
    out = []
    for t in doc:
        if t.i in drop:
            continue
        out.append(t.text_with_ws)
    s = "".join(out)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"\s+([.,!?;:])", r"\1", s)
    return s


def _phrases(doc, mentions: list[_Mention]) -> list[str]:
    out: list[str] = []
    for m in mentions:
        if m.kind in ("pron", "region"):
            continue
        hw = _low(doc[m.head])
        if hw in GLOBAL_WORDS:
            continue
        text = _span_text(doc, m.start, m.end)
        if text.lower() not in (p.lower() for p in out):
            out.append(text)
    return out


def _finish(res: InstructionAnalysis, kind: str) -> InstructionAnalysis:
    res.kind = kind
    res.target = res.target_head = res.grounding_phrase = None
    res.plural = False
    res.direction = res.ordinal = res.relation = res.anchor = res.anchor_head = None
    return res


def _disabled(nlp) -> list[str]:
    return [p for p in _UNNEEDED_PIPES if p in nlp.pipe_names]


def _safe(doc, text: str) -> InstructionAnalysis:
    try:
        return _analyse_doc(doc, text)
    except Exception:  # never raise: fall back to a global edit
        return InstructionAnalysis(kind="global", simplified=text)


def analyse(text: str, nlp=None) -> InstructionAnalysis:
    """Analyse one edit instruction. Never raises; unusable input gives a global edit."""
    try:
        clean = _clean(text)
    except Exception:
        return InstructionAnalysis(kind="global", simplified="")
    if not _looks_english(clean):
        return InstructionAnalysis(kind="global", simplified=clean)
    nlp = nlp if nlp is not None else load_english()   # a missing pipeline is reported, not hidden
    try:
        doc = nlp(_first_sentence_with_verb(clean), disable=_disabled(nlp))
    except Exception:
        return InstructionAnalysis(kind="global", simplified=clean)
    res = _safe(doc, doc.text)
    return res


def analyse_many(texts: Iterable[str], nlp=None, batch_size: int = 256) -> list[InstructionAnalysis]:
    """Analyse many instructions with one ``nlp.pipe`` pass."""
    nlp = nlp if nlp is not None else load_english()
    cleaned = []
    for t in texts:
        try:
            cleaned.append(_clean(t))
        except Exception:
            cleaned.append("")
    english = [_looks_english(c) for c in cleaned]
    to_parse = [_first_sentence_with_verb(c) for c, ok in zip(cleaned, english) if ok]
    docs = iter(nlp.pipe(to_parse, batch_size=batch_size, disable=_disabled(nlp)))
    out = []
    for c, ok in zip(cleaned, english):
        if not ok:
            out.append(InstructionAnalysis(kind="global", simplified=c))
            continue
        doc = next(docs)
        out.append(_safe(doc, doc.text))
    return out
