"""Face finding on scene-linear plates (dfl_vfx.face.finder): the crops landmarks are fitted on, the faces a plate
gives, selection by identity, and that swap's on-the-fly finder finds the faces extract found."""

import json
from pathlib import Path

import numpy as np
import pytest

from dfl_vfx.color.ocio import WorkingSpace, plate_colorspace
from dfl_vfx.demo.shot import astronaut_srgb
from dfl_vfx.errors import DflError
from dfl_vfx.extract.pipeline import ExtractOptions, extract
from dfl_vfx.face.detect import create_backend, find_faces
from dfl_vfx.face.finder import FaceSearch, find_plate_faces, landmark_crop_box, reference_embeddings
from dfl_vfx.face.selection import FaceFilter
from dfl_vfx.io.image import Image, read_image, write_image
from dfl_vfx.swap.faces import FaceFinder


def test_landmark_crop_box_grows_the_rect_and_stays_in_the_frame() -> None:
    # a 100 px face grows by 30 px a side, clipped at the frame's top-left and bottom
    assert landmark_crop_box((10.0, 20.0, 110.0, 120.0), (100, 200)) == (0, 0, 141, 100)
    assert landmark_crop_box((50.0, 40.0, 70.0, 60.0), (100, 200)) == (44, 34, 77, 67)


def _plate(small_shot: Path, frame: int) -> tuple[Image, WorkingSpace]:
    image = read_image(small_shot / "plate" / f"plate.{frame}.exr")
    return image, WorkingSpace(plate_colorspace(None, image.metadata))


def test_plate_faces_agree_with_the_detector_on_the_whole_display_frame(small_shot: Path) -> None:
    image, space = _plate(small_shot, 1003)
    backend = create_backend("dlib")
    faces = find_plate_faces(image.rgb(), space.display_uint8, backend)
    whole = find_faces(space.display_uint8(image.rgb()), backend)
    assert len(faces) == len(whole) == 1
    # landmarks fitted on a crop of the linear plate, shown through the display transform, land where the
    # detector puts them on the whole display frame (detection copies differ only in resampling order)
    gap = np.linalg.norm(faces[0].landmarks - whole[0].landmarks, axis=1).mean()
    assert gap < 1.0, gap


def test_identity_search_keeps_the_reference_person_only(small_shot: Path, tmp_path: Path) -> None:
    same, other = tmp_path / "collins.png", small_shot / "src" / "src.0001.png"
    write_image(same, Image.from_array(astronaut_srgb() / 255.0, fmt="uint8"))
    backend = create_backend("dlib")
    image, space = _plate(small_shot, 1001)
    kept = {}
    for name, photo in (("same", same), ("other", other)):
        reference = reference_embeddings([str(photo)], backend)
        assert reference.shape == (1, 128)
        search = FaceSearch(backend, FaceFilter("identity"), reference=reference)
        kept[name] = search.find(image.rgb(), space.display_uint8)
    assert len(kept["same"]) == 1 and kept["other"] == []


def test_a_reference_photo_without_a_face_is_one_line(tmp_path: Path) -> None:
    blank = tmp_path / "wall.png"
    write_image(blank, Image.from_array(np.full((200, 200, 3), 0.5, np.float32), fmt="uint8"))
    with pytest.raises(DflError, match=r"^--reference .*wall.png: no face found; give a clear photo") as info:
        reference_embeddings([str(blank)], create_backend("dlib"))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("mode,max_faces,enough", [("largest", 0, 1), ("largest", 2, 2), ("all", 0, 0),
                                                   ("all", 3, 3), ("identity", 1, 0)])
def test_only_largest_selections_let_a_coarse_copy_answer(mode: str, max_faces: int, enough: int) -> None:
    search = FaceSearch(create_backend("dlib"), FaceFilter(mode, max_faces))
    assert search.enough == enough
    described = search.describe((1080, 1920))
    assert described.startswith("faces from 108 px, searched on a ")
    assert ("then a" in described) == (enough > 0)


def test_swap_finds_on_the_fly_the_faces_extract_found(small_shot: Path, tmp_path: Path) -> None:
    # both with their default detection options: every face, automatic sizes
    extract(str(small_shot / "plate" / "plate.####.exr"), str(tmp_path / "dst"),
            ExtractOptions(size=64, jobs=1, progress=False), frames="1001,1007")
    extracted = json.loads((tmp_path / "dst" / "alignments.json").read_text())["frames"]
    finder = FaceFinder()
    for frame in (1001, 1007):
        image, space = _plate(small_shot, frame)
        plans = finder.plans(image.rgb(), (image.data_window.x, image.data_window.y), space.display_uint8)
        expected = [face["landmarks"] for face in extracted[str(frame)]["faces"]]
        assert len(plans) == len(expected) == 1
        np.testing.assert_allclose(plans[0].landmarks, expected[0], atol=1e-3)  # stored rounded to 1e-4
