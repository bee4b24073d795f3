"""Derived EXR frames written from a plate's compressed blocks: exact pixels, header kept, damaged plates refused."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from dfl_vfx.errors import ImageReadError
from dfl_vfx.io.exr_blocks import PlateBlocks, open_blocks, write_from_plate
from dfl_vfx.io.image import Image, Window, read_header, read_image, write_image

CUSTOM = {"studio:shot": "sh010", "studio:take": 3, "studio:gain": 1.25}
ADDED = {"dfl:model": "SAEHD 256 df-ud", "dfl:frame": "1001"}
LINES = {"none": 1, "zips": 1, "zip": 16}
RGBA = ["R", "G", "B", "A"]


@dataclass(frozen=True)
class Layout:
    channels: list[str]
    formats: list[str]
    data_window: Window
    display_window: Window


LAYOUTS = {
    # overscan with a negative origin around a smaller display window; height a multiple of 16
    "overscan": Layout(RGBA, ["half"] * 4, Window(-37, -21, 96, 96), Window(0, 0, 40, 30)),
    # 77 = 4 * 16 + 13 lines: the last ZIP block is partial; positive origin
    "partial": Layout(["R", "G", "B"], ["half"] * 3, Window(4, 7, 40, 77), Window(0, 0, 50, 90)),
    "half_rgba": Layout(RGBA, ["half"] * 4, Window(0, 0, 32, 80), Window(0, 0, 32, 80)),
    # half and float channels: the pixels handed over are float32, converted per channel
    "mixed": Layout(RGBA + ["Z", "diffuse.R"], ["half"] * 4 + ["float", "half"], Window(3, -5, 36, 69),
                    Window(0, 0, 30, 30)),
}
STRAY_ROW = 50  # a row (relative to the data window) whose block no changed range touches, in every layout


def _changed_ranges(window: Window) -> list[tuple[int, int]]:
    """A row in the first block, rows 30..34 (across ZIP blocks 1 and 2) and the last row, absolute, end-exclusive."""
    y0, h = window.y, window.height
    return [(y0 + 1, y0 + 2), (y0 + 30, y0 + 35), (y0 + h - 1, y0 + h)]


def _touched_blocks(window: Window, ranges: list[tuple[int, int]], lines: int) -> set[int]:
    return {(y - window.y) // lines for a, b in ranges for y in range(max(a, window.y), min(b, window.bottom))}


def _half_values(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """float32 values a half channel stores exactly."""
    return rng.normal(0.5, 4.0, shape).astype(np.float16).astype(np.float32)


def _write_plate(path: Path, layout: Layout, compression: str, rng: np.random.Generator) -> None:
    w, h = layout.data_window.width, layout.data_window.height
    pixels = _half_values(rng, (h, w, len(layout.channels)))
    for i, fmt in enumerate(layout.formats):
        if fmt == "float":
            pixels[:, :, i] = rng.uniform(-1e3, 1e3, (h, w)).astype(np.float32)  # full float mantissas
    pixels[2, 3, 0] = np.nan
    pixels[h - 1, w - 1, 1] = np.inf
    pixels[h // 2, 0, 2] = -0.0
    image = Image(pixels, list(layout.channels), layout.data_window, layout.display_window, list(layout.formats),
                  metadata=dict(CUSTOM))
    write_image(path, image, compression=compression)


def _open(path: Path) -> PlateBlocks:
    plate, reason = open_blocks(path)
    assert plate is not None, reason
    assert reason == ""
    return plate


def _channel_bits(values: np.ndarray, fmt: str) -> np.ndarray:
    return values.astype(np.float16).view(np.uint16) if fmt == "half" else values.astype(np.float32).view(np.uint32)


def _assert_bits_equal(got: np.ndarray, want: np.ndarray, formats: list[str]) -> None:
    """Every channel's stored bits equal (NaN matches NaN whatever its payload)."""
    assert got.shape == want.shape
    for i, fmt in enumerate(formats):
        a, b = got[..., i], want[..., i]
        nan_a, nan_b = np.isnan(a.astype(np.float32)), np.isnan(b.astype(np.float32))
        np.testing.assert_array_equal(nan_a, nan_b)
        np.testing.assert_array_equal(_channel_bits(a, fmt)[~nan_a], _channel_bits(b, fmt)[~nan_b])


