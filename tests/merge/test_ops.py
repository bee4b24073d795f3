"""The merge dispatcher: input checks, backend choice, and native-vs-reference parity at the contract tolerances."""

import math

import numpy as np
import pytest

from dfl_vfx import native
from dfl_vfx.errors import DflError
from dfl_vfx.merge import ops
from dfl_vfx.merge import reference as ref


def test_the_native_core_is_built() -> None:
    """`pip install` (make) compiles it; the parity tests below need it and must not silently skip."""
    assert ops.native_available()


THREADS = [1, 2]


def similarity(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty]])


def half_ulp_distance(a: np.ndarray, b: np.ndarray) -> int:
    """Largest distance in float16 steps between two finite half arrays."""
    ia = a.view(np.int16).astype(np.int32)
    ib = b.view(np.int16).astype(np.int32)
    ia = np.where(ia < 0, -32768 - ia, ia)  # sign-magnitude -> monotonic integers
    ib = np.where(ib < 0, -32768 - ib, ib)
    return int(np.abs(ia - ib).max())


# -- native vs reference ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("interpolation", ops.INTERPOLATIONS)
def test_warp_parity(interpolation: str, dtype: type, threads: int) -> None:
    rng = np.random.default_rng(10)
    src = rng.random((37, 29, 4), dtype=np.float32).astype(dtype)
    matrix = similarity(0.71, -23.0, 9.37, 14.11)
    bbox = (-9, -5, 47, 38)  # larger than where the source lands: borders and all-outside pixels
    nat = ops.warp_to_plate(src, matrix, bbox, interpolation, backend="native", threads=threads)
    expected = ref.warp_to_plate(src.astype(np.float32), matrix, bbox, interpolation)
    assert nat.dtype == np.float32 and nat.shape == (43, 56, 4)
    np.testing.assert_allclose(nat, expected, rtol=0, atol=2e-5)
    assert (expected == 0).any() and (expected != 0).mean() > 0.3


@pytest.mark.parametrize("channels", [1, 3, 5])
def test_warp_parity_other_channel_counts(channels: int) -> None:
    src = np.random.default_rng(11).random((21, 23, channels), dtype=np.float32)
    matrix = similarity(1.37, 40.0, -3.2, 11.9)
    for interpolation in ops.INTERPOLATIONS:
        nat = ops.warp_to_plate(src, matrix, (3, -7, 30, 20), interpolation, backend="native", threads=2)
        np.testing.assert_allclose(nat, ref.warp_to_plate(src, matrix, (3, -7, 30, 20), interpolation),
                                   rtol=0, atol=2e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4, 5])
def test_warp_fast_paths_equal_the_run_time_channel_loop_bit_for_bit(channels: int, dtype: type) -> None:
    """The merge warps 5 channels (face RGB, mask, coverage); each compile-time channel count sums the taps in the
    order of the generic loop, so its channels equal those of a 7-channel (generic) warp of the same data exactly."""
    src = np.random.default_rng(12).random((40, 44, 7), dtype=np.float32).astype(dtype)
    matrix = similarity(0.61, 17.0, 4.3, -6.8)
    for interpolation in ops.INTERPOLATIONS:
        generic = ops.warp_to_plate(src, matrix, (-12, -9, 70, 64), interpolation, backend="native", threads=2)
        fast = ops.warp_to_plate(np.ascontiguousarray(src[..., :channels]), matrix, (-12, -9, 70, 64),
                                 interpolation, backend="native", threads=2)
        np.testing.assert_array_equal(fast, generic[..., :channels])
        assert (fast != 0).mean() > 0.3


def test_warp_native_handles_empty_boxes_and_exact_taps() -> None:
    src = np.random.default_rng(12).random((8, 8, 4), dtype=np.float32)
    assert ops.warp_to_plate(src, np.eye(2, 3), (2, 2, 2, 6), "lanczos", backend="native").shape == (4, 0, 4)
    out = ops.warp_to_plate(src, np.eye(2, 3), (0, 0, 8, 8), "lanczos", backend="native")
    np.testing.assert_array_equal(out, src)  # integer coordinates: the centre tap alone


