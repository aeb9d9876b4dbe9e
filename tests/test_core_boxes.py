"""The pack's boxes to and from ComfyUI core's BOUNDING_BOX payload, without ComfyUI."""

import pytest
import torch
from grounded_ip2p.grounding.core_boxes import from_core, per_image, phrase_for, to_core
from grounded_ip2p.grounding.detections import Detections
from grounded_ip2p.grounding.phrases import PhraseSet, extract
from grounded_ip2p.grounding.selection import select


def random_detections(size, n, seed):
    g = torch.Generator().manual_seed(seed)
    h, w = size
    corners = torch.rand(n, 2, 2, generator=g) * torch.tensor([w, h])
    boxes = torch.cat([corners.min(1).values, corners.max(1).values], 1)
    scores = torch.rand(n, generator=g)
    return Detections(boxes, scores, [("car", "tree", "red cars")[i % 3] for i in range(n)], size)


def box(x, y, width, height, **extra):
    return {"x": x, "y": y, "width": width, "height": height, **extra}


def test_round_trip_is_exact_for_a_batch_with_an_empty_image():
    sizes = [(64, 96), (480, 640), (33, 17)]
    batch = [random_detections(sizes[0], 7, 1), Detections.empty(sizes[1]), random_detections(sizes[2], 3, 2)]
    core = to_core(batch)
    assert [len(frame) for frame in core] == [7, 0, 3]
    back = from_core(core, sizes)
    for before, after in zip(batch, back):
        assert torch.equal(after.boxes, before.boxes)
        assert torch.equal(after.scores, before.scores)
        assert after.labels == before.labels and after.image_size == before.image_size
        assert after.note == "" and after.phrase_set is None


def test_core_boxes_are_top_left_and_size_in_pixels_of_their_image():
    det = Detections(torch.tensor([[10.0, 20.0, 50.0, 35.0]]), torch.tensor([0.75]), ["car"], (64, 96))
    assert to_core([det]) == [[box(10.0, 20.0, 40.0, 15.0, score=0.75, label="car")]]
    assert all(isinstance(v, (float, str)) for v in to_core([det])[0][0].values())  # plain values, no tensors


def test_boxes_leaving_the_image_are_clipped_both_ways():
    det = Detections(torch.tensor([[-5.0, 10.0, 120.0, 80.0]]), torch.tensor([0.5]), ["car"], (64, 96))
    assert to_core([det]) == [[box(0.0, 10.0, 96.0, 54.0, score=0.5, label="car")]]
    back = from_core([[box(-5, 10, 125, 70), box(90, 60, -30, -20), box(200, 10, 20, 20)]], [(64, 96)])[0]
    assert back.boxes.tolist() == [[0, 10, 96, 64], [60, 40, 90, 60]]  # a negative size is the other corner
    assert "1 box(es) with no area inside the image dropped" in back.note


@pytest.mark.parametrize(
    "payload, expected",
    [
        (box(1, 2, 3, 4), [[box(1, 2, 3, 4)]] * 3),  # one box for every image
        ([box(1, 2, 3, 4), box(5, 6, 7, 8)], [[box(1, 2, 3, 4), box(5, 6, 7, 8)]] * 3),  # a flat list
        ([[box(1, 2, 3, 4)]], [[box(1, 2, 3, 4)]] * 3),  # one frame (Create Bounding Boxes)
        ([[box(1, 2, 3, 4)], [], [box(5, 6, 7, 8)]], [[box(1, 2, 3, 4)], [], [box(5, 6, 7, 8)]]),
        ([], [[], [], []]),
    ],
)
def test_every_shape_core_nodes_accept_is_read(payload, expected):
    assert per_image(payload, 3) == expected


def test_empty_frames_give_empty_detections():
    dets = from_core([[], []], [(64, 96), (32, 48)])
    assert [len(d) for d in dets] == [0, 0] and [d.image_size for d in dets] == [(64, 96), (32, 48)]
    assert dets[0].boxes.shape == (0, 4)


def test_wrong_payloads_say_what_is_wrong():
    with pytest.raises(ValueError, match="for 2 image\\(s\\) but 3 image\\(s\\)"):
        per_image([[box(1, 2, 3, 4)], []], 3)
    with pytest.raises(ValueError, match="got str"):
        per_image("x=1", 1)
    with pytest.raises(ValueError, match="box 1 of image 0 has no number 'width'"):
        from_core([[box(1, 2, 3, 4), {"x": 1, "y": 2, "height": 3}]], [(64, 96)])
    with pytest.raises(ValueError, match="'score'"):
        from_core([[box(1, 2, 3, 4, score=float("nan"))]], [(64, 96)])


def test_scores_default_to_one_and_stay_in_range():
    det = from_core([[box(1, 2, 3, 4), box(1, 2, 3, 4, score=1.5), box(1, 2, 3, 4, score=-1)]], [(64, 96)])[0]
    assert det.scores.tolist() == [1.0, 1.0, 0.0]


def test_labels_come_from_the_label_input_the_box_or_its_description():
    frame = [box(1, 2, 3, 4, label="car"), box(1, 2, 3, 4, metadata={"desc": "a lamp"}), box(1, 2, 3, 4)]
    assert from_core([frame], [(64, 96)])[0].labels == ["car", "a lamp", "object"]
    assert from_core([frame], [(64, 96)], label=" dog ")[0].labels == ["dog"] * 3


def test_core_labels_become_the_phrases_they_name():
    ps = PhraseSet("", candidates=["red cars", "table", "lamp"], target="red cars", anchor="man")
    assert phrase_for("car", ps) == "red cars"  # the head noun, singular or plural
    assert phrase_for("dining table", ps) == "table"
    assert phrase_for("person", ps) == "man"
    assert phrase_for("Lamp", ps) == "lamp"
    assert phrase_for("dog", ps) == "dog"  # named nothing of the instruction: kept
    assert phrase_for("car", None) == "car"
    unlabelled = from_core([[box(1, 2, 3, 4)]], [(64, 96)], phrases=ps)[0]
    assert unlabelled.labels == ["red cars"] and unlabelled.phrase_set is ps  # SAM 3's boxes: the target's


def test_select_boxes_picks_from_a_core_detectors_boxes_by_the_instruction():
    ps = extract("make the left car purple")
    rtdetr = [
        [
            box(300, 100, 100, 100, label="car", score=0.9),
            box(20, 120, 100, 100, label="car", score=0.5),
            box(400, 50, 80, 200, label="person", score=0.95),
        ]
    ]
    det = from_core(rtdetr, [(400, 600)], phrases=ps)[0]
    chosen = select(ps.analysis, det, ps.target, ps.anchor)
    assert chosen.boxes.tolist() == [[20, 120, 120, 220]] and chosen.labels == ["car"]
