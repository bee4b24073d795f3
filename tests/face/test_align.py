"""Alignment: Umeyama fit, DeepFaceLab crop matrices against closed forms, point/image warps."""

import math

import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.face.align import (
    aligned_quad,
    averaged_yaw,
    get_transform_mat,
    invert_affine,
    transform_points,
    umeyama,
    warp_to_aligned,
)
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.face.template import FRONTAL_FACE_68, TEMPLATE_INDICES, TEMPLATE_POINTS

SIDE = 300.0  # frame-space side of the template square
ANGLE = math.radians(17.0)
CENTRE = np.array([960.0, 540.0])  # frame image of the template centre (0.5, 0.5)
OUT = 256


def rotation(angle: float) -> np.ndarray:
    return np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])


def to_frame(template_points: np.ndarray) -> np.ndarray:
    """Exact similarity from template units to the frame: side SIDE, rotated ANGLE, centred at CENTRE."""
    return (np.asarray(template_points) - 0.5) @ rotation(ANGLE).T * SIDE + CENTRE


@pytest.fixture
def landmarks() -> np.ndarray:
    return to_frame(FRONTAL_FACE_68)


def expected_matrix(face_type: FaceType, scale: float = 1.0) -> np.ndarray:
    """Closed form: crop centre = template centre shifted up by up_shift*SIDE, side SIDE*crop_ratio/scale."""
    up = rotation(ANGLE) @ np.array([0.0, -1.0])
    centre = CENTRE + up * face_type.up_shift * SIDE
    zoom = OUT / (SIDE * face_type.crop_ratio / scale)
    linear = zoom * rotation(-ANGLE)
    return np.hstack([linear, (OUT / 2.0 - linear @ centre)[:, None]])


def assert_matrix_close(actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-5) -> None:
    assert actual.shape == (2, 3) and actual.dtype == np.float64
    linear_scale = np.abs(expected[:, :2]).max()
    np.testing.assert_allclose(actual[:, :2], expected[:, :2], rtol=0, atol=rtol * linear_scale)
    translation_scale = max(np.abs(expected[:, 2]).max(), OUT)
    np.testing.assert_allclose(actual[:, 2], expected[:, 2], rtol=0, atol=rtol * translation_scale)


# --- umeyama -------------------------------------------------------------------------------------------------


def test_umeyama_recovers_exact_similarity():
    rng = np.random.default_rng(1)
    src = rng.uniform(-50, 50, size=(40, 2))
    true = 2.7 * rotation(math.radians(-63.0))
    dst = src @ true.T + [123.4, -56.7]
    result = umeyama(src, dst)
    assert result.shape == (3, 3)
    np.testing.assert_allclose(result[:2, :2], true, atol=1e-9)
    np.testing.assert_allclose(result[:2, 2], [123.4, -56.7], atol=1e-9)
    np.testing.assert_allclose(result[2], [0, 0, 1], atol=0)


def test_umeyama_with_noise_is_close():
    rng = np.random.default_rng(2)
    src = rng.uniform(0, 100, size=(68, 2))
    true = 0.8 * rotation(math.radians(25.0))
    dst = src @ true.T + [10.0, 20.0] + rng.normal(0, 0.5, size=src.shape)
    result = umeyama(src, dst)
    scale = math.sqrt(abs(np.linalg.det(result[:2, :2])))
    angle = math.degrees(math.atan2(result[1, 0], result[0, 0]))
    assert scale == pytest.approx(0.8, abs=0.005)
    assert angle == pytest.approx(25.0, abs=0.3)
    residual = np.abs(transform_points(src, result[:2]) - dst).mean()
    assert residual < 0.6


def test_umeyama_without_scale_is_rigid_and_never_reflects():
    rng = np.random.default_rng(3)
    src = rng.uniform(-1, 1, size=(20, 2))
    mirrored = src * [-1.0, 1.0] * 3.0  # a reflection cannot be fitted by a rotation
    result = umeyama(src, mirrored, estimate_scale=False)
    assert np.linalg.det(result[:2, :2]) == pytest.approx(1.0, abs=1e-12)
    rigid = umeyama(src, src @ rotation(0.4).T + 5.0, estimate_scale=False)
    np.testing.assert_allclose(rigid[:2, :2], rotation(0.4), atol=1e-12)


def test_umeyama_rejects_degenerate_input():
    with pytest.raises(DflError):
        umeyama(np.ones((5, 2)), np.ones((5, 2)))
    with pytest.raises(DflError):
        umeyama(np.zeros((5, 2)), np.zeros((4, 2)))


# --- get_transform_mat ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("face_type", [FaceType.HALF, FaceType.MID_FULL, FaceType.FULL, FaceType.WHOLE_FACE])
def test_known_matrices(landmarks, face_type):
    assert_matrix_close(get_transform_mat(landmarks, OUT, face_type), expected_matrix(face_type))


