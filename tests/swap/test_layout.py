"""The two-file layout: the companion's path and window, and plate-sized layers rebuilt from it exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.io.image import Image, Window, read_header, write_image
from dfl_vfx.swap.layout import (
    LAYERS_COMPRESSION,
    frame_path,
    layer_channels,
    layer_window,
    layers_image,
    layers_path,
    read_layers,
)

# an overscan plate: data window 80x60 from (-10, -6), display 60x48 from (0, 0)
DATA = Window(-10, -6, 80, 60)
DISPLAY = Window(0, 0, 60, 48)


def test_paths_go_both_ways() -> None:
    frame = Path("/shots/a/out/a.1001.exr")
    assert layers_path(frame) == Path("/shots/a/out/layers/a.1001.exr")
    assert frame_path(layers_path(frame)) == frame


def test_face_window_is_the_union_of_the_boxes_clipped_to_the_data_window() -> None:
    assert layer_window([(5, 7, 20, 30), (-30, 10, 2, 12)], DATA, DISPLAY) == Window(-10, 7, 30, 23)
    assert layer_window([(60, 40, 90, 70)], DATA, DISPLAY) == Window(60, 40, 10, 14)


def test_no_face_gives_one_zero_pixel_at_the_display_origin() -> None:
    assert layer_window([], DATA, DISPLAY) == Window(0, 0, 1, 1)
    assert layer_window([(200, 200, 210, 210)], DATA, DISPLAY) == Window(0, 0, 1, 1)


def test_display_window_mode_is_the_display_window() -> None:
    assert layer_window([(5, 7, 20, 30)], DATA, DISPLAY, "display") == DISPLAY
    with pytest.raises(DflError, match="layer_window 'data': choose from face, display"):
        layer_window([], DATA, DISPLAY, "data")


def test_channels_keep_the_companion_order() -> None:
    assert layer_channels(["raw", "rgba", "face", "mask"]) == ["face.R", "face.G", "face.B", "face.A", "mask.A",
                                                              "raw.R", "raw.G", "raw.B", "raw.A"]
    with pytest.raises(DflError, match="unknown layer 'depth'"):
        layer_channels(["depth"])


def _frame(tmp_path: Path) -> tuple[Path, Image, dict[str, np.ndarray], list[tuple[int, int, int, int]]]:
    """A delivered overscan frame and plate-sized layers that are 0 outside two face boxes."""
    rng = np.random.default_rng(3)
    boxes = [(-4, -2, 20, 25), (30, 20, 55, 47)]
    mask = np.zeros((DATA.height, DATA.width), np.float32)
    raw = np.zeros((DATA.height, DATA.width, 4), np.float32)
    for x0, y0, x1, y1 in boxes:
        ys, xs = slice(y0 - DATA.y, y1 - DATA.y), slice(x0 - DATA.x, x1 - DATA.x)
        mask[ys, xs] = rng.uniform(0, 1, mask[ys, xs].shape)
        raw[ys, xs] = rng.uniform(-1, 8, raw[ys, xs].shape)
    layers = {"mask": mask.astype(np.float16), "raw": raw.astype(np.float16)}
    plate = rng.uniform(0, 1, (DATA.height, DATA.width, 4)).astype(np.float32)
    frame = Image(plate, ["R", "G", "B", "A"], DATA, DISPLAY, ["half"] * 4,
                  {"compression": "piz", "dfl_vfx:swap": "{}"}, path=str(tmp_path / "a.1001.exr"))
    write_image(frame.path, frame)
    return Path(frame.path), frame, layers, boxes


@pytest.mark.parametrize("mode", ["face", "display"])
def test_layers_rebuild_bit_for_bit_on_an_overscan_plate(tmp_path: Path, mode: str) -> None:
    path, frame, layers, boxes = _frame(tmp_path)
    companion = layers_image(frame, layers, boxes, mode)
    assert companion is not None
    write_image(layers_path(path), companion, LAYERS_COMPRESSION)
    header = read_header(layers_path(path))
    assert header.channels == ["mask.A", "raw.R", "raw.G", "raw.B", "raw.A"]
    assert header.display_window == DISPLAY and header.metadata["dfl_vfx:swap"] == "{}"
    assert header.metadata["compression"] == "zip"  # zip:1, the level is not stored
    assert header.data_window == (Window(-4, -2, 59, 49) if mode == "face" else DISPLAY)
    back = read_layers(path, ["raw", "mask"], pixel_type="native")
    assert back["mask"].dtype == np.float16 and back["mask"].shape == (60, 80)
    assert back["raw"].shape == (60, 80, 4)
    if mode == "face":  # nothing lies outside the boxes, so the plate-sized layers come back exactly
        np.testing.assert_array_equal(back["mask"], layers["mask"])
        np.testing.assert_array_equal(back["raw"], layers["raw"])
    else:  # the display window keeps only its part of the overscan
        inside = np.zeros((60, 80), bool)
        inside[6:54, 10:70] = True
        np.testing.assert_array_equal(back["mask"], np.where(inside, layers["mask"], 0))
        assert layers["mask"][~inside].any()
    same = read_layers(layers_path(path), ["mask"])  # from the companion's path too
    np.testing.assert_array_equal(same["mask"], back["mask"].astype(np.float32))


def test_missing_companion_or_layer_is_one_line(tmp_path: Path) -> None:
    path, frame, layers, boxes = _frame(tmp_path)
    with pytest.raises(DflError, match=r"layers[/\\]a\.1001\.exr: layers file not found; render the frame with "
                                       r"`dfl-vfx swap --layers rgba,matte`"):
        read_layers(path, ["matte"])
    companion = layers_image(frame, {"mask": layers["mask"]}, boxes)
    write_image(layers_path(path), companion, LAYERS_COMPRESSION)
    with pytest.raises(DflError, match=r"no raw layer \(has mask.A\); re-render"):
        read_layers(path, ["mask", "raw"])
    assert read_layers(path, ["rgba"]) == {}


def test_frames_in_the_old_layout_read_the_same(tmp_path: Path) -> None:
    path, frame, layers, _ = _frame(tmp_path)
    old = Image(np.concatenate([frame.pixels, layers["mask"][..., None].astype(np.float32)], axis=2),
                frame.channels + ["mask.A"], DATA, DISPLAY, ["half"] * 5)
    write_image(path, old)
    np.testing.assert_array_equal(read_layers(path, ["mask"])["mask"], layers["mask"].astype(np.float32))