@pytest.mark.parametrize("threads", THREADS)
def test_erode_dilate_parity_is_exact(threads: int) -> None:
    rng = np.random.default_rng(13)
    mask = rng.random((41, 57), dtype=np.float32)
    mask[10:30, 20:45] = 1.0
    for radius in (0.5, 1.0, 1.5, 2.9, 6.0, 13.7, -1.0, -4.2, -9.0, 80.0, -200.0):
        nat = ops.erode_dilate(mask, radius, backend="native", threads=threads)
        np.testing.assert_array_equal(nat, ref.erode_dilate(mask, radius), err_msg=f"radius {radius}")
    tall = rng.random((33, 1), dtype=np.float32) - 0.5  # one column, negative values
    for radius in (2.0, -3.5):
        np.testing.assert_array_equal(ops.erode_dilate(tall, radius, backend="native", threads=threads),
                                      ref.erode_dilate(tall, radius))


@pytest.mark.parametrize("threads", THREADS)
def test_blur_parity(threads: int) -> None:
    rng = np.random.default_rng(14)
    mask = rng.random((45, 63), dtype=np.float32)
    for sigma in (0.0, 0.3, 1.0, 2.5, 7.7, 30.0):
        nat = ops.gaussian_blur(mask, sigma, backend="native", threads=threads)
        np.testing.assert_allclose(nat, ref.gaussian_blur(mask, sigma), rtol=0, atol=1e-5, err_msg=f"sigma {sigma}")


