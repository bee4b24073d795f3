"""Face filters: sharpen/blur, motion blur, bicubic degradation and the output face scale."""

import cv2
import numpy as np
import pytest
from skimage import data

from dfl_vfx.errors import DflError
from dfl_vfx.merge.face_filters import (
    degrade_bicubic,
    face_scale_matrix,
    motion_blur,
    motion_blur_kernel,
    scaled_kernel_size,
    sharpen,
)


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    """Chelsea the cat as a 256 px 'working space' face (float32 / 255)."""
    return cv2.resize(data.chelsea(), (256, 256), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _high_frequency_energy(image: np.ndarray) -> float:
    return float(np.mean(cv2.Laplacian(image, cv2.CV_32F) ** 2))


# --- sharpen -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["box", "gaussian"])
def test_sharpen_raises_and_blur_lowers_high_frequency_energy(face, mode):
    base = _high_frequency_energy(face)
    sharper = _high_frequency_energy(sharpen(face, mode, 60, 3))
    softer = _high_frequency_energy(sharpen(face, mode, -60, 3))
    assert sharper > 1.5 * base
    assert softer < 0.7 * base
    assert _high_frequency_energy(sharpen(face, mode, -100, 3)) < softer


@pytest.mark.parametrize("mode", ["box", "gaussian"])
def test_sharpen_keeps_the_mean_and_out_of_range_values(face, mode):
    bright = face * 1.5 - 0.1
    out = sharpen(bright, mode, 80, 3)
    assert out.dtype == np.float32 and out.shape == face.shape
    np.testing.assert_allclose(out.mean(axis=(0, 1)), bright.mean(axis=(0, 1)), atol=2e-3)
    assert bright.max() > 1.1 and bright.min() < -0.05
    assert out.max() > bright.max() and out.min() < bright.min()  # sharpening overshoots; nothing clips


def test_sharpen_zero_amount_and_mode_none_are_identity(face):
    for out in (sharpen(face, "gaussian", 0, 3), sharpen(face, "none", 75, 3)):
        np.testing.assert_array_equal(out, face)
        assert not np.shares_memory(out, face)


def test_minus_100_is_exactly_the_kernel_blur(face):
    np.testing.assert_allclose(sharpen(face, "box", -100, 3), cv2.blur(face, (3, 3)), atol=1e-6)


def test_kernel_size_scales_with_face_resolution():
    assert [scaled_kernel_size(3, r) for r in (128, 256, 512, 1024)] == [3, 3, 5, 9]
    assert scaled_kernel_size(7, 512) == 13


def test_sharpen_uses_the_bigger_kernel_on_a_bigger_face(face):
    big = cv2.resize(face, (512, 512), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_allclose(sharpen(big, "box", -100, 3), cv2.blur(big, (5, 5)), atol=1e-6)
    np.testing.assert_allclose(sharpen(big, "gaussian", -100, 3), cv2.GaussianBlur(big, (5, 5), 0), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(mode="unsharp", amount=10, size=3), "sharpen_mode unsharp: unknown"),
        (dict(mode="box", amount=101, size=3), "sharpen_amount 101: must be in -100..100"),
        (dict(mode="box", amount=float("nan"), size=3), "sharpen_amount nan"),
        (dict(mode="box", amount=10, size=0), "sharpen_size 0: must be a whole number"),
    ],
)
def test_sharpen_rejects_bad_options(face, kwargs, message):
    with pytest.raises(DflError, match=message):
        sharpen(face, **kwargs)


# --- motion blur ---------------------------------------------------------------------------------------------------


