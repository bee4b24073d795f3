"""Submitting a shot to the farm from a host (the Nuke and Blender Submit buttons): shot file, argument list, run.

Python 3.9+, standard library only. A host turns its node's settings into a shot file (the TOML that
``dfl-vfx shot validate`` and ``dfl-vfx farm submit`` read, docs/farm.md) and runs ``dfl-vfx farm submit`` as an
argument list, never a shell string. The engine checks everything (plate, frames, model, settings, what the farm
engine can express) before it writes or submits anything; its one-line error comes back as :class:`SubmitFailed`.

The API, in the order a Submit button uses it::

    shot = {"shot": {"name": "sh010", "plate": "/plates/sh010.####.exr", "frames": "1001-1050",
                     "output": "/cache/sh010/swap"},
            "model": {"reuse": "/models/sh010.onnx"},
            "merge": {"blur": 40, "color_transfer": "rct"},
            "farm": {"pools": ["gpu"], "chunk_size": 10},
            "comp": {"nuke": "/shots/sh010/comp.nk", "write": "Write1", "version": "15.1"}}
    write_shot("/cache/sh010/sh010.toml", shot)           # the file; atomic (no half-written file)
    result = submit("/cache/sh010/sh010.toml", "deadline10", exe=None, dry_run=False, out=None,
                    overrides={"priority": 70})          # -> Submitted, or raises SubmitFailed
    result.job_ids                                        # ["1a2b..", ...] (empty for a dry run)
    result.files                                          # the job files written (a dry run lists them)

``submit`` blocks until ``dfl-vfx farm submit`` ends: a host calls it from a worker thread. With ``engine="openjd"``
and no dry run the whole job runs on this machine (``openjd run``), which takes as long as the job.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dfl_host.errors import EngineError
from dfl_host.locate import find_engine

ENGINES = ("openjd", "deadline-cloud", "opencue", "deadline10")
SUBMIT_TIMEOUT_S = 600.0
# ``dfl-vfx farm submit`` options that override the shot file: name -> flag (a list value repeats the flag)
OVERRIDES = {"frames": "--frames", "output": "--output", "work_dir": "--work-dir", "chunk_size": "--chunk-size",
             "priority": "--priority", "pools": "--pool", "group": "--group", "gpus": "--gpus",
             "gpu_memory_gb": "--gpu-memory-gb", "nodes": "--nodes", "show": "--show",
             "train_task_time": "--train-task-time",
             "train_tasks": "--train-tasks", "iterations": "--iterations"}
_ERROR_PREFIX = re.compile(r"^dfl-vfx \S+: error: ")
# Deadline 10 and OpenCue lines are ``STEP: JobID=ID``; Deadline Cloud's CLI names its job ``job-<32 hex>``
_JOB_ID = re.compile(r"(?:JobID=|Job ID: )(\S+)|\b(job-[0-9a-f]{32})\b")


class SubmitFailed(EngineError):
    """The submission was refused (bad shot, engine cannot express it, farm not reachable); one line."""


@dataclass
class Submitted:
    """What ``dfl-vfx farm submit`` did: the farm's job IDs (none for a dry run or a local ``openjd run``), the
    files it wrote (listed by a dry run) and its whole standard output."""

    engine: str
    shot_file: str
    job_ids: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    output: str = ""


# -- shot files ---------------------------------------------------------------------------------------------------

def _string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(ch if ch >= " " or ch == "\t" else f"\\u{ord(ch):04x}" for ch in escaped)
    return f'"{escaped}"'


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _string(name)


def toml_value(value: Any) -> str:
    """A TOML value: string, bool, int, float, list or table (written inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} cannot be written to a shot file")
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }" \
            if value else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise ValueError(f"{value!r} ({type(value).__name__}) cannot be written to a shot file")


def shot_text(shot: Mapping[str, Mapping[str, Any]]) -> str:
    """The shot file's text: one ``[table]`` per key of ``shot`` (``shot``, ``source``, ``extract``, ``model``,
    ``merge``, ``farm``, ``comp``); None values are left out, nested tables are written inline."""
    blocks = []
    for table, values in shot.items():
        lines = [f"[{_key(table)}]"]
        lines += [f"{_key(key)} = {toml_value(value)}" for key, value in values.items() if value is not None]
        blocks.append("\n".join(lines))
    return "# written by dfl_host.farm (docs/farm.md)\n\n" + "\n\n".join(blocks) + "\n"


