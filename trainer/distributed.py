"""Multi-GPU launch: `dfl-vfx train --gpus N` re-runs the same command under torchrun, one process per GPU."""

from __future__ import annotations

import subprocess
import sys


def _without_gpus(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--gpus":
            skip = True
        elif not arg.startswith("--gpus="):
            out.append(arg)
    return out


def torchrun_command(gpus: int, argv: list[str]) -> list[str]:
    """The torchrun command line for this node; rank 0 of it writes the model folder."""
    train_args = _without_gpus(argv)
    if train_args and train_args[0] == "train":
        train_args = train_args[1:]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
            "-m", "trainer", *train_args]


def relaunch_with_torchrun(gpus: int, argv: list[str] | None = None) -> int:
    """Run torchrun with this process's arguments (minus --gpus) and return its exit code."""
    if argv is None:
        argv = sys.argv[1:]
        # drop global options and the subcommand name of `dfl-vfx [global options] train ...`
        if "train" in argv:
            argv = argv[argv.index("train") + 1 :]
    return subprocess.call(torchrun_command(gpus, argv))
