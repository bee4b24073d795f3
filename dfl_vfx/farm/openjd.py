"""The Open Job Description backend: a job template (``jobtemplate-2023-09``) written as JSON.

One OpenJD step per job step; a chunked step gets a STRING task parameter ``Frames`` holding its chunks; GPU steps
get ``hostRequirements`` amounts (``amount.worker.gpu``, ``amount.worker.gpu.memory`` in MiB). The template runs
locally with ``openjd run`` and is the heart of a Deadline Cloud job bundle (:mod:`dfl_vfx.farm.deadline_cloud`).
Priority and pools are not part of an OpenJD template: the queue they are submitted to decides them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from dfl_vfx.errors import DflError
from dfl_vfx.farm.job import FRAMES, Job, Step
from dfl_vfx.io.atomic import write_text_atomic

SPECIFICATION = "jobtemplate-2023-09"
TEMPLATE_NAME = "template.json"
FRAMES_PARAMETER = "Frames"


def _arg(value: str, step: Step) -> str:
    if "{{" in value:
        raise DflError(f"step {step.name}: argument {value!r} holds '{{{{', which Open Job Description reads as a "
                       "format string; rename the path")
    return value.replace(FRAMES, "{{Task.Param." + FRAMES_PARAMETER + "}}")


def step_template(step: Step) -> dict[str, Any]:
    """The OpenJD step of ``step``."""
    command = [_arg(value, step) for value in step.command]
    on_run: dict[str, Any] = {"command": command[0], "args": command[1:]}
    if step.timeout_s:
        on_run["timeout"] = step.timeout_s
    entry: dict[str, Any] = {"name": step.name, "description": step.description,
                             "script": {"actions": {"onRun": on_run}}}
    if step.chunks:
        entry["parameterSpace"] = {"taskParameterDefinitions": [
            {"name": FRAMES_PARAMETER, "type": "STRING", "range": list(step.chunks)}]}
    if step.depends_on:
        entry["dependencies"] = [{"dependsOn": name} for name in step.depends_on]
    amounts = []
    if step.gpus:
        amounts.append({"name": "amount.worker.gpu", "min": step.gpus})
    if step.gpu_memory_gb:
        amounts.append({"name": "amount.worker.gpu.memory", "min": step.gpu_memory_gb * 1024})
    if amounts:
        entry["hostRequirements"] = {"amounts": amounts}
    return entry


def job_template(job: Job) -> dict[str, Any]:
    """The whole job as an OpenJD job template document."""
    return {"specificationVersion": SPECIFICATION, "name": job.name,
            "steps": [step_template(step) for step in job.steps]}


def write(job: Job, out_dir: Path) -> list[Path]:
    """``out_dir/template.json``; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / TEMPLATE_NAME
    write_text_atomic(target, json.dumps(job_template(job), indent=2) + "\n")
    return [target]


def check(job: Job) -> None:
    """Everything the job model says, OpenJD can say (GPU count and memory as host requirements)."""


def run_command(template: Path, job: Job, openjd_exe: str = "openjd") -> list[str]:
    """``openjd run TEMPLATE --step LAST --run-dependencies``: the whole job, locally, in dependency order."""
    return [openjd_exe, "run", str(template), "--step", job.steps[-1].name, "--run-dependencies"]


def submit(job: Job, out_dir: Path) -> int:
    """Write the template and run the whole job on this machine with ``openjd run``; its exit status."""
    beside = Path(sys.executable).parent / "openjd"
    exe = str(beside) if beside.is_file() else shutil.which("openjd")
    if exe is None:
        raise DflError("--engine openjd: the `openjd` command is not installed; pip install openjd-cli")
    (template,) = write(job, out_dir)
    return subprocess.run(run_command(template, job, exe), check=False).returncode