def test_head_frontal_matches_closed_form(landmarks):
    # Symmetric face: the yaw cue is 0, only the 50 % up-shift applies.
    template_landmarks = transform_points(landmarks, umeyama(landmarks[list(TEMPLATE_INDICES)], TEMPLATE_POINTS)[:2])
    assert averaged_yaw(template_landmarks) == pytest.approx(0.0, abs=1e-9)
    assert_matrix_close(get_transform_mat(landmarks, OUT, FaceType.HEAD), expected_matrix(FaceType.HEAD))


def test_head_yaw_shift():
    # Pull the image-left jaw points 0..2 in by 0.1 template units: only the yaw cue changes (jaw is not fitted).
    face = np.array(FRONTAL_FACE_68)
    face[0:3, 0] += 0.1
    assert averaged_yaw(face) == pytest.approx(0.1, abs=1e-9)
    shifted = to_frame(face)
    yaw = 0.1 * abs(math.tanh(0.2))
    across = rotation(ANGLE) @ np.array([1.0, 0.0])
    expected = expected_matrix(FaceType.HEAD)
    expected[:, 2] -= expected[:, :2] @ (across * yaw / 2.0 * SIDE)
    assert_matrix_close(get_transform_mat(shifted, OUT, FaceType.HEAD), expected)
    # The shift is real: 0.5 * 0.1 * tanh(0.2) * 300 px = 2.96 px in the frame, 0.85 px at 256 output.
    delta = get_transform_mat(shifted, OUT, FaceType.HEAD)[:, 2] - expected_matrix(FaceType.HEAD)[:, 2]
    assert np.linalg.norm(delta) == pytest.approx(OUT / (SIDE * FaceType.HEAD.crop_ratio) * SIDE * yaw / 2, rel=1e-4)


def test_half_puts_template_points_on_the_template(landmarks):
    mat = get_transform_mat(landmarks, OUT, FaceType.HALF)
    aligned = transform_points(landmarks[list(TEMPLATE_INDICES)], mat)
    np.testing.assert_allclose(aligned, TEMPLATE_POINTS * OUT, atol=2e-3)


@pytest.mark.parametrize("face_type", list(FaceType)[:7])
def test_template_points_land_consistently(landmarks, face_type):
    # For any crop, aligned template points are the template scaled by 1/crop_ratio about the shifted centre.
    mat = get_transform_mat(landmarks, OUT, face_type)
    aligned = transform_points(landmarks[list(TEMPLATE_INDICES)], mat)
    if face_type.remove_align:
        aligned = (aligned - OUT / 2.0) @ rotation(ANGLE) + OUT / 2.0  # undo the roll the crop kept
    expected = (TEMPLATE_POINTS - [0.5, 0.5 - face_type.up_shift]) * OUT / face_type.crop_ratio + OUT / 2.0
    np.testing.assert_allclose(aligned, expected, atol=2e-3)


@pytest.mark.parametrize(
    ("aligned", "rotated"), [(FaceType.FULL_NO_ALIGN, FaceType.FULL), (FaceType.HEAD_NO_ALIGN, FaceType.HEAD)]
)
def test_remove_align_is_axis_aligned_with_same_area(landmarks, aligned, rotated):
    straight = get_transform_mat(landmarks, OUT, aligned)
    assert abs(straight[0, 1]) < 1e-7 and abs(straight[1, 0]) < 1e-7
    assert straight[0, 0] == pytest.approx(straight[1, 1], rel=1e-7)
    tilted = get_transform_mat(landmarks, OUT, rotated)
    area_straight = abs(np.linalg.det(invert_affine(straight)[:, :2])) * OUT**2
    area_tilted = abs(np.linalg.det(invert_affine(tilted)[:, :2])) * OUT**2
    assert area_straight == pytest.approx(area_tilted, rel=1e-6)
    assert area_straight == pytest.approx((SIDE * aligned.crop_ratio) ** 2, rel=1e-6)
    # HEAD_NO_ALIGN has no up-shift in the reference: both crops are centred on the template centre.
    np.testing.assert_allclose(transform_points([OUT / 2, OUT / 2], straight, invert=True), CENTRE, atol=1e-3)
    quad = aligned_quad(straight, OUT)
    np.testing.assert_allclose(quad[1, 1] - quad[0, 1], 0.0, atol=1e-3)  # top edge horizontal


def test_scale_zooms_in(landmarks):
    plain = get_transform_mat(landmarks, OUT, FaceType.FULL)
    zoomed = get_transform_mat(landmarks, OUT, FaceType.FULL, scale=1.25)
    assert_matrix_close(zoomed, expected_matrix(FaceType.FULL, scale=1.25))
    side_plain = np.linalg.norm(np.diff(aligned_quad(plain, OUT)[:2], axis=0))
    side_zoomed = np.linalg.norm(np.diff(aligned_quad(zoomed, OUT)[:2], axis=0))
    assert side_plain == pytest.approx(SIDE * 1.597, rel=1e-3)
    assert side_zoomed == pytest.approx(side_plain / 1.25, rel=1e-6)


