"""Swap settings from schema-named values: the one place the CLI and `serve` turn user values into SwapSettings."""

from __future__ import annotations

from typing import Any

from dfl_vfx.merge.merger import MergeSettings
from dfl_vfx.schema import MERGE_SETTING_NAMES, SWAP_SETTINGS, SettingError, validate_settings
from dfl_vfx.swap.engine import SwapSettings


def swap_settings(model: str, values: dict[str, Any], threads: int = 0) -> SwapSettings:
    """``values`` by setting name (unset or None: the declared default), validated by the schema.

    Errors are :class:`~dfl_vfx.schema.SettingError` naming the setting; each front end words them its own way.
    """
    checked = validate_settings({name: value for name, value in values.items() if value is not None})
    merged = {name: setting.default for name, setting in SWAP_SETTINGS.items()} | checked
    layers = ("rgba",) + tuple(layer for layer in merged.pop("layers") if layer != "rgba")
    merge = MergeSettings(**{name: merged.pop(name) for name in MERGE_SETTING_NAMES})
    if "xseg" in layers and not merge.xseg_model:
        raise SettingError("layers", ",".join(layers), "the xseg layer needs xseg_model (an XSeg model folder)")
    return SwapSettings(model=model, merge=merge, layers=layers, threads=threads, **merged)