def _read(path: Path, channels: list[str]) -> np.ndarray:
    return read_image(path, channels=channels, pixel_type="native").pixels


def _chunk(path: Path, offset: int) -> tuple[int, bytes]:
    """(stored line, stored bytes) of the block at ``offset``."""
    data = path.read_bytes()
    y, size = struct.unpack_from("<ii", data, offset)
    return y, data[offset + 8:offset + 8 + size]


@pytest.fixture(params=sorted(LAYOUTS))
def layout(request: pytest.FixtureRequest) -> Layout:
    return LAYOUTS[request.param]


@pytest.mark.parametrize("compression", ["none", "zips", "zip"])
def test_unchanged_frame_copies_every_block_and_keeps_the_header(tmp_path: Path, layout: Layout,
                                                                 compression: str) -> None:
    plate_path, out = tmp_path / "plate.exr", tmp_path / "out.exr"
    _write_plate(plate_path, layout, compression, np.random.default_rng(11))
    plate = _open(plate_path)
    window = layout.data_window
    assert (plate.x_min, plate.y_min, plate.width, plate.height) == (window.x, window.y, window.width, window.height)
    assert plate.compression == compression and plate.lines_per_block == LINES[compression]
    assert plate.block_count == -(-window.height // LINES[compression])
    source = read_image(plate_path, pixel_type="native")

    counts = write_from_plate(out, plate, source.pixels, source.channels, [], ADDED)

    assert counts == {"copied": plate.block_count, "encoded": 0}
    _assert_bits_equal(_read(out, layout.channels), _read(plate_path, layout.channels), layout.formats)
    before, after = read_header(plate_path), read_header(out)
    assert after.data_window == window and after.display_window == layout.display_window
    for name, value in before.metadata.items():
        assert after.metadata[name] == value, name
        assert after.metadata_types[name] == before.metadata_types[name], name
    for name, value in {**CUSTOM, **ADDED}.items():
        assert after.metadata[name] == value, name
    assert after.metadata_types["dfl:model"] == "string"
    # the header is the plate's attribute for attribute, byte for byte, with the new strings appended
    written = _open(out)
    assert written.attributes == plate.attributes + [(k, "string", v.encode()) for k, v in ADDED.items()]
    assert written.version == plate.version


@pytest.mark.parametrize("compression", ["none", "zips", "zip"])
def test_changed_rows_are_encoded_and_other_blocks_copied_verbatim(tmp_path: Path, layout: Layout,
                                                                   compression: str) -> None:
    plate_path, out = tmp_path / "plate.exr", tmp_path / "out.exr"
    rng = np.random.default_rng(5)
    _write_plate(plate_path, layout, compression, rng)
    plate = _open(plate_path)
    source = read_image(plate_path, pixel_type="native")
    window, lines = layout.data_window, LINES[compression]
    ranges = _changed_ranges(window)
    expected = source.pixels.copy()
    for a, b in ranges:
        expected[a - window.y:b - window.y] = _half_values(rng, (b - a, window.width, len(source.channels)))
    given = expected.copy()
    given[STRAY_ROW] = 7.0  # changed but not declared: its block is copied from the plate, so it is not written
    touched = _touched_blocks(window, ranges, lines)
    assert STRAY_ROW // lines not in touched

    counts = write_from_plate(out, plate, given, source.channels, ranges, ADDED)

    assert counts == {"copied": plate.block_count - len(touched), "encoded": len(touched)}
    formats = [layout.formats[layout.channels.index(c)] for c in source.channels]
    _assert_bits_equal(_read(out, source.channels), expected, formats)
    assert not np.any(_read(out, source.channels)[STRAY_ROW] == 7.0)
    # copied blocks are the plate's stored bytes; encoded ones hold their own first line
    written = _open(out)
    for block in range(plate.block_count):
        y, data = _chunk(out, int(written.offsets[block]))
        assert y == window.y + block * lines
        if block not in touched:
            assert (y, data) == _chunk(plate_path, int(plate.offsets[block])), block
    assert read_header(out).metadata["dfl:frame"] == "1001"


def test_channels_may_come_in_any_order(tmp_path: Path) -> None:
    layout = LAYOUTS["mixed"]
    plate_path, out = tmp_path / "plate.exr", tmp_path / "out.exr"
    rng = np.random.default_rng(8)
    _write_plate(plate_path, layout, "zip", rng)
    order = ["diffuse.R", "Z", "A", "G", "R", "B"]
    pixels = read_image(plate_path, channels=order, pixel_type="native").pixels.copy()
    pixels[16:32] = _half_values(rng, (16, layout.data_window.width, len(order)))
    pixels[16:32, :, 1] = rng.uniform(-5, 5, (16, layout.data_window.width)).astype(np.float32)  # float Z

    y0 = layout.data_window.y
    counts = write_from_plate(out, _open(plate_path), pixels, order, [(y0 + 16, y0 + 32)], {})

    assert counts == {"copied": 4, "encoded": 1}
    _assert_bits_equal(_read(out, order), pixels, [layout.formats[layout.channels.index(c)] for c in order])


def test_no_changes_and_no_strings_rewrite_the_plate_byte_for_byte(tmp_path: Path) -> None:
    plate_path, out = tmp_path / "plate.exr", tmp_path / "out.exr"
    _write_plate(plate_path, LAYOUTS["mixed"], "zip", np.random.default_rng(2))
    source = read_image(plate_path, pixel_type="native")
    write_from_plate(out, _open(plate_path), source.pixels, source.channels, [], {})
    assert out.read_bytes() == plate_path.read_bytes()


def test_changed_rows_outside_the_data_window_are_clipped(tmp_path: Path) -> None:
    layout = LAYOUTS["overscan"]
    plate_path = tmp_path / "plate.exr"
    _write_plate(plate_path, layout, "zip", np.random.default_rng(3))
    plate = _open(plate_path)
    source = read_image(plate_path, pixel_type="native")
    y0, y1 = layout.data_window.y, layout.data_window.bottom
    outside = [(y0 - 40, y0), (y1, y1 + 9)]
    assert write_from_plate(tmp_path / "a.exr", plate, source.pixels, source.channels, outside, {}) == {
        "copied": 6, "encoded": 0}
    straddling = [(y0 - 40, y0 + 1), (y1 - 1, y1 + 9)]
    assert write_from_plate(tmp_path / "b.exr", plate, source.pixels, source.channels, straddling, {}) == {
        "copied": 4, "encoded": 2}
    _assert_bits_equal(_read(tmp_path / "b.exr", RGBA), _read(plate_path, RGBA), ["half"] * 4)


def _noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """float32 values with random bits in every byte (no NaN or inf), which deflate cannot shrink."""
    bits = rng.integers(0, 2**32, shape, dtype=np.uint32)
    exponent_all_ones = (bits >> 23) & 0xFF == 0xFF
    bits[exponent_all_ones] ^= np.uint32(1 << 23)
    return bits.view(np.float32)


@pytest.mark.parametrize("compression", ["zips", "zip"])
def test_blocks_deflate_cannot_shrink_are_stored_raw(tmp_path: Path, compression: str) -> None:
    plate_path, out = tmp_path / "plate.exr", tmp_path / "out.exr"
    rng = np.random.default_rng(21)
    h, w = 64, 40
    noise = _noise(rng, (h, w, 3))
    window = Window(-3, -2, w, h)
    write_image(plate_path, Image(noise, ["R", "G", "B"], window, window, ["float"] * 3), compression=compression)
    plate = _open(plate_path)
    lines = LINES[compression]
    given = noise.copy()
    given[lines:2 * lines] = _noise(rng, (lines, w, 3))  # block 1: new noise
    given[2 * lines:3 * lines] = 0.0  # block 2: compressible
    ranges = [(window.y + lines, window.y + 3 * lines)]

    counts = write_from_plate(out, plate, given, ["R", "G", "B"], ranges, {})

    assert counts == {"copied": plate.block_count - 2, "encoded": 2}
    _assert_bits_equal(_read(out, ["R", "G", "B"]), given, ["float"] * 3)
    written = _open(out)
    raw_size = lines * w * 3 * 4
    sizes = [len(_chunk(out, int(offset))[1]) for offset in written.offsets]
    assert sizes[1] == raw_size  # encoded noise: stored raw
    assert sizes[2] < raw_size // 10  # encoded zeros: deflated
    assert sizes[0] == raw_size and sizes[-1] == raw_size  # copied noise blocks, raw in the plate too


def test_a_string_replaces_an_existing_attribute_of_the_same_name(tmp_path: Path) -> None:
    plate_path, out = tmp_path / "plate.exr", tmp_path / "out.exr"
    _write_plate(plate_path, LAYOUTS["half_rgba"], "zips", np.random.default_rng(4))
    plate = _open(plate_path)
    source = read_image(plate_path, pixel_type="native")

    write_from_plate(out, plate, source.pixels, source.channels, [], {"studio:shot": "sh020", "studio:take": "7"})

    header = read_header(out)
    assert header.metadata["studio:shot"] == "sh020" and header.metadata_types["studio:shot"] == "string"
    assert header.metadata["studio:take"] == "7" and header.metadata_types["studio:take"] == "string"
    assert header.metadata["studio:gain"] == 1.25
    names = [name for name, _, _ in _open(out).attributes]
    assert names == [name for name, _, _ in plate.attributes]  # same place, no duplicate
    assert names.count("studio:shot") == 1 and names.count("studio:take") == 1


def _write_spec(path: Path, spec: oiio.ImageSpec) -> None:
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), oiio.geterror()
    assert out.write_image(np.full((spec.height, spec.width, spec.nchannels), 0.25, np.float32)), out.geterror()
    out.close()


