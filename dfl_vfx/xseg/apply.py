"""`dfl-vfx xseg apply`: run a trained XSeg model on every face of a faceset and keep the masks beside the faces.

Each face's mask is ``FACESET/xseg/<face stem>.png`` (8-bit grey at the face's size, written atomically; the face
files and their metadata are not touched). By default it is binarised at 0.5 as DeepFaceLab's ``xseg apply`` does;
``soft=True`` keeps the probability, with values below 0.1 zeroed as DeepFaceLab's inference does. The trainer
(masked training, the mask head's target) and the merger read them with :func:`read_xseg_mask`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from dfl_vfx.errors import DflError
from dfl_vfx.faceset.faceset import FaceRecord, Faceset
from dfl_vfx.io.image import Image, read_image, write_image
from dfl_vfx.progress import progress_bar
from dfl_vfx.xseg.model import LoadedXSeg, load_xseg

MASKS_DIR = "xseg"
BINARY_THRESHOLD = 0.5
SOFT_FLOOR = 0.1
BATCH = 16


@dataclass
class ApplyReport:
    faces: int
    folder: Path
    mean_coverage: float


def xseg_mask_path(faceset: Faceset, face: FaceRecord | str | Path) -> Path:
    """``FACESET/xseg/<face stem>.png``."""
    name = face.path.name if isinstance(face, FaceRecord) else Path(face).name
    return faceset.root / MASKS_DIR / f"{Path(name).stem}.png"


def read_xseg_mask(faceset: Faceset, face: FaceRecord | str | Path) -> np.ndarray | None:
    """The applied XSeg mask of a face as float32 (size, size) in [0, 1], or None when none was applied."""
    path = xseg_mask_path(faceset, face)
    if not path.is_file():
        return None
    mask = np.clip(read_image(path).pixels[:, :, 0], 0.0, 1.0).astype(np.float32)
    size = faceset.info.size
    if mask.shape != (size, size):
        raise DflError(f"{path}: XSeg mask is {mask.shape[1]}x{mask.shape[0]}, the faces are {size}x{size}; "
                       "apply the XSeg model again (dfl-vfx xseg apply)")
    return mask


def check_face_type(loaded: LoadedXSeg, face_type: str, where: str) -> None:
    """An XSeg model segments the face type it was trained on; any other is a one-line DflError."""
    if loaded.face_type != face_type:
        raise DflError(f"{where} holds {face_type} faces, the XSeg model {loaded.path} was trained on "
                       f"{loaded.face_type} faces; train an XSeg model on {face_type} faces")


def predict_masks(model: torch.nn.Module, faces: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    """Probabilities (N, R, R) float32 of faces (N, R, R, 3) RGB in [0, 1] at the network's resolution."""
    x = torch.from_numpy(np.ascontiguousarray(np.clip(faces, 0.0, 1.0).transpose(0, 3, 1, 2))).to(device)
    with torch.no_grad():
        _, probs = model(x.float())
    return probs[:, 0].float().cpu().numpy()


def finish_mask(probs: np.ndarray, soft: bool) -> np.ndarray:
    """DeepFaceLab's post-processing: binarise at 0.5, or (soft) zero the values below 0.1."""
    if soft:
        return np.where(probs < SOFT_FLOOR, 0.0, probs).astype(np.float32)
    return (probs >= BINARY_THRESHOLD).astype(np.float32)


def apply_xseg(faceset_root: str | Path, model_dir: str | Path, soft: bool = False, device: str = "auto",
               progress: bool | None = None) -> ApplyReport:
    """Predict and store a mask for every face of the faceset; returns how many and their mean coverage."""
    faceset = Faceset.open(faceset_root)
    loaded = load_xseg(model_dir)
    check_face_type(loaded, faceset.info.face_type, f"faceset {faceset.root}")
    res = loaded.resolution
    if faceset.info.size < res:
        raise DflError(f"faceset {faceset.root} has {faceset.info.size} px faces, smaller than the XSeg model's "
                       f"{res} px input; use a model trained at {max(64, faceset.info.size // 64 * 64)} px or "
                       "extract larger faces")
    records = faceset.records()
    if not records:
        raise DflError(f"faceset {faceset.root} holds no faces; run `dfl-vfx extract` first")
    torch_device = torch.device("cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available())
                                else "cpu")
    model = loaded.model.to(torch_device)
    size = faceset.info.size
    coverage = []
    batches = [records[i:i + BATCH] for i in range(0, len(records), BATCH)]
    for batch in progress_bar(batches, desc="xseg apply", unit="batch", enabled=progress):
        faces = np.stack([_resized(faceset.read(r), res) for r in batch])
        probs = predict_masks(model, faces, torch_device)
        for record, prob in zip(batch, probs, strict=True):
            if res != size:
                prob = cv2.resize(prob, (size, size), interpolation=cv2.INTER_LINEAR)
            mask = finish_mask(prob, soft)
            write_image(xseg_mask_path(faceset, record), Image.from_array(mask[..., None], fmt="uint8"))
            coverage.append(float(mask.mean()))
    return ApplyReport(len(records), faceset.root / MASKS_DIR, float(np.mean(coverage)))


def _resized(rgb: np.ndarray, res: int) -> np.ndarray:
    return rgb if rgb.shape[0] == res else cv2.resize(rgb, (res, res), interpolation=cv2.INTER_AREA)


def remove_xseg_masks(faceset_root: str | Path) -> int:
    """Delete the applied masks (``FACESET/xseg/*.png``); labels and faces stay. Returns how many."""
    faceset = Faceset.open(faceset_root)
    folder = faceset.root / MASKS_DIR
    removed = 0
    for path in sorted(folder.glob("*.png")) if folder.is_dir() else []:
        path.unlink()
        removed += 1
    return removed
