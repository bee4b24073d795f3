"""The add-on's bpy-free helpers (bake_plan, exr_header) against the real engine: its schema, the per-face sizes
its header records, the windows of the files it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from blender_comp import engine_json, run_engine
from dfl_blender import bake_plan

from dfl_host.exr_header import Box, ExrHeader, ExrHeaderError, read_header


def test_bundled_schema_is_the_engines(engine_exe: str) -> None:
    """The add-on builds its properties and group inputs from schema.json; it must be what the engine says."""
    assert bake_plan.load_schema() == engine_json(engine_exe, "schema"), \
        "the engine's schema changed: .venv/bin/dfl-vfx schema > blender_addon/dfl_blender/schema.json"


def test_setting_specs_split_live_from_rebake() -> None:
    specs = {spec.name: spec for spec in bake_plan.setting_specs(bake_plan.load_schema())}
    assert [name for name, spec in specs.items() if spec.live] == ["erode", "blur", "opacity", "face_exposure"]
    assert not set(bake_plan.HOST_OWNED) & set(specs)
    assert specs["blur"].minimum == 0 and specs["blur"].maximum == 400 and specs["blur"].default == 25.0
    assert specs["face_type"].items[0] == bake_plan.ENGINE_DEFAULT_ITEM == specs["face_type"].default
    assert specs["color_transfer"].kind == "enum" and "rct" in specs["color_transfer"].items
    assert specs["ocio_config"].kind == "path" and specs["mask_mode"].kind == "text"


def test_engine_settings() -> None:
    specs = bake_plan.setting_specs(bake_plan.load_schema())
    settings = bake_plan.engine_settings(specs, {"face_type": "default", "mask_mode": " hull ", "batch": 4.0,
                                                 "blur": 40, "device": ""})
    assert settings == {"mask_mode": "hull", "batch": 4, "blur": 40.0, "layers": ["rgba", "matte", "raw"],
                        "layer_window": "display"}


@pytest.mark.parametrize(("path", "pattern"), [
    ("/p/plate.1001.exr", "/p/plate.####.exr"), ("/p/sh010_v2.0042.EXR", "/p/sh010_v2.####.EXR"),
    ("/p/plate_1001.exr", "/p/plate_####.exr"), ("/p/7.exr", "/p/#.exr")])
def test_plate_pattern(path: str, pattern: str) -> None:
    assert bake_plan.plate_pattern(path) == pattern
    assert bake_plan.frame_file(pattern, 1001).endswith("1001" + pattern[-4:]) or pattern.endswith("#.exr")


@pytest.mark.parametrize(("path", "problem"), [("/p/plate.exr", "not an image sequence"),
                                                ("/p/plate.1001.png", "not an EXR sequence"),
                                                ("", "not an EXR sequence")])
def test_plate_pattern_refuses(path: str, problem: str) -> None:
    with pytest.raises(bake_plan.BakeError, match=problem):
        bake_plan.plate_pattern(path)


def test_frames_and_layers_file() -> None:
    assert bake_plan.frame_file("/c/plate.####.exr", 7) == "/c/plate.0007.exr"
    assert bake_plan.frame_list([1005, 1001, 1002, 1003, 1010, 1011]) == "1001-1003,1005,1010-1011"
    assert bake_plan.layers_file("/c/plate.1001.exr") == "/c/layers/plate.1001.exr"


def test_live_sizes_match_the_engines_own(engine_exe: str, demo_plate: Path, model: Path, tmp_path: Path) -> None:
    """The engine records, per face, the erode/clip radii and blur sigma it used; Blender's sizes follow them
    (radii to the nearest whole pixel, Blender's Gaussian size being 3 sigma)."""
    out = tmp_path / "swap"
    run_engine(engine_exe, "swap", str(demo_plate / "plate.####.exr"), f"--model={model}", f"--out={out}",
               "--frames=1002", "--erode=10", "--blur=40", "--mask-mode=hull", "--layers=rgba,matte,raw",
               "--layer-window=display", "--no-progress")
    faces = read_header(str(out / "plate.1002.exr")).json_attribute("dfl_vfx:faces")
    assert len(faces) == 1
    face = faces[0]
    sizes = bake_plan.live_sizes(10, 40, face["px_per_unit"])
    assert sizes.erode_px == round(face["erode_px"]) and sizes.clip_px == round(face["clip_px"])
    assert sizes.blur_size_px == pytest.approx(3 * face["blur_sigma"], rel=1e-12)
    assert bake_plan.largest_face_px_per_unit(faces) == face["px_per_unit"]
    layers = read_header(bake_plan.layers_file(str(out / "plate.1002.exr")))
    assert layers.data_window == layers.display_window == Box(0, 0, 1919, 1079)  # --layer-window display
    assert {"matte.A", "raw.R", "raw.G", "raw.B", "raw.A"} <= set(layers.channels)
    plate = read_header(str(demo_plate / "plate.1002.exr"))
    assert plate.data_window == Box(-64, -64, 1983, 1143) and plate.display_window == Box(0, 0, 1919, 1079)
    assert bake_plan.layer_offset(plate, layers) == (0.0, 0.0)  # symmetric overscan: centred alike


def test_layer_offset_for_asymmetric_overscan() -> None:
    display = Box(0, 0, 1919, 1079)
    layers = ExrHeader(display, display, ())
    assert bake_plan.layer_offset(ExrHeader(Box(-64, -20, 1983, 1123), display, ()), layers) == (0.0, 12.0)
    assert bake_plan.layer_offset(ExrHeader(Box(-100, 0, 1919, 1079), display, ()), layers) == (50.0, 0.0)
    assert bake_plan.layer_offset(ExrHeader(display, display, ()), layers) == (0.0, 0.0)


def test_header_errors(demo_plate: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.exr"
    cut.write_bytes((demo_plate / "plate.1001.exr").read_bytes()[:200])
    with pytest.raises(ExrHeaderError, match="cut.exr: header cut short"):
        read_header(str(cut))
    text = tmp_path / "notes.exr"
    text.write_text(json.dumps({"not": "an exr"}))
    with pytest.raises(ExrHeaderError, match="not an OpenEXR file"):
        read_header(str(text))
