"""Word lists of the instruction analyser, and the token predicates every part of it shares.

Hand-written for the GGIP2P instruction data (image-editing imperatives such as "make the left car
purple", "put a lamp next to the bed"); words are lower-case, with "'" for the typographic apostrophe.
"""

from __future__ import annotations

REMOVE_VERBS = {
    "remove",
    "delete",
    "erase",
    "eliminate",
    "drop",
    "omit",
    "exclude",
    "clear",
    "discard",
    "subtract",
    "rid",
    "hide",
    "vanish",
    "crop",
    "cut",
}
ADD_VERBS = {
    "add",
    "put",
    "place",
    "insert",
    "include",
    "position",
    "hang",
    "attach",
    "install",
    "plant",
    "inject",
    "stick",
    "paste",
    "mount",
    "introduce",
    "append",
    "draw",
    "create",
    "show",
    "sit",
    "seat",
    "lay",
    "stand",
    "spawn",
    "build",
    "set",
    "bring",
    "throw",
    "perch",
    "float",
    "drape",
}
# verbs where "to"/"into"/"with"/"as"/"like" introduce the result, not a place
EDIT_VERBS = {
    "make",
    "have",
    "turn",
    "change",
    "replace",
    "swap",
    "convert",
    "transform",
    "morph",
    "switch",
    "alter",
    "modify",
    "paint",
    "color",
    "colour",
    "dye",
    "shape",
    "give",
    "dress",
    "wear",
    "render",
    "exchange",
    "substitute",
    "trade",
    "let",
    "recolor",
    "recolour",
    "tint",
    "shade",
    "edit",
    "adjust",
    "increase",
    "decrease",
    "enlarge",
    "shrink",
    "reduce",
    "grow",
    "move",
    "shift",
    "rotate",
    "flip",
    "cover",
    "fill",
    "empty",
    "tidy",
    "wipe",
    "apply",
    "arrange",
    "combine",
    "use",
    "light",
    "brighten",
    "darken",
    "blur",
    "sharpen",
    "age",
    "redesign",
    "restyle",
    "style",
    "update",
    "upgrade",
    "rebuild",
    "reshape",
    "resize",
    "widen",
    "lengthen",
    "shorten",
    "thicken",
    "raise",
    "lower",
    "open",
    "close",
    "cast",
    "wrap",
    "decorate",
    "coat",
    "fix",
    "repair",
    "clean",
    "polish",
    "rename",
    "redo",
    "animate",
    "depict",
    "transplant",
    "relocate",
    "mutate",
    "stretch",
    "tilt",
    "see",
    "get",
    "take",
    "keep",
    "bend",
    "melt",
    "freeze",
    "burn",
    "break",
    "smash",
    "crack",
    "splash",
    "spray",
    "sprinkle",
    "transfer",
    "evolve",
    "locate",
    "generate",
    "display",
    "establish",
    "emit",
    "drag",
    "print",
    "produce",
    "imagine",
    "envision",
    "infest",
    "scatter",
    "intensify",
    "infuse",
    "minimize",
    "minimise",
    "maximize",
    "lighten",
    "deepen",
    "soften",
    "dim",
    "enhance",
    "boost",
    "reverse",
    "invert",
    "fly",
    "float",
    "surround",
    "line",
    "frame",
    "place",
    "portray",
    "visualize",
    "visualise",
    "picture",
    "present",
    "upscale",
    "zoom",
    "colorize",
    "colourise",
    "colorise",
    "colourize",
    "illuminate",
    "highlight",
    "mirror",
    "duplicate",
    "copy",
    "multiply",
    "double",
    "outline",
    "bold",
    "emphasize",
    "emphasise",
}
# verbs for which "to"/"into" name a place ("move the lamp to the left of the bed")
LOCATIVE_TO_VERBS = ADD_VERBS | {
    "move",
    "shift",
    "relocate",
    "drag",
    "push",
    "pull",
    "bring",
    "send",
    "position",
    "arrange",
    "transport",
    "carry",
    "slide",
    "locate",
}
# verbs that transform an existing object even when it is named with "a" ("replace a bird ...")
TRANSFORM_VERBS = {
    "turn",
    "change",
    "replace",
    "swap",
    "convert",
    "transform",
    "morph",
    "switch",
    "alter",
    "modify",
    "exchange",
    "substitute",
    "trade",
    "paint",
    "color",
    "colour",
    "dye",
    "remove",
    "recolor",
    "recolour",
    "give",
    "dress",
    "wear",
    "shape",
    "resize",
    "enlarge",
    "shrink",
    "move",
    "rotate",
    "flip",
    "delete",
    "erase",
}
DATIVE_VERBS = {"give", "hand", "offer", "grant", "buy", "bring", "get", "wear", "lend", "send", "show", "dress"}
ALL_VERBS = REMOVE_VERBS | ADD_VERBS | EDIT_VERBS | {"take", "get"}


