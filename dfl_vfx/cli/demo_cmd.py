"""`dfl-vfx demo`: the main job on the embedded demo shot (what `make demo` runs)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from dfl_vfx import api
from dfl_vfx.cli.demo_shot_cmd import add_shot_arguments, config_from
from dfl_vfx.color.ocio import SRGB_SPACE
from dfl_vfx.demo.shot import build_demo_shot
from dfl_vfx.errors import DflError
from dfl_vfx.extract.contact_sheet import contact_sheet
from dfl_vfx.extract.pipeline import ExtractOptions, default_jobs
from dfl_vfx.faceset import Faceset
from dfl_vfx.io.atomic import remove_stale_temps
from dfl_vfx.io.outputs import check_output_dir
from trainer.config import parse_duration


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(
        name,
        help="build the demo shot and run the main job on it (extract destination and source facesets)",
        description=(
            "Build the demo shot under OUT (see demo-shot), extract the destination faceset from its EXR plate "
            "with temporal smoothing and the source faceset from its photos, and write contact sheets."
        ),
    )
    p.add_argument("--out", type=Path, default=Path("build/demo"), help="output folder (default build/demo)")
    add_shot_arguments(p)
    p.add_argument("--jobs", type=int, default=default_jobs(), help="worker processes (default: one per core)")
    p.add_argument("--train-time", default="3m", help="how long to train the demo model (default 3m; 0 skips)")
    p.set_defaults(run=run)


def _built_with(shot_file: Path) -> dict | None:
    """The settings a demo shot on disk was built with, or None."""
    try:
        return json.loads(shot_file.read_text())["config"]
    except (OSError, ValueError, KeyError):
        return None


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    check_output_dir(out, "--out")
    remove_stale_temps(out, recursive=True)  # what a killed demo left; the temps of live writers stay
    shot_file = out / "demo_shot.json"
    cfg = config_from(args)
    if _built_with(shot_file) == asdict(cfg):
        print(f"demo shot: reusing {out} (same settings; delete it to rebuild)")
    else:
        build_demo_shot(out, cfg)  # progress: a bar on a terminal, log lines in a redirected log
    dst = api.extract(
        str(out / "plate" / "plate.####.exr"), str(out / "dst_faces"),
        ExtractOptions(face_type="wf", size=512, smooth=5, select="largest", jobs=args.jobs, debug_dir=None),
    )
    src = api.extract(
        str(out / "src" / "src.####.png"), str(out / "src_faces"),
        ExtractOptions(face_type="wf", size=512, select="largest", colorspace=SRGB_SPACE, jobs=args.jobs),
    )
    for summary in (dst, src):
        for line in summary.lines():
            print(line)
        if summary.faces_kept == 0:
            raise DflError(f"demo: {summary.plate}: {summary.nothing_extracted()}")
    for name in ("dst_faces", "src_faces"):
        sheet = contact_sheet(Faceset.open(out / name), out / f"{name}_contact_sheet.png")
        print(f"contact sheet: {sheet}")
    if parse_duration(args.train_time, "--train-time") > 0:
        _train_and_export(out, args.train_time)
    if (out / "model.onnx").is_file():
        _swap_and_evaluate(out)
    return 0


# A small whole-face model that learns visibly within minutes on two CPU cores.
DEMO_MODEL = {"archi": "df-ud", "resolution": 96, "face_type": "wf", "ae_dims": 64, "e_dims": 32, "d_dims": 32,
              "d_mask_dims": 16}


def _train_and_export(out: Path, train_time: str) -> None:
    cfg = api.train_config(None, {
        "src": str(out / "src_faces"), "dst": str(out / "dst_faces"), "model_dir": str(out / "model"),
        "batch_size": 4, "max_time": train_time, "preview_every": 100, "model": DEMO_MODEL,
        "lr": 5e-4,  # 10x DeepFaceLab's rate: a 3-minute CPU demo is otherwise still flat grey
    })
    result = api.train(cfg)
    losses = " ".join(f"{k} loss {v:.4f}" for k, v in result.last_losses.items())
    print(f"trained {result.iterations_this_run} iterations in {result.seconds:.0f} s "
          f"({result.iterations_per_second:.2f} it/s), {result.iteration} in all; {losses}")
    print(f"preview: {out / 'model' / 'preview.png'}   loss history: {out / 'model' / 'loss.png'}")
    exported = api.export(out / "model", out / "model.onnx")
    print(f"exported: {exported.path} (ONNX Runtime vs PyTorch: max difference {exported.max_difference:.1e})")


def _swap_and_evaluate(out: Path) -> None:
    """Swap the demo plate with the exported model, show before/after, and print the paper's metrics."""
    from dfl_vfx.io.sequence import open_sequence, output_sequence
    from dfl_vfx.swap.contact_sheet import before_after_sheet

    plate = str(out / "plate" / "plate.####.exr")
    # A minutes-old model has not learned its masks yet (they sit near 0.3), so the demo mattes with the landmark
    # hull; a trained model uses the default learned-prd*learned-dst.
    settings = api.swap_settings(out / "model.onnx", {"mask_mode": "hull", "blur": 40})
    summary = api.swap_shot(plate, out / "swap", settings, faceset=out / "dst_faces", overwrite=True)
    for line in summary.lines():
        print(line)
    sequence = open_sequence(plate)
    frames = [int(f) for f in np.linspace(sequence.first, sequence.last, 4).round()]
    sheet = before_after_sheet(sequence, output_sequence(str(out / "swap") + "/", sequence), frames,
                               out / "swap_contact_sheet.png")
    print(f"before/after: {sheet}")
    report = api.evaluate(str(out / "swap"), out / "src_faces", model=out / "model", plate=plate)
    for line in report.lines():
        print(line)
    from dfl_vfx.hosts.nuke_script import write_comp_script

    root = out.resolve()
    comp = write_comp_script(root / "comp.nk", str(root / "plate" / "plate.####.exr"), str(root / "model.onnx"),
                             str(root / "nuke_cache"), str(root / "comp" / "comp.####.exr"), sequence.first,
                             sequence.last)
    print(f"Nuke script: {comp} (plate -> DFLSwap -> Write; install the plugin with `dfl-vfx host install nuke`)")
