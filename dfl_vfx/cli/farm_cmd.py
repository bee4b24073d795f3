"""`dfl-vfx farm submit SHOT.toml --engine ENGINE [--dry-run --out DIR]`: a shot file to a farm job."""

from __future__ import annotations

import argparse

from dfl_vfx.cli.shot_cmd import add_shot_options, load_job

EPILOG = """\
engines:
  openjd          an Open Job Description template; without --dry-run it runs here with `openjd run`
  deadline-cloud  a Deadline Cloud job bundle; submitted with `deadline bundle submit` (needs the deadline CLI)
  opencue         an OpenCue job spec (pyoutline); launched on the Cuebot of CUEBOT_HOSTS / opencue.yaml
  deadline10      Deadline 10 job and plugin info files; submitted with `deadlinecommand -SubmitJob`

The shot file's tables and keys: `dfl-vfx shot validate --help` (docs/farm.md); check it there before submitting.

Every task exits 0 on success, 2 on bad input (permanent: do not retry) and anything else on a retryable
failure (1 a crash, 130 interrupted, 137 out of memory): a retried task resumes where it stopped.

examples:
  dfl-vfx farm submit shot.toml --engine openjd --dry-run --out build/farm/openjd
  dfl-vfx farm submit shot.toml --engine deadline10 --pool gpu --group rtx --dry-run --out build/farm/d10
  dfl-vfx farm submit shot.toml --engine opencue --show sh010 --nodes 2 --gpus 4   # on 2 nodes of 4 GPUs
"""


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    from dfl_vfx.farm.engines import ENGINES

    p = sub.add_parser(name, help="submit a shot to a render farm (Open Job Description, Deadline Cloud, "
                                  "OpenCue, Deadline 10)",
                       description="Turn a shot file into a farm job: extract, train in time-boxed tasks, export, "
                                   "swap in chunks, render the comp (docs/farm.md).",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="farm_action", metavar="ACTION", required=True)
    s = actions.add_parser("submit", help="build the job and submit it (or write it with --dry-run)",
                           description="Build the shot's farm job and submit it to --engine, or write its files "
                                       "to --out with --dry-run; every check runs before anything is written.",
                           epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_shot_options(s)
    s.add_argument("--engine", required=True, choices=sorted(ENGINES), help="the farm engine")
    s.add_argument("--dry-run", action="store_true", help="write what would be submitted to --out; submit nothing")
    s.add_argument("--out", help="folder for the job files (default: WORK_DIR/farm/ENGINE)")
    s.set_defaults(run=run_submit)


def run_submit(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dfl_vfx.errors import DflError
    from dfl_vfx.farm.engines import engine as engine_module
    from dfl_vfx.io.atomic import remove_stale_temps
    from dfl_vfx.io.outputs import check_output_dir

    engine = engine_module(args.engine)
    if args.dry_run and not args.out:
        raise DflError("--dry-run needs --out DIR, the folder to write the job files to")
    shot, job = load_job(args, args.engine)  # the engine's checks come before any file is written
    out = Path(args.out) if args.out else shot.work_dir / "farm" / args.engine
    check_output_dir(out, "--out")  # made by the engine's write, after its own checks
    if out.is_dir():
        remove_stale_temps(out)
    if args.dry_run:
        for path in engine.write(job, out):
            print(path)
        return 0
    return int(engine.submit(job, out))