def _verb_forms() -> dict[str, str]:
    """Surface form -> verb: the verb, +s, +ed, +d (no two verbs share a form), and the irregulars."""
    forms: dict[str, str] = {}
    for verb in ALL_VERBS:
        for form in (verb, verb + "s", verb + "ed", verb + "d"):
            forms.setdefault(form, verb)
    forms.update(
        {
            "made": "make",
            "turned": "turn",
            "drew": "draw",
            "took": "take",
            "got": "get",
            "gave": "give",
            "wore": "wear",
            "colored": "color",
            "taken": "take",
        }
    )
    return forms


VERB_FORMS = _verb_forms()


RESULT_PREPS = {"to", "into", "with", "as", "like", "for", "instead", "than"}
LOC_PREPS = {
    "on",
    "in",
    "at",
    "near",
    "beside",
    "besides",
    "behind",
    "above",
    "below",
    "under",
    "underneath",
    "beneath",
    "over",
    "onto",
    "inside",
    "within",
    "from",
    "by",
    "around",
    "across",
    "along",
    "against",
    "atop",
    "between",
    "among",
    "amongst",
    "outside",
    "next",
    "front",
    "off",
    "through",
    "beyond",
    "upon",
    "into",
    "to",
    "toward",
    "towards",
    "alongside",
    "opposite",
    "nearby",
    "close",
    "top",
    "bottom",
    "left",
    "right",
    "underside",
}
# two-word prepositions ending in "to" that name a place ("next to the bed"), never a result
NEAR_TO = (["next", "to"], ["close", "to"], ["adjacent", "to"], ["closest", "to"], ["nearest", "to"])
PREP_DIRECTION = {
    "above": "top",
    "over": "top",
    "atop": "top",
    "top": "top",
    "onto": None,
    "below": "bottom",
    "under": "bottom",
    "underneath": "bottom",
    "beneath": "bottom",
    "bottom": "bottom",
    "left": "left",
    "right": "right",
}

