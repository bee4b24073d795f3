"""CUDA merge operations: the build and its failure modes run anywhere; parity with the reference needs a GPU.

Tolerances are the contract's (docs/dev/merge-ops.md): warp 2e-5, erode/dilate exact, blur 1e-5, composite 1e-6
(float32) / 1 ulp (float16) with untouched pixels bit-identical.
"""

from __future__ import annotations

import ast
import math
import os
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dfl_vfx import native
from dfl_vfx.errors import DflError
from dfl_vfx.merge import cuda_ops, reference

GPU_READY = native.cuda_available() and torch.cuda.is_available()
gpu = pytest.mark.gpu("cuda_build")
STUB = Path(native.__file__).with_name("_native_cuda.pyi")


def _nvcc_found() -> bool:
    home = os.environ.get("CUDA_HOME")
    candidates = [shutil.which("nvcc"), home and os.path.join(home, "bin", "nvcc"), "/usr/local/cuda/bin/nvcc"]
    return any(candidate and os.path.isfile(candidate) for candidate in candidates)


needs_cuda_build = pytest.mark.skipif(not native.cuda_compiled(), reason="dfl_vfx was built without CUDA kernels")


# ---- the build, on any machine -------------------------------------------------------------------------------------


@pytest.mark.skipif(not _nvcc_found() or os.environ.get("DFL_WITH_CUDA") == "0",
                    reason="nvcc not found (or DFL_WITH_CUDA=0): the CUDA module is not built here")
def test_cuda_module_is_built_where_nvcc_is_present() -> None:
    assert native.cuda_compiled()


@needs_cuda_build
def test_build_info_names_nvcc_and_the_gpu_architectures() -> None:
    info = native.cuda_build_info()
    assert info["cuda_compiled"] is True
    assert re.fullmatch(r"\d+\.\d+\.\d+", info["nvcc_version"])
    assert info["cuda_runtime_version"] >= 11000
    archs = info["archs"]
    assert archs and all(re.fullmatch(r"(sm|compute)_\d+[a-z]?", arch) for arch in archs)
    assert sum(arch.startswith("compute_") for arch in archs) == 1  # PTX of the highest architecture
    if not os.environ.get("DFL_CUDA_ARCHS"):
        assert archs == ["sm_75", "sm_80", "sm_86", "sm_89", "sm_90", "compute_90"]


@needs_cuda_build
def test_stub_lists_every_function_of_the_module() -> None:
    stub = ast.parse(STUB.read_text())
    declared = {node.name for node in stub.body if isinstance(node, ast.FunctionDef)}
    exported = {name for name in dir(native._native_cuda) if not name.startswith("_")}
    assert declared == exported


@needs_cuda_build
def test_device_state_is_reported_without_crashing() -> None:
    try:
        count = native._native_cuda.device_count()
    except RuntimeError as error:  # no driver (cudaErrorInsufficientDriver) or no device
        assert re.search(r"cudaError\w+", str(error))
        assert not native.cuda_available()
        assert "no usable NVIDIA GPU" in native.cuda_unavailable_reason()
        return
    assert native.cuda_available() == (count > 0)


@pytest.mark.skipif(GPU_READY, reason="a GPU is present: the no-GPU errors do not apply")
def test_every_operation_raises_a_clear_error_without_a_gpu() -> None:
    mask = torch.zeros((8, 8))
    plate = torch.zeros((8, 8, 4))
    face = torch.zeros((8, 8, 3))
    matrix = np.eye(2, 3)
    calls = {
        "warp_to_plate": lambda: cuda_ops.warp_to_plate(face, matrix, (0, 0, 8, 8), "bilinear"),
        "crop_to_aligned": lambda: cuda_ops.crop_to_aligned(plate, matrix, 8, "bicubic"),
        "erode_dilate": lambda: cuda_ops.erode_dilate(mask, 2.0),
        "gaussian_blur": lambda: cuda_ops.gaussian_blur(mask, 1.0),
        "composite": lambda: cuda_ops.composite(plate, face, mask, (0, 0), 3),
        "paste_face": lambda: cuda_ops.paste_face(plate, face, mask, matrix, 0.0, 1.0, "bilinear", 3),
    }
    for name, call in calls.items():
        with pytest.raises(DflError, match=f"^{name} needs an NVIDIA GPU and the CUDA build of dfl_vfx"):
            call()


# ---- parity with the reference, on a GPU ---------------------------------------------------------------------------


