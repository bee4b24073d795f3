"""Argument lists for engine and farm commands from schema-named settings, and bake cache names."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dfl_host import SettingError, bake_cache, bake_hash, read_schema, safe_name, swap_command
from dfl_host.commands import chunks, export_command, extract_command, train_command
from dfl_host.schema import Schema
from dfl_vfx.io.image import read_header
from dfl_vfx.schema import schema_document

ENGINE = str(Path(sys.executable).with_name("dfl-vfx"))


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema(schema_document())


def test_swap_arguments_use_the_schema_flags_and_never_a_shell_string(schema: Schema) -> None:
    args = swap_command(schema, "/plates/sh 010/plate.####.exr", "/models/it's.onnx", "/cache/out dir",
                        {"blur": 40.0, "face_scale": -5, "layers": ["rgba", "mask"], "colorspace": None},
                        frames="1001-1050", jobs=3, exe=ENGINE)
    assert args == [ENGINE, "swap", "/plates/sh 010/plate.####.exr", "--model=/models/it's.onnx",
                    "--out=/cache/out dir", "--frames=1001-1050", "--jobs=3", "--blur=40", "--face-scale=-5",
                    "--layers=rgba,mask"]
    with pytest.raises(SettingError) as caught:
        swap_command(schema, "p.####.exr", "m.onnx", "out", {"blurr": 4}, exe=ENGINE)
    assert caught.value.setting == "blurr"


def test_the_built_swap_command_runs_on_the_real_engine(schema: Schema, small_shot, swap_model, facesets,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "chunk"
    args = swap_command(schema, str(small_shot / "plate" / "plate.####.exr"), str(swap_model[1]), str(out),
                        {"blur": 40, "face_scale": 5, "layers": "rgba,mask"}, frames="1005-1005",
                        faceset=str(facesets[1]), progress=False, exe=ENGINE)
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    header = read_header(out / "plate.1005.exr")
    settings = json.loads(header.metadata["dfl_vfx:swap"])["settings"]
    assert (settings["blur"], settings["face_scale"]) == (40, 5)
    assert header.channels == ["R", "G", "B", "A"]
    assert read_header(out / "layers" / "plate.1005.exr").channels == ["mask.A"]


def test_extract_train_export_and_farm_chunks(tmp_path: Path) -> None:
    assert extract_command("/p/a.####.exr", "/f/dst", exe=ENGINE, face_type="f", size=256, smooth=5,
                           frames=None, overwrite=True) == [
        ENGINE, "extract", "/p/a.####.exr", "--out=/f/dst", "--face-type=f", "--size=256", "--smooth=5",
        "--overwrite"]
    assert train_command("/f/src", "/f/dst", "/m/a", exe=ENGINE, preset="quick96", max_time="30m") == [
        ENGINE, "train", "--src=/f/src", "--dst=/f/dst", "--model-dir=/m/a", "--preset=quick96", "--max-time=30m"]
    assert export_command("/m/a", "/m/a.onnx", exe=ENGINE, fp16=True, dfm=False) == [
        ENGINE, "export", "/m/a", "--out=/m/a.onnx", "--fp16"]
    assert chunks(1001, 1010, 4) == ["1001-1004", "1005-1008", "1009-1010"]


def test_the_schema_read_from_the_cli_is_the_engine_schema() -> None:
    assert read_schema(ENGINE).document == json.loads(json.dumps(schema_document()))


def test_bake_caches_part_nodes_and_rebake_settings_only(schema: Schema) -> None:
    base = {"blur": 25, "erode": 0, "face_scale": 5}
    a = bake_cache("/cache", "/shots/sh010/comp v003.nk", "DFLSwap1", "/plates/plate.####.exr", "/m/a.onnx",
                   base, schema)
    assert a.folder == f"/cache/comp_v003/DFLSwap1/{a.settings_hash}" and len(a.settings_hash) == 12
    assert a.frames == os.path.join(a.folder, "plate.####.exr")

    def other(**change) -> str:
        args = {"cache_root": "/cache", "script": "/shots/sh010/comp v003.nk", "node": "DFLSwap1",
                "plate": "/plates/plate.####.exr", "model": "/m/a.onnx", "settings": base, "schema": schema}
        return bake_cache(**(args | change)).folder

    assert other(node="DFLSwap2") != a.folder  # two nodes never share a bake
    assert other(settings=base | {"blur": 60, "erode": 12}) == a.folder  # live settings: redone from the layers
    assert other(settings=base | {"face_scale": 5.0}) == a.folder  # the same value
    assert other(settings=base | {"color_transfer": "rct"}) == a.folder  # the default, given or not
    assert other(settings=base | {"face_scale": 6}) != a.folder
    assert other(settings=base | {"layers": ["mask", "rgba"]}) == other(settings=base | {"layers": "rgba,mask"})
    assert other(model="/m/b.onnx") != a.folder and other(plate="/plates/other/plate.####.exr") != a.folder
    assert bake_hash(schema, base, "/m/a.onnx", "/plates/plate.####.exr") == a.settings_hash
    with pytest.raises(SettingError):
        bake_hash(schema, {"blurr": 3}, "/m/a.onnx", "/p.exr")


def test_names_are_sanitised_into_one_folder_each() -> None:
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name(".hidden node") == "hidden_node"
    assert safe_name("") == "untitled" and safe_name("///") == "untitled"
    long_a, long_b = safe_name("n" * 100 + "a"), safe_name("n" * 100 + "b")
    assert len(long_a) == 64 and long_a != long_b
    assert safe_name("Schön Node") == "Sch_n_Node"
