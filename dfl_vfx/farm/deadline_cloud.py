"""The AWS Deadline Cloud backend: a job bundle (the OpenJD template, parameter values, asset references).

Submitted with ``deadline bundle submit DIR --yes`` when the ``deadline`` CLI is installed and configured (farm and
queue set with ``deadline config``); without it, a one-line error says so. Host requirements are the OpenJD
template's. Deadline Cloud picks workers by queue and fleet (the configured queue), so ``farm.pools`` and
``farm.group`` (Deadline 10 settings) are not used: a warning says so.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

from dfl_vfx.errors import DflError
from dfl_vfx.farm import openjd
from dfl_vfx.farm.job import Job
from dfl_vfx.io.atomic import write_text_atomic

log = logging.getLogger(__name__)

PARAMETER_VALUES = "parameter_values.json"
ASSET_REFERENCES = "asset_references.json"


def check(job: Job) -> None:
    """GPU count and memory are host requirements of the template; pools and group are not Deadline Cloud's."""
    if job.pools or job.group:
        log.warning("farm.pools / farm.group are not used by Deadline Cloud: it chooses workers by queue and "
                    "fleet (`deadline config set defaults.queue_id`)")


def write(job: Job, out_dir: Path) -> list[Path]:
    """The job bundle in ``out_dir``; returns the files written."""
    written = openjd.write(job, out_dir)
    values = {"parameterValues": [{"name": "deadline:priority", "value": job.priority}]}
    assets = {"assetReferences": {
        "inputs": {"directories": sorted(str(path) for path in job.inputs if not path.is_file()),
                   "filenames": sorted(str(path) for path in job.inputs if path.is_file())},
        "outputs": {"directories": sorted(str(path) for path in job.outputs)},
        "referencedPaths": []}}
    for name, document in ((PARAMETER_VALUES, values), (ASSET_REFERENCES, assets)):
        write_text_atomic(out_dir / name, json.dumps(document, indent=2) + "\n")
        written.append(out_dir / name)
    return written


def submit_command(out_dir: Path) -> list[str]:
    return ["deadline", "bundle", "submit", str(out_dir), "--yes"]


def submit(job: Job, out_dir: Path) -> int:
    """Write the bundle and submit it with the ``deadline`` CLI; its exit status."""
    exe = shutil.which("deadline")
    if exe is None:
        raise DflError("--engine deadline-cloud: the `deadline` CLI is not installed; install it (pip install "
                       "deadline) and run `deadline config`, or write the bundle with --dry-run and submit it "
                       "by hand")
    write(job, out_dir)
    return subprocess.run([exe, *submit_command(out_dir)[1:]], check=False).returncode
