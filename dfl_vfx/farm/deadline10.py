"""The Deadline 10 backend: a job info and a plugin info file per step, and a submit plan.

Deadline 10 jobs have one plugin each, so every step is its own job in one batch (``BatchName``): the CommandLine
plugin for engine steps and a Blender comp, the Nuke plugin for a Nuke comp. A step's dependencies are
``JobDependencies`` naming the IDs ``deadlinecommand -SubmitJob`` printed for earlier steps (written as ``{Step}``
placeholders and filled in at submission); the comp is ``IsFrameDependent`` on the swap, so a comp chunk starts
when its swap chunk is done. The swap step is one job over the frame range with ``ChunkSize``; its arguments get
``<STARTFRAME>-<ENDFRAME>``. A multi-node training step is a job of one task per node (frames ``0-N-1``,
``MachineLimit=N``; the node rank is ``<STARTFRAME>``). Deadline 10 cannot require GPUs on a job: GPU steps go to
``farm.group``, which must name a group of machines with such GPUs.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from dfl_vfx.errors import DflError
from dfl_vfx.farm.job import FIRST, FRAMES, LAST, NODE_RANK, Job, Step
from dfl_vfx.io.atomic import write_text_atomic
from dfl_vfx.io.sequence import format_frames

PLAN = "submit_plan.json"
TOKENS = {FRAMES: "<STARTFRAME>-<ENDFRAME>", FIRST: "<STARTFRAME>", LAST: "<ENDFRAME>", NODE_RANK: "<STARTFRAME>"}


def check(job: Job) -> None:
    """Refuse a GPU requirement that Deadline 10 cannot express, and chunks it would run with the gaps filled."""
    for step in job.steps:
        gaps = step.frames and list(step.frames) != list(range(step.frames[0], step.frames[-1] + 1))
        if gaps and step.chunk_size > 1:
            raise DflError(f"shot.frames {format_frames(list(step.frames))}: Deadline 10 runs a chunk as "
                           "<STARTFRAME>-<ENDFRAME>, which would swap the frames between; give one whole range or "
                           "farm.chunk_size = 1")
    for step in job.steps:
        if step.comp is not None and step.comp.app == "nuke" and not step.comp.version:
            raise DflError("comp.version: Deadline 10's Nuke plugin runs a Nuke version by number; set it in "
                           "[comp], e.g. version = \"15.1\"")
    gpu_steps = [step.name for step in job.steps if step.gpus or step.gpu_memory_gb]
    if gpu_steps and not job.group:
        raise DflError(f"farm.gpus: Deadline 10 cannot require GPUs on a job ({', '.join(gpu_steps)}); set "
                       "farm.group to a group of GPU workers, or farm.gpus = 0")


def _file_stem(index: int, step: Step) -> str:
    return f"{index:02d}_{step.name}"


def _nuke(step: Step) -> bool:
    return step.comp is not None and step.comp.app == "nuke"


def job_info(job: Job, step: Step) -> str:
    """The job info file of ``step``."""
    lines = [f"Plugin={'Nuke' if _nuke(step) else 'CommandLine'}", f"Name={job.name} {step.name}",
             f"BatchName={job.name}", f"Comment={step.description}", f"Priority={job.priority}"]
    if step.nodes > 1:
        lines += [f"Frames=0-{step.nodes - 1}", "ChunkSize=1", f"MachineLimit={step.nodes}"]
    elif step.chunks:
        lines += [f"Frames={format_frames(list(step.frames))}", f"ChunkSize={step.chunk_size}"]
    else:
        lines += ["Frames=0", "ChunkSize=1"]
    if job.pools:
        lines.append(f"Pool={job.pools[0]}")
        if len(job.pools) > 1:
            lines.append(f"SecondaryPool={job.pools[1]}")
    if job.group and (step.gpus or step.gpu_memory_gb):
        lines.append(f"Group={job.group}")
    if step.timeout_s:
        lines.append(f"TaskTimeoutMinutes={-(-step.timeout_s // 60)}")
    if step.depends_on:
        lines.append("JobDependencies=" + ",".join("{" + name + "}" for name in step.depends_on))
        if step.frame_dependent:
            lines.append("IsFrameDependent=true")
    return "\n".join(lines) + "\n"


def _tokens(arg: str) -> str:
    for token, deadline in TOKENS.items():
        arg = arg.replace(token, deadline)
    return arg


def plugin_info(step: Step) -> str:
    """The plugin info file of ``step``: the Nuke plugin's for a Nuke comp, else the CommandLine plugin's."""
    if step.comp is not None and _nuke(step):
        lines = [f"SceneFile={step.comp.scene}", f"Version={step.comp.version}", "NukeX=False", "UseGpu=False"]
        if step.comp.write:
            lines.append(f"WriteNode={step.comp.write}")
        return "\n".join(lines) + "\n"
    args = [_tokens(arg) for arg in step.command[1:]]
    return f"Executable={step.command[0]}\nArguments={shlex.join(args)}\nShell=default\nShellExecute=False\n"


def write(job: Job, out_dir: Path) -> list[Path]:
    """Each step's ``NN_Step.job_info.job`` and ``NN_Step.plugin_info.job``, and ``submit_plan.json`` (the order
    to submit them in); returns the files written."""
    check(job)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    plan = []
    for index, step in enumerate(job.steps, 1):
        stem = _file_stem(index, step)
        for suffix, text in (("job_info", job_info(job, step)), ("plugin_info", plugin_info(step))):
            target = out_dir / f"{stem}.{suffix}.job"
            write_text_atomic(target, text)
            written.append(target)
        plan.append({"step": step.name, "job_info": f"{stem}.job_info.job", "plugin_info": f"{stem}.plugin_info.job",
                     "depends_on": list(step.depends_on)})
    write_text_atomic(out_dir / PLAN, json.dumps({"batch": job.name, "jobs": plan}, indent=2) + "\n")
    written.append(out_dir / PLAN)
    return written


def submit(job: Job, out_dir: Path) -> int:
    """Write the files and submit them in order with ``deadlinecommand -SubmitJob``, filling each job's
    ``JobDependencies`` with the IDs of the jobs it needs; 0 when every job was accepted."""
    exe = shutil.which("deadlinecommand")
    if exe is None:
        raise DflError("--engine deadline10: `deadlinecommand` is not on PATH; run on a Deadline 10 submitter "
                       f"machine, or write the files with --dry-run and submit them by hand (order in {PLAN})")
    write(job, out_dir)
    ids: dict[str, str] = {}
    for index, step in enumerate(job.steps, 1):
        stem = _file_stem(index, step)
        info = out_dir / f"{stem}.job_info.job"
        text = info.read_text(encoding="utf-8")
        for name, job_id in ids.items():
            text = text.replace("{" + name + "}", job_id)
        write_text_atomic(info, text)
        done = subprocess.run([exe, "-SubmitJob", str(info), str(out_dir / f"{stem}.plugin_info.job")],
                              capture_output=True, text=True, check=False)
        found = re.search(r"^JobID=(\S+)", done.stdout, re.MULTILINE)
        if done.returncode != 0 or found is None:
            last = (done.stdout.strip().splitlines() or ["no output"])[-1]
            raise DflError(f"deadlinecommand refused step {step.name} ({last}); jobs already submitted: "
                           f"{', '.join(ids.values()) or 'none'}")
        ids[step.name] = found.group(1)
        print(f"{step.name}: JobID={ids[step.name]}")
    return 0
