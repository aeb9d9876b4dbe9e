"""What the user sees for each family of instructions the analyser reads: the instruction goes
through Noun Phrase Extract's guided analysis, then Select Boxes chooses among synthetic boxes
labelled the way GroundingDINO Detect labels them (by the phrase that found them)."""

import pytest
import torch
from grounded_ip2p.grounding.detections import Detections
from grounded_ip2p.grounding.phrases import extract
from grounded_ip2p.grounding.selection import select

SIZE = (400, 600)  # height, width
W, H = SIZE[1], SIZE[0]


def boxes(*items):
    """items: (phrase, [x1, y1, x2, y2], score)"""
    return Detections(
        torch.tensor([b for _, b, _ in items], dtype=torch.float32).reshape(-1, 4),
        torch.tensor([s for *_, s in items]),
        [label for label, *_ in items],
        SIZE,
    )


def chosen(instruction, detections, nlp):
    """The boxes Select Boxes keeps for `instruction` (guided), as lists, and the phrase set."""
    ps = extract(instruction, nlp=nlp)
    asked = set(ps.to_detect)
    found = detections.subset([i for i, label in enumerate(detections.labels) if label in asked])
    out = select(ps.analysis, found, ps.target, ps.anchor)
    return out.boxes.tolist(), out, ps


# -- possessive pronouns: the thing, inside its owner ------------------------------------------------
MAN = [60, 40, 260, 390]
HIS_SHIRT = [90, 140, 230, 260]
OTHER_SHIRT = [380, 140, 520, 260]


@pytest.mark.parametrize("text", ["turn his shirt blue", "make his shirt red please", "Change his shirt to a hoodie"])
def test_possessive_pronoun_segments_the_thing_on_the_person(nlp, text):
    dets = boxes(("man", MAN, 0.8), ("shirt", OTHER_SHIRT, 0.9), ("shirt", HIS_SHIRT, 0.6))
    got, out, ps = chosen(text, dets, nlp)
    assert (ps.target, ps.anchor) == ("shirt", "man")
    assert got == [HIS_SHIRT]  # not the man, and not the better-scoring shirt on someone else


def test_possessive_pronoun_falls_back_to_the_owner_when_the_thing_is_not_found(nlp):
    got, out, _ = chosen("remove his hat", boxes(("man", MAN, 0.8)), nlp)
    assert got == [MAN] and "owner" in out.note


def test_plural_possessive_takes_every_hat(nlp):
    hats = [[70, 40, 130, 80], [300, 40, 360, 80]]
    dets = boxes(("people", [50, 30, 400, 390], 0.7), ("hats", hats[0], 0.6), ("hats", hats[1], 0.5))
    got, _, ps = chosen("change their hats to crowns", dets, nlp)
    assert ps.analysis.plural and sorted(got) == sorted(hats)


# -- multiword object names: the object, not its first word --------------------------------------------
HYDRANT = [250, 200, 320, 380]


@pytest.mark.parametrize(
    "text,phrase",
    [
        ("make the fire hydrant yellow", "fire hydrant"),
        ("turn the stop sign green", "stop sign"),
        ("remove the teddy bear", "teddy bear"),
        ("make the stained glass window brighter", "stained glass window"),
    ],
)
def test_multiword_object_is_detected_whole(nlp, text, phrase):
    dets = boxes(("fire", [0, 0, 600, 400], 0.9), ("stop", [0, 0, 600, 400], 0.9), (phrase, HYDRANT, 0.5))
    got, _, ps = chosen(text, dets, nlp)
    assert ps.target == phrase and ps.candidates == [phrase]
    assert got == [HYDRANT]


# -- superlatives, ordinals and depth -----------------------------------------------------------------
ROW = [[20, 150, 100, 250], [160, 150, 240, 250], [300, 150, 380, 250], [440, 150, 520, 250]]


@pytest.mark.parametrize(
    "text,label,expected",
    [
        ("make the rightmost bottle green", "bottle", ROW[3]),
        ("remove the leftmost chair", "chair", ROW[0]),
        ("turn the second dog from the left brown", "dog", ROW[1]),
        ("make the third bottle from the right blue", "bottle", ROW[1]),
    ],
)
def test_superlatives_and_ordinals_count_along_the_row(nlp, text, label, expected):
    dets = boxes(*[(label, b, 0.5 + 0.1 * i) for i, b in enumerate(ROW)])
    assert chosen(text, dets, nlp)[0] == [expected]


