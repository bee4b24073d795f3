"""One frame swapped from the plate's EXR blocks: only the rows the faces use are read, only the blocks of changed
rows are compressed, and the files equal a whole-frame read and write pixel for pixel."""

import dataclasses
import struct
from pathlib import Path

import numpy as np
import pytest

import dfl_vfx.io.image as image_io
import dfl_vfx.swap.frame as frame_module
from dfl_vfx.io.exr_blocks import open_blocks
from dfl_vfx.io.image import Image, Window, read_image, write_image
from dfl_vfx.merge.merger import MergeSettings
from dfl_vfx.swap.engine import SwapEngine, SwapSettings
from dfl_vfx.swap.faces import faceset_plans
from dfl_vfx.swap.frame import swap_frame
from dfl_vfx.swap.pipeline import swap_shot

FRAME = 1003
EXTRA_ROWS = 420  # rows added below the small shot's data window: far from its face


def _engine(model: Path, **merge) -> SwapEngine:
    settings = SwapSettings(model=str(model), merge=MergeSettings(**({"mask_mode": "hull"} | merge)),
                            layers=("rgba", "mask", "face", "raw"))
    return SwapEngine(settings)


def _tall_plate(small_shot: Path, folder: Path, compression: str = "zip", alpha: bool = True,
                copy: bool = True) -> Path:
    """The small shot's frame with its data window grown downwards by EXTRA_ROWS, same origin, so the faceset's
    landmarks still fit. The new rows copy the frame's first rows (a second face can be planned there) or, with
    ``copy`` False, are a flat grey (nothing for a detector to find)."""
    plate = read_image(small_shot / "plate" / f"plate.{FRAME}.exr", pixel_type="native")
    extra = plate.pixels[:EXTRA_ROWS] if copy else np.full_like(plate.pixels[:EXTRA_ROWS], 0.18)
    pixels = np.concatenate([plate.pixels, extra], axis=0)
    channels, formats = plate.channels, plate.channel_formats
    if not alpha:
        pixels, channels, formats = pixels[..., :3], channels[:3], formats[:3]
    window = plate.data_window
    grown = Window(window.x, window.y, window.width, window.height + EXTRA_ROWS)
    metadata = dict(plate.metadata) | {"studio:owner": "plate dept"}
    tall = Image(np.ascontiguousarray(pixels), list(channels), grown, plate.display_window, list(formats), metadata,
                 dict(plate.metadata_types))
    path = folder / f"plate.{FRAME}.exr"
    write_image(path, tall, compression)
    return path


def _whole_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """The path without block reuse: the plate read and written whole through OpenImageIO."""
    monkeypatch.setattr(frame_module, "plate_blocks", lambda source, target: None)


def _same_files(a: Path, b: Path) -> None:
    for name in (a, a.parent / "layers" / a.name):
        other = b.parent / name.relative_to(a.parent)
        x, y = read_image(name, pixel_type="native"), read_image(other, pixel_type="native")
        assert x.channels == y.channels and x.data_window == y.data_window
        assert np.array_equal(x.pixels.view(np.uint16), y.pixels.view(np.uint16)), name
        assert {k: v for k, v in x.metadata.items() if k != "DateTime"} == \
            {k: v for k, v in y.metadata.items() if k != "DateTime"}


