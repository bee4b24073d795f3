"""One job model for every farm engine: steps, their tasks, dependencies, host requirements and argument lists.

:func:`build_job` turns a :class:`~dfl_vfx.farm.shot.Shot` into a :class:`Job`: extract the plate (and the source
footage), train as a chain of time-boxed steps that each resume and exit 0 (a step finding the iteration target
reached exits at once; on several nodes, one task per node), export, swap in frame chunks, and render the comp
(Nuke or Blender) chunk by chunk. A command is an argument list; a chunked step's command holds :data:`FRAMES`
(or :data:`FIRST` and :data:`LAST`) and a multi-node step's :data:`NODE_RANK`, where each engine puts its own
token. The engines are the modules named in :data:`dfl_vfx.farm.engines.ENGINES`.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfl_host.commands import chunks, export_command, extract_command, swap_command, train_command
from dfl_host.locate import ENGINE_ENV
from dfl_host.schema import Schema
from dfl_vfx.farm.shot import Comp, Shot
from dfl_vfx.io.sequence import format_frames
from dfl_vfx.schema import schema_document

FRAMES = "<FRAMES>"  # placeholder in a chunked step's command for the chunk's frame range
FIRST = "<FIRST>"  # ... for the chunk's first frame
LAST = "<LAST>"  # ... for the chunk's last frame
NODE_RANK = "<NODE_RANK>"  # placeholder in a multi-node step's command for the node's rank, 0 to nodes - 1
RDZV_FOLDER = "rendezvous"  # WORK_DIR/rendezvous/STEP: where node rank 0 publishes its address

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
    nodes: int = 1  # > 1: one task per node rank, all running at once (multi-node training)
    frame_dependent: bool = False  # a chunk needs only the same chunk of the step it depends on
    comp: Comp | None = None  # a comp render (Deadline 10 renders a Nuke comp with its Nuke plugin)
    cores: int = 0  # CPU threads the step uses (0: the engine's default)
    description: str = ""

    def task_commands(self) -> list[list[str]]:
        """Each task's concrete argument list."""
        if self.nodes > 1:
            return [[arg.replace(NODE_RANK, str(rank)) for arg in self.command] for rank in range(self.nodes)]
        if not self.chunks:
            return [list(self.command)]
        return [[chunk_arg(arg, chunk) for arg in self.command] for chunk in self.chunks]


def chunk_bounds(chunk: str) -> tuple[str, str]:
    """First and last frame of a chunk (``1001-1008`` -> ``1001, 1008``; ``1003,1008`` -> ``1003, 1008``)."""
    parts = [re.fullmatch(r"(-?\d+)(?:-(-?\d+))?", part.strip()) for part in chunk.split(",")]
    first, last = parts[0], parts[-1]
    if first is None or last is None:
        raise ValueError(f"frame chunk {chunk!r}: not a frame range")
    return first.group(1), last.group(2) or last.group(1)