def test_topmost_and_lowest(nlp):
    shelf = [[50, 20, 150, 80], [50, 160, 150, 220], [50, 300, 150, 360]]
    dets = boxes(*[("book", b, 0.6) for b in shelf])
    assert chosen("make the topmost book red", dets, nlp)[0] == [shelf[0]]
    assert chosen("remove the lowest book", dets, nlp)[0] == [shelf[2]]


NEAR_CAR, MID_CAR, FAR_CAR = [20, 200, 320, 390], [350, 180, 470, 260], [500, 170, 540, 195]


@pytest.mark.parametrize(
    "text,label,expected",
    [
        ("make the nearest car blue", "car", NEAR_CAR),
        ("make the closest car red", "car", NEAR_CAR),
        ("remove the farthest car", "car", FAR_CAR),
        ("paint the car in the background white", "car", FAR_CAR),
        ("make the car in the foreground green", "car", NEAR_CAR),
    ],
)
def test_depth_picks_the_largest_or_smallest_box(nlp, text, label, expected):
    dets = boxes((label, MID_CAR, 0.9), (label, FAR_CAR, 0.6), (label, NEAR_CAR, 0.5))
    got, _, ps = chosen(text, dets, nlp)
    assert got == [expected] and ps.anchor is None


@pytest.mark.parametrize(
    "text,label",
    [("of the three cups, paint the one in the middle red", "cups"), ("make the one in the middle red", "object")],
)
def test_the_one_in_the_middle(nlp, text, label):
    cups = [[40, 150, 140, 250], [250, 150, 350, 250], [460, 150, 560, 250]]
    dets = boxes(*[(label, b, 0.5) for b in cups])
    got, _, ps = chosen(text, dets, nlp)
    assert ps.target == label and got == [cups[1]]


# -- words for a picture ------------------------------------------------------------------------------
SOFA = [150, 220, 450, 390]
PICTURE_ABOVE = [230, 60, 370, 160]
PICTURE_ASIDE = [500, 60, 590, 160]


@pytest.mark.parametrize(
    "text,label",
    [
        ("replace the picture above the sofa with a mirror", "picture"),
        ("make the painting over the sofa black and white", "painting"),
    ],
)
def test_picture_with_a_place_is_an_object(nlp, text, label):
    dets = boxes(("sofa", SOFA, 0.9), (label, PICTURE_ASIDE, 0.9), (label, PICTURE_ABOVE, 0.5))
    got, _, ps = chosen(text, dets, nlp)
    assert (ps.target, ps.anchor) == (label, "sofa")
    assert got == [PICTURE_ABOVE]


@pytest.mark.parametrize("text", ["remove the painting", "remove the photo on the wall"])
def test_removing_a_picture_removes_the_object(nlp, text):
    got, out, ps = chosen(text, boxes(("painting", PICTURE_ABOVE, 0.7), ("photo", PICTURE_ABOVE, 0.7)), nlp)
    assert ps.analysis.kind == "remove" and got == [PICTURE_ABOVE] and not out.fill


@pytest.mark.parametrize(
    "text", ["make the photo black and white", "turn the picture into a watercolor", "make the painting brighter"]
)
def test_picture_without_a_place_is_the_whole_image(nlp, text):
    got, out, ps = chosen(text, boxes(("photo", PICTURE_ABOVE, 0.9)), nlp)
    assert ps.analysis.kind == "global" and ps.candidates == []
    assert got == [[0, 0, W, H]] and out.fill


