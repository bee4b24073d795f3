"""Shared builders for faceset tests: face crops, metadata, real aligned faces and DFL aligned JPEGs.

Tests run in importlib mode, so the helpers are handed out as fixtures: ``kit`` (a :class:`FaceKit`) and the
session-scoped ``real_faces`` (dlib-detected astronaut and Grace Hopper faces, warped to whole_face crops).
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass

import cv2
import matplotlib.cbook
import numpy as np
import pytest
import skimage.data

from dfl_vfx.color.ocio import SRGB_SPACE, WORKING_SPACE, WorkingSpace
from dfl_vfx.face.align import get_transform_mat, transform_points, warp_to_aligned
from dfl_vfx.face.detect import create_backend, find_faces
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.face.template import FRONTAL_FACE_68
from dfl_vfx.faceset.metadata import FaceMetadata

SIZE = 128


def srgb_to_working(rgb: np.ndarray) -> np.ndarray:
    return WorkingSpace(plate_space=SRGB_SPACE).to_working(rgb.astype(np.float32))


def working_to_srgb(rgb: np.ndarray) -> np.ndarray:
    return WorkingSpace(plate_space=SRGB_SPACE).from_working(rgb.astype(np.float32))


def astronaut_crop(size: int = SIZE) -> np.ndarray:
    """sRGB float32 (size, size, 3) crop around the astronaut's face."""
    crop = skimage.data.astronaut()[20:240, 110:330].astype(np.float32) / 255.0
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def template_landmarks(size: int = SIZE) -> np.ndarray:
    """A frontal 68-point face placed in the middle of a size x size aligned image."""
    return (FRONTAL_FACE_68 - [0.49, 0.55]) * (0.55 * size) + size / 2.0


def make_meta(size: int = SIZE, **overrides) -> FaceMetadata:
    landmarks = template_landmarks(size)
    mat = np.array([[0.5, 0.01, -40.0], [-0.01, 0.5, -12.5]])
    values = dict(
        face_type="whole_face",
        size=size,
        source_filename="plate.1001.exr",
        source_frame=1001,
        face_index=0,
        source_rect=[100.25, 50.5, 300.0, 260.75],
        source_landmarks=(landmarks - mat[:, 2]) / 0.5,
        landmarks=landmarks,
        image_to_face_mat=mat,
        pose={"pitch": 0.05, "yaw": -0.2, "roll": 0.01},
        detector="s3fd",
        score=0.987654321,
        colorspace=WORKING_SPACE,
        plate_colorspace="ACEScg",
    )
    values.update(overrides)
    return FaceMetadata(**values)


@dataclass
class RealFace:
    """A detected face warped to a whole_face crop: sRGB pixels, aligned landmarks and frame facts."""

    name: str
    frame_rgb: np.ndarray  # uint8 frame
    aligned: np.ndarray  # float32 sRGB (size, size, 3)
    landmarks: np.ndarray  # aligned pixels
    source_landmarks: np.ndarray
    source_rect: tuple[float, float, float, float]
    mat: np.ndarray


def _grace_hopper() -> np.ndarray:
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        bgr = cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(bgr[:, :, ::-1])


@pytest.fixture(scope="session")
def real_faces() -> dict[str, RealFace]:
    backend = create_backend("dlib")
    faces = {}
    for name, frame in (("astronaut", skimage.data.astronaut()), ("hopper", _grace_hopper())):
        detected = find_faces(frame, backend, max_faces=1)[0]
        mat = get_transform_mat(detected.landmarks, SIZE, FaceType.WHOLE_FACE)
        aligned = warp_to_aligned(frame.astype(np.float32) / 255.0, mat, SIZE, interpolation="cubic")
        faces[name] = RealFace(
            name=name,
            frame_rgb=frame,
            aligned=np.clip(aligned, 0.0, 1.0),
            landmarks=transform_points(detected.landmarks, mat),
            source_landmarks=detected.landmarks,
            source_rect=detected.rect,
            mat=mat,
        )
    return faces


def real_meta(face: RealFace, **overrides) -> FaceMetadata:
    values = dict(
        source_filename=f"{face.name}.1001.exr",
        source_rect=face.source_rect,
        source_landmarks=face.source_landmarks,
        landmarks=face.landmarks,
        image_to_face_mat=face.mat,
        plate_colorspace=SRGB_SPACE,
    )
    values.update(overrides)
    return make_meta(**values)


def jpeg_with_app15(rgb_srgb: np.ndarray, payload: bytes | None, quality: int = 95) -> bytes:
    """Encode sRGB float RGB as a JPEG and put an APP15 segment holding ``payload`` right after SOI."""
    bgr = cv2.cvtColor((np.clip(rgb_srgb, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    data = encoded.tobytes()
    if payload is None:
        return data
    assert len(payload) + 2 <= 0xFFFF
    return data[:2] + b"\xff\xef" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def dfl_metadata(face: RealFace, face_type: str = "whole_face", source_filename: str = "00001.png") -> dict:
    """The dict DeepFaceLab pickles into APP15 (numpy arrays as DFL stores them)."""
    return {
        "face_type": face_type,
        "landmarks": face.landmarks.astype(np.float32),
        "source_filename": source_filename,
        "source_rect": np.array(face.source_rect, dtype=np.int32),
        "source_landmarks": face.source_landmarks.astype(np.float32),
        "image_to_face_mat": face.mat.astype(np.float32),
        "eyebrows_expand_mod": 1.0,
        "seg_ie_polys": [{"type": 1, "pts": np.array([[10.0, 10.0], [100.0, 12.0], [50.0, 90.0]])}],
    }


def dfl_pickle(meta: dict) -> bytes:
    return pickle.dumps(meta, protocol=3)  # DeepFaceLab's Python 3.6/3.7 default protocol


class FaceKit:
    """The builders above, for tests (which cannot import conftest in importlib mode)."""

    SIZE = SIZE
    srgb_to_working = staticmethod(srgb_to_working)
    working_to_srgb = staticmethod(working_to_srgb)
    astronaut_crop = staticmethod(astronaut_crop)
    template_landmarks = staticmethod(template_landmarks)
    make_meta = staticmethod(make_meta)
    real_meta = staticmethod(real_meta)
    jpeg_with_app15 = staticmethod(jpeg_with_app15)
    dfl_metadata = staticmethod(dfl_metadata)
    dfl_pickle = staticmethod(dfl_pickle)


@pytest.fixture
def kit() -> type[FaceKit]:
    return FaceKit
