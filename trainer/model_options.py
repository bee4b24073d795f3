"""Which model a training run trains: a resumed model's own options, or a new model fitted to its facesets.

A model folder that holds a checkpoint (or, before the first save, a ``config.json``) keeps the options it was
created with; only options the user gave (``TrainConfig.model_given``) are compared with it, and one that
contradicts it is refused, naming the option, the model's value and what to do. A new model takes its face type
from the facesets when none is given (both must agree). Either way the facesets must hold the model's face type,
be at least its resolution and be in the working colourspace the model is trained, previewed and exported in.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dfl_vfx.color.ocio import WORKING_SPACE
from dfl_vfx.errors import DflError
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.faceset.faceset import FacesetInfo
from dfl_vfx.models.checkpoint import CONFIG_JSON, model_config_of
from dfl_vfx.models.config import RESOLUTION_RANGE, ModelConfig
from trainer.config import TrainConfig

log = logging.getLogger("dfl_vfx.train")

SHORT_FACE_TYPES = {FaceType.HALF: "h", FaceType.MID_FULL: "mf", FaceType.FULL: "f", FaceType.WHOLE_FACE: "wf",
                    FaceType.HEAD: "head"}


@dataclass
class FacesetSummary:
    """What the model options are checked against: a faceset's role, folder and description."""

    role: str  # "src" or "dst"
    root: Path
    info: FacesetInfo


def short_face_type(name: str) -> str:
    """``whole_face`` -> ``wf``: the spelling of ``--face-type``."""
    face_type = FaceType.parse(name)
    return SHORT_FACE_TYPES.get(face_type, face_type.cli_name)


def stored_model_options(model_dir: Path, state: dict[str, Any] | None) -> tuple[ModelConfig | None, str]:
    """The model options a folder already has, and where they were read (checkpoint, else config.json)."""
    if state is not None:
        return model_config_of(state, str(model_dir)), "checkpoint"
    config_json = model_dir / CONFIG_JSON
    if not config_json.is_file():
        return None, ""
    try:  # written before the first checkpoint of a run that was killed early: the options it was started with
        return ModelConfig.from_dict(json.loads(config_json.read_text(encoding="utf-8"))["model"]), CONFIG_JSON
    except (OSError, ValueError, KeyError, TypeError, DflError) as exc:
        log.warning("ignoring %s (unreadable: %s); no checkpoint yet, so this is a new model", config_json, exc)
        return None, ""


def _same(key: str, given: ModelConfig, stored: ModelConfig) -> bool:
    if key == "face_type":
        return FaceType.parse(given.face_type) == FaceType.parse(stored.face_type)
    if key == "archi":
        return given.archi.strip().lower() == stored.archi.strip().lower()
    if key == "d_mask_dims":  # 0 means the default width: compare the widths it resolves to in the stored model
        return dataclasses.replace(stored, d_mask_dims=given.d_mask_dims).mask_dims == stored.mask_dims
    return getattr(given, key) == getattr(stored, key)


def _shown(key: str, model: ModelConfig) -> str:
    if key == "face_type":
        return f"{short_face_type(model.face_type)} ({model.face_type_name})"
    if key == "d_mask_dims":
        return str(model.mask_dims)
    return str(getattr(model, key))


def resumed_options(cfg: TrainConfig, stored: ModelConfig, source: str) -> ModelConfig:
    """A resumed model's own options; a given option that contradicts them is a one-line DflError."""
    for key, label in cfg.model_given.items():
        if not _same(key, cfg.model, stored):
            raise DflError(
                f"{label} asks for {key} {_shown(key, cfg.model)}, but the model in {cfg.model_dir} has {key} "
                f"{_shown(key, stored)} (its {source}); drop {label} to resume with the model's own options, or "
                "give another --model-dir for a new model"
            )
    return stored


def new_model_options(cfg: TrainConfig, facesets: list[FacesetSummary]) -> ModelConfig:
    """A new model's options: as given, with the face type of the facesets unless one was given."""
    model = cfg.model
    if "face_type" in cfg.model_given:
        return model
    types = {f.info.face_type for f in facesets}
    if len(types) > 1:
        held = " but ".join(f"the {f.role} faceset {f.root} holds {f.info.face_type} faces" for f in facesets)
        raise DflError(f"{held}; extract both with the same --face-type (the model's face type comes from them)")
    return dataclasses.replace(model, face_type=short_face_type(types.pop())).validate()


def _largest_resolution(model: ModelConfig, size: int) -> int | None:
    multiple = 32 if "d" in model.options else 16
    resolution = min(size, RESOLUTION_RANGE[1]) // multiple * multiple
    return resolution if resolution >= RESOLUTION_RANGE[0] else None


def check_facesets(cfg: TrainConfig, model: ModelConfig, facesets: list[FacesetSummary], resumed: bool) -> None:
    """Refuse facesets the model cannot train on: other face type, smaller faces, another colourspace."""
    wanted = model.face_type_name
    for f in facesets:
        info = f.info
        if info.colorspace != WORKING_SPACE:
            raise DflError(
                f"{f.role} faceset {f.root} holds faces in {info.colorspace!r}, but models are trained, previewed "
                f"and exported in the working space {WORKING_SPACE}; extract (or import) the faceset again "
                f"with colorspace {WORKING_SPACE}"
            )
        if FaceType.parse(info.face_type) != FaceType.parse(wanted):
            if resumed:
                hint = (f"extract it with --face-type {short_face_type(wanted)} for this model, or give another "
                        "--model-dir for a new model")
            else:
                label = cfg.model_given.get("face_type", "--face-type")
                hint = (f"extract it with --face-type {short_face_type(wanted)}, or drop {label} to train on the "
                        f"facesets' {info.face_type}")
            raise DflError(f"{f.role} faceset {f.root} holds {info.face_type} faces but the model is {wanted}; "
                           f"{hint}")
        if info.size < model.resolution:
            if resumed:
                hint = f"extract it with --size {model.resolution} or more for this model"
            else:
                fits = _largest_resolution(model, info.size)
                hint = f"extract it with --size {model.resolution} or more"
                if fits:
                    hint += f", or give --resolution {fits}"
                    if "resolution" not in cfg.model_given:
                        hint += f" (the default is {model.resolution})"
            raise DflError(
                f"{f.role} faceset {f.root} has {info.size} px faces, smaller than the model's {model.resolution} "
                f"px; {hint}"
            )


def resolve_model_options(cfg: TrainConfig, facesets: list[FacesetSummary], state: dict[str, Any] | None
                          ) -> tuple[ModelConfig, bool]:
    """The model this run trains and whether it is resumed (``state``: the folder's checkpoint, if any)."""
    stored, source = stored_model_options(Path(cfg.model_dir), state)
    if stored is not None:
        model = resumed_options(cfg, stored, source)
    else:
        model = new_model_options(cfg, facesets)
    check_facesets(cfg, model, facesets, resumed=stored is not None)
    return model, stored is not None
