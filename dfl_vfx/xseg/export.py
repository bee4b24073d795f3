"""`dfl-vfx xseg export`: a trained XSeg model as ONNX (opset 13, as DeepFaceLab exports XSeg), checked by ONNX
Runtime against torch before the file is written.

Contracts (only the batch axis is dynamic):

* ours: input ``face`` (N, 3, R, R) float32 RGB in [0, 1] (the faceset's working space, what the trainer saw),
  output ``mask`` (N, 1, R, R) float32 probability;
* ``dfl_contract=True``, DeepFaceLab's: input ``in_face:0`` (N, 256, 256, 3) float32 NHWC **BGR** in [0, 1],
  output ``out_mask:0`` (N, 256, 256, 1). Only a 256 px model fits it.

The file's metadata_props record ``dfl_vfx:kind`` = ``xseg``, the resolution, face type and iteration.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import Tensor, nn

import dfl_vfx
from dfl_vfx.errors import DflError
from dfl_vfx.io.atomic import atomic_path
from dfl_vfx.xseg.model import XSeg, load_xseg

OPSET = 13
DFL_RESOLUTION = 256
CHECK_TOLERANCE = 1e-4  # max |ORT - torch| on the probabilities of a random batch


class _Probabilities(nn.Module):
    """Our contract: NCHW RGB in, the probability out."""

    def __init__(self, model: XSeg) -> None:
        super().__init__()
        self.model = model

    def forward(self, face: Tensor) -> Tensor:
        return self.model(face)[1]


class _DflContract(nn.Module):
    """DeepFaceLab's contract: NHWC BGR in, NHWC probability out."""

    def __init__(self, model: XSeg) -> None:
        super().__init__()
        self.model = model

    def forward(self, face: Tensor) -> Tensor:
        rgb = face.flip(3).permute(0, 3, 1, 2)
        return self.model(rgb)[1].permute(0, 2, 3, 1)


def export_xseg_onnx(model_dir: str | Path, out: str | Path, dfl_contract: bool = False) -> Path:
    """Write the ONNX file (atomically) after checking it with ONNX Runtime; returns its path."""
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise DflError(f"--out {out}: give a .onnx file name")
    loaded = load_xseg(model_dir)
    res = loaded.resolution
    if dfl_contract and res != DFL_RESOLUTION:
        raise DflError(f"{loaded.path}: DeepFaceLab's XSeg contract is {DFL_RESOLUTION} px, this model is {res} px; "
                       "export without --dfl-contract or train at --resolution 256")
    if dfl_contract:
        module: nn.Module = _DflContract(loaded.model)
        names, shape = ("in_face:0", "out_mask:0"), (2, res, res, 3)
    else:
        module = _Probabilities(loaded.model)
        names, shape = ("face", "mask"), (2, 3, res, res)
    module.eval()
    example = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", "Constant folding - Only steps=1", UserWarning)  # the BGR flip's Slice
        torch.onnx.export(module, (example,), buffer, dynamo=False, opset_version=OPSET, input_names=[names[0]],
                          output_names=[names[1]], dynamic_axes={name: {0: "batch"} for name in names})
        expected = module(example).numpy()
    graph = onnx.load_from_string(buffer.getvalue())
    for key, value in (("dfl_vfx:kind", "xseg"), ("dfl_vfx:version", dfl_vfx.__version__),
                       ("dfl_vfx:resolution", str(res)), ("dfl_vfx:face_type", loaded.face_type),
                       ("dfl_vfx:iteration", str(loaded.iteration)),
                       ("dfl_vfx:contract", "deepfacelab" if dfl_contract else "dfl_vfx")):
        graph.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    data = graph.SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = session.run(None, {names[0]: example.numpy()})[0]
    error = float(np.abs(got - expected).max())
    if got.shape != expected.shape or error > CHECK_TOLERANCE:
        raise DflError(f"ONNX check failed for {loaded.path}: ONNX Runtime differs from torch by {error:.2e} "
                       f"(limit {CHECK_TOLERANCE:g}); report this with the model")
    try:
        with atomic_path(out) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        raise DflError(f"--out {out}: cannot write ({exc.strerror or exc}); choose another path") from None
    return out
