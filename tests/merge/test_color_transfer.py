"""Colour transfer modes: each mode delivers the statistics it promises, masks weight them, degenerate input is safe."""

import cv2
import numpy as np
import pytest
from skimage import data

from dfl_vfx.errors import DflError
from dfl_vfx.merge.color_transfer import (
    COLOR_TRANSFER_MODES,
    LAB_FROM_RGB,
    lab_to_rgb,
    rgb_to_lab,
    transfer_color,
)

SIZE = 128
MASKED_MODES = ["rct", "lct", "mkl-m", "idt-m", "sot-m", "mix-m"]


def _face(image: np.ndarray) -> np.ndarray:
    """A skimage photo as a SIZE x SIZE 'working space' face: float32 / 255."""
    return cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def target() -> np.ndarray:
    return _face(data.astronaut())


@pytest.fixture(scope="module")
def source() -> np.ndarray:
    return _face(data.coffee())


@pytest.fixture(scope="module")
def target_mask() -> np.ndarray:
    """A soft disc: weight 1 inside radius 35, falling to 0 by radius 50."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    radius = np.hypot(xx - SIZE / 2, yy - SIZE / 2)
    return np.clip((50.0 - radius) / 15.0, 0.0, 1.0).astype(np.float32)


@pytest.fixture(scope="module")
def source_mask() -> np.ndarray:
    """The left 60 % of the source, where the coffee cup is."""
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[:, : int(SIZE * 0.6)] = 1.0
    return mask


def _stats(image: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    pixels = image.reshape(-1, image.shape[-1]).astype(np.float64)
    weights = np.ones(len(pixels)) if mask is None else mask.reshape(-1).astype(np.float64)
    mean = weights @ pixels / weights.sum()
    centred = pixels - mean
    return mean, (centred * weights[:, None]).T @ centred / weights.sum()


def _w1(a: np.ndarray, b: np.ndarray, wa: np.ndarray | None, wb: np.ndarray | None) -> float:
    """1-D Wasserstein-1 distance between two weighted samples (mean gap of 999 quantiles)."""
    levels = np.linspace(0.0005, 0.9995, 999)

    def quantiles(x: np.ndarray, w: np.ndarray | None) -> np.ndarray:
        w = np.ones_like(x) if w is None else w
        keep = w > 0
        x, w = x[keep], w[keep]
        order = np.argsort(x)
        x, w = x[order], w[order]
        return np.interp(levels, (np.cumsum(w) - w / 2) / w.sum(), x)

    return float(np.mean(np.abs(quantiles(a, wa) - quantiles(b, wb))))


def _sliced_w1(a: np.ndarray, b: np.ndarray, ma: np.ndarray | None, mb: np.ndarray | None, axes: np.ndarray) -> float:
    """Mean 1-D W1 of the two pixel sets projected on each row of ``axes``."""
    pa, pb = a.reshape(-1, axes.shape[1]), b.reshape(-1, axes.shape[1])
    wa = None if ma is None else ma.reshape(-1)
    wb = None if mb is None else mb.reshape(-1)
    return float(np.mean([_w1(pa @ axis, pb @ axis, wa, wb) for axis in axes]))


def _random_axes(count: int, dims: int = 3) -> np.ndarray:
    axes = np.random.default_rng(1234).standard_normal((count, dims))
    return axes / np.linalg.norm(axes, axis=1, keepdims=True)


# --- opponent ("Lab") space ----------------------------------------------------------------------------------------


def test_lab_round_trip_is_exact_including_out_of_range_values():
    rgb = np.random.default_rng(0).uniform(-0.2, 1.5, (64, 64, 3)).astype(np.float32)
    lab = rgb_to_lab(rgb)
    np.testing.assert_allclose(lab_to_rgb(lab), rgb, atol=1e-5, rtol=0)
    np.testing.assert_allclose(LAB_FROM_RGB @ LAB_FROM_RGB.T, np.eye(3), atol=1e-12)
    grey = np.full((1, 1, 3), 0.4, np.float32)
    np.testing.assert_allclose(rgb_to_lab(grey)[0, 0], [0.4 * np.sqrt(3.0), 0.0, 0.0], atol=1e-6)


# --- rct -----------------------------------------------------------------------------------------------------------


def test_rct_matches_masked_lab_mean_and_std(target, source, target_mask, source_mask):
    out = transfer_color("rct", target, source, target_mask, source_mask)
    assert out.dtype == np.float32 and out.shape == target.shape
    mean_out, cov_out = _stats(rgb_to_lab(out), target_mask)
    mean_src, cov_src = _stats(rgb_to_lab(source), source_mask)
    np.testing.assert_allclose(mean_out, mean_src, atol=1e-4)
    np.testing.assert_allclose(np.sqrt(np.diag(cov_out)), np.sqrt(np.diag(cov_src)), atol=1e-4)
    # The unmasked statistics were different to begin with, so the match is the transfer's doing.
    assert np.abs(_stats(rgb_to_lab(target), target_mask)[0] - mean_src).max() > 0.05


def test_rct_ignores_pixels_outside_the_masks(target, source, target_mask, source_mask):
    rng = np.random.default_rng(5)
    noisy_target = np.where(target_mask[..., None] > 0, target, rng.uniform(-1, 2, target.shape)).astype(np.float32)
    noisy_source = np.where(source_mask[..., None] > 0, source, rng.uniform(-1, 2, source.shape)).astype(np.float32)
    out = transfer_color("rct", target, source, target_mask, source_mask)
    out_noisy = transfer_color("rct", noisy_target, noisy_source, target_mask, source_mask)
    inside = target_mask > 0
    np.testing.assert_allclose(out_noisy[inside], out[inside], atol=1e-5)
    # Masks only weight the statistics: every pixel is transformed, outside the mask too.
    outside = target_mask == 0
    assert np.abs(out[outside] - target[outside]).mean() > 0.02


# --- lct / mkl -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode, masked", [("lct", True), ("mkl", False), ("mkl-m", True)])
def test_linear_modes_match_mean_and_covariance(mode, masked, target, source, target_mask, source_mask):
    out = transfer_color(mode, target, source, target_mask, source_mask)
    mt, ms = (target_mask, source_mask) if masked else (None, None)
    mean_out, cov_out = _stats(out, mt)
    mean_src, cov_src = _stats(source, ms)
    scale = np.abs(cov_src).max()
    np.testing.assert_allclose(mean_out, mean_src, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(cov_out, cov_src, rtol=1e-3, atol=1e-3 * scale)
    assert np.abs(_stats(target, mt)[1] - cov_src).max() > 0.1 * scale


def _affine_part(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The 3x3 linear part A of ``after = A before + b``, fitted over all pixels."""
    x = np.hstack([before.reshape(-1, 3), np.ones((before[..., 0].size, 1))]).astype(np.float64)
    solution, *_ = np.linalg.lstsq(x, after.reshape(-1, 3).astype(np.float64), rcond=None)
    return solution[:3].T


