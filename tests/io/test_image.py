"""OpenImageIO round trips: windows, layers, per-channel formats, metadata, atomic writes, bad files."""

from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from dfl_vfx.color.ocio import plate_colorspace
from dfl_vfx.errors import DflError, ImageReadError
from dfl_vfx.io import atomic
from dfl_vfx.io.image import (
    Image,
    Window,
    file_compression,
    lossless_compression,
    read_header,
    read_image,
    write_image,
    write_images,
)


def _plate(rng: np.random.Generator) -> Image:
    """An overscan RGBA + mask.A + depth.Z frame with typed metadata, like a comp plate."""
    h, w = 40, 64
    pixels = rng.uniform(-0.01, 50.0, (h, w, 6)).astype(np.float32)
    pixels[:, :, 3] = rng.uniform(0, 1, (h, w))
    return Image(
        pixels=pixels,
        channels=["R", "G", "B", "A", "mask.A", "depth.Z"],
        data_window=Window(-8, -4, w, h),
        display_window=Window(0, 0, 48, 32),
        channel_formats=["half"] * 5 + ["float"],
        metadata={
            "oiio:ColorSpace": "ACEScg",
            "compression": "zips",
            "smpte:TimeCode": (0x01000000, 0),
            "cameraFocalLength": 35.0,
            "worldToCamera": tuple(float(i) for i in range(16)),
        },
        metadata_types={"smpte:TimeCode": "timecode", "worldToCamera": "matrix"},
    )


def test_exr_round_trip_keeps_windows_layers_formats_metadata(tmp_path: Path) -> None:
    src = _plate(np.random.default_rng(1))
    path = tmp_path / "plate.1001.exr"
    write_image(path, src)
    # OpenEXR stores channels sorted by name within each layer; read them back by name
    back = read_image(path, channels=src.channels)
    assert sorted(read_header(path).channels) == sorted(src.channels)
    assert back.data_window == Window(-8, -4, 64, 40)
    assert back.display_window == Window(0, 0, 48, 32)
    assert back.channel_formats == ["half"] * 5 + ["float"]
    # half keeps ~11 bits: relative error below 2^-11; the float channel is exact
    rel = np.abs(back.pixels[..., :5] - src.pixels[..., :5]) / np.maximum(np.abs(src.pixels[..., :5]), 1e-3)
    assert rel.max() < 2.0**-11
    np.testing.assert_array_equal(back.pixels[..., 5], src.pixels[..., 5])
    assert back.metadata["compression"] == "zips"
    # OpenImageIO stores the colour interop ID; the OCIO config resolves it back to ACEScg
    assert back.metadata["oiio:ColorSpace"] == "lin_ap1_scene"
    assert plate_colorspace(None, back.metadata) == "ACEScg"
    assert back.metadata["cameraFocalLength"] == 35.0
    assert tuple(back.metadata["smpte:TimeCode"]) == (0x01000000, 0)
    assert back.metadata_types["smpte:TimeCode"] == "timecode"
    assert back.metadata_types["worldToCamera"] == "matrix"


def test_derived_frame_keeps_other_channels(tmp_path: Path) -> None:
    src = _plate(np.random.default_rng(2))
    write_image(tmp_path / "in.exr", src)
    plate = read_image(tmp_path / "in.exr")
    new_rgb = np.full(plate.rgb().shape, 0.25, np.float32)
    derived = plate.with_rgb(new_rgb)
    write_image(tmp_path / "out.exr", derived)
    out = read_image(tmp_path / "out.exr")
    np.testing.assert_array_equal(out.rgb(), new_rgb)
    np.testing.assert_array_equal(out.pixels[..., 3:], plate.pixels[..., 3:])
    assert out.data_window == plate.data_window and out.display_window == plate.display_window


def test_read_subset_of_channels_and_header_only(tmp_path: Path) -> None:
    write_image(tmp_path / "p.exr", _plate(np.random.default_rng(3)))
    sub = read_image(tmp_path / "p.exr", channels=["mask.A", "R"])
    assert sub.channels == ["mask.A", "R"] and sub.pixels.shape == (40, 64, 2)
    header = read_header(tmp_path / "p.exr")
    assert header.pixels.shape == (0, 0, 6) and header.data_window.x == -8
    with pytest.raises(ImageReadError, match="missing channels Z"):
        read_image(tmp_path / "p.exr", channels=["Z"])