# -- regions of the scene are places, not reference objects --------------------------------------------
def test_plural_in_the_background_takes_the_small_far_boxes(nlp):
    far = [[100, 100, 130, 140], [400, 90, 440, 140]]
    near = [[0, 150, 250, 400]]
    dets = boxes(("trees", near[0], 0.9), ("trees", far[0], 0.5), ("trees", far[1], 0.5), ("background", SOFA, 0.9))
    got, _, ps = chosen("make the trees in the background darker", dets, nlp)
    assert ps.anchor is None and "background" not in ps.to_detect
    assert sorted(got) == sorted(far)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("add a balloon in the sky", [0, 0, W, H / 2]),
        ("add a fence in the foreground", [0, H / 2, W, H]),
        ("make the left side of the image brighter", [0, 0, W / 2, H]),
        ("make the top of the picture darker", [0, 0, W, H / 2]),
    ],
)
def test_scene_regions_fill_their_part_of_the_image(nlp, text, expected):
    got, out, ps = chosen(text, boxes(("sky", [0, 0, W, 150], 0.9)), nlp)
    assert ps.anchor is None and got == [expected] and out.fill


def test_the_object_on_the_left_side_of_the_image(nlp):
    dets = boxes(*[("car", b, 0.5) for b in ROW])
    got, _, ps = chosen("remove the car on the left side of the image", dets, nlp)
    assert ps.anchor is None and got == [ROW[0]]


# -- what the object becomes is never an object to find ------------------------------------------------
@pytest.mark.parametrize(
    "text,result",
    [
        ("make the left car purple", "purple"),
        ("replace the cat with a dog", "dog"),
        ("turn the dress into silk", "silk"),
        ("make the vase look like gold", "gold"),
        ("paint the fence in the style of Monet", "monet"),
        ("swap the sofa for a leather armchair", "armchair"),
    ],
)
def test_result_words_are_not_candidates(nlp, text, result):
    # a box labelled with the result word (what CLIP Filter could otherwise pick) is never chosen
    got, out, ps = chosen(text, boxes((result, [0, 0, 300, 300], 0.99)), nlp)
    assert all(result not in p.split() for p in ps.to_detect)
    assert got == [] and "not detected" in out.note


def test_noun_chunk_mode_keeps_the_reference_candidates(nlp):
    candidates = extract("make the left car purple", mode="noun chunks", nlp=nlp).candidates
    assert any("purple" in c.split() for c in candidates)


# -- possessives, of-phrases and containment ---------------------------------------------------------
WOMAN_LEFT, WOMAN_RIGHT = [40, 30, 240, 390], [360, 30, 560, 390]
DRESS_LEFT, DRESS_RIGHT = [70, 150, 210, 380], [390, 150, 530, 380]


def test_possessive_noun_owner_picks_the_dress_she_wears(nlp):
    dets = boxes(
        ("woman", WOMAN_RIGHT, 0.9), ("woman", WOMAN_LEFT, 0.4), ("dress", DRESS_LEFT, 0.9), ("dress", DRESS_RIGHT, 0.5)
    )
    got, _, ps = chosen("make the woman's dress blue", dets, nlp)
    assert ps.analysis.relation == "part" and ps.analysis.direction is None
    assert got == [DRESS_RIGHT]  # inside the best woman, not the better-scoring dress


def test_owner_and_direction_together(nlp):
    dets = boxes(
        ("woman", WOMAN_RIGHT, 0.9), ("woman", WOMAN_LEFT, 0.4), ("dress", DRESS_LEFT, 0.5), ("dress", DRESS_RIGHT, 0.9)
    )
    got, _, _ = chosen("make the dress of the woman on the left blue", dets, nlp)
    assert got == [DRESS_LEFT]


@pytest.mark.parametrize(
    "text,label", [("remove the glass of water", "glass"), ("make the slice of pizza bigger", "pizza")]
)
def test_of_phrases_that_are_not_places(nlp, text, label):
    best, other = [100, 100, 200, 250], [300, 100, 400, 250]
    dets = boxes((label, other, 0.4), (label, best, 0.8), ("water", [0, 0, 600, 400], 0.9))
    got, _, ps = chosen(text, dets, nlp)
    assert ps.anchor is None and ps.analysis.relation is None and ps.candidates == [label]
    assert got == [best]


def test_containment_picks_the_cat_on_the_sofa(nlp):
    on_sofa, on_floor = [250, 250, 330, 320], [480, 320, 580, 390]
    dets = boxes(("sofa", SOFA, 0.9), ("cat", on_floor, 0.9), ("cat", on_sofa, 0.4))
    got, out, ps = chosen("make the cat on the sofa black", dets, nlp)
    assert ps.analysis.relation == "relative" and ps.analysis.direction is None
    assert got == [on_sofa] and "sofa" in out.note
