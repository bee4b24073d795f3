"""`--gpus N` relaunches the same training command under torchrun; `--nnodes M --node-rank R --rdzv-dir DIR` runs
it on M machines that meet through a shared folder. Two nodes training for real: tests/farm/test_openjd.py (two
`openjd run` sessions of the farm template's training step, one per node rank)."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from trainer.distributed import (
    MASTER_FILE,
    Heartbeat,
    RendezvousTimeout,
    publish_master,
    torchrun_command,
    wait_for_master,
)

ENGINE = str(Path(sys.executable).with_name("dfl-vfx"))


def test_torchrun_command_drops_gpus_and_keeps_the_rest() -> None:
    argv = ["train", "--config", "shot.toml", "--gpus", "4", "--set", "batch_size=16", "--gpus=4"]
    assert torchrun_command(4, argv) == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                         "--nproc_per_node=4", "-m", "trainer", "--config", "shot.toml", "--set",
                                         "batch_size=16"]


def test_multi_node_torchrun_command() -> None:
    argv = ["--config", "shot.toml", "--nnodes=3", "--node-rank", "2", "--rdzv-dir=/shared/r", "--gpus=2"]
    assert torchrun_command(2, argv, nnodes=3, node_rank=2, master=("node07", 29511)) == [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=3", "--node_rank=2", "--master_addr=node07",
        "--master_port=29511", "--nproc_per_node=2", "-m", "trainer", "--config", "shot.toml"]


def test_rank_0_publishes_and_the_others_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DFL_VFX_RDZV_HOST", "10.1.2.3")
    with pytest.raises(RendezvousTimeout, match=r"node rank 0 did not publish its address \(master.json\) in 0 s"):
        wait_for_master(tmp_path / "rdzv", timeout_s=0.2, poll_s=0.05)
    found: list[tuple[str, int]] = []
    waiter = threading.Thread(target=lambda: found.append(wait_for_master(tmp_path / "rdzv", 10, 0.02)))
    waiter.start()
    time.sleep(0.1)
    published = publish_master(tmp_path / "rdzv")
    waiter.join(10)
    assert found == [published] and published[0] == "10.1.2.3" and 0 < published[1] < 65536
    assert sorted(path.name for path in (tmp_path / "rdzv").iterdir()) == [MASTER_FILE]  # no temporary file left
    master = tmp_path / "rdzv" / MASTER_FILE
    os.utime(master, (time.time() - 600, time.time() - 600))  # left by a rank 0 killed ten minutes ago
    with pytest.raises(RendezvousTimeout):
        wait_for_master(tmp_path / "rdzv", timeout_s=0.2, poll_s=0.05)
    with Heartbeat(master, every_s=0.05):  # a live rank 0 keeps it fresh
        time.sleep(0.2)
        assert wait_for_master(tmp_path / "rdzv", timeout_s=1, poll_s=0.05) == published


def test_bad_node_options_are_one_line(tmp_path: Path) -> None:
    done = subprocess.run([ENGINE, "train", "--src", str(tmp_path), "--dst", str(tmp_path), "--model-dir",
                           str(tmp_path / "m"), "--nnodes", "2", "--node-rank", "2", "--rdzv-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == ("dfl-vfx train: error: --node-rank 2 --nnodes 2: give 1 or more "
                                                    "nodes and a rank from 0 to NNODES-1")