def _similarity(scale: float, degrees: float, tx: float, ty: float) -> np.ndarray:
    """2x3 matrix: rotate by ``degrees``, scale, then translate."""
    a = math.radians(degrees)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx],
                     [scale * math.sin(a), scale * math.cos(a), ty]], np.float64)


def _blob_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    """A soft disc with noise: values in [0, 1] with hard zeros, ones and everything between."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(xx - size / 2, yy - size / 2) / (size / 2)
    mask = np.clip(1.6 - 1.5 * r, 0.0, 1.0) + rng.normal(0, 0.05, (size, size))
    return np.clip(mask, -0.1, 1.1).astype(np.float32)  # slightly out of range: the paste clips


def _cuda(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).cuda()


def _host(tensor: torch.Tensor) -> np.ndarray:
    return tensor.cpu().numpy()


KERNEL_RUNS = [
    pytest.param("host", marks=needs_cuda_build, id="kernel-code-on-cpu"),
    pytest.param("gpu", marks=gpu, id="gpu"),
]
"""Where the kernels' per-pixel code runs: on the CPU (host_* functions, anywhere it is built) or on the GPU."""


def _warp(run: str, src: np.ndarray, matrix: np.ndarray, bbox: tuple[int, ...], interpolation: str) -> np.ndarray:
    if run == "host":
        return native._native_cuda.host_warp(src, matrix.ravel().tolist(), list(bbox), interpolation)
    return _host(cuda_ops.warp_to_plate(_cuda(src), matrix, bbox, interpolation))


def _erode_dilate(run: str, mask: np.ndarray, radius: float) -> np.ndarray:
    if run == "host":
        return native._native_cuda.host_erode_dilate(mask, radius)
    return _host(cuda_ops.erode_dilate(_cuda(mask), radius))


def _gaussian_blur(run: str, mask: np.ndarray, sigma: float) -> np.ndarray:
    if run == "host":
        return native._native_cuda.host_gaussian_blur(mask, sigma)
    return _host(cuda_ops.gaussian_blur(_cuda(mask), sigma))


def _composite(run: str, plate: np.ndarray, face: np.ndarray, mask: np.ndarray, origin: tuple[int, int],
               alpha_channel: int | None) -> np.ndarray:
    if run == "host":
        plate = plate.copy()
        native._native_cuda.host_composite(plate, face, mask, list(origin), alpha_channel)
        return plate
    device_plate = _cuda(plate)
    cuda_ops.composite(device_plate, _cuda(face), _cuda(mask), origin, alpha_channel)
    return _host(device_plate)


