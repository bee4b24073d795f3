"""The Open Job Description backend: a job template (``jobtemplate-2023-09``) written as JSON.

One OpenJD step per job step; a chunked step gets a STRING task parameter ``Frames`` holding its chunks (and INT
``First`` / ``Last``, combined with it, when its command needs the bounds: a Blender render); a multi-node
training step gets an INT task parameter ``NodeRank`` (one task per node; they must run at once, and meet through
the shared work folder, see :mod:`trainer.distributed`); GPU steps get ``hostRequirements`` amounts
(``amount.worker.gpu``, ``amount.worker.gpu.memory`` in MiB). OpenJD dependencies are whole steps: the comp waits
for the whole swap. The template runs locally with ``openjd run`` and is the heart of a Deadline Cloud job bundle
(:mod:`dfl_vfx.farm.deadline_cloud`). Priority and pools are not part of an OpenJD template: the queue they are
submitted to decides them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from dfl_vfx.errors import DflError
from dfl_vfx.farm.job import FIRST, FRAMES, LAST, NODE_RANK, Job, Step, chunk_bounds
from dfl_vfx.io.atomic import write_text_atomic

SPECIFICATION = "jobtemplate-2023-09"
TEMPLATE_NAME = "template.json"
FRAMES_PARAMETER = "Frames"
TOKENS = {FRAMES: "{{Task.Param.Frames}}", FIRST: "{{Task.Param.First}}", LAST: "{{Task.Param.Last}}",
          NODE_RANK: "{{Task.Param.NodeRank}}"}


def _arg(value: str, step: Step) -> str:
    if "{{" in value:
        raise DflError(f"step {step.name}: argument {value!r} holds '{{{{', which Open Job Description reads as a "
                       "format string; rename the path")
    for token, expression in TOKENS.items():
        value = value.replace(token, expression)
    return value


def parameter_space(step: Step) -> dict[str, Any] | None:
    """The task parameters: node ranks, or the chunks (with their bounds where the command uses them)."""
    if step.nodes > 1:
        return {"taskParameterDefinitions": [{"name": "NodeRank", "type": "INT", "range": f"0-{step.nodes - 1}"}]}
    if not step.chunks:
        return None
    joined = " ".join(step.command)
    definitions: list[dict[str, Any]] = []
    if FRAMES in joined:
        definitions.append({"name": FRAMES_PARAMETER, "type": "STRING", "range": list(step.chunks)})
    bounds = [chunk_bounds(chunk) for chunk in step.chunks]
    for index, (token, name) in enumerate(((FIRST, "First"), (LAST, "Last"))):
        if token in joined:
            definitions.append({"name": name, "type": "INT", "range": [int(pair[index]) for pair in bounds]})
    space: dict[str, Any] = {"taskParameterDefinitions": definitions}
    if len(definitions) > 1:  # the n-th chunk with the n-th bounds, not every combination
        space["combination"] = "(" + ", ".join(entry["name"] for entry in definitions) + ")"
    return space


def step_template(step: Step) -> dict[str, Any]:
    """The OpenJD step of ``step``."""
    command = [_arg(value, step) for value in step.command]
    on_run: dict[str, Any] = {"command": command[0], "args": command[1:]}
    if step.timeout_s:
        on_run["timeout"] = step.timeout_s
    entry: dict[str, Any] = {"name": step.name, "description": step.description,
                             "script": {"actions": {"onRun": on_run}}}
    space = parameter_space(step)
    if space is not None:
        entry["parameterSpace"] = space
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
    multi_node = [step.name for step in job.steps if step.nodes > 1]
    if multi_node:
        raise DflError(f"farm.nodes: `openjd run` runs one task at a time on this machine, so the nodes of "
                       f"{multi_node[0]} would never meet; write the template with --dry-run for a farm (Deadline "
                       "Cloud), or farm.nodes = 1")
    (template,) = write(job, out_dir)
    return subprocess.run(run_command(template, job, exe), check=False).returncode
