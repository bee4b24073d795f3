"""Extraction recall and speed: the demo plate, a 2K scope plate with small faces, and 4K; old vs new detection.

Writes build/bench/extract.json (or --out). For each plate, `extract` runs end to end (detect + landmarks + align +
write) with the old fixed detection (``--detect-size 640 --min-face 40``) and with the default (``auto``), keeping
all faces and keeping the largest. Recall is faces found / faces placed, matched against where each plate's
generator put the faces; ``cpu_ms_per_frame`` is this process's CPU time (less sensitive than wall time to other
work on the machine). A per-stage breakdown is timed on a few frames in-process.

    .venv/bin/python bench/extract_bench.py [--frames 24] [--out build/bench]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from common import write_result

from dfl_vfx.color.ocio import WorkingSpace
from dfl_vfx.demo.scope import COLLINS_FACE, TRUTH_FILE, ScopeShotConfig, build_scope_shot, faces_found
from dfl_vfx.demo.shot import CARD_ROWS, DemoShotConfig, build_demo_shot, card_to_plate_matrix
from dfl_vfx.extract.pipeline import ExtractOptions, extract, face_crop, find_plate_faces
from dfl_vfx.face.detect import AUTO, create_backend
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.faceset import FaceMetadata, Faceset
from dfl_vfx.io.image import read_image

DETECTION = {"old_640": (640, 40), "auto": (AUTO, AUTO)}  # (detect_size, min_face)


def _box(mat: np.ndarray, face: tuple[float, ...], overscan: int) -> list[float]:
    corners = np.array([[face[0], face[1]], [face[2], face[1]], [face[0], face[3]], [face[2], face[3]]])
    points = corners @ mat[:, :2].T + mat[:, 2] - overscan
    return [float(v) for v in (*points.min(axis=0), *points.max(axis=0))]


def demo_plate(root: Path, frames: int, width: int, height: int) -> tuple[str, dict[str, list[list[float]]]]:
    """The demo shot's plate and, per frame, its one face box (the camera move applied to the photo's box)."""
    cfg = DemoShotConfig(frames=frames, width=width, height=height, source_photos=1)
    build_demo_shot(root, cfg, progress=False)
    boxes = {
        str(cfg.first_frame + i): [_box(card_to_plate_matrix(i, cfg, (CARD_ROWS, 512, 3)), COLLINS_FACE, cfg.overscan)]
        for i in range(frames)
    }
    return str(root / "plate" / "plate.%04d.exr"), boxes


def scope_plate(root: Path, frames: int) -> tuple[str, dict[str, list[list[float]]]]:
    build_scope_shot(root, ScopeShotConfig(frames=frames), progress=False)
    return str(root / "plate" / "plate.%04d.exr"), json.loads((root / TRUTH_FILE).read_text())["faces"]


def run_extract(plate: str, out: Path, placed: dict[str, list[list[float]]], detection: str, select: str,
                jobs: int) -> dict[str, object]:
    """One end-to-end extraction of the frames in ``placed``; its recall, speed and detection settings."""
    detect_size, min_face = DETECTION[detection]
    opts = ExtractOptions(face_type="wf", size=512, select=select, jobs=jobs, progress=False,
                          detect_size=detect_size, min_face=min_face)
    cpu = time.process_time()
    summary = extract(plate, str(out), opts, frames=",".join(placed))
    cpu = time.process_time() - cpu
    found = json.loads((out / "alignments.json").read_text())["frames"]
    hits = sum(faces_found(boxes, [face["rect"] for face in found[f]["faces"]]) for f, boxes in placed.items())
    kept = sum(len(found[f]["faces"]) for f in placed)
    wanted = sum(len(b) for b in placed.values()) if select == "all" else len(placed)
    shutil.rmtree(out)
    entry: dict[str, object] = {
        "faces_found": hits, "faces_wanted": wanted, "recall": round(hits / wanted, 3), "other_faces": kept - hits,
        "frames_per_s": round(summary.frames_per_second, 2), "seconds": round(summary.seconds, 2),
        "detection": summary.detection.removeprefix("detection: "),
    }
    if jobs == 1:
        entry["cpu_ms_per_frame"] = round(1000 * cpu / len(placed), 1)
    return entry


def stage_breakdown(plate: str, frames: list[int], workdir: Path) -> dict[str, float]:
    """Median milliseconds per frame of each stage, one process, the largest face of each frame."""
    backend = create_backend("dlib")
    ws = WorkingSpace("ACEScg")
    fs = Faceset.create(workdir / "stages", face_type="whole_face", size=512, encoding="exr")
    keys = ("read", "detect_landmarks_old_640", "detect_landmarks_auto_all", "detect_landmarks_auto_largest",
            "align", "write")
    times: dict[str, list[float]] = {k: [] for k in keys}
    for f in frames:
        t0 = time.perf_counter()
        image = read_image(plate % f, channels=["R", "G", "B"])
        rgb = image.pixels
        t1 = time.perf_counter()
        find_plate_faces(rgb, ws.display_uint8, backend, 640, 40)
        t2 = time.perf_counter()
        find_plate_faces(rgb, ws.display_uint8, backend, AUTO, AUTO)
        t3 = time.perf_counter()
        faces = find_plate_faces(rgb, ws.display_uint8, backend, AUTO, AUTO, 1)
        t4 = time.perf_counter()
        origin = (image.data_window.x, image.data_window.y)
        lm = faces[0].landmarks + origin
        crop, mat = face_crop(rgb, origin, lm, 512, FaceType.WHOLE_FACE)
        work = ws.to_working(crop)
        t5 = time.perf_counter()
        meta = FaceMetadata(
            face_type="whole_face", size=512, source_filename="x", source_frame=f, face_index=0,
            source_rect=list(faces[0].rect), source_landmarks=lm.tolist(), landmarks=lm.tolist(),
            image_to_face_mat=mat.tolist(), pose={"pitch": 0.0, "yaw": 0.0, "roll": 0.0}, detector="dlib",
            score=faces[0].score, colorspace="ACEScct", plate_colorspace="ACEScg",
        )
        fs.add(f"f{f}_0", work, meta)
        t6 = time.perf_counter()
        for key, dt in zip(keys, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5), strict=True):
            times[key].append(dt * 1000)
    return {f"{k}_ms": round(float(np.median(v)), 1) for k, v in times.items()}


def run(frames: int, outdir: Path, keep: bool) -> Path:
    figures: dict[str, object] = {}
    jobs_all = os.cpu_count() or 1
    workdir = Path(tempfile.mkdtemp(prefix="dfl-bench-"))
    plates = {
        "demo_1920x1080": lambda root: demo_plate(root, frames, 1920, 1080),
        "scope_2048x858": lambda root: scope_plate(root, frames),
        "demo_4096x2160": lambda root: demo_plate(root, max(8, frames // 3), 4096, 2160),
    }
    try:
        for label, build in plates.items():
            shot = workdir / label
            plate, placed = build(shot)
            entry: dict[str, object] = {"frames": len(placed), "faces_placed": sum(len(b) for b in placed.values())}
            first = next(iter(placed))
            run_extract(plate, shot / "warm-up", {first: placed[first]}, "auto", "all", 1)  # models loaded, caches warm
            selects = ("all", "largest") if "4096" not in label else ("largest",)
            for detection in DETECTION:
                for select in selects:
                    entry[f"{detection}_{select}_jobs1"] = run_extract(plate, shot / "faces", placed, detection,
                                                                       select, 1)
                    print(label, detection, select, entry[f"{detection}_{select}_jobs1"], flush=True)
            if jobs_all > 1:
                for select in selects:
                    entry[f"auto_{select}_jobs{jobs_all}"] = run_extract(plate, shot / "faces", placed, "auto",
                                                                         select, jobs_all)
            frames_timed = list(range(int(first), int(first) + min(len(placed), 6)))
            entry["stages_one_process"] = stage_breakdown(plate, frames_timed, shot)
            figures[label] = entry
            print(label, entry, flush=True)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    settings = {"face_type": "wf", "size": 512, "detector": "dlib hog upsample 1 (coarse first)", "format": "exr",
                "old_640": "--detect-size 640 --min-face 40 (the defaults before issue 8)",
                "auto": "--detect-size auto --min-face auto (a tenth of the shorter side)",
                "cv2_threads": cv2.getNumThreads(),
                "note": "frames_per_s is end to end: worker start-up, both passes, faceset writes; recall counts a "
                        "face found when a kept box's centre is inside the placed face's box"}
    return write_result(outdir, "extract", figures, settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=24, help="plate length (4K uses a third, min 8)")
    parser.add_argument("--out", type=Path, default=Path("build/bench"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary plates")
    args = parser.parse_args()
    print(f"wrote {run(args.frames, args.out, args.keep)}")


if __name__ == "__main__":
    main()
