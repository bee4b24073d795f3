"""The shot file: one TOML file per shot that the farm commands read, checked before anything is submitted.

Tables: ``[shot]`` (name, plate, frames, output, work_dir, faces), ``[source]`` (a ``faceset`` or ``footage`` to
extract), ``[extract]`` (extract options), ``[model]`` (``reuse`` a trained model folder or exported file, or
``options`` for a new one), ``[merge]`` (swap settings by schema name), ``[farm]`` (pools, GPUs, nodes, chunks,
priority, training budget) and ``[comp]`` (an optional Nuke or Blender render after the swap).
Relative paths are relative to the shot file. Every error is one line naming the file and the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from dfl_vfx.errors import DflError
from dfl_vfx.io.sequence import format_frames, open_sequence, parse_frames
from dfl_vfx.schema import SettingError, validate_settings

EXTRACT_KEYS = ("face_type", "size", "smooth", "detector", "select", "min_face", "colorspace", "source_colorspace",
                "jobs")
_DURATION = re.compile(r"^\d+(\.\d+)?[smhd]$")
MODEL_FILES = (".onnx", ".dfm")  # exported models the swap reads directly (no export step)


@dataclass(frozen=True)
class FarmSettings:
    """How the job runs on the farm."""

    pools: tuple[str, ...] = ()
    group: str = ""
    priority: int = 50
    chunk_size: int = 10
    gpus: int = 1
    gpu_memory_gb: int = 0  # 0: no requirement
    nodes: int = 1  # machines one training task runs on (each with `gpus` GPUs)
    train_task_time: str = "1h"
    train_tasks: int = 4
    iterations: int = 100_000
    show: str = ""  # OpenCue's show (default: $SHOW)


@dataclass(frozen=True)
class Comp:
    """The comp render after the swap: a Nuke script (and its Write node) or a Blender file."""

    app: str  # "nuke" or "blender"
    scene: Path
    write: str = ""  # Nuke: the Write node to render (empty: every Write)
    exe: str = ""  # the nuke / blender the workers run (empty: `nuke` / `blender` on their PATH)
    version: str = ""  # Nuke: the version Deadline 10's Nuke plugin runs (e.g. 15.1)


@dataclass(frozen=True)
class Shot:
    """A shot as the farm commands need it; paths absolute."""

    file: Path
    name: str
    plate: str
    frames: list[int]
    output: Path
    work_dir: Path
    faceset: Path | None = None
    footage: str | None = None
    extract: dict[str, Any] = field(default_factory=dict)
    model_reuse: Path | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    merge: dict[str, Any] = field(default_factory=dict)
    farm: FarmSettings = field(default_factory=FarmSettings)
    faces: Path | None = None  # the plate's faceset, extracted before: no ExtractPlate step
    comp: Comp | None = None

    @property
    def first(self) -> int:
        return min(self.frames)

    @property
    def last(self) -> int:
        return max(self.frames)

    @property
    def dst_faceset(self) -> Path:
        return self.faces if self.faces is not None else self.work_dir / "dst_faces"

    @property
    def src_faceset(self) -> Path:
        return self.faceset if self.faceset is not None else self.work_dir / "src_faces"

    @property
    def model_dir(self) -> Path:
        return self.model_reuse if self.model_reuse is not None else self.work_dir / "model"

    @property
    def onnx(self) -> Path:
        """The model the swap reads: a reused exported file, else the export of the model folder."""
        if self.model_reuse is not None and self.model_reuse.suffix.lower() in MODEL_FILES:
            return self.model_reuse
        return self.work_dir / "model.onnx"

    @property
    def needs_export(self) -> bool:
        return self.model_reuse is None or self.model_reuse.suffix.lower() not in MODEL_FILES


_TABLES = {
    "shot": ("name", "plate", "frames", "output", "work_dir", "faces"),
    "source": ("faceset", "footage"),
    "extract": EXTRACT_KEYS,
    "model": ("reuse", "options"),
    "merge": None,  # checked against the schema
    "farm": tuple(f.name for f in fields(FarmSettings)),
    "comp": ("nuke", "write", "blender", "exe", "version"),
}


def tables_text() -> str:
    """The shot file's tables and their keys, one line each, for the CLI's help (the checks read the same lists)."""
    return "\n".join(f"  [{table}]".ljust(12) + (", ".join(keys) if keys is not None
                                                 else "swap settings by schema name (dfl-vfx schema --text)")
                     for table, keys in _TABLES.items())


def _fail(file: Path, message: str) -> DflError:
    return DflError(f"{file}: {message}")


def check_keys(file: Path, document: Mapping[str, Any]) -> None:
    for table, value in document.items():
        if table not in _TABLES:
            raise _fail(file, f"unknown table [{table}]; known: {', '.join(f'[{t}]' for t in _TABLES)}")
        if not isinstance(value, dict):
            raise _fail(file, f"{table} must be a table ([{table}])")
        known = _TABLES[table]
        for key in value:
            if known is not None and key not in known:
                raise _fail(file, f"unknown key {table}.{key}; known in [{table}]: {', '.join(known)}")


def _path(file: Path, value: Any, key: str) -> Path:
    if not isinstance(value, str) or not value:
        raise _fail(file, f"{key} must be a path string")
    path = Path(value).expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else file.parent / path))


def _farm(file: Path, table: Mapping[str, Any]) -> FarmSettings:
    defaults = FarmSettings()
    values: dict[str, Any] = {}
    for f in fields(FarmSettings):
        if f.name not in table:
            continue
        value = table[f.name]
        default = getattr(defaults, f.name)
        if f.name == "pools":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                raise _fail(file, "farm.pools must be a list of pool names")
            value = tuple(value)
        elif isinstance(default, int) and (isinstance(value, bool) or not isinstance(value, int)):
            raise _fail(file, f"farm.{f.name} must be a whole number, not {value!r}")
        elif isinstance(default, str) and not isinstance(value, str):
            raise _fail(file, f"farm.{f.name} must be a string, not {value!r}")
        values[f.name] = value
    return check_farm(file, replace(defaults, **values))


def check_farm(file: Path, farm: FarmSettings) -> FarmSettings:
    """Ranges of the farm settings (also after CLI overrides)."""
    for name, low in (("chunk_size", 1), ("gpus", 0), ("gpu_memory_gb", 0), ("nodes", 1), ("train_tasks", 1),
                      ("iterations", 1), ("priority", 0)):
        if getattr(farm, name) < low:
            raise _fail(file, f"farm.{name} {getattr(farm, name)}: must be {low} or more")
    if not _DURATION.match(farm.train_task_time):
        raise _fail(file, f"farm.train_task_time {farm.train_task_time!r}: write a duration such as 90s, 25m or 2h")
    if farm.gpu_memory_gb and not farm.gpus:
        raise _fail(file, "farm.gpu_memory_gb needs farm.gpus of 1 or more")
    return farm


def load_shot(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Shot:
    """The shot file at ``path``, checked; ``overrides`` (``{"farm.chunk_size": 4, "shot.frames": "1001-1004"}``)
    win over the file, as CLI options do."""
    file = Path(path).expanduser().absolute()
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DflError(f"{file}: no such shot file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DflError(f"{file}: cannot read the shot file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise DflError(f"{file}: not valid TOML ({exc})") from None
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        table, _, key = dotted.partition(".")
        document.setdefault(table, {})[key] = value
    check_keys(file, document)
    return _build(file, document)


def _build(file: Path, document: Mapping[str, Any]) -> Shot:
    shot = document.get("shot", {})
    for key in ("plate", "output"):
        if key not in shot:
            raise _fail(file, f"shot.{key} is missing; add it to [shot]")
    plate = str(_path(file, shot["plate"], "shot.plate"))
    try:
        sequence = open_sequence(plate)
    except DflError as exc:
        raise _fail(file, f"shot.plate: {exc}") from None
    on_disk = set(sequence.frames) - set(sequence.missing())
    frames = sorted(on_disk)
    if "frames" in shot:
        try:
            frames = parse_frames(str(shot["frames"]))
        except DflError as exc:
            raise _fail(file, f"shot.frames: {exc}") from None
        outside = [frame for frame in frames if frame not in on_disk]
        if outside:
            raise _fail(file, f"shot.frames {shot['frames']}: frame {outside[0]} is outside the plate "
                              f"({min(on_disk)}-{max(on_disk)} on disk); choose frames within it")
    model = document.get("model", {})
    reuse = _path(file, model["reuse"], "model.reuse") if "reuse" in model else None
    if reuse is not None and not (reuse.is_file() and reuse.suffix.lower() in MODEL_FILES
                                  or (reuse / "checkpoint.pt").is_file()):
        raise _fail(file, f"model.reuse {reuse}: no trained model there (a model folder with checkpoint.pt, or an "
                          "exported .onnx or .dfm); train one or fix the path")
    source = document.get("source", {})
    if reuse is not None and source:
        raise _fail(file, "[source] is for training; model.reuse names a trained model, so no training runs: "
                          "remove [source]")
    if reuse is None and ("faceset" in source) == ("footage" in source):
        raise _fail(file, "[source] needs exactly one of faceset (a faceset folder) or footage (source images)")
    faceset = _path(file, source["faceset"], "source.faceset") if "faceset" in source else None
    if faceset is not None and not faceset.is_dir():
        raise _fail(file, f"source.faceset {faceset}: no such faceset folder")
    footage = str(_path(file, source["footage"], "source.footage")) if "footage" in source else None
    if footage is not None:
        try:
            open_sequence(footage)
        except DflError as exc:
            raise _fail(file, f"source.footage: {exc}") from None
    options = model.get("options", {})
    if not isinstance(options, dict):
        raise _fail(file, "model.options must be a table of model options")
    if reuse is not None and options:
        raise _fail(file, "model.options is for a new model; remove it when model.reuse names a trained model")
    try:
        merge = validate_settings(dict(document.get("merge", {})))
    except SettingError as exc:
        raise _fail(file, f"merge.{exc.worded(exc.setting)}") from None
    except DflError as exc:  # an unknown setting name
        raise _fail(file, f"[merge] {exc}") from None
    faces = _path(file, shot["faces"], "shot.faces") if "faces" in shot else None
    if faces is not None:
        _check_faces(file, faces, frames)
    comp = _comp(file, document.get("comp"), frames)
    output = _path(file, shot["output"], "shot.output")
    work_dir = _path(file, shot.get("work_dir", str(output.parent / "farm")), "shot.work_dir")
    name = shot.get("name") or file.stem
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise _fail(file, f"shot.name {name!r}: use letters, digits, '_', '-' or '.'")
    return Shot(file=file, name=name, plate=plate, frames=frames, output=output, work_dir=work_dir,
                faceset=faceset, footage=footage, extract=dict(document.get("extract", {})), model_reuse=reuse,
                model_options=dict(options), merge=merge, farm=_farm(file, document.get("farm", {})), faces=faces,
                comp=comp)


def _check_faces(file: Path, faces: Path, frames: list[int]) -> None:
    """The plate's faceset covers the shot's frames: a frame it never extracted would be swapped with no face, the
    plate passed through unchanged and the task exiting 0 (a frame extracted with no face in it is fine)."""
    from dfl_vfx.faceset.alignments import read_alignments

    if not faces.is_dir():
        raise _fail(file, f"shot.faces {faces}: no such faceset folder")
    try:
        extracted = {frame for frame, found in read_alignments(faces).frames.items() if found.error is None}
    except DflError as exc:
        raise _fail(file, f"shot.faces: {exc}") from None
    never = [frame for frame in frames if frame not in extracted]
    if never:
        holds = f"it holds {format_frames(sorted(extracted))}" if extracted else "it holds no frame"
        raise _fail(file, f"shot.faces {faces}: frames {format_frames(never)} were never extracted into it ({holds}); "
                          f"extract them (dfl-vfx extract PLATE --out {faces} --frames {format_frames(never)}), or "
                          "leave shot.faces out and the job extracts the plate")


def _comp(file: Path, table: Mapping[str, Any] | None, frames: list[int]) -> Comp | None:
    if table is None:
        return None
    if ("nuke" in table) == ("blender" in table):
        raise _fail(file, "[comp] needs exactly one of nuke (a .nk script) or blender (a .blend file)")
    app = "nuke" if "nuke" in table else "blender"
    scene = _path(file, table[app], f"comp.{app}")
    if not scene.is_file():
        raise _fail(file, f"comp.{app} {scene}: no such file")
    for key in ("write", "version"):
        if key in table and app != "nuke":
            raise _fail(file, f"comp.{key} is for a Nuke comp; remove it for comp.blender")
    for key in ("write", "exe", "version"):
        if key in table and not (isinstance(table[key], str) and table[key]):
            raise _fail(file, f"comp.{key} must be a non-empty string")
    if frames != list(range(frames[0], frames[-1] + 1)):
        raise _fail(file, "[comp] renders whole frame ranges; give shot.frames without gaps")
    return Comp(app=app, scene=scene, write=table.get("write", ""), exe=table.get("exe", ""),
                version=table.get("version", ""))
