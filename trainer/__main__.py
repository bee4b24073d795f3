"""`python -m trainer` (what torchrun launches on each rank): an entry point only, the same as `dfl-vfx train`.

The trainer's modules never import the CLI; this launcher alone hands the arguments to it.
"""

import sys

from dfl_vfx.cli.main import trainer_main

sys.exit(trainer_main())
