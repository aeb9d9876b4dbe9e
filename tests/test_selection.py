"""Guided box selection on synthetic boxes, and the phrase sets NounPhraseExtract builds."""

import pytest
import torch
from grounded_ip2p.grounding.detections import Detections
from grounded_ip2p.grounding.instruction import InstructionAnalysis
from grounded_ip2p.grounding.phrases import detector_phrase, extract, noun_chunk_phrases
from grounded_ip2p.grounding.selection import (
    addition_box,
    containment_filter,
    on_side,
    pick_direction,
    region_box,
    select,
)

SIZE = (400, 600)  # height, width


def dets(*items, size=SIZE):
    """items: (label, [x1, y1, x2, y2], score)"""
    return Detections(
        torch.tensor([b for _, b, _ in items], dtype=torch.float32).reshape(-1, 4),
        torch.tensor([s for *_, s in items]),
        [label for label, *_ in items],
        size,
    )


def edit(**kw):
    return InstructionAnalysis(kind=kw.pop("kind", "edit"), **kw)


CARS = dets(
    ("car", [300, 100, 400, 200], 0.9),  # middle
    ("car", [20, 120, 120, 220], 0.5),  # left
    ("car", [480, 90, 590, 210], 0.7),  # right
    ("tree", [0, 0, 50, 50], 0.8),
)


@pytest.mark.parametrize(
    "direction,expected",
    [("left", [20, 120, 120, 220]), ("right", [480, 90, 590, 210]), ("center", [300, 100, 400, 200])],
)
def test_absolute_direction_picks_one_car(direction, expected):
    out = select(edit(direction=direction, relation="absolute"), CARS, "car")
    assert out.boxes.tolist() == [expected]
    assert direction in out.note


def test_top_and_bottom():
    boxes = dets(("cup", [10, 300, 60, 350], 0.5), ("cup", [10, 10, 60, 60], 0.5), ("cup", [10, 150, 60, 200], 0.5))
    assert pick_direction(boxes, "top").boxes[0, 1] == 10
    assert pick_direction(boxes, "bottom").boxes[0, 1] == 300


def test_ordinals_count_from_the_named_side():
    second_left = select(edit(direction="left", ordinal=2, relation="absolute"), CARS, "car")
    assert second_left.boxes.tolist() == [[300, 100, 400, 200]]
    third_right = select(edit(direction="right", ordinal=3, relation="absolute"), CARS, "car")
    assert third_right.boxes.tolist() == [[20, 120, 120, 220]]
    fourth = select(edit(direction="left", ordinal=4, relation="absolute"), CARS, "car")
    assert len(fourth) == 0 and "no number 4" in fourth.note


def test_centres_not_edges_decide_left():
    # a wide box reaching further left but centred to the right of a small one
    boxes = dets(("car", [0, 0, 500, 100], 0.9), ("car", [100, 0, 150, 100], 0.9))
    assert pick_direction(boxes, "left").boxes.tolist() == [[100, 0, 150, 100]]


def test_singular_without_direction_keeps_best_box_plural_keeps_all():
    one = select(edit(), CARS, "car")
    assert one.boxes.tolist() == [[300, 100, 400, 200]] and one.scores.tolist() == [pytest.approx(0.9)]
    many = select(edit(plural=True), CARS, "car")
    assert len(many) == 3 and set(many.labels) == {"car"}


def test_containment_singular_keeps_object_plural_keeps_group():
    boxes = dets(
        ("cups", [0, 0, 200, 100], 0.6),  # group box
        ("cups", [10, 10, 90, 90], 0.8),
        ("cups", [110, 10, 190, 90], 0.7),
    )
    assert len(containment_filter(boxes, plural=True)) == 1  # the group box
    assert containment_filter(boxes, plural=True).boxes.tolist() == [[0, 0, 200, 100]]
    singles = containment_filter(boxes, plural=False)
    assert sorted(singles.boxes[:, 0].tolist()) == [10, 110]
    same = dets(("cup", [0, 0, 10, 10], 0.5), ("cup", [0, 0, 10, 10], 0.5))
    assert len(containment_filter(same, plural=False)) == 1


LAMPS = dets(
    ("lamp", [20, 100, 80, 200], 0.8),  # left of the bed
    ("lamp", [420, 100, 480, 200], 0.7),  # right of the bed
    ("bed", [150, 150, 400, 350], 0.9),
)


def test_relative_picks_the_target_on_the_named_side():
    a = edit(direction="right", relation="relative", anchor="the bed")
    out = select(a, LAMPS, "lamp", "bed")
    assert out.boxes.tolist() == [[420, 100, 480, 200]] and "right of 'bed'" in out.note
    a.direction = "left"
    assert select(a, LAMPS, "lamp", "bed").boxes.tolist() == [[20, 100, 80, 200]]


def test_relative_rejects_the_wrong_side():
    only_left = dets(("lamp", [20, 100, 80, 200], 0.8), ("bed", [150, 150, 400, 350], 0.9))
    out = select(edit(direction="right", relation="relative"), only_left, "lamp", "bed")
    assert len(out) == 0 and "right of the anchor" in out.note
    assert not on_side(torch.tensor([20.0, 100, 80, 200]), torch.tensor([150.0, 150, 400, 350]), "right")
    # overlapping, barely right of the anchor's centre: not "right of" it
    assert not on_side(torch.tensor([260.0, 150, 300, 350]), torch.tensor([150.0, 150, 400, 350]), "right")


