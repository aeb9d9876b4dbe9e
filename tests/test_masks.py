"""Mask operations: OpenCV-equivalent dilation (checked against a direct loop), feathering, the
rectangle and half-image masks, and the union of SAM's masks."""

from __future__ import annotations

import pytest
import torch
from grounded_ip2p.grounding import masks


def dilate_reference(mask: torch.Tensor, size: int) -> torch.Tensor:
    """cv2.dilate(mask, ones((size, size))) written out: dst(y, x) is the max of src(y - a + i,
    x - a + j) over 0 <= i, j < size inside the image, with the anchor a = size // 2."""
    height, width = mask.shape
    anchor = size // 2
    out = torch.zeros_like(mask)
    for y in range(height):
        for x in range(width):
            rows = slice(max(y - anchor, 0), max(y - anchor + size, 0))
            cols = slice(max(x - anchor, 0), max(x - anchor + size, 0))
            window = mask[rows, cols]
            out[y, x] = window.max() if window.numel() else 0
    return out


@pytest.mark.parametrize("shape", [(7, 9), (8, 8), (1, 5), (13, 6)])
@pytest.mark.parametrize("size", [2, 3, 4, 5, 11])
def test_dilate_is_opencvs(shape, size):
    gen = torch.Generator().manual_seed(size * 100 + shape[0])
    binary = torch.rand(shape, generator=gen) < 0.08
    soft = torch.rand(shape, generator=gen)
    for mask in (binary, soft):
        got = masks.dilate(mask, size)
        assert got.shape == mask.shape and got.dtype == mask.dtype
        assert torch.equal(got, dilate_reference(mask, size))


def test_even_kernel_grows_down_right_more():
    mask = torch.zeros(9, 9)
    mask[4, 4] = 1
    rows, cols = masks.dilate(mask, 4).nonzero().unbind(1)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (3, 6, 3, 6)  # as cv2.dilate
    rows, cols = masks.dilate(mask, 11).nonzero().unbind(1)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (0, 8, 0, 8)


def test_dilate_batches_and_no_ops():
    gen = torch.Generator().manual_seed(0)
    batch = torch.rand(2, 3, 10, 7, generator=gen) < 0.1
    got = masks.dilate(batch, 3)
    assert got.shape == batch.shape
    assert torch.equal(got[1, 2], dilate_reference(batch[1, 2], 3))
    assert masks.dilate(batch, 0) is batch and masks.dilate(batch, 1) is batch
    with pytest.raises(ValueError):
        masks.dilate(batch, -1)


def test_feather_range_shape_and_identity():
    mask = torch.zeros(2, 31, 40)
    mask[:, 10:20, 5:25] = 1
    soft = masks.feather(mask, 4)
    assert soft.shape == mask.shape and soft.dtype == torch.float32
    assert soft.min() >= 0 and soft.max() <= 1
    assert 0 < soft[0, 10, 15] < 1 and soft[0, 15, 15] > 0.97 and soft[0, 0, 0] < 0.01
    # the edge stays put: the pixels either side of it sum to the value in the middle of the row
    assert float(soft[0, 15, 4] + soft[0, 15, 5]) == pytest.approx(float(soft[0, 15, 15]), abs=1e-4)
    assert masks.feather(mask, 0) is mask
    # a mask touching the border stays full there; tiny images and bool masks are fine
    assert torch.allclose(masks.feather(torch.ones(3, 2), 10), torch.ones(3, 2))
    assert masks.feather(torch.ones(5, 5, dtype=torch.bool), 2).dtype == torch.float32


def test_feather_sigma_is_half_the_radius():
    step = torch.zeros(1, 101)
    step[:, 50:] = 1
    soft = masks.feather(step, 10)[0]
    # Gaussian CDF at 2 sigma = radius px from the edge (pixel centres: edge at 49.5)
    assert float(soft[60]) == pytest.approx(0.977, abs=0.01)
    assert float(soft[39]) == pytest.approx(0.023, abs=0.01)


def test_rectangle_is_clipped_to_the_image():
    rect = masks.rectangle((10, 20), [5.7, 2.2, 12.9, 6.0])
    assert rect.shape == (10, 20) and rect.dtype == torch.float32
    assert rect.sum() == 7 * 4 and rect[2:6, 5:12].all()
    clipped = masks.rectangle((10, 20), [-8, -3, 50, 4.5])
    assert torch.equal(clipped.nonzero()[:, 0].unique(), torch.arange(4)) and clipped[:4].all()
    assert masks.rectangle((10, 20), [25, 12, 40, 30]).sum() == 0
    assert masks.rectangle((10, 20), [8, 8, 3, 3]).sum() == 0


@pytest.mark.parametrize(
    "direction,region",
    [
        ("left", (slice(None), slice(0, 3))),
        ("right", (slice(None), slice(3, 7))),
        ("top", (slice(0, 2), slice(None))),
        ("bottom", (slice(2, 5), slice(None))),
    ],
)
def test_half(direction, region):
    mask = masks.half((5, 7), direction)
    expected = torch.zeros(5, 7)
    expected[region] = 1
    assert torch.equal(mask, expected)


def test_half_refuses_unknown_directions():
    with pytest.raises(ValueError, match="left"):
        masks.half((5, 7), "front")


def test_union():
    a = torch.zeros(3, 4, 5, dtype=torch.bool)
    a[0, 0, 0] = a[1, 0, 0] = a[2, 3, 4] = True
    merged = masks.union(a, (4, 5))
    assert merged.dtype == torch.float32 and merged.shape == (4, 5)
    assert merged.sum() == 2 and merged[0, 0] == 1 and merged[3, 4] == 1
    empty = masks.union(torch.zeros(0, 4, 5, dtype=torch.bool), (4, 5))
    assert empty.shape == (4, 5) and empty.sum() == 0
    with pytest.raises(ValueError, match="do not fit"):
        masks.union(a, (5, 4))
