"""One job model for every farm engine: steps, their tasks, dependencies, host requirements and argument lists.

:func:`build_job` turns a :class:`~dfl_vfx.farm.shot.Shot` into a :class:`Job`: extract the plate (and the source
footage), train as a chain of time-boxed steps that each resume and exit 0 (a step finding the iteration target
reached exits at once), export, and swap in frame chunks. A command is an argument list; a chunked step's command
holds :data:`FRAMES` where each engine puts its own frame token. The engines are the modules named in
:data:`dfl_vfx.farm.engines.ENGINES`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfl_host.commands import chunks, export_command, extract_command, swap_command, train_command
from dfl_host.locate import ENGINE_ENV
from dfl_host.schema import Schema
from dfl_vfx.farm.shot import Shot
from dfl_vfx.io.sequence import format_frames
from dfl_vfx.schema import schema_document

FRAMES = "<FRAMES>"  # placeholder in a chunked step's command for the chunk's frame range

# exit codes of every task, the same on every engine (docs/farm.md)
EXIT_SUCCESS = 0
EXIT_PERMANENT = 2  # bad input: rerunning the same command fails the same way
# anything else (1 a crash, 130 interrupted, 137 killed for memory, a signal) is retryable: the step resumes


@dataclass(frozen=True)
class Step:
    """One step of the job: a command run once, or once per frame chunk."""

    name: str
    command: list[str]
    depends_on: tuple[str, ...] = ()
    chunks: tuple[str, ...] = ()  # frame ranges, one task each; empty: one task
    frames: tuple[int, ...] = ()  # a chunked step's frames, in chunks of chunk_size
    chunk_size: int = 0
    timeout_s: int = 0  # the farm stops a task running longer (a hung task is retried and resumes); 0: none
    gpus: int = 0
    gpu_memory_gb: int = 0
    description: str = ""

    def task_commands(self) -> list[list[str]]:
        """Each task's concrete argument list."""
        if not self.chunks:
            return [list(self.command)]
        return [[arg.replace(FRAMES, chunk) for arg in self.command] for chunk in self.chunks]


@dataclass(frozen=True)
class Job:
    """A whole shot's job: steps in an order that respects their dependencies."""

    name: str
    steps: list[Step]
    priority: int = 50
    pools: tuple[str, ...] = ()
    group: str = ""
    inputs: tuple[Path, ...] = ()  # folders the job reads (plate, source, a reused model)
    outputs: tuple[Path, ...] = ()  # folders the job writes
    notes: list[str] = field(default_factory=list)

    def step(self, name: str) -> Step:
        return next(step for step in self.steps if step.name == name)

    def plan(self) -> str:
        """The steps, tasks and dependencies as text (``dfl-vfx shot validate`` prints it)."""
        lines = [f"job {self.name} (priority {self.priority}" + (f", pools {', '.join(self.pools)}" if self.pools
                                                                   else "") + ")"]
        for step in self.steps:
            tasks = f"{len(step.chunks)} tasks ({', '.join(step.chunks)})" if step.chunks else "1 task"
            needs = f", after {', '.join(step.depends_on)}" if step.depends_on else ""
            gpu = (f", {step.gpus} GPU" + (f" with {step.gpu_memory_gb} GB" if step.gpu_memory_gb else "")
                   if step.gpus else "")
            lines.append(f"  {step.name}: {step.description}; {tasks}{needs}{gpu}")
        return "\n".join(lines)


def train_step_names(shot: Shot) -> list[str]:
    return [f"Train{index:02d}" for index in range(1, shot.farm.train_tasks + 1)]


