"""Quality target: an XSeg model trained on 10 labelled faces of a shot with a hand over the mouth segments the
other 10 frames at >= 0.9 IoU against the true matte (reduced network, CPU, well under a minute)."""

import time
from pathlib import Path

import numpy as np
import torch

from dfl_vfx.color.ocio import WORKING_SPACE, WorkingSpace
from dfl_vfx.demo.shot import CARD_ROWS, FACE_ELLIPSE, DemoShotConfig, build_demo_shot, card_to_plate_matrix
from dfl_vfx.extract.pipeline import ExtractOptions, extract
from dfl_vfx.face.crop import crop_face_at
from dfl_vfx.faceset import Faceset
from dfl_vfx.io.image import read_image
from dfl_vfx.xseg.apply import predict_masks
from dfl_vfx.xseg.mattes import import_mattes, matte_to_face
from dfl_vfx.xseg.model import load_xseg
from dfl_vfx.xseg.train import XSegTrainConfig, iou, train_xseg

SHOT = dict(frames=20, width=640, height=360, overscan=24, source_photos=1, seed=3)
SIZE = 64
# the reduced configuration: 64 px, base 8, batch 4, 200 RMSprop steps at 3e-4; the geometric and degrading
# augmentations are off so that 200 steps suffice (they are for generalising across shots, tested in test_train)
TRAINING = dict(resolution=64, base_ch=8, batch_size=4, max_iters=200, lr=3e-4, background_swap=0.0, degrade=0.0,
                random_warp=False, random_flip=False, hsv_power=0.0, levels=0.0, device="cpu", preview_every=0)


def occluded_faceset(root: Path) -> tuple[Faceset, list[int]]:
    """Faces of the occluded shot (hand over the mouth) and its frames.

    The detector loses the face behind the hand in some frames, so the faces are tracked through it as a tracker
    would: the clean shot (same camera) is extracted and each face is cut at the same matrix from the occluded
    plate.
    """
    build_demo_shot(root / "clean", DemoShotConfig(**SHOT), progress=False)
    build_demo_shot(root / "occluded", DemoShotConfig(**SHOT, occluder=True), progress=False)
    extract(str(root / "clean/plate/plate.####.exr"), str(root / "clean_faces"),
            ExtractOptions(face_type="wf", size=SIZE, select="largest", jobs=1, progress=False))
    clean = Faceset.open(root / "clean_faces")
    faces = Faceset.create(root / "faces", face_type=clean.info.face_type, size=SIZE, encoding=clean.info.encoding)
    space = WorkingSpace("ACEScg", WORKING_SPACE)
    for record in clean.records():
        plate = read_image(root / f"occluded/plate/plate.{record.meta.source_frame}.exr")
        crop = crop_face_at(plate.pixels[..., :3], None, (plate.data_window.x, plate.data_window.y),
                            record.meta.matrix(), SIZE)
        faces.add(record.name, space.to_working(crop), record.meta)
    return faces, sorted(r.meta.source_frame for r in faces.records())


def test_ten_labelled_faces_segment_the_rest(tmp_path: Path) -> None:
    start = time.monotonic()
    faces, frames = occluded_faceset(tmp_path)
    assert len(frames) == 20
    labelled = frames[::2]
    report = import_mattes(faces, str(tmp_path / "occluded/matte/matte.####.exr"), frames=labelled)
    assert len(report.written) == 10
    torch.manual_seed(0)
    train_xseg(XSegTrainConfig(facesets=[str(faces.root)], model_dir=str(tmp_path / "model"), **TRAINING),
               progress=False)
    model = load_xseg(tmp_path / "model").model
    held_out = [r for r in faces.records() if r.meta.source_frame not in labelled]
    probs = predict_masks(model, np.stack([faces.read(r) for r in held_out]))
    scores = []
    for record, prob in zip(held_out, probs, strict=True):
        matte = read_image(tmp_path / f"occluded/matte/matte.{record.meta.source_frame}.exr")
        truth = matte_to_face(matte.pixels[..., 0], (matte.data_window.x, matte.data_window.y), record)
        scores.append(iou(prob, truth))
    elapsed = time.monotonic() - start
    print(f"XSeg quality: IoU per held-out frame {np.round(scores, 3).tolist()}, mean {np.mean(scores):.3f}, "
          f"{elapsed:.1f} s")
    # measured (2 shared cores): mean 0.935, min 0.917
    assert np.mean(scores) >= 0.9, scores
    assert min(scores) >= 0.85, scores


def test_occluder_hides_more_of_the_face_later(tmp_path: Path) -> None:
    """The true matte is the face ellipse minus the hand, which rises over the mouth: visible fraction of the
    ellipse (its analytic area through the card-to-plate scale) drops from the first to the last frame."""
    cfg = DemoShotConfig(**{**SHOT, "frames": 4}, occluder=True)
    build_demo_shot(tmp_path, cfg, progress=False)
    (_, _), (ax, ay) = FACE_ELLIPSE
    visible = []
    for index in range(cfg.frames):
        matte = read_image(tmp_path / f"matte/matte.{cfg.first_frame + index:04d}.exr")
        assert matte.channels == ["A"] and matte.data_window.x == -cfg.overscan
        scale2 = abs(np.linalg.det(card_to_plate_matrix(index, cfg, (CARD_ROWS, 512))[:, :2]))
        visible.append(float(matte.pixels.sum()) / (np.pi * ax * ay * scale2))
    assert 0.9 < visible[0] <= 1.01  # the hand starts below the chin
    assert 0.55 < visible[-1] < 0.85  # and ends over the mouth
