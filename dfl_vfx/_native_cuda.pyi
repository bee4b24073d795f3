"""Typed stub of the CUDA kernels (native/cuda). Pointers and the stream are integers; calls only enqueue work."""

import numpy as np

def device_count() -> int: ...
def driver_version() -> int: ...
def build_info() -> dict[str, object]: ...
def warp(
    src: int,
    src_dtype: str,
    src_h: int,
    src_w: int,
    channels: int,
    matrix: list[float],
    bbox: list[int],
    interpolation: str,
    dst: int,
    device: int,
    stream: int,
) -> None: ...
def erode_dilate_workspace(height: int, width: int, radius: float) -> int: ...
def erode_dilate(
    src: int, dst: int, height: int, width: int, radius: float, workspace: int, device: int, stream: int
) -> None: ...
def gaussian_blur_workspace(height: int, width: int, sigma: float) -> int: ...
def gaussian_blur(
    src: int, dst: int, height: int, width: int, sigma: float, workspace: int, device: int, stream: int
) -> None: ...
def composite(
    plate: int,
    plate_dtype: str,
    plate_h: int,
    plate_w: int,
    plate_channels: int,
    face: int,
    mask: int,
    height: int,
    width: int,
    origin_x: int,
    origin_y: int,
    alpha_channel: int | None,
    device: int,
    stream: int,
) -> None: ...
def paste_face_workspace(size: int, bbox: list[int], erode_px: float, blur_sigma: float) -> int: ...
def paste_face(
    plate: int,
    plate_dtype: str,
    plate_h: int,
    plate_w: int,
    plate_channels: int,
    face: int,
    face_dtype: str,
    mask: int,
    mask_dtype: str,
    size: int,
    matrix: list[float],
    bbox: list[int],
    erode_px: float,
    blur_sigma: float,
    interpolation: str,
    alpha_channel: int | None,
    final_mask: int,
    workspace: int,
    device: int,
    stream: int,
) -> None: ...

# CPU runs of the kernels' per-pixel code (tests on machines without a GPU); NumPy arrays in and out.

def host_warp(src: np.ndarray, matrix: list[float], bbox: list[int], interpolation: str) -> np.ndarray: ...
def host_erode_dilate(mask: np.ndarray, radius: float) -> np.ndarray: ...
def host_gaussian_blur(mask: np.ndarray, sigma: float, floor_value: float = ...) -> np.ndarray: ...
def host_composite(
    plate: np.ndarray, face: np.ndarray, mask: np.ndarray, origin: list[int], alpha_channel: int | None
) -> None: ...