def _rgba_spec(**attributes: str) -> oiio.ImageSpec:
    spec = oiio.ImageSpec(24, 20, 4, oiio.HALF)
    for name, value in attributes.items():
        spec.attribute(name, value)
    return spec


def test_open_blocks_refuses_a_png(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    write_image(path, Image.from_array(np.full((8, 8, 3), 0.5, np.float32), fmt="uint8"))
    assert open_blocks(path) == (None, "not an EXR file")


def test_open_blocks_refuses_a_tiled_exr(tmp_path: Path) -> None:
    path = tmp_path / "tiled.exr"
    spec = _rgba_spec(compression="zip")
    spec.tile_width = spec.tile_height = 16
    _write_spec(path, spec)
    assert read_header(path).metadata.get("tile_width", 16) == 16
    assert open_blocks(path) == (None, "tiled, deep or multi-part EXR")


def test_open_blocks_refuses_a_two_part_exr(tmp_path: Path) -> None:
    path = tmp_path / "parts.exr"
    specs = [_rgba_spec(compression="zip"), _rgba_spec(compression="zip")]
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), specs), oiio.geterror()
    out.write_image(np.zeros((20, 24, 4), np.float32))
    assert out.open(str(path), specs[1], "AppendSubimage")
    out.write_image(np.ones((20, 24, 4), np.float32))
    out.close()
    assert read_header(path).metadata["oiio:subimages"] == 2
    assert open_blocks(path) == (None, "tiled, deep or multi-part EXR")


