"""`python -m trainer` (what torchrun launches on each rank)."""

import sys

from trainer.cli import main

sys.exit(main())
