"""The NumPy/OpenCV reference of the merge operations against hand-computed numbers (docs/dev/merge-ops.md)."""

import math

import numpy as np
import pytest

from dfl_vfx.merge import reference as ref


def similarity(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty]])


def digital_disc(shape: tuple[int, int], centre: tuple[int, int], radius: float) -> np.ndarray:
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    return ((x - centre[0]) ** 2 + (y - centre[1]) ** 2 <= radius * radius).astype(np.float32)


# -- warp ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("interpolation", ref.INTERPOLATIONS)
def test_identity_warp_reproduces_the_source(interpolation: str) -> None:
    src = np.random.default_rng(1).random((13, 17, 3), dtype=np.float32)
    out = ref.warp_to_plate(src, np.eye(2, 3), (0, 0, 17, 13), interpolation)
    assert out.dtype == np.float32 and out.shape == (13, 17, 3)
    np.testing.assert_allclose(out, src, rtol=0, atol=1e-7)  # lanczos: sinc(k) is ~1e-17, not 0


@pytest.mark.parametrize("interpolation", ref.INTERPOLATIONS)
def test_integer_translation_shifts_and_pads_with_zero(interpolation: str) -> None:
    src = np.random.default_rng(2).random((9, 11, 2), dtype=np.float32)
    # Output pixel (x, y) of box (-4, -2, 15, 12) reads source (x + 3, y - 1).
    out = ref.warp_to_plate(src, np.array([[1.0, 0, 3], [0, 1.0, -1]]), (-4, -2, 15, 12), interpolation)
    # Source (u, v) lands at plate (u - 3, v + 1), box index (v + 3, u + 1).
    expected = np.zeros((14, 19, 2), np.float32)
    expected[3:12, 1:12] = src
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-7)


def test_bilinear_affine_of_a_ramp_is_exact() -> None:
    # src(u, v) = u + 2 v; u = 0.5 x + 0.25 and v = 0.5 y + 0.75 give exact quarter weights in float32.
    v, u = np.mgrid[0:20, 0:20].astype(np.float32)
    src = (u + 2 * v)[..., None]
    matrix = np.array([[0.5, 0.0, 0.25], [0.0, 0.5, 0.75]])
    out = ref.warp_to_plate(src, matrix, (0, 0, 36, 36), "bilinear")[..., 0]
    x = np.arange(36) * 0.5 + 0.25
    y = np.arange(36) * 0.5 + 0.75
    np.testing.assert_array_equal(out, x[None, :] + 2 * y[:, None])
    assert out[5, 7] == 3.75 + 2 * 3.25  # a worked pixel: u = 3.75, v = 3.25


def test_bilinear_half_outside_tap_reads_zero() -> None:
    src = np.ones((4, 4, 1), np.float32)
    out = ref.warp_to_plate(src, np.array([[1.0, 0, -0.5], [0, 1.0, 1.0]]), (0, 0, 5, 1), "bilinear")[0, :, 0]
    # u = x - 0.5: x = 0 blends the outside column -1 (0) with column 0 (1); x = 4 blends column 3 with column 4.
    np.testing.assert_array_equal(out, [0.5, 1.0, 1.0, 1.0, 0.5])


def test_box_far_outside_the_source_is_zero() -> None:
    src = np.ones((8, 8, 4), np.float32)
    out = ref.warp_to_plate(src, np.eye(2, 3), (100, 100, 110, 104), "lanczos")
    assert out.shape == (4, 10, 4) and not out.any()


@pytest.mark.parametrize("interpolation", ["bicubic", "lanczos"])
def test_rotated_scaled_warp_reproduces_a_constant_away_from_borders(interpolation: str) -> None:
    src = np.full((40, 40, 1), 0.7, np.float32)
    matrix = similarity(0.83, 21.0, 14.3, -6.9)
    out = ref.warp_to_plate(src, matrix, (0, 0, 40, 40), interpolation)[..., 0]
    y, x = np.mgrid[0:40, 0:40].astype(np.float64)
    u = matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2]
    v = matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]
    interior = (u > 5) & (u < 34) & (v > 5) & (v < 34)
    assert interior.sum() > 300
    np.testing.assert_allclose(out[interior], 0.7, rtol=0, atol=1e-6)