@pytest.mark.parametrize("codec", ["piz", "rle", "b44", "dwaa"])
def test_open_blocks_refuses_other_codecs(tmp_path: Path, codec: str) -> None:
    path = tmp_path / f"{codec}.exr"
    _write_spec(path, _rgba_spec(compression=codec))
    assert read_header(path).metadata["compression"].split(":")[0] == codec
    assert open_blocks(path) == (None, f"{codec} compression")


def test_open_blocks_refuses_decreasing_line_order(tmp_path: Path) -> None:
    path = tmp_path / "decreasing.exr"
    _write_spec(path, _rgba_spec(compression="zip", **{"openexr:lineOrder": "decreasingY"}))
    written = oiio.ImageInput.open(str(path))
    order = written.spec().getattribute("openexr:lineOrder")
    written.close()
    if order != "decreasingY":
        pytest.skip(f"this OpenImageIO writes line order {order!r} when asked for decreasingY")
    assert open_blocks(path) == (None, "not in increasing line order")


def _zip_plate(tmp_path: Path) -> tuple[Path, PlateBlocks, Image]:
    path = tmp_path / "plate.1001.exr"
    _write_plate(path, LAYOUTS["overscan"], "zip", np.random.default_rng(9))
    return path, _open(path), read_image(path, pixel_type="native")