def test_mkl_is_the_symmetric_least_displacement_map(target, source, target_mask, source_mask):
    """Monge-Kantorovich: the linear part is symmetric positive definite and moves the pixels less than LCT."""
    mkl = transfer_color("mkl-m", target, source, target_mask, source_mask)
    lct = transfer_color("lct", target, source, target_mask, source_mask)
    matrix = _affine_part(target, mkl)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-3 * np.abs(matrix).max())
    assert np.linalg.eigvalsh((matrix + matrix.T) / 2).min() > 0
    lct_matrix = _affine_part(target, lct)
    assert np.abs(lct_matrix - lct_matrix.T).max() > 0.05 * np.abs(lct_matrix).max()

    weights = target_mask.reshape(-1)

    def mean_squared_move(out: np.ndarray) -> float:
        return float(weights @ ((out - target) ** 2).reshape(-1, 3).sum(axis=1) / weights.sum())

    assert mean_squared_move(mkl) < mean_squared_move(lct)


def test_mkl_masked_and_unmasked_differ_when_masks_select_different_regions(target, source, target_mask,
                                                                            source_mask):
    masked = transfer_color("mkl-m", target, source, target_mask, source_mask)
    unmasked = transfer_color("mkl", target, source, target_mask, source_mask)
    assert np.abs(masked - unmasked).mean() > 0.01
    np.testing.assert_array_equal(unmasked, transfer_color("mkl", target, source))


# --- idt / sot / mix -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode, masked", [("idt", False), ("idt-m", True)])
def test_idt_matches_channel_and_projected_distributions(mode, masked, target, source, target_mask, source_mask):
    out = transfer_color(mode, target, source, target_mask, source_mask, seed=7)
    mt, ms = (target_mask, source_mask) if masked else (None, None)
    for axes in (np.eye(3), _random_axes(6)):
        before = _sliced_w1(target, source, mt, ms, axes)
        after = _sliced_w1(out, source, mt, ms, axes)
        assert after < 0.1 * before, (before, after)


