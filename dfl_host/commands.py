"""Argument lists for engine and farm commands (``dfl-vfx swap``, ``extract``, ``train``, ``export``).

Always a list of arguments for :func:`subprocess.run` or a farm job, never a shell string: a path with spaces or
quotes stays one argument. Swap settings are given by schema name and become the schema's CLI flags.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dfl_host.locate import find_engine
from dfl_host.schema import Schema


def option_args(options: Mapping[str, Any]) -> list[str]:
    """``{"face_type": "f", "smooth": 5, "fp16": True, "frames": None}`` -> ``["--face-type=f", "--smooth=5",
    "--fp16"]``: True is a bare flag, None and False are left out, lists become comma lists."""
    args: list[str] = []
    for name, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif isinstance(value, (list, tuple)):
            args.append(f"{flag}={','.join(str(item) for item in value)}")
        else:
            args.append(f"{flag}={value}")
    return args


def settings_args(schema: Schema, settings: Mapping[str, Any]) -> list[str]:
    """Swap settings by schema name -> their CLI options (unknown names refused; None: the engine's default)."""
    return [f"{schema.flag(name)}={schema.cli_value(name, value)}" for name, value in settings.items()
            if value is not None]


def swap_command(schema: Schema, plate: str, model: str, out: str, settings: Mapping[str, Any] | None = None,
                 frames: str | None = None, faceset: str | None = None, jobs: int | None = None,
                 overwrite: bool = False, compression: str | None = None, progress: bool = True,
                 exe: str | None = None) -> list[str]:
    """``dfl-vfx swap PLATE --model MODEL --out OUT [settings ...]``: a farm chunk with ``frames="1001-1050"``."""
    run = {"frames": frames, "faceset": faceset, "jobs": jobs, "overwrite": overwrite, "compression": compression,
           "no_progress": not progress}
    return [find_engine(exe), "swap", str(plate), f"--model={model}", f"--out={out}"] + option_args(run) + \
        settings_args(schema, settings or {})


def extract_command(plate: str, out: str, exe: str | None = None, **options: Any) -> list[str]:
    """``dfl-vfx extract PLATE --out FACESET``; options by name, e.g. ``face_type="f", size=256, smooth=5``."""
    return [find_engine(exe), "extract", str(plate), f"--out={out}"] + option_args(options)


def train_command(src: str, dst: str, model_dir: str, exe: str | None = None, **options: Any) -> list[str]:
    """``dfl-vfx train --src SRC --dst DST --model-dir MODEL``; options by name, e.g. ``max_time="30m"``."""
    return [find_engine(exe), "train", f"--src={src}", f"--dst={dst}", f"--model-dir={model_dir}"] + \
        option_args(options)


def export_command(model: str, out: str, exe: str | None = None, **options: Any) -> list[str]:
    """``dfl-vfx export MODEL --out FILE``; options by name, e.g. ``fp16=True`` or ``dfm=True``."""
    return [find_engine(exe), "export", str(model), f"--out={out}"] + option_args(options)


def frames_arg(first: int, last: int, step: int = 1) -> str:
    """A frame range as the CLI reads it: ``1001-1050`` or ``1001-1099x2``."""
    if last < first:
        raise ValueError(f"frame range {first}-{last} runs backwards")
    return f"{first}-{last}" + (f"x{step}" if step != 1 else "")


def chunks(first: int, last: int, size: int) -> Sequence[str]:
    """Farm chunks of at most ``size`` frames: ``chunks(1001, 1010, 4)`` -> ``1001-1004, 1005-1008, 1009-1010``."""
    if size < 1:
        raise ValueError("chunk size must be 1 or more")
    return [frames_arg(start, min(start + size - 1, last)) for start in range(first, last + 1, size)]