def engine_path(exe: str | None = None) -> str | None:
    """``exe``, else ``$DFL_VFX_EXE`` (None: :func:`dfl_host.locate.find_engine` reads it), else the ``dfl-vfx``
    beside this Python (the engine that builds the job), else the one on PATH."""
    if exe or os.environ.get(ENGINE_ENV):
        return exe
    beside = Path(sys.executable).parent / "dfl-vfx"
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def build_job(shot: Shot, exe: str | None = None) -> Job:
    """The job for ``shot``; ``exe`` is the engine path the farm's workers run (default: this one)."""
    exe = engine_path(exe)
    farm = shot.farm
    extract_options = _without(shot.extract, "source_colorspace")
    steps: list[Step] = []
    dst = extract_command(shot.plate, str(shot.dst_faceset), exe, frames=_frame_spec(shot),
                          no_progress=True, **extract_options)
    steps.append(Step("ExtractPlate", dst, description=f"extract the plate's faces into {shot.dst_faceset}"))
    after_extract = ["ExtractPlate"]
    if shot.footage is not None:
        src_options = dict(_without(extract_options, "colorspace"))
        if "source_colorspace" in shot.extract:
            src_options["colorspace"] = shot.extract["source_colorspace"]
        src = extract_command(shot.footage, str(shot.src_faceset), exe, no_progress=True, **src_options)
        steps.append(Step("ExtractSource", src, description=f"extract the source's faces into {shot.src_faceset}"))
        after_extract.append("ExtractSource")
    previous: tuple[str, ...] = tuple(after_extract)
    if shot.model_reuse is None:
        model_sets = [f"--set=model.{key}={value}" for key, value in shot.model_options.items()]
        train = train_command(str(shot.src_faceset), str(shot.dst_faceset), str(shot.model_dir), exe,
                              max_iters=farm.iterations, max_time=farm.train_task_time, no_progress=True,
                              gpus=farm.gpus if farm.gpus > 1 else None) + model_sets
        names = train_step_names(shot)
        for index, name in enumerate(names, 1):
            steps.append(Step(name, train, depends_on=previous, gpus=max(farm.gpus, 1) if farm.gpus else 0,
                              gpu_memory_gb=farm.gpu_memory_gb, timeout_s=train_timeout_s(farm.train_task_time),
                              description=f"train {farm.train_task_time} ({index} of {len(names)}), "
                                          f"resuming, until iteration {farm.iterations}"))
            previous = (name,)
    export = export_command(str(shot.model_dir), str(shot.onnx), exe)
    steps.append(Step("Export", export, depends_on=previous, description=f"export the model to {shot.onnx}"))
    swap = swap_command(Schema(schema_document()), shot.plate, str(shot.onnx), str(shot.output), shot.merge,
                        frames=FRAMES, faceset=str(shot.dst_faceset), exe=exe, progress=False)
    steps.append(Step("Swap", swap, depends_on=("Export",),
                      chunks=tuple(frame_chunks(shot.frames, farm.chunk_size)), frames=tuple(shot.frames),
                      chunk_size=farm.chunk_size,
                      gpus=1 if farm.gpus else 0, gpu_memory_gb=farm.gpu_memory_gb,
                      description=f"swap in chunks of {farm.chunk_size} frames into {shot.output}"))
    return Job(name=shot.name, steps=steps, priority=farm.priority, pools=farm.pools, group=farm.group,
               inputs=tuple(_inputs(shot)), outputs=(shot.output, shot.work_dir))


def _inputs(shot: Shot) -> list[Path]:
    found = [Path(shot.plate).parent]
    if shot.footage is not None:
        found.append(Path(shot.footage).parent)
    for folder in (shot.faceset, shot.model_reuse):
        if folder is not None:
            found.append(folder)
    return found


TRAIN_TIMEOUT_MARGIN_S = 1800  # set-up, the last save and a slow shared disk, beyond the training time
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def train_timeout_s(task_time: str) -> int:
    """A training task's hard limit: its training time (``90s``, ``25m``, ``2h``) plus a margin for saving."""
    return int(float(task_time[:-1]) * _SECONDS[task_time[-1]]) + TRAIN_TIMEOUT_MARGIN_S


def frame_chunks(frames: list[int], size: int) -> list[str]:
    """``size`` frames per chunk: ``1001-1004, 1005-1008`` for a whole range; a range with gaps is cut by position
    in the frame list (``1001-1003,1008``), as Deadline 10 cuts its frame lists."""
    if frames == list(range(frames[0], frames[-1] + 1)):
        return list(chunks(frames[0], frames[-1], size))
    return [format_frames(frames[start:start + size]) for start in range(0, len(frames), size)]


def _frame_spec(shot: Shot) -> str:
    return format_frames(shot.frames)


def _without(options: dict[str, Any], *names: str) -> dict[str, Any]:
    return {key: value for key, value in options.items() if key not in names}