@pytest.mark.parametrize("interpolation", ref.INTERPOLATIONS)
def test_kernel_weights_sum_to_one_and_peak_at_the_nearest_tap(interpolation: str) -> None:
    frac = np.linspace(0.0, 0.999, 37)
    w = ref.kernel_weights(frac, interpolation)
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, atol=1e-6)
    taps = ref.TAP_OFFSETS[interpolation]
    nearest = taps[np.argmax(w, axis=-1)]
    np.testing.assert_array_equal(nearest, np.where(frac < 0.5, 0, 1)[:], err_msg=interpolation)
    np.testing.assert_allclose(ref.kernel_weights(np.array([0.0]), interpolation)[0], (taps == 0).astype(float),
                               atol=1e-7)


def test_lanczos_weights_at_half_match_the_formula() -> None:
    w = ref.kernel_weights(np.array([0.5]), "lanczos")[0]
    t = 0.5 - np.arange(-3, 5)
    raw = [math.sin(math.pi * d) / (math.pi * d) * math.sin(math.pi * d / 4) / (math.pi * d / 4) for d in t]
    np.testing.assert_allclose(w, np.array(raw) / sum(raw), rtol=1e-6)
    assert w[3] == w[4] and w[0] == w[7] and w[2] < 0  # symmetric, negative lobes


# -- erode / dilate -------------------------------------------------------------------------------------------------

