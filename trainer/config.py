"""Training configuration: defaults, a TOML file, command-line overrides, validation, the resolved record.

A config file is TOML with the training options at the top level and the network in a ``[model]`` table::

    src = "shot/src_faces"
    dst = "shot/dst_faces"
    batch_size = 8
    max_time = "8h"
    [model]
    archi = "liae-ud"
    resolution = 224
    face_type = "wf"

Command-line flags and ``--set key=value`` override the file (``--set model.ae_dims=512``). Unknown keys and
out-of-range values are refused before anything starts. The resolved config is written beside the model.

Which model options were given (and how: ``--face-type``, ``face_type in shot.toml``) is recorded in
``TrainConfig.model_given``: a resumed model keeps its own options and refuses only given ones that contradict it,
and a new model takes its face type from the facesets unless one was given (see ``trainer.model_options``).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfl_vfx.errors import DflError
from dfl_vfx.models.config import PRESETS, ModelConfig

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s?)?\s*$")


def parse_duration(value: str | float | int, option: str) -> float:
    """Seconds from 90, "90s", "25m", "8h", "1h30m"; 0 means no limit."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match or not any(match.groups()):
            raise DflError(f"{option} {value!r} is not a duration; use e.g. 90s, 25m, 8h or 1h30m")
        h, m, s = (float(g) if g else 0.0 for g in match.groups())
        seconds = h * 3600 + m * 60 + s
    if seconds < 0:
        raise DflError(f"{option} must be 0 (no limit) or positive, got {value!r}")
    return seconds


@dataclass
class TrainConfig:
    """Everything `dfl-vfx train` can be told. Defaults follow DeepFaceLab's SAEHD where it has one."""

    src: str = ""
    dst: str = ""
    model_dir: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    # schedule
    batch_size: int = 8
    max_iters: int = 0  # 0: no limit
    max_time: float = 0.0  # seconds; 0: no limit
    save_every: float = 25 * 60.0  # seconds between checkpoints (DFL auto-saves every 25 minutes)
    snapshot_every: int = 0  # iterations between kept, dated snapshots; 0: none
    preview_every: int = 200  # iterations between preview PNGs
    log_every: int = 10  # iterations between log lines
    # optimiser
    optimizer: str = "adabelief"
    lr: float = 5e-5
    lr_dropout: bool = False
    clipgrad: bool = False
    # loss and samples
    masked_training: bool = True
    eyes_mouth_prio: bool = False
    uniform_yaw: bool = False
    blur_out_mask: bool = False
    random_warp: bool = True
    random_hsv_power: float = 0.0
    random_src_flip: bool = False
    random_dst_flip: bool = True
    ct_mode: str = "none"
    face_style_power: float = 0.0
    bg_style_power: float = 0.0
    gan_power: float = 0.0
    gan_patch_size: int = 0  # 0: resolution // 8
    gan_dims: int = 16
    true_face_power: float = 0.0
    pretrain: bool = False
    # starting point
    init_from: str = ""
    reinit_inter: bool = False
    # machine
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    channels_last: bool = True  # on CUDA
    compile: bool = False
    seed: int = 0
    deterministic: bool = False
    # model option -> how it was given ("--face-type", "face_type in shot.toml"); not saved, not compared
    model_given: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    CHOICES = {
        "optimizer": ("adabelief", "adam", "rmsprop"),
        "ct_mode": ("none", "rct"),
        "device": ("auto", "cpu", "cuda"),
        "precision": ("auto", "fp32", "bf16", "fp16"),
    }
    RANGES = {
        "batch_size": (1, 4096),
        "max_iters": (0, 10**12),
        "snapshot_every": (0, 10**12),
        "preview_every": (0, 10**12),
        "log_every": (1, 10**12),
        "lr": (1e-8, 1.0),
        "random_hsv_power": (0.0, 0.3),
        "face_style_power": (0.0, 100.0),
        "bg_style_power": (0.0, 100.0),
        "gan_power": (0.0, 5.0),
        "gan_patch_size": (0, 640),
        "gan_dims": (4, 512),
        "true_face_power": (0.0, 1.0),
    }
    DURATIONS = ("max_time", "save_every")

    def validate(self, model_final: bool = False) -> None:
        """Refuse out-of-range values with a message naming the option.

        Checks that depend on the model's archi run when it was given or ``model_final`` (a resumed model's
        options are only known once its folder is read).
        """
        for name, choices in self.CHOICES.items():
            if getattr(self, name) not in choices:
                raise DflError(f"{name} {getattr(self, name)!r} is unknown; use one of {', '.join(choices)}")
        for name, (lo, hi) in self.RANGES.items():
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise DflError(f"{name} {value} is out of range {lo}..{hi}")
        if self.save_every <= 0:
            raise DflError("save_every must be positive (e.g. 25m)")
        archi_known = model_final or "archi" in self.model_given
        if self.true_face_power > 0 and archi_known and self.model.base != "df":
            raise DflError("true_face_power works with df models only (DeepFaceLab's TrueFace)")
        self.model.validate()

    def effective(self) -> TrainConfig:
        """The config with pretrain's forced settings applied (DeepFaceLab semantics)."""
        if not self.pretrain:
            return self
        return dataclasses.replace(
            self, random_warp=False, random_src_flip=True, random_dst_flip=True, gan_power=0.0, lr_dropout=False,
            face_style_power=0.0, bg_style_power=0.0, uniform_yaw=True,
        )

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in _NOT_OPTIONS}
        data["model"] = self.model.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        cfg = cls()
        apply_overrides(cfg, data, source)
        return cfg


