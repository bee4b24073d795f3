"""`dfl-vfx demo-shot OUTDIR`: build the embedded demo shot (plate EXRs + source photos) offline, or with
``--scope`` the small-face 2048x858 scope plate (dfl_vfx/demo/scope.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dfl_vfx.demo.scope import TRUTH_FILE, ScopeShotConfig, build_scope_shot
from dfl_vfx.demo.shot import DemoShotConfig, build_demo_shot
from dfl_vfx.errors import DflError
from dfl_vfx.io.atomic import remove_stale_temps
from dfl_vfx.io.outputs import check_output_dir


def add_shot_arguments(p: argparse.ArgumentParser, scope: bool = False) -> None:
    """The demo shot's options, shared by `demo-shot` and `demo`; ``scope`` adds `--scope`, whose plate has its
    own defaults (the options then default to None: :func:`config_from` and :func:`scope_config_from` fill them)."""
    demo, wide = DemoShotConfig(), ScopeShotConfig()

    def default(name: str) -> str:
        return f"default {getattr(demo, name)}" + (f", {getattr(wide, name)} with --scope" if scope else "")

    p.add_argument("--frames", type=int, default=None if scope else demo.frames,
                   help=f"plate length ({default('frames')})")
    p.add_argument("--first-frame", type=int, default=demo.first_frame, help="first frame number (default 1001)")
    p.add_argument("--source-photos", type=int, default=None if scope else demo.source_photos,
                   help="number of source photos" + (" (not with --scope: the scope plate has none)" if scope else ""))
    p.add_argument("--seed", type=int, default=None if scope else demo.seed,
                   help=f"random seed; same seed, same pixels ({default('seed')})")
    if scope:
        p.add_argument("--scope", action="store_true",
                       help=f"build the scope plate instead: {wide.width}x{wide.height} with {wide.overscan} px of "
                       "overscan, two faces (150 and 210 px), grain; no source photos")


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(
        name,
        help="build the demo shot: an ACEScg EXR plate and a source photo set, from packaged public-domain faces",
        description=(
            "Build a destination plate (1920x1080 + overscan, scene-linear ACEScg half EXR, camera move, lighting "
            "change, highlights above 1.0, grain) of Eileen Collins and a set of source photos of Grace Hopper, "
            "both from public-domain images shipped in scikit-image and matplotlib. Nothing is downloaded. "
            "With --scope: a 2048x858 scope plate with overscan, Collins and Hopper side by side with small faces "
            "(150 and 210 px) and grain, for trying detection and swaps on a 2K plate (OUTDIR/plate and "
            "OUTDIR/scope_shot.json, the face boxes)."
        ),
    )
    p.add_argument("outdir", type=Path, help="folder to write plate/ and src/ into")
    add_shot_arguments(p, scope=True)
    p.set_defaults(run=run)


def _given(value: int | None, default: int) -> int:
    return default if value is None else value


def config_from(args: argparse.Namespace) -> DemoShotConfig:
    demo = DemoShotConfig()
    return DemoShotConfig(
        frames=_given(args.frames, demo.frames), first_frame=args.first_frame,
        source_photos=_given(args.source_photos, demo.source_photos), seed=_given(args.seed, demo.seed),
    )


def scope_config_from(args: argparse.Namespace) -> ScopeShotConfig:
    if args.source_photos is not None:
        raise DflError("--source-photos: the scope plate (--scope) has no source photos; leave it out")
    wide = ScopeShotConfig()
    return ScopeShotConfig(frames=_given(args.frames, wide.frames), first_frame=args.first_frame,
                           seed=_given(args.seed, wide.seed))


def run(args: argparse.Namespace) -> int:
    check_output_dir(args.outdir, "OUTDIR")
    if args.scope:
        cfg = scope_config_from(args)
        remove_stale_temps(args.outdir, recursive=True)
        scope = build_scope_shot(args.outdir, cfg)
        print(f"plate:  {scope['plate']} frames {scope['plate_frames']} ({scope['plate_colorspace']}, "
              f"{cfg.width}x{cfg.height} + {cfg.overscan} px overscan; face boxes in {args.outdir / TRUTH_FILE})")
        return 0
    remove_stale_temps(args.outdir, recursive=True)
    summary = build_demo_shot(args.outdir, config_from(args))
    print(f"plate:  {summary['plate']} frames {summary['plate_frames']} ({summary['plate_colorspace']})")
    print(f"source: {summary['source_photos']} ({summary['source_colorspace']})")
    return 0
