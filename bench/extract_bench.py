"""Extraction throughput on the demo plate at 1920x1080 and 4096x2160 (detect + landmarks + align + write).

Writes build/bench/extract.json (or --out). Each resolution: a demo plate is built, then `extract` runs end to
end with 1 worker and with one worker per core; a per-stage breakdown is timed on a few frames in-process.

    .venv/bin/python bench/extract_bench.py [--frames 24] [--out build/bench]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from common import write_result

from dfl_vfx.color.ocio import WorkingSpace
from dfl_vfx.demo.shot import DemoShotConfig, build_demo_shot
from dfl_vfx.extract.pipeline import ExtractOptions, extract, face_crop, find_plate_faces
from dfl_vfx.face.detect import create_backend
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.faceset import FaceMetadata, Faceset
from dfl_vfx.io.image import read_image

RESOLUTIONS = {"1920x1080": (1920, 1080), "4096x2160": (4096, 2160)}


def stage_breakdown(plate: str, frames: list[int], workdir: Path) -> dict[str, float]:
    """Median milliseconds per frame of each stage, one process, one face per frame."""
    backend = create_backend("dlib")
    ws = WorkingSpace("ACEScg")
    fs = Faceset.create(workdir / "stages", face_type="whole_face", size=512, encoding="exr")
    times: dict[str, list[float]] = {k: [] for k in ("read", "detect_landmarks", "align", "write")}
    for f in frames:
        t0 = time.perf_counter()
        image = read_image(plate % f, channels=["R", "G", "B"])
        rgb = image.pixels
        t1 = time.perf_counter()
        faces = find_plate_faces(rgb, ws.display_uint8, backend, 640, 40)
        t2 = time.perf_counter()
        origin = (image.data_window.x, image.data_window.y)
        lm = faces[0].landmarks + origin
        crop, mat = face_crop(rgb, origin, lm, 512, FaceType.WHOLE_FACE)
        work = ws.to_working(crop)
        t3 = time.perf_counter()
        meta = FaceMetadata(
            face_type="whole_face", size=512, source_filename="x", source_frame=f, face_index=0,
            source_rect=list(faces[0].rect), source_landmarks=lm.tolist(), landmarks=lm.tolist(),
            image_to_face_mat=mat.tolist(), pose={"pitch": 0.0, "yaw": 0.0, "roll": 0.0}, detector="dlib",
            score=faces[0].score, colorspace="ACEScct", plate_colorspace="ACEScg",
        )
        fs.add(f"f{f}_0", work, meta)
        t4 = time.perf_counter()
        for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            times[key].append(dt * 1000)
    return {f"{k}_ms": round(float(np.median(v)), 1) for k, v in times.items()}


def run(frames: int, outdir: Path, keep: bool) -> Path:
    figures: dict[str, object] = {}
    jobs_all = os.cpu_count() or 1
    workdir = Path(tempfile.mkdtemp(prefix="dfl-bench-"))
    try:
        for label, (w, h) in RESOLUTIONS.items():
            n = frames if w <= 1920 else max(8, frames // 3)
            shot = workdir / label
            build_demo_shot(shot, DemoShotConfig(frames=n, width=w, height=h, source_photos=1), progress=False)
            plate = str(shot / "plate" / "plate.%04d.exr")
            entry: dict[str, object] = {"frames": n}
            for jobs in sorted({1, jobs_all}):
                out = shot / f"faces_j{jobs}"
                opts = ExtractOptions(face_type="wf", size=512, select="largest", jobs=jobs, progress=False)
                summary = extract(plate, str(out), opts)
                entry[f"jobs{jobs}_frames_per_s"] = round(summary.frames_per_second, 2)
                entry[f"jobs{jobs}_seconds"] = round(summary.seconds, 2)
                entry[f"jobs{jobs}_faces"] = summary.faces_kept
                shutil.rmtree(out)
            entry["stages_one_process"] = stage_breakdown(plate, list(range(1001, 1001 + min(n, 6))), shot)
            figures[label] = entry
            print(label, entry, flush=True)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    settings = {"face_type": "wf", "size": 512, "detector": "dlib hog upsample 1", "detect_size": 640,
                "select": "largest", "format": "exr", "cv2_threads": cv2.getNumThreads(),
                "note": "frames_per_s is end to end: worker start-up, both passes, faceset writes"}
    return write_result(outdir, "extract", figures, settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=24, help="1080p plate length (4K uses a third, min 8)")
    parser.add_argument("--out", type=Path, default=Path("build/bench"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary plates")
    args = parser.parse_args()
    print(f"wrote {run(args.frames, args.out, args.keep)}")


if __name__ == "__main__":
    main()