DIRECTION_WORDS = {
    "left": "left",
    "leftmost": "left",
    "left-most": "left",
    "lefthand": "left",
    "right": "right",
    "rightmost": "right",
    "right-most": "right",
    "righthand": "right",
    "top": "top",
    "upper": "top",
    "uppermost": "top",
    "topmost": "top",
    "highest": "top",
    "bottom": "bottom",
    "lower": "bottom",
    "lowest": "bottom",
    "lowermost": "bottom",
    "bottommost": "bottom",
    "center": "center",
    "centre": "center",
    "middle": "center",
    "central": "center",
    "centermost": "center",
    "midst": "center",
}
# nouns that name a region rather than an object ("the left", "the right side", "the top corner")
REGION_NOUNS = {
    "foreground",
    "left",
    "right",
    "top",
    "bottom",
    "center",
    "centre",
    "middle",
    "side",
    "sides",
    "corner",
    "corners",
    "edge",
    "edges",
    "half",
    "part",
    "portion",
    "section",
    "area",
    "region",
    "end",
    "midst",
    "hand",
    "upper",
    "lower",
    "front",
    "back",
    "leftmost",
    "rightmost",
    "topmost",
    "uppermost",
}
REGION_MODS = {
    "far",
    "very",
    "extreme",
    "upper",
    "lower",
    "top",
    "bottom",
    "left",
    "right",
    "center",
    "centre",
    "middle",
    "-",
    "hand",
    "most",
    "side",
    "front",
    "back",
    "whole",
    "entire",
    "outer",
    "inner",
}
ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "1st": 1,
    "2nd": 2,
    "3rd": 3,
    "4th": 4,
    "5th": 5,
}
COLOR_WORDS = {
    "red",
    "blue",
    "green",
    "yellow",
    "purple",
    "pink",
    "orange",
    "black",
    "white",
    "gray",
    "grey",
    "brown",
    "gold",
    "golden",
    "silver",
    "violet",
    "beige",
    "cyan",
    "magenta",
    "turquoise",
    "teal",
    "maroon",
    "navy",
    "lavender",
    "crimson",
    "bronze",
    "indigo",
    "tan",
    "ivory",
    "scarlet",
    "lilac",
    "khaki",
    "olive",
    "blonde",
    "blond",
    "colorful",
    "colourful",
    "transparent",
    "rainbow",
}
PRONOUN_GROUNDING = {
    "he": "man",
    "him": "man",
    "his": "man",
    "himself": "man",
    "she": "woman",
    "her": "woman",
    "hers": "woman",
    "herself": "woman",
}
PLURAL_PRONOUNS = {"they", "them", "their", "theirs", "themselves"}
PERSON_PRONOUNS = set(PRONOUN_GROUNDING) | PLURAL_PRONOUNS
# words that never name a specific object of the picture
GLOBAL_WORDS = {
    "it",
    "this",
    "that",
    "its",
    "itself",
    "image",
    "picture",
    "photo",
    "photograph",
    "pic",
    "scene",
    "scenery",
    "setting",
    "location",
    "lighting",
    "style",
    "everything",
    "view",
    "atmosphere",
    "mood",
    "season",
    "weather",
    "time",
    "era",
    "version",
    "me",
    "you",
    "we",
    "us",
    "i",
    "one",
    "something",
    "anything",
    "all",
    "whole",
    "look",
    "vibe",
    "aesthetic",
    "theme",
    "feel",
    "tone",
    "overall",
    "night",
    "day",
    "daytime",
    "nighttime",
    "morning",
    "evening",
    "afternoon",
    "dusk",
    "dawn",
    "twilight",
    "midnight",
    "noon",
    "winter",
    "summer",
    "autumn",
    "springtime",
    "wintertime",
    "summertime",
    "sunset",
    "sunrise",
    "environment",
    "place",
    "landscape",
    "these",
    "those",
    "there",
    "here",
    "what",
    "which",
    "who",
}
ATTRIBUTE_NOUNS = {
    "color",
    "colour",
    "colors",
    "colours",
    "texture",
    "shade",
    "material",
    "pattern",
    "size",
    "shape",
    "surface",
    "amount",
    "hue",
    "tint",
    "style",
    "design",
    "appearance",
    "number",
    "length",
    "height",
    "width",
    "brightness",
}
QUANTITY_NOUNS = {
    "pair",
    "pairs",
    "group",
    "groups",
    "bunch",
    "couple",
    "lot",
    "lots",
    "set",
    "piece",
    "pieces",
    "herd",
    "flock",
    "crowd",
    "row",
    "pile",
    "stack",
    "bouquet",
    "swarm",
    "school",
    "pack",
    "family",
    "kind",
    "type",
    "sort",
    "bit",
    "few",
    "handful",
    "number",
    "dozen",
    "collection",
    "cluster",
    "team",
    "line",
}
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
    "each",
    "every",
    "all",
    "both",
    "another",
    "several",
    "many",
    "few",
    "no",
    "more",
    "other",
    "such",
    "its",
    "my",
    "your",
    "our",
}
PLURAL_QUANT = {
    "all",
    "both",
    "these",
    "those",
    "several",
    "many",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "multiple",
    "few",
}
PREFIX_SKIP = {
    "please",
    "now",
    "then",
    "just",
    "also",
    "instead",
    "ok",
    "okay",
    "so",
    "and",
    "kindly",
    "simply",
    "go",
    "ahead",
    "lets",
    "let's",
}
# function words that show a verb-less line is an English description ("She is ...")
ENGLISH_CUES = {
    "is",
    "are",
    "was",
    "were",
    "be",
    "has",
    "have",
    "had",
    "wearing",
    "wears",
    "the",
    "a",
    "an",
    "in",
    "on",
    "with",
    "of",
    "at",
    "should",
    "will",
    "would",
    "looks",
    "look",
    "becomes",
    "become",
    "he",
    "she",
    "they",
    "his",
    "her",
    "their",
    "him",
    "them",
    "'s",
    "gets",
    "get",
    "stands",
    "sits",
    "holds",
    "holding",
    "and",
    "to",
    "from",
    "by",
    "for",
    "above",
    "below",
    "near",
    "behind",
    "under",
    "over",
}
# verbs whose object may be followed by a bare verb ("make the birds fly", "let the dogs run")
BARE_VERB_COMPLEMENT_VERBS = {"make", "have", "let", "help", "see", "watch", "hear", "feel", "get"}
# verbs that take an object and then what it becomes ("make the bridge rusty", "paint the door red")
COMPLEMENT_VERBS = {
    "make",
    "paint",
    "color",
    "colour",
    "dye",
    "turn",
    "keep",
    "leave",
    "get",
    "render",
    "have",
    "set",
    "tint",
    "recolor",
    "recolour",
}
# verbs that follow a subject in sloppy causatives ("morph the lake look like a spider")
LINKING_VERBS = {
    "look",
    "seem",
    "appear",
    "become",
    "feel",
    "sound",
    "smell",
    "taste",
    "resemble",
    "stay",
    "remain",
    "go",
    "come",
    "get",
    "turn",
    "grow",
    "wear",
    "hold",
    "sit",
    "stand",
}
AUXILIARIES = {
    "be",
    "is",
    "are",
    "am",
    "do",
    "does",
    "have",
    "has",
    "can",
    "could",
    "will",
    "would",
    "shall",
    "should",
    "may",
    "might",
    "must",
    "need",
    "dare",
}