def test_disc_kernels() -> None:
    np.testing.assert_array_equal(ref.disc_kernel(1.0), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    np.testing.assert_array_equal(ref.disc_kernel(1.5), np.ones((3, 3)))  # 1 + 1 <= 2.25
    assert ref.disc_kernel(-2.0).sum() == 13


def test_erode_shrinks_a_disc_by_the_radius() -> None:
    disc = digital_disc((101, 101), (50, 50), 30)
    out = ref.erode_dilate(disc, 10.0)
    assert set(np.unique(out)) == {0.0, 1.0}
    # Triangle inequality: every point within 20 stays, nothing beyond 21 survives.
    assert (out >= digital_disc((101, 101), (50, 50), 20)).all()
    assert (out <= digital_disc((101, 101), (50, 50), 21)).all()
    assert abs(out.sum() - math.pi * 20**2) / (math.pi * 20**2) < 0.03


def test_dilate_grows_a_disc_by_the_radius() -> None:
    disc = digital_disc((61, 61), (30, 30), 10)
    out = ref.erode_dilate(disc, -5.0)
    assert (out >= digital_disc((61, 61), (30, 30), 14)).all()
    assert (out <= digital_disc((61, 61), (30, 30), 15)).all()
    assert abs(out.sum() - math.pi * 15**2) / (math.pi * 15**2) < 0.03


def test_erode_reads_zero_outside_the_array() -> None:
    out = ref.erode_dilate(np.ones((20, 24), np.float32), 3.0)
    expected = np.zeros((20, 24), np.float32)
    expected[3:-3, 3:-3] = 1.0
    np.testing.assert_array_equal(out, expected)


def test_grey_erosion_takes_the_disc_minimum() -> None:
    mask = np.full((9, 9), 0.8, np.float32)
    mask[4, 6] = 0.3  # two columns right of the centre
    out = ref.erode_dilate(mask, 2.0)
    assert out[4, 4] == np.float32(0.3) and out[4, 3] == np.float32(0.8) and out[2, 6] == np.float32(0.3)
    assert out[3, 5] == np.float32(0.3) and out[2, 5] == np.float32(0.8)  # (1, 2) is outside radius 2


def test_small_radius_copies() -> None:
    mask = np.random.default_rng(3).random((5, 6), dtype=np.float32)
    out = ref.erode_dilate(mask, 0.99)
    np.testing.assert_array_equal(out, mask)
    assert out is not mask


# -- blur -----------------------------------------------------------------------------------------------------------

def test_blur_preserves_the_sum_away_from_borders() -> None:
    mask = np.zeros((81, 81), np.float32)
    mask[35:46, 30:50] = np.random.default_rng(4).random((11, 20), dtype=np.float32)
    out = ref.gaussian_blur(mask, 4.0)
    assert abs(out.sum() - mask.sum()) / mask.sum() < 1e-5


def test_blur_of_an_impulse_is_the_sampled_gaussian() -> None:
    mask = np.zeros((41, 41), np.float32)
    mask[20, 20] = 1.0
    sigma = 3.0
    out = ref.gaussian_blur(mask, sigma)
    k = np.arange(-9, 10)
    g = np.exp(-k * k / (2 * sigma * sigma))
    g /= g.sum()
    np.testing.assert_allclose(out[20, 11:30], g * g[9], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(out[11:30, 11:30], np.outer(g, g), rtol=1e-5, atol=1e-8)
    assert not out[:11].any() and not out[30:].any()  # taps stop at ceil(3 sigma) = 9
    # Against the continuous density: the 19 taps cover [-9.5, 9.5], erf(9.5 / (3 sqrt 2)) of the mass.
    continuous = np.exp(-k * k / (2 * sigma * sigma)) / (sigma * math.sqrt(2 * math.pi))
    mass = math.erf(9.5 / (sigma * math.sqrt(2)))
    np.testing.assert_allclose(out[20, 11:30] / g[9], continuous / mass, rtol=2e-4)


def test_blur_reads_zero_outside_the_array() -> None:
    out = ref.gaussian_blur(np.ones((30, 30), np.float32), 2.0)
    taps = ref.gaussian_taps(2.0)
    edge = taps[6:].sum(dtype=np.float64)  # a corner sees the centre tap and the 6 on one side, per axis
    assert out[0, 0] == pytest.approx(edge * edge, rel=1e-6)
    assert out[15, 15] == pytest.approx(1.0, rel=1e-6)


def test_blur_sigma_zero_copies() -> None:
    mask = np.random.default_rng(5).random((4, 7), dtype=np.float32)
    np.testing.assert_array_equal(ref.gaussian_blur(mask, 0.0), mask)


# -- composite ------------------------------------------------------------------------------------------------------

def make_plate(dtype: type) -> np.ndarray:
    plate = np.empty((6, 8, 5), dtype)
    plate[..., :3] = 0.2
    plate[..., 3] = 0.4
    plate[..., 4] = 7.0
    return plate


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_composite_zero_mask_leaves_pixels_bit_identical(dtype: type) -> None:
    plate = make_plate(dtype)
    plate[1, 2, 0] = np.nan
    plate[1, 3, 1] = np.inf
    plate[2, 2, 3] = -np.inf
    before = plate.copy()
    mask = np.zeros((4, 4), np.float32)
    mask[0, 0] = np.nan
    mask[0, 1] = -0.5
    mask[3, 3] = 1.0
    ref.composite(plate, np.full((4, 4, 3), 0.9, np.float32), mask, (1, 1), 3)
    changed = np.zeros((6, 8), bool)
    changed[4, 4] = True
    bits = plate.view(np.uint16 if dtype == np.float16 else np.uint32)
    before_bits = before.view(bits.dtype)
    np.testing.assert_array_equal(bits[~changed], before_bits[~changed])
    assert (plate[4, 4, :3] == dtype(0.9)).all() and plate[4, 4, 3] == 1.0 and plate[4, 4, 4] == 7.0


def test_composite_blend_numbers() -> None:
    plate = make_plate(np.float32)
    mask = np.array([[0.5, 1.0, 0.25]], np.float32)
    ref.composite(plate, np.full((1, 3, 3), 0.8, np.float32), mask, (2, 3), 3)
    np.testing.assert_allclose(plate[3, 2:5, 0], [0.5, 0.8, 0.35], atol=1e-7)  # 0.8 m + 0.2 (1 - m)
    np.testing.assert_allclose(plate[3, 2:5, 3], [0.7, 1.0, 0.55], atol=1e-7)  # m + 0.4 (1 - m)
    assert (plate[3, 2:5, 4] == 7.0).all()


def test_composite_without_alpha_leaves_other_channels() -> None:
    plate = make_plate(np.float32)
    ref.composite(plate, np.ones((6, 8, 3), np.float32), np.ones((6, 8), np.float32), (0, 0), None)
    assert (plate[..., :3] == 1.0).all() and (plate[..., 3] == np.float32(0.4)).all()


def test_composite_float16_rounds_like_numpy() -> None:
    rng = np.random.default_rng(6)
    plate = (rng.random((20, 30, 4)) * 4).astype(np.float16)
    face = (rng.random((20, 30, 3)) * 4).astype(np.float32)
    mask = rng.random((20, 30), dtype=np.float32)
    expected = face * mask[..., None] + plate[..., :3].astype(np.float32) * (1 - mask[..., None])
    ref.composite(plate, face, mask, (0, 0), 3)
    np.testing.assert_array_equal(plate[..., :3].view(np.uint16), expected.astype(np.float16).view(np.uint16))


def test_composite_box_partly_outside_the_plate_is_clipped() -> None:
    plate = make_plate(np.float32)
    ref.composite(plate, np.ones((4, 4, 3), np.float32), np.ones((4, 4), np.float32), (6, -2), 3)
    assert (plate[0:2, 6:8, :3] == 1.0).all()
    assert (plate[2:, :, :3] == np.float32(0.2)).all() and (plate[:, :6, :3] == np.float32(0.2)).all()


# -- paste ----------------------------------------------------------------------------------------------------------

def test_paste_bbox_numbers() -> None:
    # Aligned = plate shifted by 10: the square's pixel area (-0.5..31.5) sits at 9.5..41.5 in the plate.
    matrix = np.array([[1.0, 0, -10], [0, 1.0, -10]])
    assert ref.paste_bbox(matrix, (32, 32), 0.0, 0.0, (100, 100)) == (7, 7, 44, 44)
    # Dilation 3 and blur sigma 2 grow by 3 + 6 more (clipped at 0); erosion does not grow.
    assert ref.paste_bbox(matrix, (32, 32), -3.0, 2.0, (100, 100)) == (0, 0, 53, 53)
    assert ref.paste_bbox(matrix, (32, 32), 5.0, 0.0, (40, 100)) == (7, 7, 44, 40)
    assert ref.paste_bbox(np.array([[0.5, 0, 0], [0, 0.5, 0]]), (16, 16), 0, 0, (100, 100)) == (0, 0, 34, 34)
    off = np.array([[1.0, 0, 500], [0, 1.0, 0]])
    x0, y0, x1, y1 = ref.paste_bbox(off, (32, 32), 0, 0, (100, 100))
    assert x1 == x0 and y1 > y0  # entirely left of the plate: an empty box
    with pytest.raises(ValueError, match="not invertible"):
        ref.paste_bbox(np.array([[1.0, 1.0, 0], [1.0, 1.0, 0]]), (8, 8), 0, 0, (10, 10))


def test_paste_face_translation_pastes_the_face_square() -> None:
    plate = np.zeros((60, 70, 4), np.float16)
    face = np.full((32, 32, 3), 0.5, np.float32)
    mask = np.ones((32, 32), np.float32)
    matrix = np.array([[1.0, 0, -10], [0, 1.0, -12]])
    bbox, final = ref.paste_face(plate, face, mask, matrix, 0.0, 0.0, "bilinear", 3)
    assert bbox == (7, 9, 44, 46)
    assert final.shape == (37, 37) and final.dtype == np.float32
    expected_mask = np.zeros((60, 70), np.float32)
    expected_mask[12:44, 10:42] = 1.0
    np.testing.assert_array_equal(final, expected_mask[9:46, 7:44])
    assert (plate[12:44, 10:42, :3] == 0.5).all() and (plate[12:44, 10:42, 3] == 1.0).all()
    untouched = expected_mask == 0
    assert not plate[untouched].any()


def test_paste_face_zeroes_the_faint_blur_tail() -> None:
    plate = np.zeros((80, 80, 3), np.float32)
    mask = np.zeros((32, 32), np.float32)
    mask[8:24, 8:24] = 1.0
    matrix = np.array([[1.0, 0, -24], [0, 1.0, -24]])
    _, final = ref.paste_face(plate, np.ones((32, 32, 3), np.float32), mask, matrix, 2.0, 3.0, "bicubic", None)
    unfloored = ref.gaussian_blur(ref.erode_dilate(np.clip(
        ref.warp_to_plate(np.dstack([np.ones((32, 32, 3), np.float32), mask]), matrix,
                          ref.paste_bbox(matrix, (32, 32), 2.0, 3.0, (80, 80)), "bicubic")[..., 3], 0, 1), 2.0), 3.0)
    faint = (unfloored > 0) & (unfloored < 1 / 255)
    assert faint.any() and not final[faint].any()
    np.testing.assert_array_equal(final[~faint], unfloored[~faint])
    assert final.min() == 0.0 and final[final > 0].min() >= np.float32(1 / 255)


@pytest.mark.parametrize("interpolation", ref.INTERPOLATIONS)
def test_warp_footprint_holds_every_non_zero_pixel_of_the_warp(interpolation: str) -> None:
    # A low-resolution face pasted large (1 aligned px = 3.2 plate px): the kernel's reach spans several plate
    # pixels beyond the square, more than paste_bbox's 2 px, and the footprint must still hold all of it.
    matrix = np.linalg.inv(np.vstack([similarity(3.2, 17.0, 61.3, 40.7), [0, 0, 1]]))[:2]
    ones = np.ones((16, 16, 1), np.float32)
    everywhere = ref.warp_to_plate(ones, matrix, (0, 0, 160, 150), interpolation)[..., 0]
    x0, y0, x1, y1 = ref.warp_footprint(matrix, (16, 16), interpolation, (150, 160))
    inside = np.zeros(everywhere.shape, bool)
    inside[y0:y1, x0:x1] = True
    assert everywhere[inside].max() > 0.99 and not everywhere[~inside].any()
    assert not inside[:, 0].any() and not inside[0].any()  # and it is a box around the face, not the plate
    px0, py0, px1, py1 = ref.paste_bbox(matrix, (16, 16), 0.0, 0.0, (150, 160))
    if interpolation != "bilinear":
        assert everywhere[:py0].any() or everywhere[:, :px0].any() or everywhere[py1:].any() or \
            everywhere[:, px1:].any()  # where paste_bbox alone would cut the warp short


def test_warp_footprint_is_clipped_to_the_plate_and_empty_off_it() -> None:
    shifted = np.array([[1.0, 0, -10], [0, 1.0, -10]])  # aligned square at plate 10..41
    # bicubic reaches u in [-2, 33): plate 8..43, one pixel more each side for rounding
    assert ref.warp_footprint(shifted, (32, 32), "bicubic", (100, 100)) == (7, 7, 45, 45)
    assert ref.warp_footprint(shifted, (32, 32), "bicubic", (30, 100)) == (7, 7, 45, 30)
    x0, _, x1, _ = ref.warp_footprint(np.array([[1.0, 0, 500], [0, 1.0, 0]]), (32, 32), "bicubic", (100, 100))
    assert x1 == x0
