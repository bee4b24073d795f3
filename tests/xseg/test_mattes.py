"""Compositors' mattes imported as XSeg labels: plate discs land where the face matrix puts them, overscan too."""

from __future__ import annotations

import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.face.template import FRONTAL_FACE_68
from dfl_vfx.faceset.faceset import Faceset
from dfl_vfx.faceset.metadata import FaceMetadata
from dfl_vfx.io.image import Image, Window, read_image, write_image
from dfl_vfx.xseg.labels import label_mask, labelled_faces, matte_label_path
from dfl_vfx.xseg.mattes import import_mattes

SIZE = 96
PLATE = (0, 0, 320, 200)  # display window x, y, width, height
OVERSCAN = 24


def similarity(scale: float, angle_deg: float, centre_plate: tuple[float, float], size: int = SIZE) -> np.ndarray:
    """Frame -> aligned matrix putting ``centre_plate`` at the face centre, zoomed by ``scale`` and rotated."""
    a = np.radians(angle_deg)
    rot = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    offset = np.array([(size - 1) / 2.0, (size - 1) / 2.0]) - rot @ np.array(centre_plate)
    return np.hstack([rot, offset[:, None]])


def add_face(faceset: Faceset, frame: int, mat: np.ndarray, window=PLATE) -> str:
    landmarks = (FRONTAL_FACE_68 - [0.49, 0.55]) * (0.55 * SIZE) + SIZE / 2.0
    inverse = np.linalg.inv(np.vstack([mat, [0, 0, 1]]))[:2]
    meta = FaceMetadata(
        face_type="whole_face", size=SIZE, source_filename=f"plate.{frame}.exr", source_frame=frame, face_index=0,
        source_rect=[0.0, 0.0, 10.0, 10.0], source_landmarks=landmarks @ inverse[:, :2].T + inverse[:, 2],
        landmarks=landmarks, image_to_face_mat=mat, pose={"pitch": 0.0, "yaw": 0.0, "roll": 0.0},
        detector="s3fd", score=0.9, colorspace="ACEScct", plate_colorspace="ACEScg",
        extra={"display_window": list(window)} if window is not None else {},
    )
    name = faceset.name_for(meta.source_filename, 0)
    faceset.add(name, np.full((SIZE, SIZE, 3), 0.4, np.float32), meta)
    return name


def disc(width: int, height: int, origin: tuple[int, int], centre, radius, samples: int = 4) -> np.ndarray:
    """A disc matte in plate pixels (x, y = origin + array index), antialiased by supersampling."""
    offsets = (np.arange(samples) + 0.5) / samples - 0.5
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    xs, ys = xs + origin[0], ys + origin[1]
    cover = np.zeros((height, width))
    for dy in offsets:
        for dx in offsets:
            cover += (xs + dx - centre[0]) ** 2 + (ys + dy - centre[1]) ** 2 <= radius**2
    return (cover / samples**2).astype(np.float32)


def expected_in_face(mat: np.ndarray, centre, radius) -> np.ndarray:
    """The disc as the face sees it: aligned pixel centres mapped back to the plate, inside the disc or not."""
    inverse = np.linalg.inv(np.vstack([mat, [0, 0, 1]]))[:2]
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    px = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    py = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    return (px - centre[0]) ** 2 + (py - centre[1]) ** 2 <= radius**2


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def write_matte(path, matte: np.ndarray, data_origin=(0, 0), display=PLATE, channels=None) -> None:
    image = Image.from_array(matte, channels=channels, fmt="half")
    h, w = matte.shape[:2]
    image.data_window = Window(data_origin[0], data_origin[1], w, h)
    image.display_window = Window(*display)
    write_image(path, image)


def test_disc_in_the_plate_lands_where_the_matrix_puts_it(tmp_path):
    faceset = Faceset.create(tmp_path / "fs", face_type="whole_face", size=SIZE)
    centres = {1001: (150.3, 92.7), 1002: (170.0, 110.5)}
    mats = {1001: similarity(1.7, 12.0, (150.0, 95.0)), 1002: similarity(0.8, -30.0, (160.0, 100.0))}
    for frame, mat in mats.items():
        add_face(faceset, frame, mat)
        rgba = np.zeros((PLATE[3], PLATE[2], 4), np.float32)
        rgba[:, :, 3] = disc(PLATE[2], PLATE[3], (0, 0), centres[frame], 21.0)
        write_matte(tmp_path / f"roto.{frame}.exr", rgba)
    report = import_mattes(faceset, str(tmp_path / "roto.####.exr"))
    assert report.frames == [1001, 1002] and len(report.written) == 2
    for frame, mat in mats.items():
        name = f"plate.{frame}_0.png"
        stored = read_image(matte_label_path(faceset, name))
        assert stored.channel_formats == ["uint16"] and stored.pixels.shape == (SIZE, SIZE, 1)
        mask = label_mask(faceset, name)
        expected = expected_in_face(mat, centres[frame], 21.0)
        assert expected.sum() > 400  # the disc is well inside each face
        assert iou(mask >= 0.5, expected) >= 0.99, frame
    assert [p.name for p in labelled_faces(faceset)] == ["plate.1001_0.png", "plate.1002_0.png"]


