"""`swap_shot` over a frame range: outputs, summary, reruns, chunks, missing frames and mismatched inputs."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.io.image import read_header, read_image, write_image
from dfl_vfx.merge.merger import MergeSettings
from dfl_vfx.swap.engine import SWAP_ATTRIBUTE, SwapSettings
from dfl_vfx.swap.layout import layers_path, read_layers
from dfl_vfx.swap.pipeline import SUMMARY_FILE, swap_shot


def _settings(model: Path, **merge) -> SwapSettings:
    """The untrained model's learned masks sit near 0.5, so these tests matte with the landmark hull."""
    return SwapSettings(model=str(model), merge=MergeSettings(**({"mask_mode": "hull"} | merge)), batch=4)


def test_swap_a_chunk_then_rerun_skips_it(small_shot, facesets, swap_model, tmp_path: Path) -> None:
    plate = str(small_shot / "plate" / "plate.####.exr")
    out = tmp_path / "swap"
    summary = swap_shot(plate, str(out), _settings(swap_model[1]), frames="1001-1003", faceset=str(facesets[1]),
                        progress=False)
    assert summary.done == [1001, 1002, 1003] and summary.faces == 3 and not summary.failed
    files = sorted(p.name for p in out.glob("*.exr"))
    assert files == ["plate.1001.exr", "plate.1002.exr", "plate.1003.exr"]
    image = read_image(out / "plate.1002.exr")
    source = read_header(small_shot / "plate" / "plate.1002.exr")
    assert image.data_window == source.data_window and image.display_window == source.display_window
    assert image.channels == ["R", "G", "B", "A"] and read_layers(out / "plate.1002.exr", ["mask"])["mask"].max() > 0.9
    assert sorted(p.name for p in (out / "layers").glob("*.exr")) == files  # each frame's layers file
    saved = json.loads((out / "swap_summary.1001-1003.json").read_text())  # a --frames chunk has its own
    assert saved["frames"]["done"] == [1001, 1002, 1003] and saved["timing"]["wall_s"] > 0
    assert saved["status"] == "complete" and saved["chunk"] == "1001-1003"
    assert not (out / SUMMARY_FILE).exists()

    again = swap_shot(plate, str(out), _settings(swap_model[1]), frames="1001-1004", faceset=str(facesets[1]),
                      progress=False)
    assert again.skipped == [1001, 1002, 1003] and again.done == [1004]
    layers_path(out / "plate.1003.exr").unlink()  # a frame whose layers file is gone is redone
    (out / "layers" / "plate.1002.exr").write_bytes(b"truncated")  # and one whose layers file is broken
    redo = swap_shot(plate, str(out), _settings(swap_model[1]), frames="1001-1004", faceset=str(facesets[1]),
                     progress=False)
    assert redo.skipped == [1001, 1004] and redo.done == [1002, 1003]
    assert read_layers(out / "plate.1002.exr", ["mask"])["mask"].max() > 0.9
    changed = swap_shot(plate, str(out), _settings(swap_model[1], erode=30), frames="1001", faceset=str(facesets[1]),
                        progress=False)
    assert changed.done == [1001] and not changed.skipped  # new settings: the frame is redone
    header = json.loads(read_header(out / "plate.1001.exr").metadata[SWAP_ATTRIBUTE])
    assert header["settings"]["erode"] == 30


def test_the_frame_keeps_the_plate_compression_and_rgba_alone_drops_old_layers(small_shot, facesets, swap_model,
                                                                               tmp_path: Path) -> None:
    plate_dir = tmp_path / "plate"
    write_image(plate_dir / "plate.1001.exr", read_image(small_shot / "plate" / "plate.1001.exr"), "piz")
    out = tmp_path / "out"
    plate = str(plate_dir / "plate.####.exr")
    swap_shot(plate, str(out), _settings(swap_model[1]), faceset=str(facesets[1]), progress=False)
    assert read_header(out / "plate.1001.exr").metadata["compression"] == "piz"  # the plate's
    assert read_header(out / "layers" / "plate.1001.exr").metadata["compression"] == "zip"  # zip:1, the cache codec
    alone = dataclasses.replace(_settings(swap_model[1]), layers=("rgba",))
    summary = swap_shot(plate, str(out), alone, faceset=str(facesets[1]), progress=False)
    assert summary.done == [1001]  # other layers: another settings hash
    assert not (out / "layers" / "plate.1001.exr").exists()  # the old layers would pass for this frame's
    again = swap_shot(plate, str(out), alone, faceset=str(facesets[1]), progress=False)
    assert again.skipped == [1001]  # rgba alone needs no layers file to be done


def test_missing_frames_are_reported_and_the_rest_done(small_shot, facesets, swap_model, tmp_path: Path) -> None:
    plate_dir = tmp_path / "plate"
    plate_dir.mkdir()
    for f in (1001, 1003):
        shutil.copy(small_shot / "plate" / f"plate.{f}.exr", plate_dir)
    summary = swap_shot(str(plate_dir / "plate.####.exr"), str(tmp_path / "out"), _settings(swap_model[1]),
                        frames="1001-1003", faceset=str(facesets[1]), progress=False)
    assert summary.done == [1001, 1003]
    assert "file missing" in summary.failed[1002]
    saved = json.loads((tmp_path / "out" / "swap_summary.1001-1003.json").read_text())
    assert saved["frames"]["missing"] == [1002] and "file missing" in saved["frames"]["failed"]["1002"]
    assert saved["status"] == "complete" and saved["frames"]["done"] == [1001, 1003]


