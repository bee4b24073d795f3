"""XSeg label polygons: validation, exact rasterized areas, atomic metadata-only saves, matte fallback."""

from __future__ import annotations

import json

import numpy as np
import OpenImageIO as oiio
import pytest
import skimage.data
import skimage.draw

from dfl_vfx.errors import DflError
from dfl_vfx.face.template import FRONTAL_FACE_68
from dfl_vfx.faceset.faceset import Faceset
from dfl_vfx.faceset.metadata import FACE_ATTRIBUTE, FaceMetadata
from dfl_vfx.io.image import Image, write_image
from dfl_vfx.xseg.labels import (
    Polygon,
    label_mask,
    labelled_faces,
    matte_label_path,
    rasterize,
    read_polygons,
    validate_polygons,
    write_polygons,
)

SIZE = 64


def face_meta(size: int, frame: int) -> FaceMetadata:
    landmarks = (FRONTAL_FACE_68 - [0.49, 0.55]) * (0.55 * size) + size / 2.0
    mat = np.array([[0.5, 0.0, -40.0], [0.0, 0.5, -12.0]])
    return FaceMetadata(
        face_type="whole_face", size=size, source_filename=f"plate.{frame}.exr", source_frame=frame, face_index=0,
        source_rect=[100.0, 50.0, 300.0, 260.0], source_landmarks=(landmarks - mat[:, 2]) / 0.5,
        landmarks=landmarks, image_to_face_mat=mat, pose={"pitch": 0.0, "yaw": 0.1, "roll": 0.0},
        detector="s3fd", score=0.9, colorspace="ACEScct", plate_colorspace="ACEScg",
        extra={"display_window": [0, 0, 640, 360], "note": "kept"},
    )


def make_faceset(root, encoding: str = "png16", frames=(1001, 1002)) -> Faceset:
    faceset = Faceset.create(root, face_type="whole_face", size=SIZE, encoding=encoding)
    photo = skimage.data.astronaut()[40:40 + SIZE * 2:2, 150:150 + SIZE * 2:2].astype(np.float32) / 255.0
    for frame in frames:
        meta = face_meta(SIZE, frame)
        faceset.add(faceset.name_for(meta.source_filename, 0), photo * 0.8 + 0.01 * (frame - 1000), meta)
    return faceset


def native_pixels(path) -> np.ndarray:
    inp = oiio.ImageInput.open(str(path))
    pixels = inp.read_image(0, 0, 0, inp.spec().nchannels, oiio.UNKNOWN)
    inp.close()
    return pixels


def header_attributes(path) -> dict:
    inp = oiio.ImageInput.open(str(path))
    spec = inp.spec()
    attributes = {a.name: a.value for a in spec.extra_attribs}
    attributes["format"] = str(spec.format)
    inp.close()
    return attributes


def rect(x0, y0, x1, y1, kind="include") -> Polygon:
    return Polygon(kind, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64))


def test_rectangles_with_half_integer_corners_cover_exactly_their_area():
    mask = rasterize([rect(1.5, 2.5, 11.5, 7.5)], 16)  # pixel centres x 2..11, y 3..7
    assert mask.dtype == np.float32 and mask.shape == (16, 16)
    assert mask.sum() == 50.0
    assert mask[3:8, 2:12].all() and mask[2, 5] == 0 and mask[8, 5] == 0 and mask[5, 1] == 0 and mask[5, 12] == 0


def test_exclude_applies_after_include_in_order():
    include, exclude = rect(-0.5, -0.5, 15.5, 15.5), rect(3.5, 3.5, 7.5, 9.5, "exclude")  # 256 - 4 * 6
    assert rasterize([include, exclude], 16).sum() == 256 - 24
    assert rasterize([exclude, include], 16).sum() == 256  # a later include paints over an earlier exclude
    assert rasterize([include, exclude, rect(4.5, 4.5, 5.5, 5.5)], 16).sum() == 256 - 24 + 1


def test_triangle_and_star_match_the_pixel_centre_rule():
    size = 32
    triangle = Polygon("include", [[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5]])
    # centres with x + y < size - 1 (on the hypotenuse: a right edge, outside)
    assert rasterize([triangle], size).sum() == size * (size - 1) / 2
    angles = np.linspace(0, 2 * np.pi, 14, endpoint=False)
    radii = np.where(np.arange(14) % 2 == 0, 14.3, 6.1)
    star = np.stack([16.2 + radii * np.cos(angles), 15.7 + radii * np.sin(angles)], axis=1)
    mask = rasterize([Polygon("include", star)], size)
    rr, cc = skimage.draw.polygon(star[:, 1], star[:, 0], (size, size))  # skimage: pixel centres too
    reference = np.zeros((size, size), np.float32)
    reference[rr, cc] = 1.0
    assert np.abs(mask - reference).sum() <= 6  # they may differ only on centres lying on an edge
    shoelace = 0.5 * abs(np.dot(star[:, 0], np.roll(star[:, 1], -1)) - np.dot(star[:, 1], np.roll(star[:, 0], -1)))
    assert abs(mask.sum() - shoelace) < 0.05 * shoelace