@pytest.mark.parametrize("suffix,fmt,tol", [(".png", "uint16", 1 / 65535), (".png", "uint8", 1 / 255),
                                            (".tif", "uint16", 1 / 65535), (".jpg", "uint8", 0.06),
                                            (".dpx", "uint16", 1 / 1023)])
def test_source_formats_round_trip(tmp_path: Path, suffix: str, fmt: str, tol: float) -> None:
    rng = np.random.default_rng(4)
    y, x = np.mgrid[0:32, 0:48].astype(np.float32)
    rgb = np.stack([x / 47, y / 31, (x + y) / 78], axis=2)  # smooth, so JPEG stays close
    path = tmp_path / f"img{suffix}"
    write_image(path, Image.from_array(rgb, fmt=fmt))
    back = read_image(path)
    assert back.rgb().shape == (32, 48, 3)
    assert np.abs(back.rgb() - rgb).max() <= tol + 1e-6
    del rng


def test_png_out_of_range_values_clamp(tmp_path: Path) -> None:
    values = np.array([[[-0.5, 0.5, 2.0]]], np.float32)
    write_image(tmp_path / "c.png", Image.from_array(values, fmt="uint16"))
    np.testing.assert_allclose(read_image(tmp_path / "c.png").rgb(), [[[0.0, 0.5, 1.0]]], atol=1e-4)


def test_missing_truncated_and_non_image_files(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="file not found"):
        read_image(tmp_path / "nope.exr")
    write_image(tmp_path / "good.exr", Image.from_array(np.ones((64, 64, 3), np.float32)))
    data = (tmp_path / "good.exr").read_bytes()
    (tmp_path / "cut.exr").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.exr"):
        read_image(tmp_path / "cut.exr")
    (tmp_path / "text.exr").write_text("not an image")
    with pytest.raises(ImageReadError, match=r"text\.exr: cannot read image"):
        read_image(tmp_path / "text.exr")


def test_image_without_rgb_channels_gets_a_clear_error(tmp_path: Path) -> None:
    img = Image.from_array(np.ones((4, 4, 2), np.float32), channels=["depth.Z", "mask.A"], fmt="float")
    write_image(tmp_path / "z.exr", img)
    with pytest.raises(ImageReadError, match=r"z\.exr: no R, G, B channels \(has depth.Z, mask.A\)"):
        read_image(tmp_path / "z.exr").rgb()


def test_nonfinite_count() -> None:
    px = np.zeros((2, 2, 3), np.float32)
    px[0, 0, 0], px[1, 1, 2] = np.nan, np.inf
    assert Image.from_array(px).nonfinite_count() == 2


def test_write_is_atomic_when_the_writer_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "frame.exr"
    write_image(target, Image.from_array(np.zeros((8, 8, 3), np.float32)))
    before = target.read_bytes()

    def broken_create(name: str):
        Path(name).write_bytes(b"partial")  # a writer that dies after starting the file
        raise RuntimeError("killed")

    monkeypatch.setattr(oiio.ImageOutput, "create", broken_create)
    with pytest.raises(RuntimeError, match="killed"):
        write_image(target, Image.from_array(np.ones((8, 8, 3), np.float32)))
    assert target.read_bytes() == before  # the old frame is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frame.exr"]  # no temp file left behind