# spaCy tags of nouns (used when the coarse part of speech disagrees with the fine tag)
NOUN_TAGS = ("NN", "NNS", "NNP", "NNPS")
# possessive personal pronouns spaCy may tag PRP (her) or PRP$ (his, their)
POSSESSIVE_PRONOUNS = ("her", "his", "their")
# possessive pronouns that own a thing ("its tail", "my hair"): the owner, not the object
OWNER_PRONOUNS = POSSESSIVE_PRONOUNS + ("its", "my", "your", "our")


def low(tok) -> str:
    """A token's text, lower-case (`instruction.analyse` has made typographic apostrophes plain)."""
    return tok.lower_


def is_noun(tok) -> bool:
    return tok.tag_ in NOUN_TAGS or tok.pos_ in ("NOUN", "PROPN")


def _read_multiword_objects() -> frozenset[tuple[str, ...]]:
    """The multiword object names of data/multiword_objects.txt, as word tuples, with the plural of
    the last word ("teddy bears", "wine glasses")."""
    from pathlib import Path

    names: set[tuple[str, ...]] = set()
    path = Path(__file__).with_name("data") / "multiword_objects.txt"
    for line in path.read_text(encoding="utf-8").splitlines():
        words = tuple(line.split())
        if len(words) < 2 or line.startswith("#"):
            continue
        names.add(words)
        names.add(words[:-1] + (plural_of(words[-1]),))
    return frozenset(names)


def plural_of(word: str) -> str:
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith("knife"):
        return word[:-2] + "ves"
    return word + "s"