def _dot(size: int = 65) -> tuple[np.ndarray, np.ndarray]:
    face = np.zeros((size, size, 3), np.float32)
    face[size // 2, size // 2] = 1.0
    mask = face[..., 0].copy()
    return face, mask


def _line_moments(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted centroid, principal axis and (std along, std across) of a non-negative image."""
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    weights = image / image.sum()
    centroid = np.array([(weights * xx).sum(), (weights * yy).sum()])
    dx, dy = xx - centroid[0], yy - centroid[1]
    cov = np.array([[(weights * dx * dx).sum(), (weights * dx * dy).sum()],
                    [(weights * dx * dy).sum(), (weights * dy * dy).sum()]])
    values, vectors = np.linalg.eigh(cov)
    return centroid, vectors[:, 1], np.sqrt(values[::-1])


@pytest.mark.parametrize("velocity, power, length", [((6.0, 8.0), 100, 10.0), ((-12.0, 0.0), 50, 6.0),
                                                     ((0.0, 20.0), 75, 15.0)])
def test_motion_blur_turns_a_dot_into_a_centred_line(velocity, power, length):
    face, mask = _dot()
    blurred, blurred_mask = motion_blur(face, mask, velocity, power)
    centroid, axis, (along, across) = _line_moments(blurred[..., 1])
    np.testing.assert_allclose(centroid, [32.0, 32.0], atol=1e-3)
    direction = np.asarray(velocity) / np.hypot(*velocity)
    assert abs(abs(axis @ direction) - 1.0) < 1e-4
    # A uniform segment of length L has std L / sqrt(12); bilinear end points add at most ~0.3 px.
    assert length / np.sqrt(12) - 0.05 < along < length / np.sqrt(12) + 0.3
    assert across < 0.45
    extent = np.abs((np.argwhere(blurred[..., 1] > 1e-6)[:, ::-1] - 32.0) @ direction).max()
    assert length / 2 <= extent <= length / 2 + 1.5
    np.testing.assert_allclose(blurred.sum(axis=(0, 1)), 1.0, atol=1e-5)
    np.testing.assert_allclose(blurred_mask, blurred[..., 0], atol=1e-7)


def test_motion_blur_without_motion_or_power_is_a_copy():
    face, mask = _dot()
    for velocity, power in (((5.0, 3.0), 0), ((0.0, 0.0), 100)):
        out_face, out_mask = motion_blur(face, mask, velocity, power)
        np.testing.assert_array_equal(out_face, face)
        np.testing.assert_array_equal(out_mask, mask)
    assert motion_blur_kernel((0.0, 0.0), 100) is None


def test_motion_blur_mask_reads_zero_outside_the_square():
    face = np.ones((32, 32, 3), np.float32)
    mask = np.ones((32, 32), np.float32)
    out_face, out_mask = motion_blur(face, mask, (10.0, 0.0), 100)
    np.testing.assert_allclose(out_face, 1.0, atol=1e-6)
    assert out_mask[16, 0] < 0.7 and out_mask[16, 16] == pytest.approx(1.0, abs=1e-6)


def test_motion_blur_rejects_bad_power():
    face, mask = _dot()
    with pytest.raises(DflError, match="motion_blur 150: must be in 0..100"):
        motion_blur(face, mask, (1.0, 0.0), 150)


# --- bicubic degradation -------------------------------------------------------------------------------------------


def test_degrade_bicubic_removes_more_detail_with_more_power(face):
    np.testing.assert_array_equal(degrade_bicubic(face, 0), face)
    energies = [_high_frequency_energy(degrade_bicubic(face, power)) for power in (0, 30, 60, 100)]
    assert energies[0] > energies[1] > energies[2] > energies[3]
    assert energies[3] < 0.1 * energies[0]
    out = degrade_bicubic(face, 60)
    assert out.shape == face.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=(0, 1)), face.mean(axis=(0, 1)), atol=5e-3)
    with pytest.raises(DflError, match="bicubic_degrade_power -1: must be in 0..100"):
        degrade_bicubic(face, -1)


# --- output face scale ---------------------------------------------------------------------------------------------


def _plate_point(matrix: np.ndarray, aligned_point: tuple[float, float]) -> np.ndarray:
    return cv2.invertAffineTransform(matrix) @ np.array([*aligned_point, 1.0])


@pytest.mark.parametrize("percent", [-50, -20, 0, 25, 50])
def test_face_scale_keeps_the_centre_and_scales_plate_distances(percent):
    angle = np.deg2rad(17.0)
    zoom = 0.8
    matrix = np.array([[zoom * np.cos(angle), -zoom * np.sin(angle), -300.0],
                       [zoom * np.sin(angle), zoom * np.cos(angle), -120.0]])
    size = 256
    scaled = face_scale_matrix(matrix, size, percent)
    np.testing.assert_allclose(_plate_point(scaled, (128.0, 128.0)), _plate_point(matrix, (128.0, 128.0)),
                               atol=1e-9)
    for a, b in (((0.0, 0.0), (256.0, 256.0)), ((40.0, 200.0), (128.0, 10.0))):
        before = np.linalg.norm(_plate_point(matrix, a) - _plate_point(matrix, b))
        after = np.linalg.norm(_plate_point(scaled, a) - _plate_point(scaled, b))
        assert after / before == pytest.approx(1.0 + percent / 100.0, rel=1e-12)


def test_face_scale_rejects_out_of_range_percent():
    with pytest.raises(DflError, match="face_scale 60: must be in -50..50"):
        face_scale_matrix(np.eye(2, 3), 256, 60)
