"""End-to-end `swap` throughput on 4096x2160 half EXR (ZIP) with a df-ud 256 model, against plain read + write.

Builds a short 4K demo shot (one face), extracts its destination faceset, exports an untrained df-ud 256 model to
ONNX (speed does not depend on training), then times (a) reading and writing the same frames with the same
compression and (b) `swap_shot` over them, with the per-stage breakdown. Writes build/bench/swap.json (or --out).

    .venv/bin/python bench/swap_bench.py [--frames 6] [--device auto] [--backend auto] [--jobs 2]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import torch
from common import write_result

from dfl_vfx.demo.shot import DemoShotConfig, build_demo_shot
from dfl_vfx.export.onnx_export import ExportMetadata, export_onnx
from dfl_vfx.extract.pipeline import ExtractOptions, extract
from dfl_vfx.io.image import read_image, write_image
from dfl_vfx.io.sequence import open_sequence
from dfl_vfx.models.config import ModelConfig
from dfl_vfx.models.saehd import SAEHD
from dfl_vfx.swap.engine import SwapSettings
from dfl_vfx.swap.pipeline import swap_shot


def _prepare(work: Path, frames: int) -> tuple[str, Path, Path]:
    shot = work / "shot"
    config = DemoShotConfig(frames=frames, width=4096, height=2160, overscan=0, source_photos=1, seed=5)
    if not (shot / "plate").is_dir() or len(list((shot / "plate").glob("*.exr"))) != frames:
        shutil.rmtree(shot, ignore_errors=True)
        build_demo_shot(shot, config, progress=False)
    plate = str(shot / "plate" / "plate.####.exr")
    faces = work / "dst_faces"
    extract(plate, str(faces), ExtractOptions(face_type="wf", size=256, select="largest", jobs=2, progress=False))
    model_path = work / "df-ud-256.onnx"
    if not model_path.is_file():
        torch.manual_seed(0)
        model = SAEHD(ModelConfig(archi="df-ud", resolution=256, face_type="wf")).eval()
        export_onnx(model, model_path, ExportMetadata.for_model(model, iterations=0))
    return plate, faces, model_path


def _read_write(plate: str, out: Path, compression: str) -> float:
    sequence = open_sequence(plate)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for f in sequence.frames:
        image = read_image(sequence.path(f), pixel_type="native")
        write_image(out / sequence.path(f).name, image, compression)
    return (time.perf_counter() - start) / len(sequence.frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("build/bench"))
    parser.add_argument("--work", type=Path, default=Path("build/bench/swap_work"))
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="threads per inference / merge call (0 = all cores)")
    parser.add_argument("--layers", default="rgba,mask,face", help="output layers (default: swap's default)")
    parser.add_argument("--name", default="swap")
    args = parser.parse_args()

    plate, faces, model = _prepare(args.work, args.frames)
    compression = "zip"
    read_write_s = _read_write(plate, args.work / "copy", compression)
    settings = SwapSettings(model=str(model), backend=args.backend, device=args.device, threads=args.threads,
                            layers=tuple(args.layers.split(",")))
    summary = swap_shot(plate, str(args.work / "swap"), settings, faceset=str(faces), jobs=args.jobs,
                        overwrite=True, compression=compression, progress=False)
    n = len(summary.done)
    per_frame = summary.frames_s / n  # steady state: model loading is reported apart as setup_s
    figures = {
        "frames": n,
        "faces": summary.faces,
        "read_write_s_per_frame": round(read_write_s, 4),
        "swap_s_per_frame": round(per_frame, 4),
        "swap_fps": round(summary.fps, 3),
        "setup_s": round(summary.setup_s, 3),
        "swap_over_read_write": round(per_frame / read_write_s, 3),
        "stage_s_per_frame": {k: round(v / n, 4) for k, v in vars(summary.times).items()},
        "backend": summary.backend,
        "device": summary.device,
    }
    settings_out = {"plate": "4096x2160 half RGBA EXR, zip", "model": "df-ud 256 wf (untrained), ONNX",
                    "jobs": args.jobs, "threads": args.threads, "merge": summary.settings}
    path = write_result(args.out, args.name, figures, settings_out)
    print(path)
    for key, value in figures.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
