"""The swap settings, declared once: type, default, range, choices, units, help, and live or re-bake.

Every front end is generated from :data:`SWAP_SETTINGS`: validation (:func:`validate_setting`), the CLI's argparse
options (:func:`add_arguments`), ``dfl-vfx schema`` and the server's ``schema`` method (:func:`schema_document`),
and the Nuke knobs and Blender properties built from that JSON. A setting is **live** when a host can redo it from
the baked layers alone (no network, no re-bake); every other change needs a re-bake.

Errors name the setting (``face_scale``), never a CLI flag: :class:`SettingError` carries the name, the value and
the problem, and each front end words it with its own label (``--face-scale`` on the CLI, ``Face scale`` in Nuke).
This module imports nothing heavy, so hosts and the CLI's ``--help`` load it cheaply.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dfl_vfx.errors import DflError

SCHEMA_FORMAT = "dfl_vfx.schema"
SCHEMA_VERSION = 1

COLOR_TRANSFER_CHOICES = ("none", "rct", "lct", "mkl", "mkl-m", "idt", "idt-m", "sot-m", "mix-m")
INTERPOLATION_CHOICES = ("bilinear", "bicubic", "lanczos")
SHARPEN_CHOICES = ("none", "box", "gaussian")
LAYER_CHOICES = ("rgba", "mask", "face", "raw", "matte", "xseg")
LAYER_WINDOW_CHOICES = ("face", "display")
BACKEND_CHOICES = ("auto", "onnxruntime", "tensorrt", "torch")
MERGE_BACKEND_CHOICES = ("auto", "native", "reference", "cuda")
FACE_TYPE_CHOICES = ("h", "mf", "f", "wf", "head")
DFL_ERODE_UNITS = "DeepFaceLab px (face at 4x model resolution)"


class SettingError(DflError):
    """A setting's value is wrong. ``str()`` names the setting; :meth:`worded` uses a front end's own label."""

    def __init__(self, setting: str, value: object, problem: str) -> None:
        self.setting = setting
        self.value = value
        self.problem = problem
        super().__init__(self.worded(setting))

    def worded(self, label: str) -> str:
        """The one-line message with ``label`` (``face_scale``, ``--face-scale`` or ``Face scale``) in front."""
        return f"{label} {_show(self.value)}: {self.problem}"


def _show(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class Setting:
    """One swap setting as every front end sees it."""

    name: str
    kind: str  # float | int | choice | list | text | path
    default: Any
    label: str  # what a host shows
    help: str
    group: str  # merge | model | output | colour | run
    live: bool = False  # a host redoes it from the layers; False: changing it needs a re-bake
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None
    units: str | None = None
    optional: bool = False  # None allowed (the engine then decides, e.g. from the file)
    check: Callable[[Any], None] | None = field(default=None, compare=False, repr=False)  # extra rule, raises

    @property
    def cli_flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def coerce(self, value: Any) -> Any:
        """The value in this setting's type, or a :class:`SettingError`; ranges and choices are checked."""
        if value is None:
            if self.optional:
                return None
            raise SettingError(self.name, value, "a value is required")
        if self.kind == "float":
            number = _number(self, value, float)
            if not math.isfinite(number):
                raise SettingError(self.name, value, "must be a finite number")
            value = number
        elif self.kind == "int":
            value = _number(self, value, int)
        elif self.kind == "list":
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)):
                raise SettingError(self.name, value, "must be a comma list")
            value = tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))
            unknown = [item for item in value if self.choices and item not in self.choices]
            if unknown:
                raise SettingError(self.name, ",".join(value),
                                   f"unknown {unknown[0]!r}; choose from {', '.join(self.choices or ())}")
        else:
            if not isinstance(value, str):
                raise SettingError(self.name, value, "must be text")
            value = value.strip()
        if self.kind == "choice" and self.choices and value not in self.choices:
            raise SettingError(self.name, value, f"unknown; use {', '.join(self.choices)}")
        if self.range is not None and not self.range[0] <= value <= self.range[1]:
            units = f" ({self.units})" if self.units else ""
            raise SettingError(self.name, value,
                               f"out of range; use {_show(self.range[0])}..{_show(self.range[1])}{units}")
        if self.check is not None:
            self.check(value)
        return value

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "type": self.kind, "default": _jsonable(self.default),
                                 "label": self.label, "help": self.help, "group": self.group, "live": self.live,
                                 "optional": self.optional, "cli": self.cli_flag}
        if self.range is not None:
            entry["range"] = [self.range[0], self.range[1]]
        if self.choices is not None:
            entry["choices"] = list(self.choices)
        if self.units is not None:
            entry["units"] = self.units
        return entry


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _number(setting: Setting, value: Any, kind: type) -> Any:
    if isinstance(value, bool):
        raise SettingError(setting.name, value, f"must be {'an integer' if kind is int else 'a number'}")
    try:
        number = kind(value) if not isinstance(value, str) else kind(float(value)) if kind is float else int(value)
    except (TypeError, ValueError):
        raise SettingError(setting.name, value, f"must be {'an integer' if kind is int else 'a number'}") from None
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise SettingError(setting.name, value, "must be an integer")
    return number