def test_overscan_pixels_keep_their_plate_coordinates(tmp_path):
    faceset = Faceset.create(tmp_path / "fs", face_type="whole_face", size=SIZE)
    centre, radius = (-6.0, 60.0), 18.0  # partly in the overscan left of the display window
    mat = similarity(1.5, 5.0, (0.0, 60.0))
    add_face(faceset, 1001, mat)
    width, height = PLATE[2] + 2 * OVERSCAN, PLATE[3] + 2 * OVERSCAN
    grey = disc(width, height, (-OVERSCAN, -OVERSCAN), centre, radius)
    write_matte(tmp_path / "roto.1001.exr", grey, data_origin=(-OVERSCAN, -OVERSCAN), channels=["mask"])
    import_mattes(faceset, str(tmp_path / "roto.%04d.exr"), frames="1001", channel="mask")
    mask = label_mask(faceset, "plate.1001_0.png")
    expected = expected_in_face(mat, centre, radius)
    inverse = np.linalg.inv(np.vstack([mat, [0, 0, 1]]))[:2]
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    overscan = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2] < 0.0  # face pixels left of plate x = 0
    assert (expected & overscan).sum() > 1000  # most of the disc lies in the overscan
    assert iou((mask >= 0.5) & overscan, expected & overscan) >= 0.99
    assert iou(mask >= 0.5, expected) >= 0.99


def test_png_grey_matte_and_frames_subset(tmp_path):
    faceset = Faceset.create(tmp_path / "fs", face_type="whole_face", size=SIZE)
    mat = similarity(1.0, 0.0, (100.0, 100.0))
    for frame in (1001, 1002):
        add_face(faceset, frame, mat)
    grey = np.zeros((PLATE[3], PLATE[2]), np.float32)
    grey[80:120, 90:130] = 1.0  # plate pixels x 90..129, y 80..119
    write_image(tmp_path / "roto.1002.png", Image.from_array(grey, fmt="uint8"))
    report = import_mattes(faceset, str(tmp_path / "roto.####.png"), frames=[1002])
    assert report.frames == [1002]
    assert label_mask(faceset, "plate.1001_0.png") is None
    mask = label_mask(faceset, "plate.1002_0.png")
    # identity scale, offset (47.5 - 100): plate x 90..129 -> aligned 37.5..76.5, so 39 full columns + 2 halves
    assert abs(mask.sum() - 40 * 40) < 5e-3  # 16-bit storage
    assert mask[40, 40] == 1.0 and mask[10, 10] == 0.0


def test_bad_input_is_one_line_and_keeps_saved_labels(tmp_path):
    faceset = Faceset.create(tmp_path / "fs", face_type="whole_face", size=SIZE)
    with pytest.raises(DflError, match="the faceset has no faces; extract or import faces"):
        import_mattes(faceset, str(tmp_path / "roto.####.exr"))
    mat = similarity(1.0, 0.0, (100.0, 100.0))
    for frame in (1001, 1002):
        add_face(faceset, frame, mat)
    rgba = np.zeros((PLATE[3], PLATE[2], 4), np.float32)
    rgba[90:110, 90:110, 3] = 1.0
    write_matte(tmp_path / "roto.1001.exr", rgba)
    write_matte(tmp_path / "roto.1002.exr", rgba)
    import_mattes(faceset, str(tmp_path / "roto.####.exr"))
    saved = {f: matte_label_path(faceset, f"plate.{f}_0.png").read_bytes() for f in (1001, 1002)}

    (tmp_path / "roto.1002.exr").unlink()
    with pytest.raises(DflError, match=r"roto\.1002\.exr: matte not found \(1 of 2 frames missing: 1002\); render"):
        import_mattes(faceset, str(tmp_path / "roto.####.exr"))
    small = np.zeros((100, 160, 4), np.float32)
    write_matte(tmp_path / "roto.1002.exr", small, display=(0, 0, 160, 100))
    with pytest.raises(DflError, match=r"roto\.1002\.exr: matte is 160x100 .*plate of plate\.1002_0\.png is 320x200"):
        import_mattes(faceset, str(tmp_path / "roto.####.exr"))
    write_matte(tmp_path / "roto.1002.exr", rgba)
    with pytest.raises(DflError, match=r"roto\.1001\.exr: no channel 'roto' \(has R, G, B, A\); pass --channel"):
        import_mattes(faceset, str(tmp_path / "roto.####.exr"), channel="roto")
    with pytest.raises(DflError, match="no face comes from frames 2001"):
        import_mattes(faceset, str(tmp_path / "roto.####.exr"), frames="2001")
    for frame, data in saved.items():  # every refusal came before any write
        assert matte_label_path(faceset, f"plate.{frame}_0.png").read_bytes() == data


def test_cli_import_mattes(tmp_path, capsys):
    from dfl_vfx.cli.main import main

    faceset = Faceset.create(tmp_path / "fs", face_type="whole_face", size=SIZE)
    add_face(faceset, 1001, similarity(1.0, 0.0, (100.0, 100.0)))
    rgba = np.zeros((PLATE[3], PLATE[2], 4), np.float32)
    rgba[90:110, 90:110, 3] = 1.0  # plate x, y 90..109 -> aligned 37.5..57.5: 20 x 20 px
    write_matte(tmp_path / "roto.1001.exr", rgba)
    code = main(["xseg", "import-mattes", str(faceset.root), str(tmp_path / "roto.####.exr"), "--frames", "1001"])
    out = capsys.readouterr().out
    assert code == 0 and "1 face labels written" in out and "from frames 1001" in out
    assert abs(label_mask(faceset, "plate.1001_0.png").sum() - 400.0) < 5e-3
    code = main(["xseg", "import-mattes", str(faceset.root), str(tmp_path / "roto.####.exr"), "--channel", "Z"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "no channel 'Z' (has R, G, B, A)" in err