def test_relative_without_direction_prefers_boxes_inside_the_anchor():
    cups = dets(
        ("cup", [10, 10, 40, 40], 0.9), ("cup", [200, 160, 230, 190], 0.5), ("table", [150, 150, 400, 350], 0.9)
    )
    out = select(edit(relation="relative"), cups, "cup", "table")
    assert out.boxes.tolist() == [[200, 160, 230, 190]]


def test_relative_with_missing_anchor_falls_back_to_absolute_direction():
    only_lamps = LAMPS.with_label("lamp")
    out = select(edit(direction="right", relation="relative"), only_lamps, "lamp", "bed")
    assert out.boxes.tolist() == [[420, 100, 480, 200]]


@pytest.mark.parametrize("direction", ["left", "right", "top", "bottom", None])
def test_addition_rectangle_is_next_to_the_anchor_and_inside_the_image(direction):
    anchor = LAMPS.with_label("bed")
    out = select(InstructionAnalysis(kind="add", direction=direction, relation="relative"), anchor, None, "bed")
    assert out.fill and len(out) == 1
    x1, y1, x2, y2 = out.boxes[0].tolist()
    h, w = SIZE
    assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
    ax1, ay1, ax2, ay2 = anchor.boxes[0].tolist()
    if direction == "left":
        assert x2 == ax1 and y2 == ay2
    elif direction == "right":
        assert x1 == ax2 and y2 == ay2
    elif direction == "top":
        assert y2 == ay1 and (x1 + x2) / 2 == pytest.approx((ax1 + ax2) / 2)
    elif direction == "bottom":
        assert y1 == ay2
    else:
        assert [x1, y1, x2, y2] == [ax1, ay1, ax2, ay2]


def test_addition_clips_at_the_image_border_and_respects_minimum_size():
    box = addition_box(torch.tensor([560.0, 10, 590, 30]), "right", SIZE)
    assert box.tolist() == [590, 0, 600, 30]  # 50 px wide prior, clipped at x = 600
    box = addition_box(torch.tensor([100.0, 100, 110, 110]), "left", SIZE)
    assert box[2] - box[0] == 50 and box[3] - box[1] == 50


def test_addition_without_anchor_uses_half_or_whole_image():
    none = Detections.empty(SIZE)
    top = select(InstructionAnalysis(kind="add", direction="top"), none, None, None)
    assert top.boxes.tolist() == [[0, 0, 600, 200]] and top.fill
    whole = select(InstructionAnalysis(kind="add"), none, None, "vase")
    assert whole.boxes.tolist() == [region_box(SIZE, None).tolist()]


def test_global_edit_is_the_whole_image():
    out = select(InstructionAnalysis(kind="global"), Detections.empty(SIZE), None)
    assert out.fill and out.boxes.tolist() == [[0, 0, 600, 400]]


def test_undetected_target_is_empty_with_a_reason():
    out = select(edit(), CARS, "bicycle")
    assert len(out) == 0 and "'bicycle' was not detected" in out.note


def test_reference_mode_is_the_union_of_the_phrase_boxes():
    out = select(None, CARS, "car")
    assert len(out) == 3 and not out.fill


# --- phrase sets -------------------------------------------------------------------------------


def test_detector_phrase():
    assert detector_phrase("The Red car.") == "red car"
    assert detector_phrase("all the cups") == "cups"
    assert detector_phrase("") is None and detector_phrase("the") is None


def test_guided_phrase_set():
    ps = extract("change the lamp right of the bed to a candle")
    assert ps.target == "lamp" and ps.anchor == "bed" and ps.candidates[0] == "lamp"
    assert "bed" not in ps.candidates and "bed" in ps.to_detect
    assert ps.simplified == "change the lamp to a candle"
    left = extract("make the left car purple")
    assert left.target == "car" and "left car" not in left.candidates
    assert left.analysis.direction == "left"


def test_pronoun_resolves_for_the_detector():
    ps = extract("give her gray hair")
    assert ps.target == "woman"


def test_global_and_garbage_have_no_candidates():
    for text in ["make it night", "", "   ", "%%%", "x" * 10000, "把汽车变成红色"]:
        ps = extract(text)
        assert ps.candidates == [] and ps.target is None


def test_noun_chunk_mode_cleans_the_reference_chunks():
    phrases = noun_chunk_phrases("turn him into a statue in the image")
    assert phrases == ["statue"]
    ps = extract("make the red car purple", mode="noun chunks")
    assert ps.target is None and ps.analysis is None and ps.candidates
    with pytest.raises(ValueError):
        extract("x", mode="nope")


def test_addition_with_an_absolute_direction_goes_on_that_anchor():
    windows = dets(("window", [20, 50, 120, 150], 0.8), ("window", [400, 50, 500, 150], 0.9))
    a = InstructionAnalysis(kind="add", direction="left", relation="absolute", anchor="the window")
    out = select(a, windows, None, "window")
    assert out.fill and out.boxes.tolist() == [[20, 50, 120, 150]]
