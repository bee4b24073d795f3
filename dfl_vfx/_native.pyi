"""Typed stub of the native core (native/src). Semantics: docs/dev/merge-ops.md; checked callers: dfl_vfx.merge.ops."""

import numpy as np
import numpy.typing as npt

def build_info() -> dict[str, object]: ...
def warp_to_plate(
    src: npt.NDArray[np.float32] | npt.NDArray[np.float16],
    matrix: npt.ArrayLike,
    bbox: tuple[int, int, int, int],
    interpolation: str,
    threads: int = 0,
) -> npt.NDArray[np.float32]: ...
def erode_dilate(mask: npt.NDArray[np.float32], radius: float, threads: int = 0) -> npt.NDArray[np.float32]: ...
def gaussian_blur(mask: npt.NDArray[np.float32], sigma: float, threads: int = 0) -> npt.NDArray[np.float32]: ...
def composite(
    plate: npt.NDArray[np.float32] | npt.NDArray[np.float16],
    face: npt.NDArray[np.float32],
    mask: npt.NDArray[np.float32],
    origin: tuple[int, int],
    alpha_channel: int | None,
    threads: int = 0,
) -> None: ...
def paste_face(
    plate: npt.NDArray[np.float32] | npt.NDArray[np.float16],
    face: npt.NDArray[np.float32],
    mask: npt.NDArray[np.float32],
    matrix: npt.ArrayLike,
    bbox: tuple[int, int, int, int],
    erode_px: float,
    blur_sigma: float,
    interpolation: str,
    alpha_channel: int | None,
    threads: int = 0,
) -> npt.NDArray[np.float32]: ...