def write_shot(path: str, shot: Mapping[str, Mapping[str, Any]]) -> str:
    """Write the shot file at ``path`` whole (a temporary file renamed into place); returns ``path``."""
    text = shot_text(shot)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".shot-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    return path


# -- submission ---------------------------------------------------------------------------------------------------

def override_args(overrides: Mapping[str, Any]) -> list[str]:
    """``{"chunk_size": 8, "pools": ["gpu", "spare"]}`` -> ``["--chunk-size=8", "--pool=gpu", "--pool=spare"]``."""
    args: list[str] = []
    for name, value in overrides.items():
        if value is None:
            continue
        if name not in OVERRIDES:
            raise ValueError(f"unknown farm override {name!r}; known: {', '.join(OVERRIDES)}")
        values = value if isinstance(value, (list, tuple)) else [value]
        args += [f"{OVERRIDES[name]}={item}" for item in values]
    return args


def submit_command(shot_file: str, engine: str, exe: str | None = None, dry_run: bool = False,
                   out: str | None = None, overrides: Mapping[str, Any] | None = None,
                   engine_exe: str | None = None) -> list[str]:
    """``dfl-vfx farm submit SHOT --engine ENGINE [--dry-run] [--out DIR] [overrides]`` as an argument list.
    ``exe`` is the dfl-vfx to run here (default ``$DFL_VFX_EXE``, then PATH); ``engine_exe`` the one the farm's
    workers run (default: the same)."""
    if engine not in ENGINES:
        raise SubmitFailed(f"farm engine {engine!r}: choose one of {', '.join(ENGINES)}")
    args = [find_engine(exe), "farm", "submit", str(shot_file), f"--engine={engine}"]
    if dry_run:
        args.append("--dry-run")
    if out:
        args.append(f"--out={out}")
    if engine_exe:
        args.append(f"--engine-exe={engine_exe}")
    return args + override_args(overrides or {})


def submit(shot_file: str, engine: str, exe: str | None = None, dry_run: bool = False, out: str | None = None,
           overrides: Mapping[str, Any] | None = None, engine_exe: str | None = None,
           timeout: float | None = SUBMIT_TIMEOUT_S) -> Submitted:
    """Run ``dfl-vfx farm submit`` (see :func:`submit_command`) and return what it did; a refusal raises
    :class:`SubmitFailed` with the engine's one-line error (exit 2) or the last line it printed."""
    args = submit_command(shot_file, engine, exe, dry_run, out, overrides, engine_exe)
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise SubmitFailed(f"dfl-vfx farm submit {shot_file}: no answer in {timeout:.0f} s; is the farm "
                           "reachable?") from None
    except OSError as exc:
        raise SubmitFailed(f"dfl-vfx farm submit: cannot run {args[0]} ({exc.strerror or exc})") from None
    if done.returncode != 0:
        raise SubmitFailed(_failure_line(done.stderr, done.stdout, done.returncode))
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    ids = [match.group(1) or match.group(2) for line in lines for match in [_JOB_ID.search(line)] if match]
    files = lines if dry_run else []
    return Submitted(engine=engine, shot_file=str(shot_file), job_ids=ids, files=files, output=done.stdout)


def submit_shot(path: str, shot: Mapping[str, Mapping[str, Any]], engine: str, **options: Any) -> Submitted:
    """:func:`write_shot` then :func:`submit` (same keyword options)."""
    return submit(write_shot(path, shot), engine, **options)


def _failure_line(stderr: str, stdout: str, code: int) -> str:
    errors = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(errors):
        if _ERROR_PREFIX.match(line):
            return _ERROR_PREFIX.sub("", line)
    last = (errors or [line.strip() for line in stdout.splitlines() if line.strip()] or ["no output"])[-1]
    return f"dfl-vfx farm submit exited with {code}: {last}"


def shot_name(text: str) -> str:
    """A job name the shot file accepts (letters, digits, ``_``, ``-``, ``.``) from a node or file name."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")
    return name or "shot"


def frames_text(frames: Sequence[int]) -> str:
    """``[1001, 1002, 1003, 1010]`` -> ``1001-1003,1010`` (the shot file's ``frames``)."""
    ordered = sorted({int(frame) for frame in frames})
    parts: list[str] = []
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        parts.append(str(ordered[start]) if end == start else f"{ordered[start]}-{ordered[end]}")
        start = end + 1
    return ",".join(parts)