def test_write_images_writes_all_at_once_and_renames_in_order(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    frame = Image.from_array(rng.uniform(0, 4, (30, 40, 4)))
    layers = Image(rng.uniform(0, 1, (6, 5, 1)).astype(np.float32), ["mask.A"], Window(-3, 2, 5, 6),
                   Window(0, 0, 40, 30), ["float"])
    renamed: list[str] = []
    replace = atomic.os.replace

    def recorded(src: Path, dst: Path) -> None:
        renamed.append(Path(dst).relative_to(tmp_path).as_posix())
        replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", recorded)
    write_images([(tmp_path / "layers" / "a.exr", layers, "zips"), (tmp_path / "a.exr", frame, "piz")])
    assert renamed == ["layers/a.exr", "a.exr"]  # the frame appears last, its layers already in place
    back = read_image(tmp_path / "layers" / "a.exr")
    assert back.data_window == Window(-3, 2, 5, 6) and back.metadata["compression"] == "zips"
    np.testing.assert_array_equal(back.pixels, layers.pixels)
    assert read_header(tmp_path / "a.exr").metadata["compression"] == "piz"
    np.testing.assert_allclose(read_image(tmp_path / "a.exr").pixels, frame.pixels, rtol=2**-10)  # half


def test_write_images_renames_none_when_one_fails(tmp_path: Path) -> None:
    good = Image.from_array(np.zeros((4, 4, 3), np.float32))
    bad = Image.from_array(np.zeros((4, 4, 3), np.float32), fmt="int7")
    with pytest.raises(DflError, match=r"b\.exr: unknown pixel format 'int7'"):
        write_images([(tmp_path / "a.exr", good, None), (tmp_path / "b.exr", bad, None)])
    assert list(tmp_path.iterdir()) == []  # neither file, no temp left behind


def test_atomic_path_gives_ordinary_permissions(tmp_path: Path) -> None:
    with atomic.atomic_path(tmp_path / "a.txt") as tmp:
        assert tmp.suffix == ".txt" and tmp.parent == tmp_path
        tmp.write_text("x")
    assert (tmp_path / "a.txt").stat().st_mode & 0o044  # group/other readable like any new file


def test_unknown_format_and_unwritable_type(tmp_path: Path) -> None:
    img = Image.from_array(np.zeros((2, 2, 3), np.float32), fmt="int7")
    with pytest.raises(DflError, match="unknown pixel format 'int7'"):
        write_image(tmp_path / "x.exr", img)
    with pytest.raises(DflError, match=r"x\.nothing: cannot write this file type"):
        write_image(tmp_path / "x.nothing", Image.from_array(np.zeros((2, 2, 3), np.float32)))


def test_read_a_band_of_rows_only(tmp_path: Path) -> None:
    src = _plate(np.random.default_rng(5))
    write_image(tmp_path / "p.exr", src)
    full = read_image(tmp_path / "p.exr", channels=src.channels)
    band = read_image(tmp_path / "p.exr", channels=src.channels, rows=(10, 20))
    assert band.data_window == Window(-8, 10, 64, 10)
    np.testing.assert_array_equal(band.pixels, full.pixels[14:24])  # data window starts at y = -4
    clipped = read_image(tmp_path / "p.exr", rows=(-100, -2))
    assert clipped.data_window == Window(-8, -4, 64, 2)
    assert read_image(tmp_path / "p.exr", rows=(500, 600)).pixels.shape == (0, 64, 6)


def test_interleave_channels_equals_concatenate() -> None:
    from dfl_vfx.io.image import interleave_channels

    rng = np.random.default_rng(0)
    blocks = [rng.random((5, 7, c)).astype(np.float16) for c in (4, 1, 4)]
    out = interleave_channels(blocks)
    assert out.dtype == np.float16 and out.shape == (5, 7, 9)
    assert np.array_equal(out.view(np.uint16), np.concatenate(blocks, axis=2).view(np.uint16))
    with pytest.raises(ValueError, match="one dtype"):
        interleave_channels([blocks[0], blocks[1].astype(np.float32)])


@pytest.mark.parametrize(("plate", "formats", "delivered"), [
    ("dwaa", ["half"], "zip"), ("dwab", ["float"], "zip"), ("b44", ["half"], "zip"), ("b44a", ["half"], "zip"),
    ("pxr24", ["half", "float"], "zip"),
    ("pxr24", ["half"], "pxr24"), ("b44", ["float"], "b44"),  # lossless on those channels
    ("piz", ["half"], "piz"), ("zips", ["float"], "zips"), ("rle", ["half"], "rle"), ("none", ["half"], "none"),
])
def test_a_frame_derived_from_a_lossy_plate_is_written_losslessly(plate, formats, delivered) -> None:
    image = Image.from_array(np.zeros((2, 2, len(formats)), np.float32), channels=list("RGB"[:len(formats)]),
                             metadata={"compression": plate})
    image.channel_formats = formats
    assert lossless_compression(image) == delivered
    assert lossless_compression(image, "dwab") == "dwab"  # asked for: kept


def test_the_dwa_level_of_a_plate_is_read_back_as_a_write_takes_it(tmp_path: Path) -> None:
    write_image(tmp_path / "p.exr", Image.from_array(np.full((8, 8, 3), 0.5, np.float32)), "dwaa:200")
    plate = read_header(tmp_path / "p.exr")
    assert file_compression(plate) == "dwaa:200"
    assert lossless_compression(plate) == "zip" and lossless_compression(plate, "dwaa") == "dwaa:200"
    assert lossless_compression(plate, "dwaa:60") == "dwaa:60"
