"""End-to-end `swap` throughput on 4096x2160 half EXR (ZIP) with a df-ud 256 model, against plain read + write.

Builds a short 4K demo shot (one face), extracts its destination faceset, exports an untrained df-ud 256 model to
ONNX (speed does not depend on training), then, ``--runs`` times, times (a) reading and writing the same frames with
the same compression and (b) `swap_shot` over them, with the per-stage breakdown, the machine's load average around
each run and the size on disk of a frame's layers. The medians over the runs are the headline figures.

``--layout`` adds what the two-file layout (docs/dev/swap-output.md) costs per frame: the old one-file layout (the
layers as plate-sized channels of the delivered frame) against the delivered frame plus a layers file cut to the
face (``--layer-window face``) or covering the display window, written and read back; the delivered frame written
whole through OpenImageIO against from the plate's blocks, and the plate read whole against only the face's rows;
and the codecs a layers file could use (write and read time, size, whether lossless). ``--before PATH`` embeds an
earlier result of this script (e.g. the code before a change, run in the same session) as ``before``. Writes
build/bench/<name>.json.

    .venv/bin/python bench/swap_bench.py [--frames 6] [--runs 3] [--layout] [--before PATH] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import write_result

from dfl_vfx.demo.shot import DemoShotConfig, build_demo_shot
from dfl_vfx.export.onnx_export import ExportMetadata, export_onnx
from dfl_vfx.extract.pipeline import ExtractOptions, extract
from dfl_vfx.io.image import Image, read_image, write_image
from dfl_vfx.io.sequence import open_sequence
from dfl_vfx.models.config import ModelConfig
from dfl_vfx.models.saehd import SAEHD
from dfl_vfx.swap.engine import SwapSettings
from dfl_vfx.swap.pipeline import swap_shot

COMPRESSION = "zip"  # the demo plate's
CODECS = ("zip:1", "zip", "zips", "zips:1", "rle", "piz", "pxr24", "none", "dwaa", "dwab")
REPEATS = 3


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


def _cpu_s() -> float:
    """CPU seconds of this process so far, every thread (OpenImageIO's and ONNX Runtime's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _read_write(plate: str, out: Path, compression: str) -> tuple[float, float]:
    """(wall s, CPU s) per frame of reading and writing every frame."""
    sequence = open_sequence(plate)
    out.mkdir(parents=True, exist_ok=True)
    start, cpu = time.perf_counter(), _cpu_s()
    for f in sequence.frames:
        image = read_image(sequence.path(f), pixel_type="native")
        write_image(out / sequence.path(f).name, image, compression)
    n = len(sequence.frames)
    return (time.perf_counter() - start) / n, (_cpu_s() - cpu) / n


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _layers_mb(out: Path, copy: Path) -> float:
    """The median size on disk of a frame's layers: its layers file, or (the one-file layout, before the layers
    file) what the layers add to the delivered frame over the plain copy of the plate."""
    sizes = []
    for frame in sorted(out.glob("*.exr")):
        companion = out / "layers" / frame.name
        if companion.is_file():
            sizes.append(companion.stat().st_size)
        else:
            sizes.append(frame.stat().st_size - (copy / frame.name).stat().st_size)
    return round(statistics.median(sizes) / 1e6, 3)


def _swap_run(plate: str, faces: Path, model: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    shutil.rmtree(work / "swap", ignore_errors=True)  # no layers file of an earlier run counts
    load_before = _load()
    read_write_s, read_write_cpu = _read_write(plate, work / "copy", COMPRESSION)
    settings = SwapSettings(model=str(model), backend=args.backend, device=args.device, threads=args.threads,
                            layers=tuple(args.layers.split(",")))
    cpu = _cpu_s()
    summary = swap_shot(plate, str(work / "swap"), settings, faceset=str(faces), jobs=args.jobs, overwrite=True,
                        compression=COMPRESSION, progress=False)
    n = len(summary.done)
    per_frame = summary.frames_s / n  # steady state: model loading is reported apart as setup_s
    swap_cpu = (_cpu_s() - cpu) / n  # model loading included: a little more than the frames' own
    stages = {k: v / n for k, v in vars(summary.times).items()}
    return {
        "read_write_s_per_frame": round(read_write_s, 4),
        "swap_s_per_frame": round(per_frame, 4),
        "swap_over_read_write": round(per_frame / read_write_s, 3),
        "read_write_cpu_s_per_frame": round(read_write_cpu, 4),
        "swap_cpu_s_per_frame": round(swap_cpu, 4),
        "stage_s_per_frame": {k: round(v, 4) for k, v in stages.items()},
        # the share of the run the frame workers spent in a stage (1: a worker never waited for another's stage)
        "workers_busy": round(sum(stages.values()) / (args.jobs * per_frame), 3),
        "setup_s": round(summary.setup_s, 3),
        "frames": n,
        "faces": summary.faces,
        "frame_mb": round(statistics.median(p.stat().st_size for p in (work / "swap").glob("*.exr")) / 1e6, 3),
        "layers_mb": _layers_mb(work / "swap", work / "copy"),
        "load_avg_before": load_before,
        "load_avg_after": _load(),
        "backend": summary.backend,
        "device": summary.device,
        "settings": summary.settings,
    }


def _timed(action: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall s, process CPU s, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def _median_timed(action: Callable[[], Any]) -> dict[str, float]:
    walls, cpus = [], []
    for _ in range(REPEATS):
        wall, cpu, _ = _timed(action)
        walls.append(wall)
        cpus.append(cpu)
    return {"wall_s": round(statistics.median(walls), 4), "cpu_s": round(statistics.median(cpus), 4)}


def _layout_figures(plate: str, faces: Path, model: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One frame's output in the old one-file layout and in the two-file layout (face and display windows)."""
    from dfl_vfx.io.image import interleave_channels
    from dfl_vfx.swap.engine import SwapEngine
    from dfl_vfx.swap.faces import faceset_plans
    from dfl_vfx.swap.frame import write_frame
    from dfl_vfx.swap.layout import LAYER_CHANNELS, LAYERS_COMPRESSION, layers_image, layers_path, read_layers

    sequence = open_sequence(plate)
    frame = sequence.frames[len(sequence.frames) // 2]
    layers = tuple(args.layers.split(","))
    names = [name for name in LAYER_CHANNELS if name in layers]
    settings = SwapSettings(model=str(model), backend=args.backend, device=args.device, threads=1, layers=layers)
    engine = SwapEngine(settings)
    result = engine.swap_image(read_image(sequence.path(frame), pixel_type="native"),
                               faceset_plans(str(faces), [frame])[frame], frame)
    folder = work / "layout"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    out: dict[str, Any] = {"frame": frame, "layers": list(layers), "layers_compression": LAYERS_COMPRESSION,
                           "face_bbox": list(result.faces[0].bbox) if result.faces else None}

    # before: the layers as plate-sized channels of the delivered frame, one file
    main = result.image
    blocks = [main.pixels] + [result.planes[n][..., None] if result.planes[n].ndim == 2 else result.planes[n]
                              for n in names]
    channels = [c for n in names for c in LAYER_CHANNELS[n]]
    one_file = Image(interleave_channels([b.astype(main.pixels.dtype) for b in blocks]), main.channels + channels,
                     main.data_window, main.display_window, main.channel_formats + ["half"] * len(channels),
                     main.metadata, main.metadata_types)
    old_path = folder / "one_file" / f"plate.{frame}.exr"
    old_path.parent.mkdir()
    plain_path = folder / "plain" / f"plate.{frame}.exr"
    plain_path.parent.mkdir()
    plain = _median_timed(lambda: write_image(plain_path, main, COMPRESSION))
    out["delivered_frame_only"] = plain | {"mb": round(plain_path.stat().st_size / 1e6, 3)}
    out["delivered_frame_from_plate_blocks"] = _from_plate_blocks(sequence.path(frame), result, engine, folder)
    write = _median_timed(lambda: write_image(old_path, one_file, COMPRESSION))
    out["one_file_before"] = {
        "write": write, "mb": round(old_path.stat().st_size / 1e6, 3),
        "layers_mb": round((old_path.stat().st_size - plain_path.stat().st_size) / 1e6, 3),
        "host_reads_layers": _median_timed(lambda: read_image(old_path, channels=channels, pixel_type="native")),
    }
    # after: the delivered frame plus its layers file, both written at once
    for window in ("face", "display"):
        result.layers = layers_image(main, result.planes, [f.bbox for f in result.faces], window, "half")
        target = folder / window / f"plate.{frame}.exr"
        companion = layers_path(target)
        write_frame(target, result, COMPRESSION)
        both = _median_timed(lambda target=target: write_frame(target, result, COMPRESSION))
        alone = _median_timed(lambda companion=companion: write_image(companion, result.layers, LAYERS_COMPRESSION))
        box = result.layers.data_window
        out[f"two_files_{window}_window"] = {
            "data_window": [box.x, box.y, box.width, box.height],
            "write_both_at_once": both, "write_layers_file_alone": alone,
            "layers_mb": round(companion.stat().st_size / 1e6, 3),
            "host_reads_layers": _median_timed(lambda target=target: read_layers(target, names, "native")),
        }
    out["codecs"] = _codec_figures(result, main, folder / "codecs")
    return out


def _from_plate_blocks(plate: Path, result: Any, engine: Any, folder: Path) -> dict[str, Any]:
    """What the swap does now (docs/dev/swap-output.md): read only the rows the faces use, write the delivered frame
    from the plate's blocks, compressing only the blocks of changed rows; against reading the whole frame."""
    from dfl_vfx.io.exr_blocks import open_blocks, write_from_plate
    from dfl_vfx.io.image import read_header, read_rows
    from dfl_vfx.merge.merger import FacePlan

    blocks, _ = open_blocks(plate)
    assert blocks is not None
    target = folder / "from_blocks" / plate.name
    target.parent.mkdir()
    rows = [(face.bbox[1], face.bbox[3]) for face in result.faces]
    counts: dict[str, int] = {}

    def write() -> None:
        counts.update(write_from_plate(target, blocks, result.image.pixels, result.image.channels, rows, {}))

    header = read_header(plate)
    bands = engine.plate_rows(header, [FacePlan(face.plan.landmarks) for face in result.faces])
    return {"write": _median_timed(write), "mb": round(target.stat().st_size / 1e6, 3),
            "plate_mb": round(plate.stat().st_size / 1e6, 3), "blocks": counts,
            "read_whole": _median_timed(lambda: read_image(plate, pixel_type="native")),
            "read_face_rows": _median_timed(lambda: read_rows(plate, bands)),
            "face_rows": sum(b - a for a, b in bands), "plate_rows": header.data_window.height}


def _read_lines_bottom_up(path: Path) -> None:
    """One scanline at a time from the last row up, the order a y-up scanline host such as Nuke asks for them."""
    import OpenImageIO as oiio

    image = oiio.ImageInput.open(str(path))
    spec = image.spec()
    for y in range(spec.y + spec.height - 1, spec.y - 1, -1):
        image.read_scanline(y, 0, "half")
    image.close()


def _codec_figures(result: Any, main: Image, folder: Path) -> dict[str, Any]:
    """Each codec on the layers file, cut to the face and covering the display window."""
    from dfl_vfx.swap.layout import layers_image

    folder.mkdir(parents=True)
    figures: dict[str, Any] = {}
    for window in ("face", "display"):
        image = layers_image(main, result.planes, [f.bbox for f in result.faces], window, "half")
        rows = {}
        for codec in CODECS:
            path = folder / f"{window}.{codec.replace(':', '-')}.exr"
            write = _median_timed(lambda path=path, codec=codec, image=image: write_image(path, image, codec))
            read = _median_timed(lambda path=path: read_image(path, pixel_type="native"))
            lines = _median_timed(lambda path=path: _read_lines_bottom_up(path))
            back = read_image(path, pixel_type="native").pixels.astype(np.float32)
            error = float(np.abs(back - image.pixels.astype(np.float32)).max())
            rows[codec] = {"write": write, "read": read, "read_lines_bottom_up": lines,
                           "mb": round(path.stat().st_size / 1e6, 3),
                           "lossless": error == 0.0, "max_abs_error": error}
        figures[f"{window}_window"] = rows
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("build/bench"))
    parser.add_argument("--work", type=Path, default=Path("build/bench/swap_work"))
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--runs", type=int, default=3, help="read/write + swap runs; the medians are reported")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="threads per inference / merge call (0 = all cores)")
    parser.add_argument("--layers", default="rgba,mask,face", help="output layers (default: swap's default)")
    parser.add_argument("--layout", action="store_true", help="add the one-file vs two-file layout and codec figures")
    parser.add_argument("--before", type=Path, help="an earlier result JSON of this script to embed as 'before'")
    parser.add_argument("--name", default="swap")
    args = parser.parse_args()
    before = json.loads(args.before.read_text()) if args.before else None  # a wrong path fails before the runs

    plate, faces, model = _prepare(args.work, args.frames)
    runs = [_swap_run(plate, faces, model, args.work, args) for _ in range(args.runs)]
    ratios = [r["swap_over_read_write"] for r in runs]
    middle = runs[ratios.index(statistics.median_low(ratios))]
    figures: dict[str, Any] = {
        "swap_over_read_write_median": statistics.median(ratios),
        "swap_over_read_write_runs": ratios,
        "swap_s_per_frame_median": statistics.median(r["swap_s_per_frame"] for r in runs),
        "read_write_s_per_frame_median": statistics.median(r["read_write_s_per_frame"] for r in runs),
        # CPU seconds (all threads) per frame: far less sensitive than wall time to other work on a shared machine
        "swap_cpu_over_read_write_cpu_median": statistics.median(
            round(r["swap_cpu_s_per_frame"] / r["read_write_cpu_s_per_frame"], 3) for r in runs),
        "median_run": {k: v for k, v in middle.items() if k != "settings"},
        "runs": [{k: v for k, v in r.items() if k != "settings"} for r in runs],
    }
    if args.layout:
        figures["layout"] = _layout_figures(plate, faces, model, args.work, args)
    if before is not None:
        figures["before"] = before
    settings_out = {"plate": "4096x2160 half RGBA EXR, zip", "model": "df-ud 256 wf (untrained), ONNX",
                    "jobs": args.jobs, "threads": args.threads, "runs": args.runs, "merge": middle["settings"]}
    path = write_result(args.out, args.name, figures, settings_out)
    print(path)
    for key in ("swap_over_read_write_median", "swap_over_read_write_runs", "swap_s_per_frame_median",
                "read_write_s_per_frame_median", "swap_cpu_over_read_write_cpu_median"):
        print(f"{key}: {figures[key]}")
    print("median run:", json.dumps(figures["median_run"]))


if __name__ == "__main__":
    main()
