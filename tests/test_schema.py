"""The swap settings' schema: one declaration feeding validation, the CLI and hosts; golden JSON."""

import json
from pathlib import Path

import pytest

from dfl_vfx.cli.main import main
from dfl_vfx.errors import DflError
from dfl_vfx.merge import ops
from dfl_vfx.merge.color_transfer import COLOR_TRANSFER_MODES
from dfl_vfx.merge.merger import LAYERS, SHARPEN_MODES, MergeSettings
from dfl_vfx.schema import (
    COLOR_TRANSFER_CHOICES,
    SWAP_SETTINGS,
    SettingError,
    cli_label,
    schema_document,
    validate_setting,
    validate_settings,
)

GOLDEN = Path(__file__).parent / "golden" / "schema.json"


def test_schema_matches_the_golden_file() -> None:
    document = schema_document()
    document.pop("dfl_vfx_version")
    expected = json.loads(GOLDEN.read_text())
    assert document == expected, "schema changed: if intended, regenerate tests/golden/schema.json " \
                                 "(dfl-vfx schema, without dfl_vfx_version) and say so in the commit"


def test_cli_prints_the_schema(capsys: pytest.CaptureFixture) -> None:
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["format"] == "dfl_vfx.schema"
    assert [s["name"] for s in printed["settings"]] == list(SWAP_SETTINGS)


def test_declared_defaults_and_choices_are_the_engines() -> None:
    merge = MergeSettings()
    for name in ("mask_mode", "erode", "blur", "color_transfer", "face_scale", "interpolation", "sharpen_mode",
                 "sharpen_amount", "motion_blur", "seed", "opacity", "face_exposure"):
        assert SWAP_SETTINGS[name].default == getattr(merge, name), name
    assert set(COLOR_TRANSFER_CHOICES) == {"none", *COLOR_TRANSFER_MODES}
    assert SWAP_SETTINGS["interpolation"].choices == tuple(ops.INTERPOLATIONS)
    assert SWAP_SETTINGS["sharpen_mode"].choices == tuple(SHARPEN_MODES)
    assert SWAP_SETTINGS["layers"].choices == tuple(LAYERS)


def test_live_settings_are_the_ones_a_host_redoes() -> None:
    assert sorted(name for name, s in SWAP_SETTINGS.items() if s.live) == ["blur", "erode", "face_exposure", "opacity"]


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("erode", "12.5", 12.5), ("erode", -400, -400.0), ("batch", "4", 4),
    ("layers", "rgba, mask,mask", ("rgba", "mask")),
    ("layers", ["face"], ("face",)), ("face_type", None, None), ("mask_mode", " hull ", "hull"),
])
def test_values_are_coerced(name: str, value: object, expected: object) -> None:
    assert validate_setting(name, value) == expected


@pytest.mark.parametrize(("name", "value", "message"), [
    ("face_scale", 60, "face_scale 60: out of range; use -50..50 (percent)"),
    ("erode", "wide", "erode wide: must be a number"),
    ("erode", float("nan"), "erode nan: must be a finite number"),
    ("batch", 2.5, "batch 2.5: must be an integer"),
    ("batch", True, "batch True: must be an integer"),
    ("color_transfer", "foo", "color_transfer foo: unknown; use none, rct, lct, mkl, mkl-m, idt, idt-m, sot-m, mix-m"),
    ("layers", "rgba,depth", "layers rgba,depth: unknown 'depth'; choose from rgba, mask, face, raw"),
    ("mask_mode", "hull*nose", "mask_mode hull*nose: unknown mask 'nose'"),
    ("blur", None, "blur None: a value is required"),
])
def test_errors_name_the_setting(name: str, value: object, message: str) -> None:
    with pytest.raises(SettingError) as info:
        validate_setting(name, value)
    assert str(info.value).startswith(message)
    assert info.value.setting == name
    assert "--" not in str(info.value)  # no CLI flag in what a Nuke or Blender user reads


def test_each_front_end_words_the_error_with_its_label() -> None:
    with pytest.raises(SettingError) as info:
        validate_setting("face_scale", 75)
    assert cli_label(info.value) == "--face-scale 75: out of range; use -50..50 (percent)"
    assert info.value.worded("Face scale") == "Face scale 75: out of range; use -50..50 (percent)"


def test_unknown_setting_names_are_refused() -> None:
    with pytest.raises(DflError, match="unknown setting 'blurr'"):
        validate_settings({"blur": 3, "blurr": 4})