def test_matrix_scales_with_output_size(landmarks):
    small = get_transform_mat(landmarks, 256, FaceType.WHOLE_FACE)
    large = get_transform_mat(landmarks, 1024, FaceType.WHOLE_FACE)
    np.testing.assert_allclose(large, small * 4.0, rtol=1e-5, atol=1e-4)


def test_mark_only_and_bad_landmarks_raise(landmarks):
    with pytest.raises(DflError, match="mark_only"):
        get_transform_mat(landmarks, OUT, FaceType.MARK_ONLY)
    with pytest.raises(DflError, match="68"):
        get_transform_mat(landmarks[:60], OUT, FaceType.FULL)
    bad = landmarks.copy()
    bad[3] = np.nan
    with pytest.raises(DflError):
        get_transform_mat(bad, OUT, FaceType.FULL)


# --- points, quads, warps --------------------------------------------------------------------------------------


def test_transform_points_and_inverse(landmarks):
    mat = get_transform_mat(landmarks, OUT, FaceType.FULL)
    aligned = transform_points(landmarks, mat)
    np.testing.assert_allclose(transform_points(aligned, mat, invert=True), landmarks, atol=1e-9)
    np.testing.assert_allclose(invert_affine(invert_affine(mat)), mat, atol=1e-12)
    assert transform_points(landmarks[None], mat).shape == (1, 68, 2)


def test_aligned_quad_corners(landmarks):
    mat = get_transform_mat(landmarks, OUT, FaceType.HALF)
    quad = aligned_quad(mat, OUT)
    expected = to_frame(np.array([(0, 0), (1, 0), (1, 1), (0, 1)], dtype=float))
    np.testing.assert_allclose(quad, expected, atol=1e-3)


def gaussian_dot(shape: tuple[int, int], centre: tuple[float, float], sigma: float) -> np.ndarray:
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    return np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma**2)).astype(np.float32)


def centroid(image: np.ndarray) -> np.ndarray:
    ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    weights = np.clip(image, 0, None)
    return np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()


@pytest.mark.parametrize("interpolation", ["lanczos", "cubic", "linear", "nearest"])
def test_warp_puts_dot_where_transform_points_says(landmarks, interpolation):
    dot = (1003.3, 611.7)
    image = gaussian_dot((1080, 1920), dot, sigma=6.0)
    mat = get_transform_mat(landmarks, OUT, FaceType.FULL)
    warped = warp_to_aligned(image, mat, OUT, interpolation=interpolation)
    assert warped.shape == (OUT, OUT) and warped.dtype == np.float32
    expected = transform_points(np.array(dot), mat)
    assert np.linalg.norm(centroid(warped) - expected) < 0.5


def test_warp_channel_layouts(landmarks):
    rng = np.random.default_rng(4)
    mat = get_transform_mat(landmarks, 64, FaceType.FULL)
    stack = rng.random((1080, 1920, 7), dtype=np.float32)
    warped = warp_to_aligned(stack, mat, 64, interpolation="cubic")
    assert warped.shape == (64, 64, 7) and warped.dtype == np.float32
    for channel in (0, 4, 6):
        alone = warp_to_aligned(stack[:, :, channel], mat, 64, "cubic")
        np.testing.assert_allclose(warped[:, :, channel], alone, rtol=0, atol=1e-5)
    single = warp_to_aligned(stack[:, :, :1], mat, 64)
    assert single.shape == (64, 64, 1)
    doubled = warp_to_aligned(stack.astype(np.float64), mat, 64)
    assert doubled.dtype == np.float32


def test_warp_borders():
    image = np.ones((100, 100), dtype=np.float32)
    shift_out = np.array([[1.0, 0.0, 60.0], [0.0, 1.0, 0.0]])  # frame x=0 lands at aligned x=60
    constant = warp_to_aligned(image, shift_out, 100, interpolation="linear")
    replicate = warp_to_aligned(image, shift_out, 100, interpolation="linear", border="replicate")
    assert constant[50, 10] == 0.0 and constant[50, 80] == 1.0
    assert replicate[50, 10] == 1.0


def test_warp_rejects_bad_options():
    image = np.zeros((10, 10), dtype=np.float32)
    mat = np.eye(2, 3)
    with pytest.raises(DflError, match="lanczos"):
        warp_to_aligned(image, mat, 8, interpolation="bicubic")
    with pytest.raises(DflError, match="replicate"):
        warp_to_aligned(image, mat, 8, border="wrap")
    with pytest.raises(DflError, match="float"):
        warp_to_aligned(np.zeros((10, 10), dtype=np.uint8), mat, 8)