def _check_mask_mode(value: str) -> None:
    from dfl_vfx.merge.masks import mask_names

    try:
        mask_names(value)
    except SettingError:
        raise
    except DflError as exc:  # the parser words its problem after the value
        problem = str(exc).split(": ", 1)[-1]
        raise SettingError("mask_mode", value, problem) from None


def _declare(*settings: Setting) -> dict[str, Setting]:
    return {s.name: s for s in settings}


SWAP_SETTINGS: dict[str, Setting] = _declare(
    # merge: what the merger does with the network's face
    Setting("mask_mode", "text", "learned-prd*learned-dst", "Mask mode",
            "which masks make the matte: full, hull, learned-prd, learned-dst, xseg-prd, xseg-dst combined with * "
            "and + (DeepFaceLab's 0..9 also accepted; xseg masks need xseg_model)", "merge", check=_check_mask_mode),
    Setting("erode", "float", 0.0, "Erode", "shrink (>0) or grow (<0) the matte", "merge", live=True,
            range=(-400, 400), units=DFL_ERODE_UNITS),
    Setting("blur", "float", 25.0, "Blur", "soften the matte's edge", "merge", live=True, range=(0, 400),
            units=DFL_ERODE_UNITS),
    Setting("color_transfer", "choice", "rct", "Colour transfer",
            "match the face's colour to the plate's under the matte", "merge", choices=COLOR_TRANSFER_CHOICES),
    Setting("face_scale", "float", 0.0, "Face scale", "scale the pasted face", "merge", range=(-50, 50),
            units="percent"),
    Setting("interpolation", "choice", "bicubic", "Interpolation", "warp filter back into the plate", "merge",
            choices=INTERPOLATION_CHOICES),
    Setting("sharpen_mode", "choice", "none", "Sharpen mode", "filter for sharpen amount", "merge",
            choices=SHARPEN_CHOICES),
    Setting("sharpen_amount", "float", 0.0, "Sharpen amount", "sharpen (>0) or blur (<0) the face", "merge",
            range=(-100, 100)),
    Setting("motion_blur", "float", 0.0, "Motion blur",
            "blur the face along its landmark motion (needs a faceset; one face per frame)", "merge",
            range=(0, 100)),
    Setting("seed", "int", 0, "Seed", "random seed of the colour transfers that sample (idt, idt-m, sot-m, mix-m)",
            "merge",
            range=(0, 2**31 - 1)),
    Setting("opacity", "float", 1.0, "Opacity", "how much of the face is laid over the plate (the matte times it)",
            "merge", live=True, range=(0, 1)),
    Setting("face_exposure", "float", 0.0, "Face exposure",
            "grade the face before the composite: its plate-space RGB times 2**stops (an exposure change on a "
            "scene-linear plate)", "merge", live=True, range=(-4, 4), units="stops"),
    Setting("xseg_model", "path", None, "XSeg model",
            "XSeg model folder (dfl-vfx xseg train) for the xseg-prd and xseg-dst mask modes and the xseg layer; "
            "trained on the swap model's face type", "merge", optional=True),
    # model: which network runs, and where
    Setting("backend", "choice", "auto", "Backend", "runtime: auto picks TensorRT, then ONNX Runtime", "model",
            choices=BACKEND_CHOICES),
    Setting("device", "text", "auto", "Device", "auto, cpu or cuda:N", "model"),
    Setting("batch", "int", 8, "Batch", "faces per inference call (halved on GPU out-of-memory)", "model",
            range=(1, 1024)),
    Setting("face_type", "choice", None, "Face type",
            "face type of a model that does not say (an external .dfm)", "model",
            choices=FACE_TYPE_CHOICES, optional=True),
    Setting("merge_backend", "choice", "auto", "Merge backend",
            "where warp, matte and composite run: auto = CUDA beside a GPU model, else the C++ core", "model",
            choices=MERGE_BACKEND_CHOICES),
    # output
    Setting("layers", "list", ("rgba", "mask", "face"), "Layers", "layers written with the swapped plate",
            "output", choices=LAYER_CHOICES),
    Setting("layer_window", "choice", "face", "Layer window",
            "data window of the layers file OUT/layers/NAME.FRAME.exr: face = the faces' boxes (hosts that honour "
            "data windows, Nuke), display = the display window (hosts that ignore them, Blender)", "output",
            choices=LAYER_WINDOW_CHOICES),
    # colour
    Setting("colorspace", "text", None, "Plate colourspace",
            "the plate's OCIO colourspace (default: the file's oiio:ColorSpace, else ACEScg)", "colour",
            optional=True),
    Setting("ocio_config", "path", None, "OCIO config",
            "OCIO config path or URI (default: $OCIO, else the built-in studio config)", "colour", optional=True),
)

