"""Fixtures of the XSeg model tests: a small labelled faceset built in code and a briefly trained XSeg model.

The faceset holds 64 px whole-face "faces": a textured ellipse (the face, labelled by an include polygon) on a
textured background, at varied positions; ``labels`` faces carry polygons, the rest none.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dfl_vfx.color.ocio import WORKING_SPACE
from dfl_vfx.face.template import FRONTAL_FACE_68
from dfl_vfx.faceset import FaceMetadata, Faceset

SIZE = 64


@pytest.fixture(autouse=True, scope="module")
def _one_thread(single_thread: None) -> None:
    """Small networks: one torch thread (the shared CI cores are oversubscribed otherwise)."""


def ellipse_points(centre: tuple[float, float], axes: tuple[float, float], n: int = 24) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([centre[0] + axes[0] * np.cos(t), centre[1] + axes[1] * np.sin(t)], axis=1)


def face_meta(index: int, size: int = SIZE, polygons: list | None = None) -> FaceMetadata:
    landmarks = (FRONTAL_FACE_68 - [0.49, 0.55]) * (0.55 * size) + size / 2.0
    mat = np.array([[0.5, 0.0, -40.0], [0.0, 0.5, -12.5]])
    return FaceMetadata(
        face_type="whole_face", size=size, source_filename=f"plate.{1001 + index}.exr", source_frame=1001 + index,
        face_index=0, source_rect=[100.0, 50.0, 300.0, 260.0], source_landmarks=(landmarks - mat[:, 2]) / 0.5,
        landmarks=landmarks, image_to_face_mat=mat, pose={"pitch": 0.0, "yaw": 0.0, "roll": 0.0}, detector="test",
        score=1.0, colorspace=WORKING_SPACE, plate_colorspace="ACEScg",
        extra={"seg_ie_polys": polygons} if polygons else {},
    )


def synthetic_face(index: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(RGB float32 image, polygon points) of face ``index``: a warm textured ellipse on a cool textured wall."""
    rng = np.random.default_rng(index)
    image = (0.25 + 0.1 * rng.random((size, size, 3))) * np.array([0.8, 0.9, 1.1])
    centre = (size / 2 + rng.uniform(-6, 6), size / 2 + rng.uniform(-6, 6))
    axes = (size * rng.uniform(0.22, 0.3), size * rng.uniform(0.3, 0.36))
    points = ellipse_points(centre, axes)
    inside = np.zeros((size, size), np.float32)
    cv2.fillPoly(inside, [np.round(points * 16).astype(np.int32)], 1.0, shift=4)
    skin = (0.55 + 0.1 * rng.random((size, size, 3))) * np.array([1.1, 0.85, 0.7])
    image = image * (1 - inside[..., None]) + skin * inside[..., None]
    return np.clip(image, 0, 1).astype(np.float32), points


def build_faceset(root: Path, count: int, labelled: int, size: int = SIZE) -> Faceset:
    faceset = Faceset.create(root, face_type="wf", size=size)
    for i in range(count):
        image, points = synthetic_face(i, size)
        polygons = [{"type": 1, "pts": points.tolist()}] if i < labelled else None
        faceset.add(f"plate.{1001 + i}_0", image, face_meta(i, size, polygons))
    return faceset


@pytest.fixture(scope="session")
def labelled_faceset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 faces, the first 8 labelled with an include polygon."""
    root = tmp_path_factory.mktemp("xseg_faces") / "faces"
    build_faceset(root, 12, 8)
    return root


@pytest.fixture(scope="session")
def xseg_model(labelled_faceset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reduced (64 px, base 8) XSeg model trained 60 iterations on ``labelled_faceset``."""
    from dfl_vfx.xseg.train import XSegTrainConfig, train_xseg

    torch.manual_seed(0)
    model_dir = tmp_path_factory.mktemp("xseg_model") / "model"
    threads = torch.get_num_threads()  # session fixtures start before the module's one-thread fixture
    torch.set_num_threads(1)
    try:
        train_xseg(XSegTrainConfig(facesets=[str(labelled_faceset)], model_dir=str(model_dir), resolution=64,
                                   base_ch=8, max_iters=60, lr=3e-4, device="cpu", preview_every=0), progress=False)
    finally:
        torch.set_num_threads(threads)
    return model_dir


@pytest.fixture()
def faceset_builder():
    """``build_faceset(root, count, labelled, size=64)``: a synthetic faceset of ``count`` faces."""
    return build_faceset