def test_validation_names_the_face_and_the_problem():
    good = rect(2, 2, 20, 20)
    validate_polygons([good, rect(4, 4, 8, 8, "exclude")], SIZE, "a_0.png")
    with pytest.raises(DflError, match=r"^a_0.png: include polygon 1 has 2 distinct point\(s\)"):
        validate_polygons([Polygon("include", [[1, 1], [5, 5], [5, 5]])], SIZE, "a_0.png")
    bowtie = Polygon("exclude", [[2, 2], [20, 20], [20, 2], [2, 20]])
    with pytest.raises(DflError, match=r"^a_0.png: exclude polygon 2 crosses itself \(edges 1 and 3\)"):
        validate_polygons([good, bowtie], SIZE, "a_0.png")
    with pytest.raises(DflError, match=r"point \(66\.0, 3\.0\) lies outside the 64x64 face"):
        validate_polygons([Polygon("include", [[1, 3], [66, 3], [30, 30]])], SIZE, "a_0.png")
    validate_polygons([Polygon("include", [[-0.9, 0], [64.9, 0], [30, 30]])], SIZE, "a_0.png")  # 1 px slack
    with pytest.raises(DflError, match="no area"):
        validate_polygons([Polygon("include", [[1, 1], [5, 5], [9, 9]])], SIZE, "a_0.png")
    with pytest.raises(DflError, match="crosses itself"):  # a spike turning straight back
        validate_polygons([Polygon("include", [[1, 1], [20, 1], [10, 1], [10, 20]])], SIZE, "a_0.png")
    with pytest.raises(DflError, match="'inside' is unknown"):
        Polygon("inside", [[1, 1], [2, 2], [1, 2]])


@pytest.mark.parametrize("encoding", ["png16", "exr"])
def test_write_polygons_changes_only_the_labels(tmp_path, encoding):
    faceset = make_faceset(tmp_path / "fs", encoding)
    path = faceset.records()[0].path
    before_pixels, before_header = native_pixels(path), header_attributes(path)
    before_meta = json.loads(before_header[FACE_ATTRIBUTE])
    polygons = [Polygon("include", [[5.25, 6.5], [50.75, 8.0], [40.0, 55.5], [8.0, 40.0]]), rect(20, 20, 30, 30,
                                                                                               "exclude")]
    assert write_polygons(faceset, path.name, polygons) == path
    after_pixels, after_header = native_pixels(path), header_attributes(path)
    assert after_pixels.dtype == before_pixels.dtype == (np.uint16 if encoding == "png16" else np.float16)
    assert np.array_equal(after_pixels, before_pixels)  # bit-identical, stored type
    after_meta = json.loads(after_header.pop(FACE_ATTRIBUTE))
    before_header.pop(FACE_ATTRIBUTE)
    assert after_header == before_header
    assert after_meta["extra"].pop("seg_ie_polys") == [
        {"type": 1, "pts": [[5.25, 6.5], [50.75, 8.0], [40.0, 55.5], [8.0, 40.0]]},
        {"type": 0, "pts": [[20.0, 20.0], [30.0, 20.0], [30.0, 30.0], [20.0, 30.0]]},
    ]
    assert after_meta == before_meta
    read = read_polygons(faceset.record(path).meta)
    assert [p.kind for p in read] == ["include", "exclude"] and np.array_equal(read[0].points, polygons[0].points)
    assert [p.name for p in labelled_faces(faceset)] == [path.name]
    assert not list(path.parent.glob(".*tmp*"))
    write_polygons(faceset, path, [])  # clearing removes the key
    assert "seg_ie_polys" not in faceset.record(path).meta.extra and labelled_faces(faceset) == []
    assert np.array_equal(native_pixels(path), before_pixels)


def test_refused_polygons_leave_the_saved_labels(tmp_path):
    faceset = make_faceset(tmp_path / "fs")
    path = faceset.records()[1].path
    write_polygons(faceset, path.name, [rect(2, 2, 40, 40)])
    saved = path.read_bytes()
    with pytest.raises(DflError, match=rf"^{path.name}: include polygon 1 crosses itself"):
        write_polygons(faceset, path.name, [Polygon("include", [[2, 2], [20, 20], [20, 2], [2, 20]])])
    assert path.read_bytes() == saved
    with pytest.raises(DflError, match="no such face"):
        write_polygons(faceset, "nothere_0.png", [rect(2, 2, 40, 40)])


def test_label_mask_prefers_polygons_then_the_imported_matte(tmp_path):
    faceset = make_faceset(tmp_path / "fs")
    first, second = (r.path for r in faceset.records())
    assert label_mask(faceset, first.name) is None
    matte = np.zeros((SIZE, SIZE), np.float32)
    matte[10:30, 5:25] = 1.0
    matte[40, 40] = 0.5
    write_image(matte_label_path(faceset, second.name), Image.from_array(matte, fmt="uint16"))
    got = label_mask(faceset, second.name)
    assert got.shape == (SIZE, SIZE) and abs(got.sum() - 400.5) < 1e-4
    assert [p.name for p in labelled_faces(faceset)] == [second.name]
    write_polygons(faceset, second.name, [rect(-0.5, -0.5, 9.5, 9.5)])
    assert label_mask(faceset, second.name).sum() == 100.0  # polygons win over the matte
    write_image(matte_label_path(faceset, first.name), Image.from_array(np.zeros((8, 8), np.float32), fmt="uint16"))
    with pytest.raises(DflError, match="is 8x8, the face is 64x64; import the mattes again"):
        label_mask(faceset, first.name)


def test_malformed_stored_polygons_are_one_line_errors(tmp_path):
    faceset = make_faceset(tmp_path / "fs", frames=(1001,))
    meta = faceset.records()[0].meta
    meta.extra["seg_ie_polys"] = [{"type": 3, "pts": [[1, 1], [2, 2], [1, 2]]}]
    with pytest.raises(DflError, match=r"plate.1001.exr polygon 0: label polygon type 3 is neither"):
        read_polygons(meta)
    meta.extra["seg_ie_polys"] = [{"type": 1, "pts": "abc"}]
    with pytest.raises(DflError, match="points are not numbers|finite"):
        read_polygons(meta)
