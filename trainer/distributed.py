"""Multi-GPU and multi-node launch: `dfl-vfx train --gpus N` re-runs the same command under torchrun, one process
per GPU; with ``--nnodes M --node-rank R --rdzv-dir DIR`` each of M machines (farm tasks running at once) runs its
share and they meet through DIR, a folder on the storage they share.

The farm cannot say in advance which machine runs node rank 0, so node rank 0 publishes its address there
(``DIR/master.json``: host and a free port) and the other ranks wait for it, then every node runs torchrun's static
rendezvous (``--nnodes --node_rank --master_addr --master_port``). While it runs, rank 0 touches the file every few
seconds and removes it when it ends; the other ranks take only a file touched in the last minute, so one left by
a rank 0 that was killed (pre-empted) is not used: they wait for the retried rank 0. The address is this
machine's host name, or ``$DFL_VFX_RDZV_HOST`` (a multi-homed host's farm address; ``127.0.0.1`` for several
"nodes" on one machine).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

MASTER_FILE = "master.json"
HOST_ENV = "DFL_VFX_RDZV_HOST"
WAIT_S = 900.0  # how long ranks > 0 wait for rank 0 (the farm may start the node tasks minutes apart)
HEARTBEAT_S = 5.0  # rank 0 touches the file this often while it runs
FRESH_S = 60.0  # ranks > 0 take a file touched this recently (room for clock skew on shared storage)
LAUNCH_OPTIONS = ("--gpus", "--nnodes", "--node-rank", "--rdzv-dir")


class RendezvousTimeout(Exception):
    """Node rank 0 did not publish its address in time (retryable: the task fails and the farm retries it)."""


def _without_launch_options(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in LAUNCH_OPTIONS:
            skip = True
        elif not arg.startswith(tuple(f"{option}=" for option in LAUNCH_OPTIONS)):
            out.append(arg)
    return out


def torchrun_command(gpus: int, argv: list[str], nnodes: int = 1, node_rank: int = 0,
                     master: tuple[str, int] | None = None) -> list[str]:
    """The torchrun command line for this node; global rank 0 (on node rank 0) writes the model folder."""
    train_args = _without_launch_options(argv)
    if train_args and train_args[0] == "train":
        train_args = train_args[1:]
    if nnodes > 1:
        if master is None:
            raise ValueError("a multi-node launch needs node rank 0's address")
        where = [f"--nnodes={nnodes}", f"--node_rank={node_rank}", f"--master_addr={master[0]}",
                 f"--master_port={master[1]}"]
    else:
        where = ["--standalone"]
    return [sys.executable, "-m", "torch.distributed.run", *where, f"--nproc_per_node={max(gpus, 1)}",
            "-m", "trainer", *train_args]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


def publish_master(rdzv_dir: Path) -> tuple[str, int]:
    """Node rank 0: write this machine's address and a free port to ``rdzv_dir/master.json`` (whole)."""
    master = (os.environ.get(HOST_ENV) or socket.getfqdn(), free_port())
    rdzv_dir.mkdir(parents=True, exist_ok=True)
    temp = rdzv_dir / f".{MASTER_FILE}.{os.getpid()}.tmp"
    temp.write_text(json.dumps({"host": master[0], "port": master[1]}), encoding="utf-8")
    os.replace(temp, rdzv_dir / MASTER_FILE)
    return master


class Heartbeat:
    """Rank 0 touches ``path`` every :data:`HEARTBEAT_S` seconds while the training runs."""

    def __init__(self, path: Path, every_s: float = HEARTBEAT_S) -> None:
        self.path, self.every_s = path, every_s
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="dfl-rdzv-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self.stopped.wait(self.every_s):
            try:
                os.utime(self.path)
            except OSError:
                return

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        self.thread.join()


def wait_for_master(rdzv_dir: Path, timeout_s: float = WAIT_S, poll_s: float = 0.5,
                    fresh_s: float = FRESH_S) -> tuple[str, int]:
    """Ranks > 0: node rank 0's address, once it is published by a rank 0 that is alive (a fresh file)."""
    deadline = time.monotonic() + timeout_s
    path = rdzv_dir / MASTER_FILE
    while True:
        try:
            if time.time() - path.stat().st_mtime > fresh_s:
                raise ValueError("a file left by a rank 0 that is gone")
            found = json.loads(path.read_text(encoding="utf-8"))
            return str(found["host"]), int(found["port"])
        except (OSError, ValueError, KeyError):
            if time.monotonic() >= deadline:
                raise RendezvousTimeout(f"--rdzv-dir {rdzv_dir}: node rank 0 did not publish its address "
                                        f"({MASTER_FILE}) in {timeout_s:.0f} s; the farm must run every node's "
                                        "task at once") from None
            time.sleep(poll_s)


def relaunch_with_torchrun(gpus: int, argv: list[str] | None = None, nnodes: int = 1, node_rank: int = 0,
                           rdzv_dir: str | None = None, wait_s: float = WAIT_S) -> int:
    """Run torchrun with this process's arguments (minus the launch options) and return its exit code."""
    if argv is None:
        argv = sys.argv[1:]
        # drop global options and the subcommand name of `dfl-vfx [global options] train ...`
        if "train" in argv:
            argv = argv[argv.index("train") + 1 :]
    if nnodes <= 1:
        return subprocess.call(torchrun_command(gpus, argv))
    folder = Path(rdzv_dir or ".")
    if node_rank != 0:
        return subprocess.call(torchrun_command(gpus, argv, nnodes, node_rank, wait_for_master(folder, wait_s)))
    master = publish_master(folder)
    try:
        with Heartbeat(folder / MASTER_FILE):
            return subprocess.call(torchrun_command(gpus, argv, nnodes, 0, master))
    finally:
        (folder / MASTER_FILE).unlink(missing_ok=True)
