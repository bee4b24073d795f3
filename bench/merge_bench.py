"""Merge speed: pasting one face into a 4096x2160 half RGBA plate, NumPy reference vs the native C++ core (and the
CUDA kernels on device tensors when a GPU is present).

The face is a model-resolution 256 RGB face with a binary hull-like mask, pasted about 900 px wide and rotated 8
degrees, erode 20 px, blur sigma 10 px (plate pixels), with lanczos and bilinear. Each figure is the median of
``--repeats`` runs in milliseconds: the fused ``paste_face`` and its steps (warp of face + mask into the box,
erode, blur, composite). Writes build/bench/merge.json (or --out).

    .venv/bin/python bench/merge_bench.py [--repeats 5] [--threads 0] [--out build/bench]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from common import write_result
from skimage import data

from dfl_vfx.merge import ops

PLATE_SIZE = (2160, 4096)  # (height, width)
RESOLUTION = 256
FACE_WIDTH_PX = 900.0
ROTATION_DEG = 8.0
ERODE_PX = 20.0
BLUR_SIGMA = 10.0
INTERPOLATIONS = ("lanczos", "bilinear")


def make_face() -> tuple[np.ndarray, np.ndarray]:
    """(face (256, 256, 3) float32 in [0, 1], mask (256, 256) float32 of 0 and 1)."""
    crop = data.astronaut()[20:220, 160:360]
    face = cv2.resize(crop, (RESOLUTION, RESOLUTION), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    mask = np.zeros((RESOLUTION, RESOLUTION), np.uint8)
    cv2.ellipse(mask, (128, 140), (92, 112), 0, 0, 360, 1, -1)
    return face, mask.astype(np.float32)


def make_plate() -> np.ndarray:
    """Half RGBA plate: smooth scene-linear gradients, alpha 1."""
    h, w = PLATE_SIZE
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    plate = np.empty((h, w, 4), np.float16)
    plate[..., 0] = 0.18 + 0.5 * x / w
    plate[..., 1] = 0.18 + 0.5 * y / h
    plate[..., 2] = 0.1 + 0.05 * np.sin(x / 97.0) * np.cos(y / 61.0)
    plate[..., 3] = 1.0
    return plate


def plate_to_aligned() -> np.ndarray:
    """2x3 matrix mapping plate pixels to aligned pixels for a face ~900 px wide near the plate centre."""
    scale = FACE_WIDTH_PX / RESOLUTION
    angle = np.deg2rad(ROTATION_DEG)
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre_plate = np.array([2348.0, 980.0])
    centre_aligned = np.array([RESOLUTION / 2.0, RESOLUTION / 2.0])
    aligned_to_plate = np.hstack([rot, (centre_plate - rot @ centre_aligned)[:, None]])
    return cv2.invertAffineTransform(aligned_to_plate)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: page faults, the native half table, thread start
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return round(statistics.median(times), 2)


def time_backend(backend: str, interpolation: str, repeats: int, threads: int) -> dict[str, float]:
    face, mask = make_face()
    matrix = plate_to_aligned()
    plate = make_plate()
    bbox, final = ops.paste_face(plate, face, mask, matrix, ERODE_PX, BLUR_SIGMA, interpolation, 3,
                                 backend="reference")
    source = np.ascontiguousarray(np.dstack([face, mask]))
    source5 = np.ascontiguousarray(np.dstack([face, mask, np.ones_like(mask)]))  # the merger's: + coverage
    warped = ops.warp_to_plate(source, matrix, bbox, interpolation, backend="reference")
    clipped = np.clip(warped[..., 3], 0.0, 1.0)
    rgb = np.ascontiguousarray(warped[..., :3])
    kw = {"backend": backend, "threads": threads}
    return {
        "paste_face": median_ms(lambda: ops.paste_face(plate, face, mask, matrix, ERODE_PX, BLUR_SIGMA,
                                                       interpolation, 3, **kw), repeats),
        "warp": median_ms(lambda: ops.warp_to_plate(source, matrix, bbox, interpolation, **kw), repeats),
        "warp5": median_ms(lambda: ops.warp_to_plate(source5, matrix, bbox, interpolation, **kw), repeats),
        "erode": median_ms(lambda: ops.erode_dilate(clipped, ERODE_PX, **kw), repeats),
        "blur": median_ms(lambda: ops.gaussian_blur(clipped, BLUR_SIGMA, **kw), repeats),
        "composite": median_ms(lambda: ops.composite(plate, rgb, final, bbox[:2], 3, **kw), repeats),
    }


def time_cuda(interpolation: str, repeats: int) -> dict[str, float]:
    """The CUDA kernels on device tensors (synchronised), plus the plate's host<->device copies they would need."""
    import torch

    from dfl_vfx.merge import cuda_ops

    face, mask = make_face()
    matrix = plate_to_aligned()
    host_plate = make_plate()
    plate = torch.from_numpy(host_plate).cuda()
    face_t, mask_t = torch.from_numpy(face).cuda(), torch.from_numpy(mask).cuda()

    def synced(fn: Callable[[], object]) -> Callable[[], None]:
        def call() -> None:
            fn()
            torch.cuda.synchronize()
        return call

    pinned = torch.from_numpy(host_plate).pin_memory()
    return {
        "paste_face": median_ms(synced(lambda: cuda_ops.paste_face(plate, face_t, mask_t, matrix, ERODE_PX,
                                                                   BLUR_SIGMA, interpolation, 3)), repeats),
        "crop_to_aligned": median_ms(synced(lambda: cuda_ops.crop_to_aligned(
            plate, cv2.invertAffineTransform(matrix), RESOLUTION, interpolation)), repeats),
        "plate_upload_pinned": median_ms(synced(lambda: pinned.to("cuda", non_blocking=True)), repeats),
        "plate_download": median_ms(synced(lambda: plate.cpu()), repeats),
    }