def composite_case(dtype: type) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(15)
    plate = (rng.random((31, 40, 4)) * 3).astype(dtype)
    plate[3, 4, 0] = np.nan
    plate[5, 6, 1] = np.inf
    face = (rng.random((17, 23, 3)) * 3).astype(np.float32)
    mask = rng.random((17, 23), dtype=np.float32) * 1.6 - 0.3  # below 0, in between and above 1
    mask[2, 3] = np.nan
    return plate, face, mask


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("origin", [(2, 1), (-5, 20), (30, -4)])
def test_composite_parity(dtype: type, origin: tuple[int, int], threads: int) -> None:
    plate, face, mask = composite_case(dtype)
    expected = plate.copy()
    ref.composite(expected, face, mask, origin, 3)
    got = plate.copy()
    ops.composite(got, face, mask, origin, 3, backend="native", threads=threads)
    bits = np.uint16 if dtype == np.float16 else np.uint32
    touched = np.zeros(plate.shape[:2], bool)  # pixels of the box inside the plate with mask > 0
    for (i, j), m in np.ndenumerate(mask):
        y, x = origin[1] + i, origin[0] + j
        if m > 0 and 0 <= y < plate.shape[0] and 0 <= x < plate.shape[1]:
            touched[y, x] = True
    assert 50 < touched.sum() < touched.size - 500
    untouched = ~touched
    np.testing.assert_array_equal(got.view(bits)[untouched], plate.view(bits)[untouched])
    np.testing.assert_array_equal(expected.view(bits)[untouched], plate.view(bits)[untouched])
    if dtype == np.float16:
        assert half_ulp_distance(got[~untouched], expected[~untouched]) <= 1
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_native_float16_conversion_matches_numpy_bit_for_bit() -> None:
    # m = 1 writes the face itself: every float32 class (subnormals, ties, overflow, inf) rounds like astype.
    rng = np.random.default_rng(16)
    values = rng.integers(0, 2**32, 70000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    values = values[~np.isnan(values)]  # NaN payloads may differ between NumPy's SIMD and scalar casts
    extra = np.array([65519.0, 65520.0, 65504.0, 2.0**-25, 2.0**-24 * 1.5, 2.0**-14, 1 + 2.0**-11, 0.0, -0.0],
                     np.float32)
    face = np.concatenate([extra, values[:59991]]).reshape(200, 300, 1).repeat(3, axis=2)
    plate = np.zeros((200, 300, 3), np.float16)
    ops.composite(plate, face, np.ones((200, 300), np.float32), (0, 0), None, backend="native")
    with np.errstate(over="ignore"):
        expected = face.astype(np.float16)
    np.testing.assert_array_equal(plate.view(np.uint16), expected.view(np.uint16))


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("interpolation", ops.INTERPOLATIONS)
def test_paste_face_parity(interpolation: str, dtype: type, threads: int) -> None:
    rng = np.random.default_rng(17)
    face = rng.random((48, 48, 3), dtype=np.float32)
    mask = np.zeros((48, 48), np.float32)
    yy, xx = np.mgrid[0:48, 0:48]
    mask[(xx - 24) ** 2 / 18**2 + (yy - 26) ** 2 / 21**2 <= 1] = 1.0
    plate = (rng.random((120, 131, 4)) * 2).astype(dtype)
    matrix = cv2_invert(similarity(1.9, 12.0, 80.0, -11.0))  # aligned -> plate, over the top and right edges
    results = {}
    for backend in ("reference", "native"):
        target = plate.copy()
        bbox, final = ops.paste_face(target, face, mask, matrix, 3.0, 2.5, interpolation, 3, backend=backend,
                                     threads=threads)
        results[backend] = (bbox, final, target)
    (bbox_r, final_r, plate_r), (bbox_n, final_n, plate_n) = results["reference"], results["native"]
    assert bbox_n == bbox_r and bbox_r[1] == 0 and bbox_r[2] == 131 and bbox_r[3] < 120  # clipped top and right
    near_floor = np.abs(final_r - 1 / 255) < 1e-4  # the 1/255 cut may fall either side there
    np.testing.assert_allclose(final_n[~near_floor], final_r[~near_floor], rtol=0, atol=3e-5)
    assert final_r.max() == pytest.approx(1.0, abs=1e-5) and (final_r == 0).any()
    x0, y0, x1, y1 = bbox_r
    outside = np.ones(plate.shape[:2], bool)
    outside[y0:y1, x0:x1] = final_r == 0
    bits = np.uint16 if dtype == np.float16 else np.uint32
    np.testing.assert_array_equal(plate_n.view(bits)[outside], plate.view(bits)[outside])
    np.testing.assert_array_equal(plate_r.view(bits)[outside], plate.view(bits)[outside])
    np.testing.assert_allclose(plate_n.astype(np.float32), plate_r.astype(np.float32), rtol=0,
                               atol=1e-4 if dtype == np.float32 else 2e-3)


def cv2_invert(matrix: np.ndarray) -> np.ndarray:
    a = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.linalg.inv(a)[:2]


def test_paste_face_off_the_plate_is_a_no_op() -> None:
    plate = np.ones((20, 20, 3), np.float32)
    matrix = np.array([[1.0, 0, 400], [0, 1.0, 0]])  # the face lies far left of the plate
    for backend in ("reference", "native"):
        bbox, final = ops.paste_face(plate, np.zeros((16, 16, 3), np.float32), np.ones((16, 16), np.float32), matrix,
                                     0.0, 1.0, "bilinear", None, backend=backend)
        assert bbox[0] == bbox[2] and final.size == 0
    assert (plate == 1).all()


# -- dispatch and input checks --------------------------------------------------------------------------------------

def test_auto_without_the_native_module_uses_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "_native", None)
    assert not ops.native_available()
    mask = np.random.default_rng(18).random((12, 9), dtype=np.float32)
    np.testing.assert_array_equal(ops.erode_dilate(mask, 2.0), ref.erode_dilate(mask, 2.0))
    with pytest.raises(DflError, match="native core"):
        ops.gaussian_blur(mask, 1.0, backend="native")


