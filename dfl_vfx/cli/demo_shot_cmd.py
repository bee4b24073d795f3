"""`dfl-vfx demo-shot OUTDIR`: build the embedded demo shot (plate EXRs + source photos) offline."""

from __future__ import annotations

import argparse
from pathlib import Path

from dfl_vfx.demo.shot import DemoShotConfig, build_demo_shot
from dfl_vfx.io.atomic import remove_stale_temps
from dfl_vfx.io.outputs import check_output_dir


def add_shot_arguments(p: argparse.ArgumentParser) -> None:
    """The demo shot's options, shared by `demo-shot` and `demo`."""
    defaults = DemoShotConfig()
    p.add_argument("--frames", type=int, default=defaults.frames, help=f"plate length (default {defaults.frames})")
    p.add_argument("--first-frame", type=int, default=defaults.first_frame, help="first frame number (default 1001)")
    p.add_argument("--source-photos", type=int, default=defaults.source_photos, help="number of source photos")
    p.add_argument("--seed", type=int, default=defaults.seed, help="random seed; same seed, same pixels")


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(
        name,
        help="build the demo shot: an ACEScg EXR plate and a source photo set, from packaged public-domain faces",
        description=(
            "Build a destination plate (1920x1080 + overscan, scene-linear ACEScg half EXR, camera move, lighting "
            "change, highlights above 1.0, grain) of Eileen Collins and a set of source photos of Grace Hopper, "
            "both from public-domain images shipped in scikit-image and matplotlib. Nothing is downloaded."
        ),
    )
    p.add_argument("outdir", type=Path, help="folder to write plate/ and src/ into")
    add_shot_arguments(p)
    p.set_defaults(run=run)


def config_from(args: argparse.Namespace) -> DemoShotConfig:
    return DemoShotConfig(
        frames=args.frames, first_frame=args.first_frame, source_photos=args.source_photos, seed=args.seed
    )


def run(args: argparse.Namespace) -> int:
    check_output_dir(args.outdir, "OUTDIR")
    remove_stale_temps(args.outdir, recursive=True)
    summary = build_demo_shot(args.outdir, config_from(args))
    print(f"plate:  {summary['plate']} frames {summary['plate_frames']} ({summary['plate_colorspace']})")
    print(f"source: {summary['source_photos']} ({summary['source_colorspace']})")
    return 0
