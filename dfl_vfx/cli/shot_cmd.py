"""`dfl-vfx shot validate SHOT.toml`: check a shot file and print the farm job's plan; the shot options that
`dfl-vfx farm submit` shares."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from dfl_vfx.errors import DflError

if TYPE_CHECKING:
    from dfl_vfx.farm.job import Job
    from dfl_vfx.farm.shot import Shot

EPILOG = """\
shot file (TOML; relative paths are relative to it; docs/farm.md, example: docs/examples/shot.toml):
{tables}
  [shot] plate and output are required, with one of [source] faceset / footage or [model] reuse.

examples:
  dfl-vfx shot validate docs/examples/shot.toml
  dfl-vfx shot validate shot.toml --frames 1001-1010 --chunk-size 5
  dfl-vfx shot validate shot.toml --engine deadline10     # and what Deadline 10 can take
"""


def add_shot_options(p: argparse.ArgumentParser) -> None:
    """The shot file and the options that override it."""
    p.add_argument("shot", help="shot file (TOML; see docs/farm.md)")
    g = p.add_argument_group("overrides (win over the shot file)")
    g.add_argument("--frames", help="frame range within the plate, e.g. 1001-1050 ([shot] frames)")
    g.add_argument("--output", help="swap output folder ([shot] output)")
    g.add_argument("--work-dir", help="folder for facesets, model and export ([shot] work_dir)")
    g.add_argument("--chunk-size", type=int, help="frames per swap task ([farm] chunk_size)")
    g.add_argument("--priority", type=int, help="job priority ([farm] priority)")
    g.add_argument("--pool", dest="pools", action="append", help="farm pool; repeat for several ([farm] pools)")
    g.add_argument("--group", help="farm group ([farm] group)")
    g.add_argument("--gpus", type=int, help="GPUs per training task (per node; a swap task takes 1), 0: every "
                                             "task on CPU ([farm] gpus)")
    g.add_argument("--gpu-memory-gb", type=int, help="GPU memory each GPU task needs ([farm] gpu_memory_gb)")
    g.add_argument("--nodes", type=int, help="machines each training task runs on ([farm] nodes)")
    g.add_argument("--show", help="OpenCue show to file the job under ([farm] show)")
    g.add_argument("--train-task-time", help="training time per task, e.g. 2h ([farm] train_task_time)")
    g.add_argument("--train-tasks", type=int, help="training tasks in the chain ([farm] train_tasks)")
    g.add_argument("--iterations", type=int, help="iteration target of training ([farm] iterations)")
    p.add_argument("--engine-exe", help="the dfl-vfx the farm's workers run (default: $DFL_VFX_EXE, else this one)")


def shot_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The CLI's overrides as ``table.key`` names of the shot file."""
    names = {"frames": "shot.frames", "output": "shot.output", "work_dir": "shot.work_dir",
             "chunk_size": "farm.chunk_size", "priority": "farm.priority", "pools": "farm.pools",
             "group": "farm.group", "gpus": "farm.gpus", "gpu_memory_gb": "farm.gpu_memory_gb",
             "nodes": "farm.nodes", "show": "farm.show",
             "train_task_time": "farm.train_task_time", "train_tasks": "farm.train_tasks",
             "iterations": "farm.iterations"}
    return {dotted: getattr(args, attr) for attr, dotted in names.items() if getattr(args, attr) is not None}


def load_job(args: argparse.Namespace, engine: str | None = None) -> tuple[Shot, Job]:
    """(shot, job) from the arguments, checked against ``engine`` when one is named; engine-location problems
    become one-line errors, and what the engine cannot express names the shot file like every other refusal."""
    from dfl_host.errors import EngineError
    from dfl_vfx.farm.engines import engine as engine_module
    from dfl_vfx.farm.job import build_job
    from dfl_vfx.farm.shot import load_shot

    shot = load_shot(args.shot, shot_overrides(args))
    try:
        job = build_job(shot, args.engine_exe)
    except EngineError as exc:
        raise DflError(f"--engine-exe: {exc}") from None
    if engine is not None:
        try:
            engine_module(engine).check(job)
        except DflError as exc:
            message = str(exc)  # a shot key (farm.gpus, shot.frames, ...) names the file; an --option does not
            raise DflError(message if message.startswith("--") else f"{shot.file}: {message}") from None
    return shot, job


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    from dfl_vfx.farm.shot import tables_text

    epilog = EPILOG.format(tables=tables_text())
    p = sub.add_parser(name, help="check a shot file and print its farm plan",
                       description="Shot files describe a shot for the farm (docs/farm.md).",
                       epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="shot_action", metavar="ACTION", required=True)
    v = actions.add_parser("validate", help="check the shot file and print the plan (steps, tasks, dependencies)",
                           description="Check a shot file (and, with --engine, what that farm engine can take) "
                                       "and print the job's plan; nothing is written.",
                           epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_shot_options(v)
    from dfl_vfx.farm.engines import ENGINES

    v.add_argument("--engine", choices=sorted(ENGINES), help="also check what this farm engine can express")
    v.set_defaults(run=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    from dfl_vfx.io.sequence import format_frames

    shot, job = load_job(args, args.engine)  # the engine's refusal comes before anything says "valid"
    print(f"{shot.file}: valid; {len(shot.frames)} frames {format_frames(list(shot.frames))} of {shot.plate}")
    print(job.plan())
    if args.engine:
        print(f"--engine {args.engine}: it can take this job")
    return 0