def test_auto_uses_the_native_module_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    class FakeNative:
        def __getattr__(self, name: str):
            def record(*args):
                calls.append(name)
                return np.zeros((2, 2), np.float32)
            return record

    monkeypatch.setattr(native, "_native", FakeNative())
    assert ops.native_available()
    ops.gaussian_blur(np.ones((2, 2)), 1.0, threads=3)
    ops.erode_dilate(np.ones((2, 2)), 1.0, backend="reference")
    assert calls == ["gaussian_blur"]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: ops.warp_to_plate(np.ones((4, 4, 3)), np.eye(2, 3), (0, 0, 2, 2), "nearest"), DflError,
         "interpolation 'nearest'"),
        (lambda: ops.erode_dilate(np.ones((4, 4)), 1.0, backend="gpu"), DflError, "merge backend 'gpu'"),
        (lambda: ops.erode_dilate(np.ones((4, 4)), float("nan")), DflError, "erode radius"),
        (lambda: ops.gaussian_blur(np.ones((4, 4)), float("inf")), DflError, "blur sigma"),
        (lambda: ops.gaussian_blur(np.ones((4, 4, 1)), 1.0), ValueError, "2 dimensions"),
        (lambda: ops.gaussian_blur(np.ones((4, 4), np.int32), 1.0), ValueError, "float array"),
        (lambda: ops.erode_dilate(np.ones((4, 4)), 1.0, threads=-1), ValueError, "threads"),
        (lambda: ops.warp_to_plate(np.ones((4, 4, 3)), np.eye(3), (0, 0, 2, 2), "bilinear"), ValueError,
         r"shape \(2, 3\)"),
        (lambda: ops.warp_to_plate(np.ones((4, 4, 3)), np.eye(2, 3), (0, 0, 2), "bilinear"), ValueError, "4 ints"),
        (lambda: ops.warp_to_plate(np.ones((4, 4, 3)), np.eye(2, 3), (3, 0, 2, 2), "bilinear"), ValueError,
         "x0 <= x1"),
        (lambda: ops.composite(np.ones((4, 4, 4), np.float64), np.ones((2, 2, 3)), np.ones((2, 2)), (0, 0), 3),
         ValueError, "float16 or float32"),
        (lambda: ops.composite(np.ones((4, 4, 4), np.float32)[:, ::2], np.ones((2, 2, 3)), np.ones((2, 2)), (0, 0),
                               3), ValueError, "C-contiguous"),
        (lambda: ops.composite(np.ones((4, 4, 4), np.float32), np.ones((2, 2, 3)), np.ones((2, 2)), (0, 0), 1),
         ValueError, "alpha_channel"),
        (lambda: ops.composite(np.ones((4, 4, 4), np.float32), np.ones((2, 3, 3)), np.ones((2, 2)), (0, 0), 3),
         ValueError, "matching mask"),
        (lambda: ops.paste_face(np.ones((4, 4, 3), np.float32), np.ones((2, 2, 3)), np.ones((2, 2)),
                                [[1, 1, 0], [1, 1, 0]], 0, 0, "bilinear", None), ValueError, "not invertible"),
    ],
)
@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_bad_inputs_are_rejected(call, error: type, message: str, backend: str, monkeypatch: pytest.MonkeyPatch,
                                 ) -> None:
    if backend == "reference":
        monkeypatch.setattr(native, "_native", None)
    with pytest.raises(error, match=message):
        call()


def test_read_only_plate_is_rejected() -> None:
    plate = np.zeros((4, 4, 3), np.float32)
    plate.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        ops.composite(plate, np.ones((2, 2, 3)), np.ones((2, 2)), (0, 0), None)


def test_native_module_rejects_wrong_dtypes_itself() -> None:
    with pytest.raises(ValueError, match="float32"):
        native._native.gaussian_blur(np.ones((3, 3)), 1.0)
    with pytest.raises(ValueError, match="interpolation"):
        native._native.warp_to_plate(np.ones((3, 3, 1), np.float32), np.eye(2, 3), (0, 0, 1, 1), "area")


def test_float64_inputs_are_converted() -> None:
    mask = np.random.default_rng(19).random((10, 11))
    out = ops.gaussian_blur(mask, 1.5)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref.gaussian_blur(mask.astype(np.float32), 1.5), atol=1e-5)