def chunk_arg(arg: str, chunk: str) -> str:
    first, last = chunk_bounds(chunk)
    return arg.replace(FRAMES, chunk).replace(FIRST, first).replace(LAST, last)


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
    show: str = ""  # OpenCue's show
    notes: list[str] = field(default_factory=list)

    def step(self, name: str) -> Step:
        return next(step for step in self.steps if step.name == name)

    def plan(self) -> str:
        """The steps, tasks and dependencies as text (``dfl-vfx shot validate`` prints it)."""
        lines = [f"job {self.name} (priority {self.priority}" + (f", pools {', '.join(self.pools)}" if self.pools
                                                                   else "") + ")"]
        for step in self.steps:
            count = len(step.chunks)
            tasks = f"{count} task{'s' if count > 1 else ''} ({', '.join(step.chunks)})" if step.chunks else "1 task"
            if step.nodes > 1:
                tasks = f"{step.nodes} tasks at once (node ranks 0-{step.nodes - 1})"
            needs = f", after {', '.join(step.depends_on)}" if step.depends_on else ""
            if step.frame_dependent:
                needs += " (chunk by chunk)"
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
    cores = int(shot.extract.get("jobs", 0) or 0)
    steps: list[Step] = []
    previous: tuple[str, ...] = ()
    if shot.faces is None:
        dst = extract_command(shot.plate, str(shot.dst_faceset), exe, frames=_frame_spec(shot),
                              no_progress=True, **extract_options)
        steps.append(Step("ExtractPlate", dst, cores=cores,
                          description=f"extract the plate's faces into {shot.dst_faceset}"))
        previous += ("ExtractPlate",)
    if shot.footage is not None and shot.model_reuse is None:
        src_options = dict(_without(extract_options, "colorspace"))
        if "source_colorspace" in shot.extract:
            src_options["colorspace"] = shot.extract["source_colorspace"]
        src = extract_command(shot.footage, str(shot.src_faceset), exe, no_progress=True, **src_options)
        steps.append(Step("ExtractSource", src, cores=cores,
                          description=f"extract the source's faces into {shot.src_faceset}"))
        previous += ("ExtractSource",)
    if shot.model_reuse is None:
        steps += _train_steps(shot, exe, previous)
        previous = (steps[-1].name,)
    if shot.needs_export:
        export = export_command(str(shot.model_dir), str(shot.onnx), exe)
        steps.append(Step("Export", export, depends_on=previous, description=f"export the model to {shot.onnx}"))
        previous = ("Export",)
    swap = swap_command(Schema(schema_document()), shot.plate, str(shot.onnx), str(shot.output), shot.merge,
                        frames=FRAMES, faceset=str(shot.dst_faceset), exe=exe, progress=False)
    chunked = {"chunks": tuple(frame_chunks(shot.frames, farm.chunk_size)), "frames": tuple(shot.frames),
               "chunk_size": farm.chunk_size}
    steps.append(Step("Swap", swap, depends_on=previous, **chunked,
                      gpus=1 if farm.gpus else 0, gpu_memory_gb=farm.gpu_memory_gb,
                      description=f"swap in chunks of {farm.chunk_size} frames into {shot.output}"))
    if shot.comp is not None:
        steps.append(Step("Comp", comp_command(shot.comp), depends_on=("Swap",), frame_dependent=True,
                          comp=shot.comp, **chunked,
                          description=f"render the {shot.comp.app.capitalize()} comp {shot.comp.scene.name}"
                                      + (f" ({shot.comp.write})" if shot.comp.write else "")))
    return Job(name=shot.name, steps=steps, priority=farm.priority, pools=farm.pools, group=farm.group,
               inputs=tuple(_inputs(shot)), outputs=(shot.output, shot.work_dir), show=farm.show)


def _train_steps(shot: Shot, exe: str | None, after: tuple[str, ...]) -> list[Step]:
    farm = shot.farm
    model_sets = [f"--set=model.{key}={value}" for key, value in shot.model_options.items()]
    train = train_command(str(shot.src_faceset), str(shot.dst_faceset), str(shot.model_dir), exe,
                          max_iters=farm.iterations, max_time=farm.train_task_time, no_progress=True,
                          gpus=farm.gpus if farm.gpus > 1 else None) + model_sets
    names = train_step_names(shot)
    steps = []
    for index, name in enumerate(names, 1):
        command = list(train)
        if farm.nodes > 1:
            command += [f"--nnodes={farm.nodes}", f"--node-rank={NODE_RANK}",
                        f"--rdzv-dir={shot.work_dir / RDZV_FOLDER / name}"]
        where = f" on {farm.nodes} nodes" if farm.nodes > 1 else ""
        steps.append(Step(name, command, depends_on=after, gpus=max(farm.gpus, 1) if farm.gpus else 0,
                          gpu_memory_gb=farm.gpu_memory_gb, timeout_s=train_timeout_s(farm.train_task_time),
                          nodes=farm.nodes,
                          description=f"train {farm.train_task_time}{where} ({index} of {len(names)}), "
                                      f"resuming, until iteration {farm.iterations}"))
        after = (name,)
    return steps


def comp_command(comp: Comp) -> list[str]:
    """The render of one chunk: ``nuke -x -X WRITE -F FIRST-LAST SCRIPT`` or ``blender -b FILE -s FIRST -e LAST
    -a`` (Blender reads its options in order: the range before ``-a``)."""
    if comp.app == "nuke":
        write = ["-X", comp.write] if comp.write else []
        return [comp.exe or "nuke", "-x", *write, "-F", FRAMES, str(comp.scene)]
    return [comp.exe or "blender", "-b", str(comp.scene), "-s", FIRST, "-e", LAST, "-a"]


def _inputs(shot: Shot) -> list[Path]:
    found = [Path(shot.plate).parent]
    if shot.footage is not None:
        found.append(Path(shot.footage).parent)
    if shot.comp is not None:
        found.append(shot.comp.scene)  # the script alone, not the folder it is in
    for folder in (shot.faceset, shot.faces, shot.model_reuse):
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

