"""Backend registry: creation by name, option validation and coercion, the --help table."""

import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.face.detect import (
    BACKENDS,
    BackendOption,
    DetectedFace,
    DlibBackend,
    FaceBackend,
    OnnxBackend,
    backend_help,
    create_backend,
)


def test_registry_is_explicit():
    assert BACKENDS == {"dlib": DlibBackend, "onnx": OnnxBackend}
    for name, backend in BACKENDS.items():
        assert backend.name == name


def test_create_dlib_with_defaults_and_options():
    backend = create_backend("dlib")
    assert isinstance(backend, DlibBackend)
    assert backend.config == {"model": "hog", "upsample": 1, "min_score": 0.0, "coarse_first": True}
    # CLI strings are coerced to the type of each default.
    tuned = create_backend("dlib", model="cnn", upsample="2", min_score="0.25", coarse_first="no")
    assert tuned.config == {"model": "cnn", "upsample": 2, "min_score": 0.25, "coarse_first": False}


def test_unknown_backend_lists_names():
    with pytest.raises(DflError, match=r"'mediapipe'.*dlib, onnx"):
        create_backend("mediapipe")


def test_unknown_option_lists_valid_ones():
    with pytest.raises(DflError, match=r"'upscale'.*model, upsample, min_score"):
        create_backend("dlib", upscale=2)


def test_bad_choice_and_bad_type_name_the_option():
    with pytest.raises(DflError, match=r"'model' must be one of hog, cnn, got 'sfd'"):
        create_backend("dlib", model="sfd")
    with pytest.raises(DflError, match=r"'upsample' needs a int, got 'two'"):
        create_backend("dlib", upsample="two")
    with pytest.raises(DflError, match=r"'providers' must be one of cpu, cuda, tensorrt"):
        create_backend("onnx", providers="rocm")


def test_backend_help_lists_backends_and_options():
    text = backend_help()
    for name, backend in BACKENDS.items():
        assert f"  {name} " in text
        assert backend.description in text
        for key in backend.options:
            assert f"      {key} " in text
    assert "default 'hog' [hog | cnn]" in text
    assert "default 0.3" in text


class CornerBackend(FaceBackend):
    """A minimal backend: one square in the top-left corner; proves the base contract is enough."""

    name = "corner"
    description = "test backend"
    options = {"side": BackendOption(50, "square side"), "flag": BackendOption(False, "a switch")}

    def detect(self, image):
        side = self.config["side"]
        return [((0.0, 0.0, float(side), float(side)), 1.0)]

    def landmarks(self, image, rect):
        return np.tile([rect[0], rect[1]], (68, 1)).astype(float)


def test_subclass_contract_and_bool_options():
    assert CornerBackend(side="20", flag="yes").config == {"side": 20, "flag": True}
    assert CornerBackend(flag="off").config["flag"] is False
    with pytest.raises(DflError, match="'flag' needs a bool"):
        CornerBackend(flag="maybe")
    with pytest.raises(TypeError):
        FaceBackend()


def test_detected_face_geometry():
    face = DetectedFace(rect=(10.0, 20.0, 50.0, 80.0), score=0.9, landmarks=np.zeros((68, 2)))
    assert (face.width, face.height, face.area, face.center) == (40.0, 60.0, 2400.0, (30.0, 50.0))
