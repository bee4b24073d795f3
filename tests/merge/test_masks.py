"""Mask-mode expressions and DeepFaceLab's erode/blur units converted to plate pixels."""

import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.merge.masks import (
    combine_masks,
    dfl_blur_kernel,
    opencv_gaussian_sigma,
    parse_mask_mode,
    plate_blur_sigma,
    plate_clip_margin,
    plate_erode_radius,
    plate_px_per_unit,
)
from dfl_vfx.merge.merger import MergeSettings

PRD = np.array([[0.2, 1.0], [0.5, 0.0]], np.float32)
DST = np.array([[0.5, 0.5], [1.0, 0.9]], np.float32)
HULL = np.array([[1.0, 1.0], [0.0, 1.0]], np.float32)
MASKS = {"learned-prd": PRD, "learned-dst": DST, "hull": HULL}


def test_products_sums_and_dfl_numbers() -> None:
    np.testing.assert_allclose(combine_masks("learned-prd*learned-dst", MASKS), PRD * DST)
    np.testing.assert_allclose(combine_masks("learned-prd+learned-dst", MASKS), np.clip(PRD + DST, 0, 1))
    np.testing.assert_allclose(combine_masks("hull*learned-dst+learned-prd", MASKS), np.clip(HULL * DST + PRD, 0, 1))
    np.testing.assert_allclose(combine_masks("4", MASKS), PRD * DST)  # DeepFaceLab's default mode number
    np.testing.assert_allclose(combine_masks("1", MASKS), HULL)
    np.testing.assert_allclose(combine_masks("full", MASKS), np.ones((2, 2)))
    assert parse_mask_mode("5") == [["learned-prd"], ["learned-dst"]]


def test_unknown_masks_are_clear_errors_and_xseg_needs_a_model() -> None:
    with pytest.raises(DflError, match="mask_mode hull\\*eyes: unknown mask 'eyes'"):
        parse_mask_mode("hull*eyes")
    assert parse_mask_mode("8") == [["xseg-prd", "xseg-dst"]]  # DeepFaceLab's XSeg modes 6..9
    with pytest.raises(DflError, match="mask_mode xseg-prd: uses XSeg masks: set xseg_model"):
        MergeSettings(mask_mode="xseg-prd").validate()


def test_erode_and_blur_are_relative_to_the_face_size() -> None:
    # A face whose aligned 256 px crop spans 512 plate px: 1 aligned px = 2 plate px, 1 processing px = 0.5.
    matrix = np.array([[0.5, 0.0, -100.0], [0.0, 0.5, -50.0]])
    assert plate_erode_radius(40, matrix) == pytest.approx(40 / 2 * 0.5)
    assert plate_erode_radius(-40, matrix) == pytest.approx(-10.0)
    assert plate_blur_sigma(51, matrix) == pytest.approx(opencv_gaussian_sigma(51) * 0.5)
    assert plate_blur_sigma(50, matrix) == pytest.approx(opencv_gaussian_sigma(51) * 0.5)  # odd kernel, as DFL
    assert plate_blur_sigma(0, matrix) == 0.0
    rotated = np.array([[0.0, -0.5, 0.0], [0.5, 0.0, 0.0]])  # same scale, rotated 90 degrees
    assert plate_erode_radius(40, rotated) == pytest.approx(10.0)
    assert opencv_gaussian_sigma(3) == pytest.approx(0.8)


def test_every_conversion_is_px_per_unit_times_a_formula_a_host_can_evaluate() -> None:
    # 1 aligned px = 2 plate px at 4x: a DeepFaceLab unit is 0.5 plate px; the header gives hosts this factor
    matrix = np.array([[0.3, -0.4, 7.0], [0.4, 0.3, -3.0]])  # scale 0.5, rotated
    unit = plate_px_per_unit(matrix)
    assert unit == pytest.approx(0.5)
    assert plate_erode_radius(-37, matrix) == -37 / 2 * unit
    assert plate_clip_margin(25, matrix) == 25 / 2 * unit  # half the blur kernel, as DeepFaceLab clips
    assert plate_clip_margin(0, matrix) == 0.0
    assert [dfl_blur_kernel(b) for b in (0, 1, 24, 24.9, 25, 25.5)] == [1, 1, 25, 25, 25, 25]
    assert plate_blur_sigma(24.9, matrix) == (0.3 * ((25 - 1) * 0.5 - 1.0) + 0.8) * unit


def test_masks_combine_the_same_on_torch_tensors() -> None:
    import torch

    tensors = {name: torch.from_numpy(mask) for name, mask in MASKS.items()}
    for mode in ("4", "5", "hull*learned-dst+learned-prd", "full"):
        np.testing.assert_allclose(combine_masks(mode, tensors).numpy(), combine_masks(mode, MASKS), atol=1e-7)
