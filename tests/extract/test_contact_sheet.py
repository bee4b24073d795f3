"""Contact sheets of facesets."""

from pathlib import Path

import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.extract.contact_sheet import contact_sheet
from dfl_vfx.faceset import FaceMetadata, Faceset
from dfl_vfx.io.image import read_image


def _meta(i: int) -> FaceMetadata:
    lm = np.stack([np.linspace(10, 50, 68), np.linspace(15, 45, 68)], axis=1)
    return FaceMetadata(
        face_type="whole_face", size=64, source_filename=f"p.{1001 + i}.exr", source_frame=1001 + i, face_index=0,
        source_rect=[0, 0, 1, 1], source_landmarks=lm.tolist(), landmarks=lm.tolist(),
        image_to_face_mat=[[1, 0, 0], [0, 1, 0]], pose={"pitch": 0.0, "yaw": 0.0, "roll": 0.0}, detector="dlib",
        score=1.0, colorspace="ACEScct", plate_colorspace="ACEScg",
    )


def test_grid_size_sampling_and_landmarks(tmp_path: Path) -> None:
    fs = Faceset.create(tmp_path / "fs", face_type="wf", size=64, encoding="exr")
    for i in range(10):
        fs.add(f"p.{1001 + i}_0", np.full((64, 64, 3), 0.1 * i, np.float32), _meta(i))
    path = contact_sheet(fs, tmp_path / "sheet.png", thumb=32, columns=4, max_faces=6)
    sheet = read_image(path).rgb()
    assert sheet.shape == (64, 128, 3)  # 6 faces in rows of 4
    assert sheet[:, :, 1].max() > 0.9  # green landmarks drawn
    bare = read_image(contact_sheet(fs, tmp_path / "bare.png", thumb=32, columns=4, landmarks=False)).rgb()
    assert bare.shape == (96, 128, 3)  # all 10 faces
    # first tile is the darkest face, the 10th the brightest (evenly sampled, in order)
    assert bare[5:10, 5:10].mean() < bare[69:74, 37:42].mean()


def test_empty_faceset_is_a_clear_error(tmp_path: Path) -> None:
    fs = Faceset.create(tmp_path / "fs", face_type="wf", size=64)
    with pytest.raises(DflError, match="holds no faces"):
        contact_sheet(fs, tmp_path / "s.png")
