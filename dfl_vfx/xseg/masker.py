"""XSeg masks for the merger: a trained XSeg model run on one aligned face at the swap model's resolution.

The merger's ``xseg-dst`` mask is the model on the dst face it cropped for the swap network, ``xseg-prd`` the model
on the predicted (swapped) face (DeepFaceLab's mask modes 6..9). Faces are resized to the XSeg network (area
filter when shrinking), predicted, resized back bilinearly; values below 0.1 are zeroed as DeepFaceLab's inference
does, the rest kept soft. Faces may be NumPy arrays or torch tensors (a CUDA merge): the result is the same kind, on
the same device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dfl_vfx.errors import DflError
from dfl_vfx.schema import SettingError
from dfl_vfx.xseg.apply import SOFT_FLOOR
from dfl_vfx.xseg.model import load_xseg


class XSegMasker:
    """Callable: aligned face (R, R, 3) in the working space -> XSeg mask (R, R) float32."""

    def __init__(self, model_dir: str | Path, face_type: str, resolution: int) -> None:
        """``face_type`` (a FaceType cli name) and ``resolution`` are the swap model's; a model trained on another
        face type, or one that does not load, is a :class:`SettingError` naming ``xseg_model``."""
        try:
            loaded = load_xseg(model_dir)
        except DflError as exc:
            raise SettingError("xseg_model", str(model_dir), str(exc).split(": ", 1)[-1]) from None
        if loaded.face_type != face_type:
            raise SettingError("xseg_model", str(model_dir),
                               f"was trained on {loaded.face_type} faces, the swap model uses {face_type} faces; "
                               f"train an XSeg model on {face_type} faces")
        self.model = loaded.model
        self.xseg_resolution = loaded.resolution
        self.resolution = resolution

    def __call__(self, face: Any) -> Any:
        is_tensor = isinstance(face, torch.Tensor)
        x = face if is_tensor else torch.from_numpy(np.ascontiguousarray(face, np.float32))
        if next(self.model.parameters()).device != x.device:
            self.model = self.model.to(x.device)
        x = x.float().clamp(0.0, 1.0).permute(2, 0, 1)[None]
        r, size = self.xseg_resolution, self.resolution
        if size != r:
            x = F.interpolate(x, size=(r, r), mode="area" if size > r else "bilinear",
                              **({} if size > r else {"align_corners": False}))
        with torch.no_grad():
            _, probs = self.model(x)
        if size != r:
            probs = F.interpolate(probs, size=(size, size), mode="bilinear", align_corners=False)
        mask = torch.where(probs[0, 0] < SOFT_FLOOR, 0.0, probs[0, 0]).contiguous()
        return mask if is_tensor else mask.numpy()