def test_detection_on_the_fly_and_the_torch_backend(small_shot, swap_model, tmp_path: Path) -> None:
    settings = SwapSettings(model=str(swap_model[0]), merge=MergeSettings(color_transfer="none"))
    summary = swap_shot(str(small_shot / "plate" / "plate.####.exr"), str(tmp_path / "out"), settings,
                        frames="1001", progress=False)
    assert summary.backend == "torch" and summary.done == [1001] and summary.faces >= 1


def test_corrupt_frame_fails_alone(small_shot, facesets, swap_model, tmp_path: Path) -> None:
    plate_dir = tmp_path / "plate"
    plate_dir.mkdir()
    shutil.copy(small_shot / "plate" / "plate.1001.exr", plate_dir)
    data = (small_shot / "plate" / "plate.1002.exr").read_bytes()
    (plate_dir / "plate.1002.exr").write_bytes(data[: len(data) // 3])
    summary = swap_shot(str(plate_dir / "plate.####.exr"), str(tmp_path / "out"), _settings(swap_model[1]),
                        faceset=str(facesets[1]), progress=False)
    assert summary.done == [1001] and "plate.1002.exr" in summary.failed[1002]
    assert not (tmp_path / "out" / "plate.1002.exr").exists()
    assert not list((tmp_path / "out").glob("*.tmp*"))


def test_inputs_that_disagree_are_refused(small_shot, facesets, swap_model, tmp_path: Path) -> None:
    plate = str(small_shot / "plate" / "plate.####.exr")
    with pytest.raises(DflError, match="would overwrite the plate"):
        swap_shot(plate, str(small_shot / "plate"), _settings(swap_model[1]), progress=False)
    with pytest.raises(DflError, match="--face-type"):
        swap_shot(plate, str(tmp_path / "o"), SwapSettings(model=str(swap_model[1]), face_type="wf"),
                  progress=False)
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(DflError, match="broken.onnx"):
        swap_shot(plate, str(tmp_path / "o"), _settings(bad), progress=False)
    with pytest.raises(DflError, match="^erode 900: out of range"):
        swap_shot(plate, str(tmp_path / "o"), _settings(swap_model[1], erode=900), progress=False)


def test_a_dfm_swaps_like_the_onnx_it_came_from(small_shot, facesets, swap_model, tmp_path: Path) -> None:
    from dfl_vfx.export.onnx_export import ExportMetadata, export_dfm
    from dfl_vfx.models.checkpoint import load_model

    model, _ = load_model(swap_model[0])
    dfm = export_dfm(model, tmp_path / "model.dfm", ExportMetadata.for_model(model, iterations=0), input_space="srgb")
    summary = swap_shot(str(small_shot / "plate" / "plate.####.exr"), str(tmp_path / "out"), _settings(dfm),
                        frames="1001", faceset=str(facesets[1]), progress=False)
    assert summary.done == [1001] and summary.faces == 1
    image = read_image(tmp_path / "out" / "plate.1001.exr")
    assert json.loads(image.metadata[SWAP_ATTRIBUTE])["model"] == "model.dfm"


def test_faceset_and_model_must_agree(facesets) -> None:
    from dfl_vfx.swap.faces import check_faceset_matches

    check_faceset_matches(facesets[1], 64, "full_face")
    with pytest.raises(DflError, match="holds full_face faces but the model was trained on whole_face"):
        check_faceset_matches(facesets[1], 64, "whole_face")
    with pytest.raises(DflError, match="faces are 64 px but the model works at 128 px"):
        check_faceset_matches(facesets[1], 128, "full_face")


def test_a_multi_part_plate_says_its_other_parts_are_not_delivered(small_shot, facesets, swap_model,
                                                                   tmp_path: Path) -> None:
    import OpenImageIO as oiio

    plate = read_image(small_shot / "plate" / "plate.1001.exr", pixel_type="native")
    path = tmp_path / "plate" / "plate.1001.exr"
    path.parent.mkdir()
    rgba = oiio.ImageSpec(plate.width, plate.height, 4, "half")
    rgba.channelnames = ("R", "G", "B", "A")
    rgba.x, rgba.y = plate.data_window.x, plate.data_window.y
    depth = oiio.ImageSpec(plate.width, plate.height, 1, "float")
    depth.channelnames = ("Z",)
    depth.x, depth.y = plate.data_window.x, plate.data_window.y
    for spec, name in ((rgba, "rgba"), (depth, "depth")):
        spec.full_x, spec.full_y = plate.display_window.x, plate.display_window.y
        spec.full_width, spec.full_height = plate.display_window.width, plate.display_window.height
        spec.attribute("name", name)
        spec.attribute("compression", "zip")
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), (rgba, depth))
    assert out.write_image(np.ascontiguousarray(plate.pixels))
    assert out.open(str(path), depth, "AppendSubimage")
    assert out.write_image(np.full((plate.height, plate.width, 1), 7.0, np.float32))
    out.close()
    summary = swap_shot(str(path.parent / "plate.####.exr"), str(tmp_path / "out"), _settings(swap_model[1]),
                        faceset=str(facesets[1]), progress=False)
    assert summary.done == [1001]
    assert any("the plate has 2 EXR parts: only the first (R G B A) is swapped and delivered" in line
               for line in summary.lines())
    assert read_header(tmp_path / "out" / "plate.1001.exr").channels == ["R", "G", "B", "A"]
