"""The shot file: values, CLI overrides, and one-line errors naming the file and key before anything is built."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.farm.shot import check_keys, load_shot

REPO = Path(__file__).resolve().parents[2]


def test_shot_file_values_and_relative_paths(write_shot: Callable[..., Path], small_shot: Path) -> None:
    path = write_shot()
    shot = load_shot(path)
    assert shot.name == "demo"
    assert shot.frames == [1001, 1002, 1003, 1004]
    assert shot.footage == f"{small_shot}/src/src.####.png"
    assert shot.merge == {"erode": 5.0, "blur": 10.0}
    assert shot.model_options["ae_dims"] == 32
    assert (shot.farm.chunk_size, shot.farm.train_tasks, shot.farm.iterations) == (2, 2, 3)
    assert shot.src_faceset == path.parent / "work" / "src_faces"
    assert shot.extract["source_colorspace"] == "sRGB Encoded Rec.709 (sRGB)"


def test_frames_default_to_the_plate_on_disk(write_shot: Callable[..., Path]) -> None:
    path = write_shot()
    path.write_text(path.read_text().replace('frames = "1001-1004"\n', ""))
    assert load_shot(path).frames == list(range(1001, 1013))


def test_overrides_win_over_the_file(write_shot: Callable[..., Path]) -> None:
    shot = load_shot(write_shot(), {"shot.frames": "1005-1012", "farm.chunk_size": 5, "farm.pools": ["gpu"]})
    assert (shot.first, shot.last, shot.farm.chunk_size, shot.farm.pools) == (1005, 1012, 5, ("gpu",))


@pytest.mark.parametrize(("extra", "overrides", "message"), [
    ("colour = 1\n", {}, "unknown key farm.colour; known in [farm]: pools"),
    ("[render]\nnode = 1\n", {}, "unknown table [render]"),
    ("", {"farm.train_task_time": "two hours"}, "farm.train_task_time 'two hours'"),
    ("gpu_memory_gb = 16\n", {}, "farm.gpu_memory_gb needs farm.gpus of 1 or more"),
    ("", {"farm.chunk_size": 0}, "farm.chunk_size 0: must be 1 or more"),
    ("", {"farm.gpus": "two"}, "farm.gpus must be a whole number"),
])
def test_bad_farm_settings_name_the_file_and_key(write_shot: Callable[..., Path], extra: str,
                                                 overrides: dict, message: str) -> None:
    path = write_shot(extra=extra)
    with pytest.raises(DflError) as error:
        load_shot(path, overrides)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)
    assert "\n" not in str(error.value)


def test_frame_range_outside_the_plate(write_shot: Callable[..., Path]) -> None:
    with pytest.raises(DflError, match=r"shot.frames 1010-1020: frame 1013 is outside the plate \(1001-1012"):
        load_shot(write_shot(frames="1010-1020"))


def test_missing_plate(write_shot: Callable[..., Path], small_shot: Path) -> None:
    path = write_shot()
    path.write_text(path.read_text().replace(f"{small_shot}/plate/plate", f"{small_shot}/nowhere/plate"))
    with pytest.raises(DflError, match=r"shot.plate: .*nowhere"):
        load_shot(path)


def test_missing_model_to_reuse(write_shot: Callable[..., Path], tmp_path: Path) -> None:
    path = write_shot()
    text = path.read_text().split("[model.options]")[0] + f'[model]\nreuse = "{tmp_path}/no_model"\n'
    path.write_text(text + "[farm]\ngpus = 0\n")
    with pytest.raises(DflError, match=r"model.reuse .*no_model: no trained model there"):
        load_shot(path)


def test_merge_settings_are_checked_by_schema_name(write_shot: Callable[..., Path]) -> None:
    path = write_shot()
    path.write_text(path.read_text().replace("blur = 10", "blurr = 10"))
    with pytest.raises(DflError, match=r"\[merge\] unknown setting 'blurr'"):
        load_shot(path)
    path.write_text(path.read_text().replace("blurr = 10", "blur = 9999"))
    with pytest.raises(DflError, match=r"merge.blur 9999: "):
        load_shot(path)


def test_missing_shot_file(tmp_path: Path) -> None:
    with pytest.raises(DflError, match="no such shot file"):
        load_shot(tmp_path / "absent.toml")


def test_the_documented_example_uses_only_known_keys() -> None:
    example = REPO / "docs" / "examples" / "shot.toml"
    check_keys(example, tomllib.loads(example.read_text()))


def test_the_documented_example_loads_against_the_demo_shot(small_shot: Path, tmp_path: Path) -> None:
    example = (REPO / "docs" / "examples" / "shot.toml").read_text()
    (tmp_path / "src_faces").mkdir()
    (tmp_path / "comp.nk").write_text("# the demo comp\n")
    text = example.replace("../../build/demo/src_faces", str(tmp_path / "src_faces"))
    text = text.replace("../../build/demo/comp.nk", str(tmp_path / "comp.nk"))
    path = tmp_path / "shot.toml"
    path.write_text(text.replace("../../build/demo", str(small_shot)))
    shot = load_shot(path)
    assert (shot.first, shot.last, shot.farm.gpu_memory_gb, shot.merge["mask_mode"]) == (1001, 1012, 16, "hull")
    assert shot.comp is not None and (shot.comp.app, shot.comp.write, shot.comp.version) == ("nuke", "Write1", "15.1")
    assert (shot.farm.nodes, shot.farm.show) == (1, "demo")
    assert shot.output == tmp_path.parent.parent / "build/farm/demo/swap"  # normalised, relative to the file