def _half_ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in float16 ulps of finite same-sign values (bit patterns as ordered integers)."""
    ia = a.view(np.int16).astype(np.int32)
    ib = b.view(np.int16).astype(np.int32)
    ia = np.where(ia < 0, -32768 - ia, ia)
    ib = np.where(ib < 0, -32768 - ib, ib)
    return np.abs(ia - ib)


@pytest.mark.parametrize("run", KERNEL_RUNS)
@pytest.mark.parametrize("interpolation", reference.INTERPOLATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_warp_to_plate_matches_reference(run: str, interpolation: str, dtype: type) -> None:
    rng = np.random.default_rng(1)
    src = rng.random((37, 41, 5)).astype(dtype)  # 5 channels: more than one 4-channel pass
    matrix = _similarity(0.83, 17.0, -6.3, 4.1)  # destination -> source
    bbox = (-3, 2, 52, 47)  # reaches past the source on every side
    expected = reference.warp_to_plate(src.astype(np.float32), matrix, bbox, interpolation)
    got = _warp(run, src, matrix, bbox, interpolation)
    assert got.shape == (45, 55, 5) and got.dtype == np.float32
    assert np.abs(got - expected).max() <= 2e-5
    assert np.count_nonzero(expected == 0) > 0  # the zero border was exercised


@gpu
def test_crop_to_aligned_is_the_inverse_warp() -> None:
    rng = np.random.default_rng(2)
    plate = rng.random((60, 80, 4)).astype(np.float16)
    frame_to_aligned = _similarity(1.7, -8.0, -30.0, -12.0)
    expected = reference.warp_to_plate(plate.astype(np.float32), cv2.invertAffineTransform(frame_to_aligned),
                                       (0, 0, 48, 48), "bicubic")
    got = _host(cuda_ops.crop_to_aligned(_cuda(plate), frame_to_aligned, 48, "bicubic"))
    assert got.shape == (48, 48, 4)
    assert np.abs(got - expected).max() <= 2e-5


@pytest.mark.parametrize("run", KERNEL_RUNS)
@pytest.mark.parametrize("radius", [2.5, -3.0, 0.5, 7.2, -1.0, 1.0, -12.9, 250.0, -250.0])
def test_erode_dilate_is_exact(run: str, radius: float) -> None:
    rng = np.random.default_rng(3)
    mask = np.clip(_blob_mask(45, rng)[:, :40] + rng.normal(0, 0.2, (45, 40)), 0, 1).astype(np.float32)
    expected = reference.erode_dilate(mask, radius)
    got = _erode_dilate(run, mask, radius)
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("run", KERNEL_RUNS)
@pytest.mark.parametrize("sigma", [0.4, 1.0, 3.3, 0.0])
def test_gaussian_blur_matches_reference(run: str, sigma: float) -> None:
    rng = np.random.default_rng(4)
    mask = rng.random((50, 33)).astype(np.float32)
    expected = reference.gaussian_blur(mask, sigma)
    got = _gaussian_blur(run, mask, sigma)
    assert np.abs(got - expected).max() <= 1e-5


def _composite_inputs(dtype: type) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    plate = rng.random((30, 40, 5)).astype(dtype)
    plate[0, 0, 0] = np.nan
    plate[1, 2, 1] = np.inf
    face = rng.random((16, 20, 3)).astype(np.float32)
    mask = rng.random((16, 20)).astype(np.float32)
    mask[::3] = 0.0
    mask[1, ::2] = -0.5
    mask[2, 1::2] = np.nan
    mask[4] = 1.0
    mask[5, :5] = 2.0
    return plate, face, mask


def _written(mask: np.ndarray, origin: tuple[int, int], plate_shape: tuple[int, ...]) -> np.ndarray:
    """(H, W) bool: plate pixels under the box at ``origin`` where mask > 0."""
    written = np.zeros(plate_shape[:2], bool)
    ys, xs = np.nonzero(mask > 0)
    ys, xs = ys + origin[1], xs + origin[0]
    inside = (ys >= 0) & (ys < plate_shape[0]) & (xs >= 0) & (xs < plate_shape[1])
    written[ys[inside], xs[inside]] = True
    return written


def _bits(array: np.ndarray) -> np.ndarray:
    return array.view(np.uint16 if array.dtype == np.float16 else np.uint32)


# The reference also evaluates the blend where m >= 1 (and discards it): Inf * 0 there warns.
@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply:RuntimeWarning")
@pytest.mark.parametrize("run", KERNEL_RUNS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("alpha_channel", [3, None])
@pytest.mark.parametrize("origin", [(7, 5), (-4, -3), (30, 20)])  # inside, over the top-left and bottom-right edges
def test_composite_matches_reference(run: str, dtype: type, alpha_channel: int | None,
                                     origin: tuple[int, int]) -> None:
    plate, face, mask = _composite_inputs(dtype)
    expected = plate.copy()
    reference.composite(expected, face, mask, origin, alpha_channel)
    got = _composite(run, plate, face, mask, origin, alpha_channel)
    finite = np.isfinite(expected)
    assert np.array_equal(np.isfinite(got), finite)
    if dtype == np.float32:
        assert np.abs(got[finite] - expected[finite]).max() <= 1e-6
    else:
        assert _half_ulps(got[finite], expected[finite]).max() <= 1
    # Pixels not written, and channels other than RGB and alpha, keep their exact bits (NaN and Inf included).
    written = _written(mask, origin, plate.shape)
    assert written.sum() > 20
    assert np.array_equal(_bits(got)[~written], _bits(plate)[~written])
    kept_channels = [c for c in range(3, 5) if c != alpha_channel]
    assert np.array_equal(_bits(got)[..., kept_channels], _bits(plate)[..., kept_channels])


def _assert_paste_close(plate: np.ndarray, got_plate: np.ndarray, expected_plate: np.ndarray, got_mask: np.ndarray,
                        expected_mask: np.ndarray, bbox: tuple[int, int, int, int], tolerance: float) -> None:
    """Masks within 5e-5 and plates within ``tolerance``, except where a value sits on the 1/255 floor.

    The warp may differ by 2e-5, so a mask value landing on the floor can be zeroed on one side only; pixels
    neither side wrote keep their exact bits.
    """
    near_floor = np.maximum(got_mask, expected_mask) < reference.MASK_FLOOR + 1e-4
    assert np.abs(got_mask - expected_mask)[~near_floor].max() <= 5e-5
    x0, y0, x1, y1 = bbox
    floor_pixels = np.zeros(plate.shape[:2], bool)
    floor_pixels[y0:y1, x0:x1] = near_floor & (np.maximum(got_mask, expected_mask) > 0)
    diff = np.abs(got_plate.astype(np.float32) - expected_plate.astype(np.float32))
    assert diff[~floor_pixels].max() <= tolerance
    untouched = np.ones(plate.shape[:2], bool)
    untouched[y0:y1, x0:x1] = (got_mask <= 0) & (expected_mask <= 0)
    assert np.array_equal(_bits(got_plate)[untouched], _bits(plate)[untouched])
    assert (~untouched).sum() > 500  # the face was pasted


@gpu
@pytest.mark.parametrize("plate_dtype", [np.float32, np.float16])
@pytest.mark.parametrize(("erode_px", "blur_sigma", "interpolation"),
                         [(3.0, 2.5, "bilinear"), (-4.0, 0.0, "bicubic"), (0.0, 1.5, "lanczos")])
def test_paste_face_matches_reference(plate_dtype: type, erode_px: float, blur_sigma: float,
                                      interpolation: str) -> None:
    rng = np.random.default_rng(6)
    plate = rng.random((90, 120, 4)).astype(plate_dtype)
    face = rng.random((64, 64, 3)).astype(np.float32)
    mask = _blob_mask(64, rng)
    plate_to_aligned = cv2.invertAffineTransform(_similarity(0.9, 12.0, 70.0, 20.0))  # face over the right edge
    expected_plate = plate.copy()
    expected_bbox, expected_mask = reference.paste_face(expected_plate, face, mask, plate_to_aligned, erode_px,
                                                        blur_sigma, interpolation, 3)
    device_plate = _cuda(plate)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())  # the plate's upload
    with torch.cuda.stream(stream):  # the work goes on the caller's current stream
        bbox, final_mask = cuda_ops.paste_face(device_plate, _cuda(face), _cuda(mask), plate_to_aligned, erode_px,
                                               blur_sigma, interpolation, 3)
    stream.synchronize()
    assert bbox == expected_bbox and bbox[2] == 120
    assert final_mask.device == device_plate.device and final_mask.dtype == torch.float32
    tolerance = 1e-4 if plate_dtype == np.float32 else 2e-3  # float16: 1 ulp near 1 is 4.9e-4
    _assert_paste_close(plate, _host(device_plate), expected_plate, _host(final_mask), expected_mask, bbox,
                        tolerance)


@gpu
def test_paste_face_takes_half_precision_model_outputs() -> None:
    rng = np.random.default_rng(7)
    plate = rng.random((70, 70, 3)).astype(np.float32)
    face = rng.random((32, 32, 3)).astype(np.float16)
    mask = np.clip(_blob_mask(32, rng), 0, 1).astype(np.float16)
    plate_to_aligned = cv2.invertAffineTransform(_similarity(1.3, -5.0, 15.0, 12.0))
    expected_plate = plate.copy()
    expected_bbox, expected_mask = reference.paste_face(expected_plate, face.astype(np.float32),
                                                        mask.astype(np.float32), plate_to_aligned, 1.0, 1.0,
                                                        "bilinear", None)
    device_plate = _cuda(plate)
    bbox, final_mask = cuda_ops.paste_face(device_plate, _cuda(face), _cuda(mask), plate_to_aligned, 1.0, 1.0,
                                           "bilinear", None)
    assert bbox == expected_bbox
    _assert_paste_close(plate, _host(device_plate), expected_plate, _host(final_mask), expected_mask, bbox, 1e-4)


@gpu
def test_invalid_tensors_are_rejected_with_clear_errors() -> None:
    mask = torch.zeros((8, 8), device="cuda")
    with pytest.raises(DflError, match="mask is on the cpu device"):
        cuda_ops.erode_dilate(torch.zeros((8, 8)), 2.0)
    with pytest.raises(ValueError, match="mask must be float32"):
        cuda_ops.gaussian_blur(mask.half(), 1.0)
    with pytest.raises(ValueError, match="C-contiguous"):
        cuda_ops.gaussian_blur(torch.zeros((8, 16), device="cuda")[:, ::2], 1.0)
    with pytest.raises(ValueError, match="alpha_channel"):
        cuda_ops.composite(torch.zeros((8, 8, 4), device="cuda"), torch.zeros((8, 8, 3), device="cuda"), mask,
                           (0, 0), 1)
    with pytest.raises(DflError, match="interpolation 'nearest'"):
        cuda_ops.warp_to_plate(torch.zeros((8, 8, 3), device="cuda"), np.eye(2, 3), (0, 0, 4, 4), "nearest")