def test_idt_is_deterministic_for_a_seed(target, source, target_mask, source_mask):
    first = transfer_color("idt-m", target, source, target_mask, source_mask, seed=3)
    again = transfer_color("idt-m", target, source, target_mask, source_mask, seed=3)
    other = transfer_color("idt-m", target, source, target_mask, source_mask, seed=4)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 1e-4


def test_sot_reduces_sliced_wasserstein_distance(target, source, target_mask, source_mask):
    out = transfer_color("sot-m", target, source, target_mask, source_mask, seed=1)
    axes = _random_axes(20)
    before = _sliced_w1(target, source, target_mask, source_mask, axes)
    after = _sliced_w1(out, source, target_mask, source_mask, axes)
    assert after < 0.3 * before, (before, after)
    np.testing.assert_array_equal(out, transfer_color("sot-m", target, source, target_mask, source_mask, seed=1))


def test_mix_matches_lightness_moments_and_moves_chroma_distribution(target, source, target_mask, source_mask):
    out = transfer_color("mix-m", target, source, target_mask, source_mask)
    lab_out, lab_src, lab_tgt = rgb_to_lab(out), rgb_to_lab(source), rgb_to_lab(target)
    mean_out, cov_out = _stats(lab_out[..., :1], target_mask)
    mean_src, cov_src = _stats(lab_src[..., :1], source_mask)
    np.testing.assert_allclose(mean_out, mean_src, atol=1e-4)
    np.testing.assert_allclose(np.sqrt(cov_out), np.sqrt(cov_src), atol=1e-4)
    axes = _random_axes(20, dims=2)
    before = _sliced_w1(lab_tgt[..., 1:], lab_src[..., 1:], target_mask, source_mask, axes)
    after = _sliced_w1(lab_out[..., 1:], lab_src[..., 1:], target_mask, source_mask, axes)
    assert after < 0.3 * before, (before, after)


# --- dispatcher and degenerate input -------------------------------------------------------------------------------


def test_none_returns_an_equal_copy(target, source):
    out = transfer_color("none", target, source)
    np.testing.assert_array_equal(out, target)
    assert out is not target and not np.shares_memory(out, target)


def test_unknown_mode_names_the_option_and_the_valid_modes(target, source):
    with pytest.raises(DflError) as error:
        transfer_color("reinhard", target, source)
    assert str(error.value) == f"color_transfer reinhard: unknown; use one of {', '.join(COLOR_TRANSFER_MODES)}"
    listed = str(error.value).partition("use one of ")[2].split(", ")
    assert sorted(listed) == sorted(COLOR_TRANSFER_MODES) and len(set(listed)) == len(listed)


def test_registry_lists_the_reference_modes():
    assert list(COLOR_TRANSFER_MODES) == ["none", "rct", "lct", "mkl", "mkl-m", "idt", "idt-m", "sot-m", "mix-m"]


@pytest.mark.parametrize("mode", MASKED_MODES)
def test_empty_mask_returns_a_finite_copy(mode, target, source, source_mask):
    empty = np.zeros(target.shape[:2], np.float32)
    for masks in ((empty, source_mask), (np.ones_like(empty), empty)):
        out = transfer_color(mode, target, source, *masks)
        np.testing.assert_array_equal(out, target)


@pytest.mark.parametrize("mode", list(COLOR_TRANSFER_MODES))
def test_flat_faces_give_finite_output(mode, target, source, target_mask, source_mask):
    flat = np.full_like(target, 0.3)
    out = transfer_color(mode, flat, source, target_mask, source_mask)
    assert np.isfinite(out).all()
    if mode in ("rct", "lct", "mkl-m"):  # a flat target can only be mean-shifted onto the source
        np.testing.assert_allclose(out[0, 0], _stats(source, source_mask)[0], atol=1e-5)
    out = transfer_color(mode, target, flat, target_mask, source_mask)
    assert np.isfinite(out).all()
    if mode != "none":  # a flat source collapses every distribution onto its value
        np.testing.assert_allclose(out[target_mask > 0.5].mean(axis=0), 0.3, atol=0.02)


@pytest.mark.parametrize("mode", ["rct", "mkl-m", "idt-m"])
def test_values_outside_zero_one_are_not_clipped(mode, target, source, target_mask, source_mask):
    """ACEScct highlights sit above 1 and the toe goes slightly negative: the transfer must follow them there."""
    stretched = source * 2.0 - 0.2
    out = transfer_color(mode, target, stretched, target_mask, source_mask)
    mean_out = _stats(out, target_mask)[0]
    np.testing.assert_allclose(mean_out, _stats(stretched, source_mask)[0], atol=0.01)
    assert out.max() > 1.3 and out.min() < -0.05