def _spy(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """Record the bands read_rows reads and the block counts write_from_plate reports."""
    seen: dict[str, list] = {"bands": [], "blocks": []}
    read_rows, write_from_plate = frame_module.read_rows, image_io.write_from_plate

    def rows(path, bands, *args):
        seen["bands"].append(list(bands))
        return read_rows(path, bands, *args)

    def write(*args):
        counts = write_from_plate(*args)
        seen["blocks"].append(counts)
        return counts

    monkeypatch.setattr(frame_module, "read_rows", rows)
    monkeypatch.setattr(image_io, "write_from_plate", write)
    return seen


@pytest.mark.parametrize(("compression", "merge"), [
    ("zip", {}),
    ("zips", {"face_scale": 25.0, "blur": 120.0}),
    ("none", {"erode": -40.0, "interpolation": "lanczos"}),
    ("zips", {"face_scale": -45.0, "blur": 0.0}),  # a pasted face smaller than the crop: the crop's rows count
])
def test_a_frame_from_the_plate_blocks_equals_a_whole_frame_swap(small_shot, facesets, swap_model, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch, compression: str,
                                                                 merge: dict, caplog: pytest.LogCaptureFixture) -> None:
    plate = _tall_plate(small_shot, tmp_path, compression)
    engine = _engine(swap_model[1], **merge)
    plans = faceset_plans(facesets[1], [FRAME])[FRAME]
    seen = _spy(monkeypatch)
    outcome = swap_frame(engine, plate, tmp_path / "reused" / plate.name, FRAME, plans)
    assert len(outcome.faces) == 1
    assert "not read" not in caplog.text  # the rows planned were enough: no second, whole-frame swap
    (bands,) = seen["bands"]
    window = read_image(plate).data_window
    lines = {"zip": 16, "zips": 1, "none": 1}[compression]
    rows_read = sum(b - a for a, b in bands)
    assert rows_read < window.height - EXTRA_ROWS + lines  # the rows added below the face were not read
    assert all((a - window.y) % lines == 0 for a, _ in bands)  # whole blocks
    (counts,) = seen["blocks"]
    blocks = -(-window.height // lines)
    assert counts["copied"] + counts["encoded"] == blocks and counts["copied"] >= EXTRA_ROWS // lines - 1

    _whole_frame(monkeypatch)
    swap_frame(engine, plate, tmp_path / "whole" / plate.name, FRAME, plans)
    _same_files(tmp_path / "reused" / plate.name, tmp_path / "whole" / plate.name)
    assert read_image(tmp_path / "reused" / plate.name).metadata["studio:owner"] == "plate dept"
    assert read_image(tmp_path / "reused" / plate.name).metadata["compression"] == compression


def test_two_faces_far_apart_read_two_bands_and_a_face_at_the_edge_reads_to_it(small_shot, facesets, swap_model,
                                                                              tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    plate = _tall_plate(small_shot, tmp_path)
    window = read_image(plate).data_window
    (face,) = faceset_plans(facesets[1], [FRAME])[FRAME]
    below = dataclasses.replace(face, landmarks=face.landmarks + (0.0, window.height - EXTRA_ROWS), index=1)
    top = float(face.landmarks[:, 1].min()) - window.y
    at_edge = dataclasses.replace(face, landmarks=face.landmarks - (0.0, top + 30.0), index=2)  # crop off the top
    engine = _engine(swap_model[1])
    seen = _spy(monkeypatch)
    swap_frame(engine, plate, tmp_path / "far" / plate.name, FRAME, [face, below])
    swap_frame(engine, plate, tmp_path / "edge" / plate.name, FRAME, [at_edge])
    far, edge = seen["bands"]
    assert len(far) == 2 and far[0][1] < far[1][0]  # the rows between the faces were not read
    assert edge[0][0] == window.y
    _whole_frame(monkeypatch)
    swap_frame(engine, plate, tmp_path / "far_whole" / plate.name, FRAME, [face, below])
    swap_frame(engine, plate, tmp_path / "edge_whole" / plate.name, FRAME, [at_edge])
    _same_files(tmp_path / "far" / plate.name, tmp_path / "far_whole" / plate.name)
    _same_files(tmp_path / "edge" / plate.name, tmp_path / "edge_whole" / plate.name)


def test_detection_reads_the_whole_frame_and_still_reuses_blocks(small_shot, swap_model, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from dfl_vfx.swap.faces import FaceFinder

    plate = _tall_plate(small_shot, tmp_path, copy=False)
    engine = _engine(swap_model[1])
    seen = _spy(monkeypatch)
    outcome = swap_frame(engine, plate, tmp_path / "out" / plate.name, FRAME, finder=FaceFinder("dlib"))
    assert len(outcome.faces) == 1 and not seen["bands"]  # the detector needs every row
    assert seen["blocks"][0]["copied"] >= EXTRA_ROWS // 16 - 1
    _whole_frame(monkeypatch)
    swap_frame(engine, plate, tmp_path / "whole" / plate.name, FRAME, finder=FaceFinder("dlib"))
    _same_files(tmp_path / "out" / plate.name, tmp_path / "whole" / plate.name)


@pytest.mark.parametrize("case", ["no_alpha", "piz", "asked_codec"])
def test_plates_the_blocks_cannot_serve_are_written_whole(small_shot, facesets, swap_model, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    plate = _tall_plate(small_shot, tmp_path, "piz" if case == "piz" else "zip", alpha=case != "no_alpha")
    engine = _engine(swap_model[1])
    plans = faceset_plans(facesets[1], [FRAME])[FRAME]
    seen = _spy(monkeypatch)
    asked = "zip:9" if case == "asked_codec" else None
    swap_frame(engine, plate, tmp_path / "out" / plate.name, FRAME, plans, compression=asked)
    assert seen == {"bands": [], "blocks": []}
    out = read_image(tmp_path / "out" / plate.name)
    assert out.channels == ["R", "G", "B", "A"]
    assert out.metadata["compression"] == ("piz" if case == "piz" else "zip")


def test_a_damaged_block_away_from_the_face_fails_the_frame_in_one_line(small_shot, facesets, swap_model,
                                                                        tmp_path: Path) -> None:
    folder = tmp_path / "plate"
    plate = _tall_plate(small_shot, folder)
    blocks, _ = open_blocks(plate)
    assert blocks is not None
    data = bytearray(plate.read_bytes())
    offset = int(blocks.offsets[-1])  # the last block: rows the face never reads
    data[offset:offset + 4] = struct.pack("<i", 12345)  # its line number
    plate.write_bytes(bytes(data))
    settings = dataclasses.replace(_engine(swap_model[1]).settings)
    summary = swap_shot(str(folder / "plate.####.exr"), str(tmp_path / "out"), settings, faceset=str(facesets[1]),
                        frames=str(FRAME), progress=False)
    assert not summary.done and "damaged EXR block" in summary.failed[FRAME]
    assert str(plate) in summary.failed[FRAME] and "\n" not in summary.failed[FRAME]
    assert not list((tmp_path / "out").glob("*.exr")) and not list((tmp_path / "out").glob("*.tmp*"))