# "fire hydrant", "teddy bear", "stained glass window": one object, headed by its last word
MULTIWORD_OBJECTS = _read_multiword_objects()
MULTIWORD_MAX = max(len(name) for name in MULTIWORD_OBJECTS)
MULTIWORD_FIRST = frozenset(name[0] for name in MULTIWORD_OBJECTS)
# what an object is made into, named after it ("make the table wooden"): never an object to detect
MATERIAL_WORDS = frozenset(
    "wooden wood metal metallic steel iron golden chrome marble stone glass crystal plastic paper "
    "leather silk velvet denim wool woolen cotton fur furry rubber ceramic porcelain concrete brick "
    "bronze copper silver gold neon glowing shiny matte glossy transparent translucent".split()
)
# comparatives that end an object phrase as what it becomes ("make the window brighter")
COMPARATIVES = frozenset(
    "brighter darker bigger larger smaller taller shorter wider narrower longer lighter heavier "
    "older younger newer cleaner dirtier happier sadder sharper softer redder bluer greener "
    "whiter blacker warmer cooler colder hotter thicker thinner fatter slimmer prettier uglier "
    "shinier fluffier curlier straighter".split()
)
# what a colour word after an object is, and (with make, paint, turn ...) these too
VERB_RESULT_WORDS = MATERIAL_WORDS | COMPARATIVES
# verbs a made/had/let object does ("make the person in the foreground smile"), read as the predicate
BARE_PREDICATES = frozenset(
    "smile laugh cry frown wink blink yawn blush jump dance run walk sleep wave sing shout scream "
    "kneel sit stand fly swim float glow shine melt vanish disappear bow cheer pose talk hug kiss "
    "bark meow roar sparkle burn rain snow meditate pray relax rest play read eat drink climb ride".split()
)
# depth superlatives inside an object phrase ("the nearest car"): front = nearest the camera
DEPTH_WORDS = {
    "nearest": "front",
    "closest": "front",
    "frontmost": "front",
    "farthest": "back",
    "furthest": "back",
    "farthermost": "back",
    "furthermost": "back",
    "backmost": "back",
}
# "at the front", "at the back": regions that say how near the camera, when no "of" follows
DEPTH_REGIONS = {"front": "front", "back": "back", "rear": "back"}
# words that make a colour more precise before it ("sky blue", "lime green", "snow white")
COLOR_MODIFIERS = frozenset(
    "sky navy baby royal olive mint forest blood wine cherry lemon sea ocean jet pitch hot pale dark "
    "light deep bright pastel neon rose ruby sapphire emerald lime electric powder steel slate "
    "charcoal ash sand coral salmon peach cream chocolate coffee caramel honey mustard brick rust "
    "copper bronze midnight ice ivory snow hunter burnt dusty soft vivid".split()
)
# parts of the scene that locate an object without being a reference object ("in the background")
SCENE_REGIONS = {
    "background": "back",
    "foreground": "front",
    "distance": "back",
    "horizon": "back",
    "sky": "top",
}
# words for a picture: the whole image, unless a place or the verb makes one an object in it
PICTURE_WORDS = frozenset(
    "image picture photo photograph pic painting portrait artwork drawing illustration snapshot".split()
)
# what a picture can be turned into without becoming a thing in it ("into a watercolor")
STYLE_WORDS = frozenset(
    "watercolor watercolour watercolors sketch sketches cartoon anime manga comic comics mosaic "
    "collage pastel charcoal pencil oil acrylic impressionism cubism surrealism expressionism art "
    "engraving etching woodcut lithograph caricature render rendering sculpture-style noir sepia "
    "monochrome grayscale greyscale negative silhouette blueprint vector pixel lowpoly cyberpunk "
    "steampunk vaporwave ukiyo-e".split()
)
# modifiers that make a picture word a thing in the picture ("the framed photo")
PICTURE_OBJECT_MODIFIERS = frozenset("framed hanging small little tiny big large wall".split())
# verbs that can only be about a picture as an object ("remove the painting", "hang the photo")
PICTURE_OBJECT_VERBS = REMOVE_VERBS | {"hang", "move", "tilt", "straighten", "frame", "rotate"}
# containers: "the glass of water" is the glass, and "water" no reference object
CONTAINER_NOUNS = frozenset(
    "glass glasses cup cups mug mugs bowl bowls plate plates bottle bottles jar jars box boxes "
    "basket baskets bucket buckets vase vases bag bags can cans pot pots tray trays carton cartons "
    "sack sacks crate crates barrel barrels jug jugs pitcher pitchers cage cages tank tanks".split()
)
# portions, followed to what they are of ("the slice of pizza" -> pizza), like QUANTITY_NOUNS
PORTION_NOUNS = frozenset("slice slices chunk chunks scoop scoops wedge wedges loaf loaves strip strips".split())