def test_a_plate_cut_in_half_names_the_file(tmp_path: Path) -> None:
    path, _, _ = _zip_plate(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated") as caught:
        open_blocks(path)
    assert str(path) in str(caught.value)


def test_a_plate_missing_its_last_bytes_fails_when_that_block_is_copied(tmp_path: Path) -> None:
    path, _, source = _zip_plate(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:-3])
    plate = _open(path)  # the block table still points inside the file
    with pytest.raises(ImageReadError, match="damaged EXR block at line 59") as caught:
        write_from_plate(tmp_path / "out.exr", plate, source.pixels, source.channels, [], {})
    assert str(path) in str(caught.value)
    # encoding the damaged block instead reads nothing of it
    last = plate.y_min + plate.height - 1
    counts = write_from_plate(tmp_path / "out.exr", plate, source.pixels, source.channels, [(last, last + 1)], {})
    assert counts == {"copied": 5, "encoded": 1}
    _assert_bits_equal(_read(tmp_path / "out.exr", source.channels), source.pixels, ["half"] * 4)


@pytest.mark.parametrize("field, value", [("line", 1000), ("size", 0), ("size", 16 * 96 * 4 * 2 + 1)])
def test_a_damaged_block_header_fails_when_that_block_is_copied(tmp_path: Path, field: str, value: int) -> None:
    path, _, source = _zip_plate(tmp_path)
    plate = _open(path)
    offset = int(plate.offsets[2]) + (0 if field == "line" else 4)
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(struct.pack("<i", value))
    line = plate.y_min + 32
    with pytest.raises(ImageReadError, match=f"damaged EXR block at line {line}") as caught:
        write_from_plate(tmp_path / "out.exr", plate, source.pixels, source.channels, [], {})
    assert str(path) in str(caught.value)
    counts = write_from_plate(tmp_path / "out.exr", plate, source.pixels, source.channels, [(line, line + 1)], {})
    assert counts == {"copied": 5, "encoded": 1}


def test_reuse_reason(tmp_path: Path) -> None:
    plate = _zip_plate(tmp_path)[1]
    window = (-37, -21, 96, 96)
    half = ["half"] * 4
    assert plate.reuse_reason(["R", "G", "B", "A"], half, window, "zip") is None
    assert plate.reuse_reason(["A", "B", "G", "R"], half, window, "zip") is None
    assert "compression" in plate.reuse_reason(RGBA, half, window, "zips")
    assert "compression" in plate.reuse_reason(RGBA, half, window, "")
    assert "data window" in plate.reuse_reason(RGBA, half, (-37, -21, 96, 95), "zip")
    assert "data window" in plate.reuse_reason(RGBA, half, (0, 0, 96, 96), "zip")
    assert "channels" in plate.reuse_reason(["R", "G", "B"], half[:3], window, "zip")
    assert "channels" in plate.reuse_reason(RGBA + ["Z"], half + ["float"], window, "zip")
    assert "channels" in plate.reuse_reason(["R", "G", "B", "B"], half, window, "zip")
    assert "pixel type" in plate.reuse_reason(RGBA, ["half", "float", "half", "half"], window, "zip")


def test_a_written_frame_can_be_the_plate_of_the_next(tmp_path: Path) -> None:
    layout = LAYOUTS["mixed"]
    plate_path, first, second = tmp_path / "plate.exr", tmp_path / "first.exr", tmp_path / "second.exr"
    rng = np.random.default_rng(13)
    _write_plate(plate_path, layout, "zip", rng)
    source = read_image(plate_path, pixel_type="native")
    y0, width = layout.data_window.y, layout.data_window.width
    formats = [layout.formats[layout.channels.index(c)] for c in source.channels]
    pixels = source.pixels.copy()
    pixels[20:30] = _half_values(rng, (10, width, len(formats)))
    assert write_from_plate(first, _open(plate_path), pixels, source.channels, [(y0 + 20, y0 + 30)],
                            {"dfl:pass": "1"}) == {"copied": 4, "encoded": 1}
    pixels[60:69] = _half_values(rng, (9, width, len(formats)))

    counts = write_from_plate(second, _open(first), pixels, source.channels, [(y0 + 60, y0 + 69)],
                              {"dfl:pass": "2", "dfl:model": "b"})

    assert counts == {"copied": 3, "encoded": 2}  # rows 60..68 lie in blocks 3 (48..63) and 4 (64..68)
    _assert_bits_equal(_read(second, source.channels), pixels, formats)
    header = read_header(second)
    assert header.metadata["dfl:pass"] == "2" and header.metadata["dfl:model"] == "b"
    assert header.metadata["studio:shot"] == "sh010" and header.metadata["studio:take"] == 3
    names = [name for name, _, _ in _open(second).attributes]
    assert names.count("dfl:pass") == 1 and names[-2:] == ["dfl:pass", "dfl:model"]
