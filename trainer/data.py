"""Training data: a faceset's faces, face masks and eyes/mouth masks, and yaws, held in memory as tensors.

A face's mask (masked training, the mask head's target) is its applied XSeg mask when the faceset carries one
(``FACESET/xseg/<face stem>.png``, written by `dfl-vfx xseg apply`), else the landmark hull, as DeepFaceLab does.

Faces are resized once to the model's resolution and kept as float16 (N, 3, R, R) tensors, so a batch is an
index into memory. Augmentation then runs on the training device (see ``trainer.augment``) and the GPU never
waits for CPU-side decoding.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from dfl_vfx.errors import DflError
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.face.masks import eyes_mouth_mask, hull_mask
from dfl_vfx.faceset import Faceset
from dfl_vfx.progress import progress_bar
from dfl_vfx.xseg.apply import read_xseg_mask

log = logging.getLogger(__name__)


@dataclass
class FaceSamples:
    """One identity's training faces at the model's resolution."""

    faces: torch.Tensor  # (N, 3, R, R) float16, working space
    masks: torch.Tensor  # (N, 1, R, R) float16, face hull
    eyes_mouth: torch.Tensor  # (N, 1, R, R) float16
    yaws: torch.Tensor  # (N,) float32 radians
    names: list[str]

    def __len__(self) -> int:
        return self.faces.shape[0]

    def batch(self, index: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Faces, masks and eyes/mouth masks of ``index`` as float32 on ``device``."""
        take = [t.index_select(0, index).to(device, torch.float32, non_blocking=True)
                for t in (self.faces, self.masks, self.eyes_mouth)]
        return take[0], take[1], take[2]


def _resized_landmarks(landmarks: np.ndarray, scale: float) -> np.ndarray:
    return (landmarks + 0.5) * scale - 0.5  # pixel-centre convention, as cv2.resize maps pixels


def load_samples(root: str | Path, resolution: int, face_type: str, role: str, progress: bool | None = None
                 ) -> FaceSamples:
    """Load a faceset for training; ``role`` ('src' or 'dst') names it in messages."""
    faceset = Faceset.open(root)
    wanted = FaceType.parse(face_type).cli_name
    if faceset.info.face_type != wanted:
        raise DflError(
            f"{role} faceset {faceset.root} holds {faceset.info.face_type} faces but the model is {wanted}; "
            f"extract with --face-type {wanted} or set model.face_type"
        )
    if faceset.info.size < resolution:
        raise DflError(
            f"{role} faceset {faceset.root} has {faceset.info.size} px faces, smaller than the model's "
            f"{resolution} px; extract with --size {resolution} or more"
        )
    records = faceset.records()
    if not records:
        raise DflError(f"{role} faceset {faceset.root} holds no faces; run `dfl-vfx extract` first")
    n = len(records)
    faces = torch.empty((n, 3, resolution, resolution), dtype=torch.float16)
    masks = torch.empty((n, 1, resolution, resolution), dtype=torch.float16)
    eyes_mouth = torch.empty((n, 1, resolution, resolution), dtype=torch.float16)
    yaws = torch.empty(n, dtype=torch.float32)
    scale = resolution / faceset.info.size
    xseg_count = 0
    for i, record in enumerate(progress_bar(records, desc=f"load {role}", unit="face", enabled=progress)):
        rgb = faceset.read(record)
        if scale != 1.0:
            rgb = cv2.resize(rgb, (resolution, resolution), interpolation=cv2.INTER_AREA)
        landmarks = _resized_landmarks(record.meta.landmarks_array(), scale)
        faces[i] = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
        xseg = read_xseg_mask(faceset, record)
        if xseg is not None:
            xseg_count += 1
            if scale != 1.0:
                xseg = cv2.resize(xseg, (resolution, resolution), interpolation=cv2.INTER_AREA)
            masks[i, 0] = torch.from_numpy(xseg)
        else:
            masks[i, 0] = torch.from_numpy(hull_mask((resolution, resolution), landmarks))
        eyes_mouth[i, 0] = torch.from_numpy(eyes_mouth_mask((resolution, resolution), landmarks))
        yaws[i] = float(record.meta.pose.get("yaw", 0.0))
    log.info("%s: %d faces from %s at %d px; masks: %d XSeg, %d landmark hull", role, n, faceset.root, resolution,
             xseg_count, n - xseg_count)
    return FaceSamples(faces, masks, eyes_mouth, yaws, [r.name for r in records])


class BatchSampler:
    """Random batches (with replacement across batches), optionally weighted, from a seeded generator."""

    def __init__(self, count: int, generator: torch.Generator, weights: torch.Tensor | None = None) -> None:
        self.count = count
        self.generator = generator
        self.weights = weights

    def sample(self, batch_size: int) -> torch.Tensor:
        if self.weights is not None:
            return torch.multinomial(self.weights, batch_size, replacement=True, generator=self.generator)
        return torch.randint(0, self.count, (batch_size,), generator=self.generator)
