"""dlib identity descriptors on the two public-domain test faces."""

import cv2
import numpy as np
import pytest
import skimage.data
from matplotlib import cbook

from dfl_vfx.face.detect import DlibBackend, find_faces
from dfl_vfx.face.identity import FaceEmbedder


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder()


@pytest.fixture(scope="module")
def astronaut_face():
    image = skimage.data.astronaut()
    return image, find_faces(image, DlibBackend(), max_faces=1)[0]


def test_different_people_are_far_apart(embedder, astronaut_face):
    hopper = cv2.cvtColor(cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))),
                          cv2.COLOR_BGR2RGB)
    hopper_face = find_faces(hopper, DlibBackend(), max_faces=1)[0]
    image, face = astronaut_face
    distance = embedder.distance(embedder.embed(image, face.landmarks), embedder.embed(hopper, hopper_face.landmarks))
    assert distance > 0.6  # measured 0.683


@pytest.mark.parametrize("transform", ["flip", "resize_0.8"])
def test_same_person_transformed_is_close(embedder, astronaut_face, transform):
    image, face = astronaut_face
    if transform == "flip":
        other = np.ascontiguousarray(image[:, ::-1])
    else:
        other = cv2.resize(image, (410, 410), interpolation=cv2.INTER_AREA)
    other_face = find_faces(other, DlibBackend(), max_faces=1)[0]
    distance = embedder.distance(embedder.embed(image, face.landmarks), embedder.embed(other, other_face.landmarks))
    assert distance < 0.45  # measured 0.20 flipped, 0.10 resized


def test_embed_faces_shapes(embedder, astronaut_face):
    image, face = astronaut_face
    rows = embedder.embed_faces(image, [face, face])
    assert rows.shape == (2, 128) and rows.dtype == np.float64
    assert np.array_equal(rows[0], embedder.embed(image, face.landmarks))
    assert embedder.embed_faces(image, []).shape == (0, 128)
    with pytest.raises(ValueError, match="68, 2"):
        embedder.embed(image, face.landmarks[:5])
