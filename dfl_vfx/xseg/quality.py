"""The XSeg quality check on the occluded demo shot: faces with a hand over the mouth, the true face mattes, and
the IoU of a model's masks against them (used by the quality test and bench/xseg_bench.py).

The detector loses the face behind the hand in some frames, so the faces are tracked through it as a tracker
would: the clean shot (same camera, same seed) is extracted and each face is cut at the same matrix from the
occluded plate.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from dfl_vfx.color.ocio import WORKING_SPACE, WorkingSpace
from dfl_vfx.demo.shot import DemoShotConfig, build_demo_shot
from dfl_vfx.face.crop import crop_face_at
from dfl_vfx.faceset import FaceRecord, Faceset
from dfl_vfx.io.image import read_image
from dfl_vfx.xseg.apply import predict_masks
from dfl_vfx.xseg.mattes import matte_to_face
from dfl_vfx.xseg.train import iou

MATTES = "occluded/matte/matte.####.exr"


def build_occluded_faceset(root: Path, shot: DemoShotConfig, size: int) -> Faceset:
    """``root/faces``: whole-face faces of the occluded demo shot at ``size`` px (one per frame); the shot's plate
    and true mattes are under ``root/occluded``."""
    from dfl_vfx.extract.pipeline import ExtractOptions, extract

    clean_cfg = DemoShotConfig(**{**shot.__dict__, "occluder": False})
    build_demo_shot(root / "clean", clean_cfg, progress=False)
    build_demo_shot(root / "occluded", DemoShotConfig(**{**shot.__dict__, "occluder": True}), progress=False)
    extract(str(root / "clean/plate/plate.####.exr"), str(root / "clean_faces"),
            ExtractOptions(face_type="wf", size=size, select="largest", jobs=1, progress=False))
    clean = Faceset.open(root / "clean_faces")
    faces = Faceset.create(root / "faces", face_type=clean.info.face_type, size=size, encoding=clean.info.encoding)
    space = WorkingSpace("ACEScg", WORKING_SPACE)
    for record in clean.records():
        plate = read_image(root / f"occluded/plate/plate.{record.meta.source_frame:04d}.exr")
        crop = crop_face_at(plate.pixels[..., :3], None, (plate.data_window.x, plate.data_window.y),
                            record.meta.matrix(), size)
        faces.add(record.name, space.to_working(crop), record.meta)
    return faces


def true_face_matte(root: Path, record: FaceRecord) -> np.ndarray:
    """The true face matte of a face's frame, warped into the face (float32 (S, S))."""
    matte = read_image(root / MATTES.replace("####", f"{record.meta.source_frame:04d}"))
    return matte_to_face(matte.pixels[..., 0], (matte.data_window.x, matte.data_window.y), record)


def matte_ious(model: torch.nn.Module, faces: Faceset, records: list[FaceRecord], root: Path) -> list[float]:
    """IoU (binarised at 0.5) of the model's masks against the true mattes, at the faces' size."""
    res = model.cfg.resolution
    size = faces.info.size
    images = [faces.read(r) for r in records]
    if res != size:
        images = [cv2.resize(image, (res, res), interpolation=cv2.INTER_AREA) for image in images]
    probs = predict_masks(model, np.stack(images))
    scores = []
    for record, prob in zip(records, probs, strict=True):
        if res != size:
            prob = cv2.resize(prob, (size, size), interpolation=cv2.INTER_LINEAR)
        scores.append(iou(prob, true_face_matte(root, record)))
    return scores