def run(repeats: int, threads: int, outdir: Path) -> Path:
    if not ops.native_available():
        raise SystemExit("the native core dfl_vfx._native is not built: run `make` first")
    face, mask = make_face()
    bbox = ops.paste_bbox(plate_to_aligned(), mask.shape, ERODE_PX, BLUR_SIGMA, PLATE_SIZE)
    figures: dict[str, object] = {"bbox": list(bbox), "bbox_size": [bbox[2] - bbox[0], bbox[3] - bbox[1]]}
    for interpolation in INTERPOLATIONS:
        reference_ms = time_backend("reference", interpolation, max(1, repeats // 2), threads)
        native_ms = time_backend("native", interpolation, repeats, threads)
        entry = {
            "reference_ms": reference_ms,
            "native_ms": native_ms,
            "speedup": {k: round(reference_ms[k] / native_ms[k], 1) for k in reference_ms},
        }
        from dfl_vfx import native

        if native.cuda_available():
            entry["cuda_ms"] = time_cuda(interpolation, repeats * 3)
        figures[interpolation] = entry
        print(interpolation, entry, flush=True)
    settings = {
        "plate": f"{PLATE_SIZE[1]}x{PLATE_SIZE[0]} half RGBA", "resolution": RESOLUTION,
        "face_width_px": FACE_WIDTH_PX, "rotation_deg": ROTATION_DEG, "erode_px": ERODE_PX,
        "blur_sigma": BLUR_SIGMA, "repeats_native": repeats, "repeats_reference": max(1, repeats // 2),
        "native_threads": threads or os.cpu_count(), "cv2_threads": cv2.getNumThreads(),
        "note": "median ms per call; paste_face is the fused step (bbox, warp, clip, erode, blur, floor, composite); "
                "warp is face RGB + mask (4 channels), warp5 adds the coverage channel as the merger warps it",
    }
    return write_result(outdir, "merge", figures, settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=6, help="native runs per figure (the reference runs half)")
    parser.add_argument("--threads", type=int, default=0, help="native threads (0 = one per core)")
    parser.add_argument("--out", type=Path, default=Path("build/bench"))
    args = parser.parse_args()
    print(f"wrote {run(args.repeats, args.threads, args.out)}")


if __name__ == "__main__":
    main()
