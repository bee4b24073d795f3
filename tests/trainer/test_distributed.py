"""`--gpus N` relaunches the same training command under torchrun."""

import sys

from trainer.distributed import torchrun_command


def test_torchrun_command_drops_gpus_and_keeps_the_rest() -> None:
    argv = ["train", "--config", "shot.toml", "--gpus", "4", "--set", "batch_size=16", "--gpus=4"]
    assert torchrun_command(4, argv) == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                         "--nproc_per_node=4", "-m", "trainer", "--config", "shot.toml", "--set",
                                         "batch_size=16"]