_NOT_OPTIONS = ("model", "model_given")  # fields that are not top-level options
_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig) if f.name != "model_given"}


def _coerce(value: Any, default: Any, key: str, source: str) -> Any:
    kind = type(default)
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        if kind is bool:
            if text.lower() not in ("y", "n", "yes", "no", "true", "false", "1", "0", "on", "off"):
                raise DflError(f"{source}: {key} needs y or n, got {value!r}")
            return text.lower() in ("y", "yes", "true", "1", "on")
        try:
            return kind(text)
        except ValueError:
            raise DflError(f"{source}: {key} needs a {kind.__name__}, got {value!r}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DflError(f"{source}: {key} needs a {kind.__name__}, got {value!r}")
    return value


def _given_label(key: str, source: str, spelled: dict[str, str]) -> str:
    """How the user gave model option ``key``: as spelled on the command line, else ``KEY in FILE``."""
    if key in spelled:
        return spelled[key]
    return f"model.{key}" if source == "command line" else f"{key} in {source}"


def apply_overrides(cfg: TrainConfig, data: dict[str, Any], source: str,
                    spelled: dict[str, str] | None = None) -> None:
    """Set options from a (possibly nested) mapping; unknown keys are refused.

    ``spelled`` maps model keys (and ``preset``) to how the command line gave them, e.g. ``--face-type``, for
    messages about a given option.
    """
    spelled = spelled or {}
    for key, value in data.items():
        if key == "model":
            if not isinstance(value, dict):
                raise DflError(f"{source}: [model] must be a table of model options")
            merged = cfg.model.to_dict() | value
            cfg.model = ModelConfig.from_dict(merged)
            cfg.model_given.update({k: _given_label(k, source, spelled) for k in value})
            continue
        if key == "preset":
            if value not in PRESETS:
                raise DflError(f"{source}: unknown preset {value!r}; use one of {', '.join(PRESETS)}")
            cfg.model = dataclasses.replace(PRESETS[value])
            # a preset is a network shape; the face type stays the facesets' unless given on its own
            label = spelled.get("preset", f"preset {value!r}" + ("" if source == "command line" else f" in {source}"))
            cfg.model_given = {k: label for k in cfg.model.to_dict() if k != "face_type"}
            continue
        if key not in _FIELDS or key.isupper():
            valid = ", ".join(sorted(k for k in _FIELDS if k != "model"))
            raise DflError(f"{source}: unknown option {key!r}; valid options: {valid}, [model]")
        default = getattr(TrainConfig(), key)
        if key in TrainConfig.DURATIONS:
            setattr(cfg, key, parse_duration(value, key))
        else:
            setattr(cfg, key, _coerce(value, default, key, source))


def parse_set(items: list[str]) -> dict[str, Any]:
    """``key=value`` strings (``model.ae_dims=512`` for the model table) to a nested mapping."""
    data: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise DflError(f"--set {item!r}: expected KEY=VALUE, e.g. --set batch_size=4")
        key, value = (part.strip() for part in item.split("=", 1))
        if key.startswith("model."):
            data.setdefault("model", {})[key[6:]] = _model_value(key[6:], value)
        else:
            data[key] = value
    return data


def _model_value(key: str, value: str) -> Any:
    default = getattr(ModelConfig(), key, None)
    if isinstance(default, int) and not isinstance(default, bool):
        try:
            return int(value)
        except ValueError:
            raise DflError(f"--set model.{key}: needs a whole number, got {value!r}") from None
    return value


def load_config(path: str | Path | None, overrides: dict[str, Any],
                spelled: dict[str, str] | None = None) -> TrainConfig:
    """Defaults, then the TOML file (when given), then ``overrides``; validated.

    ``spelled``: how the command line gave model options (see :func:`apply_overrides`).
    """
    cfg = TrainConfig()
    if path:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DflError(f"--config {path}: file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise DflError(f"--config {path}: not valid TOML ({exc})") from None
        apply_overrides(cfg, data, str(path))
    apply_overrides(cfg, overrides, "command line", spelled)
    cfg.validate()
    return cfg