MERGE_SETTING_NAMES = ("mask_mode", "erode", "blur", "color_transfer", "face_scale", "interpolation",
                       "sharpen_mode", "sharpen_amount", "motion_blur", "seed", "opacity", "face_exposure",
                       "xseg_model")


def validate_setting(name: str, value: Any) -> Any:
    """``value`` checked and coerced by the declaration of ``name``."""
    try:
        setting = SWAP_SETTINGS[name]
    except KeyError:
        raise DflError(f"unknown setting {name!r}; known: {', '.join(SWAP_SETTINGS)}") from None
    return setting.coerce(value)


def validate_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Every value of ``values`` checked; unknown names are refused (a typo must not pass silently)."""
    return {name: validate_setting(name, value) for name, value in values.items()}


def defaults() -> dict[str, Any]:
    return {name: setting.default for name, setting in SWAP_SETTINGS.items()}


def schema_document() -> dict[str, Any]:
    """What ``dfl-vfx schema`` prints and the server's ``schema`` method returns."""
    import dfl_vfx

    return {"format": SCHEMA_FORMAT, "version": SCHEMA_VERSION, "dfl_vfx_version": dfl_vfx.__version__,
            "settings": [setting.to_json() for setting in SWAP_SETTINGS.values()]}


def cli_help(setting: Setting) -> str:
    """argparse help: what it does, what it takes, its default, and whether a host can change it live."""
    if setting.range is not None:
        takes = f"{_show(setting.range[0])}..{_show(setting.range[1])}" + (f" {setting.units}" if setting.units else "")
    elif setting.kind == "list" and setting.choices is not None:
        takes = "comma list of " + ", ".join(setting.choices)
    else:
        takes = ""
    default = setting.default
    if default is None:
        shown = "from the file or model"
    else:
        shown = ",".join(default) if isinstance(default, tuple) else default
    text = f"{setting.help}" + (f"; {takes}" if takes else "")
    if "(default" not in setting.help:  # some say what the default depends on themselves
        text += f" (default {_show(shown)})"
    return text.replace("%", "%%")


def add_cli_arguments(group: Any, group_name: str) -> None:
    """The options of one schema group on an argparse group: ``--face-scale`` for ``face_scale``.

    Values stay text with a None default ("not given"), so the schema checks them and its error names the option.
    """
    for setting in SWAP_SETTINGS.values():
        if setting.group == group_name:
            choice = setting.kind == "choice" and setting.choices
            metavar = "|".join(setting.choices or ()) if choice else setting.kind.upper()
            group.add_argument(setting.cli_flag, dest=setting.name, default=None, metavar=metavar,
                               help=cli_help(setting))


def cli_label(error: SettingError) -> str:
    """The CLI's wording: the setting's flag."""
    setting = SWAP_SETTINGS.get(error.setting)
    return error.worded(setting.cli_flag if setting else error.setting)
