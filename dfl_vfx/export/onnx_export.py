"""ONNX export of a trained swap model: our graph convention, the DeepFaceLive DFM variant, metadata and checks.

Two file kinds, both plain ONNX:

* ``dfl_vfx.swap`` (:func:`export_onnx`): input ``face`` (N, 3, R, R) float32 RGB in the working space (ACEScct),
  outputs ``rgb``, ``mask_src``, ``mask_dst``; only the batch axis is dynamic.
* ``dfl_vfx.swap.dfm`` (:func:`export_dfm`): the DeepFaceLab DFM contract (opset 12, one input ``in_face:0``
  (N, R, R, 3) NHWC BGR, outputs ``out_face_mask:0``, ``out_celeb_face:0``, ``out_celeb_face_mask:0``). With
  ``input_space="srgb"`` the graph converts the sRGB-encoded faces DeepFaceLive feeds to ACEScct and the swapped
  face back, with plain math ops (IEC 61966-2-1 sRGB curve, Rec.709 -> AP1 matrix, ACEScct curve).

Both use the legacy TorchScript exporter (``dynamo=False``): it writes opset 12 as the DFM contract requires (the
dynamo exporter cannot down-convert below opset 18 and silently keeps 18), exports a small autoencoder in about a
second, and needs no onnxscript at run time. Its DeprecationWarning is silenced around the call only.

``fp16=True`` converts the whole graph with ONNX Runtime's float16 converter (IO stays float32). In an sRGB DFM the
colour stages then run in half precision too: measured error vs the float32 model 2.5e-4 for the swap graph and
3.5e-3 for an sRGB DFM (under one 8-bit code value). The converter's node block list cannot keep those stages in
float32 (it emits duplicate cast names and casts every constant), so that is the price of an fp16 DFM.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import Tensor, nn

import dfl_vfx
from dfl_vfx.color.torch_curves import (
    AP1_TO_REC709,
    REC709_TO_AP1,
    acescct_to_linear,
    apply_matrix,
    linear_to_acescct,
    srgb_eotf,
    srgb_inverse_eotf,
)
from dfl_vfx.errors import DflError
from dfl_vfx.io.atomic import atomic_path
from dfl_vfx.models.contract import (
    BATCH_AXIS_NAME,
    DFM_INPUT,
    DFM_OUTPUTS,
    INPUT_SPACES,
    KIND_DFM,
    KIND_SWAP,
    SWAP_INPUT,
    SWAP_OUTPUTS,
    WORKING_COLOR_SPACE,
)

DFM_OPSET = 12

class SwapModelConfig(Protocol):
    """The parts of a model configuration the exporter reads."""

    resolution: int
    archi: str
    face_type_name: str

    def to_dict(self) -> dict[str, Any]: ...


class SwapModel(Protocol):
    """A trained swap network (an ``nn.Module``): ``swap(dst)`` -> (swap_rgb, swap_mask, dst_mask), all sigmoid.

    ``dst`` is (N, 3, R, R) float32 RGB in [0, 1] in the working space; the masks are (N, 1, R, R).
    """

    config: SwapModelConfig

    def swap(self, dst: Tensor) -> tuple[Tensor, Tensor, Tensor]: ...

    def eval(self) -> Any: ...

    def to(self, *args: Any, **kwargs: Any) -> Any: ...


@dataclass
class ExportMetadata:
    """What an exported file says about itself, stored as ONNX ``metadata_props`` (all values strings)."""

    resolution: int
    face_type: str
    archi: str
    iterations: int
    color_space: str = WORKING_COLOR_SPACE
    dfl_vfx_version: str = dfl_vfx.__version__
    kind: str = KIND_SWAP
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_model(cls, model: SwapModel, iterations: int, **extra: str) -> ExportMetadata:
        """Metadata filled from the model's configuration."""
        config = model.config
        return cls(config.resolution, config.face_type_name, config.archi, iterations, extra=dict(extra))

    def to_props(self) -> dict[str, str]:
        """Flat string properties: strings as they are, other values as JSON; ``extra`` keys alongside."""
        props = {
            f.name: _prop_text(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "extra"
        }
        clashes = sorted(set(props) & set(self.extra))
        if clashes:
            raise DflError(f"export metadata key(s) {', '.join(clashes)} are reserved; rename the extra key(s)")
        return props | {key: _prop_text(value) for key, value in self.extra.items()}

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ExportMetadata:
        """Inverse of :meth:`to_props`; keys that are not fields become ``extra``."""
        names = [f.name for f in dataclasses.fields(cls) if f.name != "extra"]
        missing = [name for name in names if name not in props]
        if missing:
            raise DflError(f"exported model metadata lacks {', '.join(missing)}; re-export it with dfl-vfx")
        values: dict[str, Any] = {name: props[name] for name in names}
        for name in ("resolution", "iterations"):
            values[name] = int(props[name])
        return cls(**values, extra={key: value for key, value in props.items() if key not in names})


def _prop_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def srgb_to_acescct(rgb: Tensor) -> Tensor:
    """sRGB-encoded Rec.709 (..., 3) -> ACEScct (..., 3), as OpenColorIO's 'sRGB Encoded Rec.709 (sRGB)' -> ACEScct."""
    return linear_to_acescct(apply_matrix(srgb_eotf(rgb), REC709_TO_AP1))


def acescct_to_srgb(cct: Tensor) -> Tensor:
    """ACEScct (..., 3) -> sRGB-encoded Rec.709 (..., 3), unclipped; the inverse of :func:`srgb_to_acescct`."""
    return srgb_inverse_eotf(apply_matrix(acescct_to_linear(cct), AP1_TO_REC709))


# ---------------------------------------------------------------------------------------------------------------
# Graph wrappers


class SwapGraph(nn.Module):
    """Our convention: ``face`` NCHW RGB working space -> (rgb, mask_src, mask_dst)."""

    def __init__(self, model: SwapModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, face: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.model.swap(face)


class SrgbToAcescct(nn.Module):
    """Graph stage: sRGB-encoded input (..., 3) -> ACEScct."""

    def forward(self, rgb: Tensor) -> Tensor:
        return srgb_to_acescct(rgb)


class AcescctToSrgb(nn.Module):
    """Graph stage: ACEScct (..., 3) -> sRGB-encoded, clipped to the [0, 1] an 8-bit consumer expects."""

    def forward(self, cct: Tensor) -> Tensor:
        return acescct_to_srgb(cct).clamp(0.0, 1.0)


class DfmGraph(nn.Module):
    """The DFM contract: ``in_face:0`` NHWC BGR -> (dst mask, swapped face BGR, src mask), all NHWC.

    ``input_space="srgb"`` converts the sRGB-encoded input to ACEScct and the swapped face back to sRGB (clipped
    to [0, 1]); ``"working"`` passes ACEScct through untouched.
    """

    def __init__(self, model: SwapModel, input_space: str = "srgb") -> None:
        super().__init__()
        _check_input_space(input_space)
        self.model = model
        srgb = input_space == "srgb"
        self.to_working = SrgbToAcescct() if srgb else nn.Identity()
        self.from_working = AcescctToSrgb() if srgb else nn.Identity()

    def forward(self, in_face: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        rgb = self.to_working(in_face.flip(-1))
        swap_rgb, swap_mask, dst_mask = self.model.swap(rgb.permute(0, 3, 1, 2))
        face = self.from_working(swap_rgb.permute(0, 2, 3, 1)).flip(-1)
        return dst_mask.permute(0, 2, 3, 1), face, swap_mask.permute(0, 2, 3, 1)


def _check_input_space(input_space: str) -> None:
    if input_space not in INPUT_SPACES:
        raise DflError(f"DFM input space {input_space!r} is unknown; use one of {', '.join(INPUT_SPACES)}")


# ---------------------------------------------------------------------------------------------------------------
# Export


def export_onnx(
    model: SwapModel,
    path: str | Path,
    metadata: ExportMetadata,
    *,
    fp16: bool = False,
    opset: int = 17,
    max_batch: int | None = None,
) -> Path:
    """Export ``model`` in our convention (see module docstring); returns the written path.

    ``max_batch`` is recorded as metadata (for TensorRT optimisation profiles); the ONNX batch axis stays open.
    ``fp16`` stores weights and arithmetic in half precision with float32 inputs and outputs.
    """
    if max_batch is not None and max_batch < 1:
        raise DflError(f"max_batch {max_batch} is invalid; use a positive batch size")
    extra = dict(metadata.extra) | ({"max_batch": str(max_batch)} if max_batch is not None else {})
    metadata = dataclasses.replace(metadata, kind=KIND_SWAP, extra=extra)
    module = SwapGraph(_frozen_copy(model))
    resolution = _check_model(module.model, metadata)
    example = torch.rand(1, 3, resolution, resolution)
    proto = _trace(module, example, SWAP_INPUT, SWAP_OUTPUTS, opset)
    return _finish_and_write(proto, path, metadata, fp16)


def export_dfm(
    model: SwapModel,
    path: str | Path,
    metadata: ExportMetadata,
    *,
    fp16: bool = False,
    input_space: str = "srgb",
) -> Path:
    """Export ``model`` as a DeepFaceLive DFM (opset 12, NHWC BGR; see module docstring); returns the written path."""
    _check_input_space(input_space)
    extra = dict(metadata.extra) | {"input_space": input_space}
    metadata = dataclasses.replace(metadata, kind=KIND_DFM, extra=extra)
    module = DfmGraph(_frozen_copy(model), input_space)
    resolution = _check_model(module.model, metadata)
    example = torch.rand(1, resolution, resolution, 3)
    proto = _trace(module, example, DFM_INPUT, DFM_OUTPUTS, DFM_OPSET)
    return _finish_and_write(proto, path, metadata, fp16)


def _frozen_copy(model: SwapModel) -> Any:
    """A CPU float32 eval-mode copy, so exporting never moves or retypes the caller's (maybe training) model."""
    return copy.deepcopy(model).to("cpu", torch.float32).eval()


def _check_model(model: SwapModel, metadata: ExportMetadata) -> int:
    """The model's resolution, after checking it against the metadata and the shapes ``swap`` really returns."""
    resolution = int(model.config.resolution)
    if metadata.resolution != resolution:
        raise DflError(
            f"export metadata says resolution {metadata.resolution} but the model is {resolution}; fix the metadata"
        )
    with torch.no_grad():
        outputs = model.swap(torch.zeros(1, 3, resolution, resolution))
    shapes = [tuple(t.shape) for t in outputs]
    expected = [(1, 3, resolution, resolution), (1, 1, resolution, resolution), (1, 1, resolution, resolution)]
    if shapes != expected:
        raise DflError(
            f"model swap() returned shapes {shapes} for a {resolution}px face, expected {expected}; "
            "the checkpoint does not match its config"
        )
    return resolution


def _trace(
    module: nn.Module, example: Tensor, input_name: str, output_names: tuple[str, ...], opset: int
) -> onnx.ModelProto:
    buffer = io.BytesIO()
    names = (input_name, *output_names)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX export", DeprecationWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx\.")
        torch.onnx.export(
            module,
            (example,),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=[input_name],
            output_names=list(output_names),
            dynamic_axes={name: {0: BATCH_AXIS_NAME} for name in names},
        )
    return onnx.load_from_string(buffer.getvalue())


def _finish_and_write(proto: onnx.ModelProto, path: str | Path, metadata: ExportMetadata, fp16: bool) -> Path:
    if fp16:
        from onnxruntime.transformers.float16 import convert_float_to_float16
        from onnxruntime.transformers.onnx_model import OnnxModel

        converted = OnnxModel(convert_float_to_float16(proto, keep_io_types=True))
        converted.topological_sort()  # the converter appends the input casts after their consumers
        proto = converted.model
    onnx.helper.set_model_props(proto, metadata.to_props())
    onnx.checker.check_model(proto, full_check=True)
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(proto.SerializeToString())
    except OSError as exc:
        raise DflError(f"cannot write {path} ({exc.strerror or exc}); choose a writable output file") from None
    return path


# ---------------------------------------------------------------------------------------------------------------
# Reading back


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of an exported file, as ONNX Runtime reports them."""
    return dict(_session(path).get_modelmeta().custom_metadata_map)


def verify_export(path: str | Path, model: SwapModel, samples: Tensor, atol: float) -> float:
    """Max abs difference between ONNX Runtime (CPU) and torch over all outputs; DflError if above ``atol``.

    ``samples`` are (N, 3, R, R) RGB faces in [0, 1] in the file's input space (ACEScct, or sRGB-encoded for a
    DFM exported with ``input_space="srgb"``); for a DFM they are fed as NHWC BGR.
    """
    session = _session(path)
    props = session.get_modelmeta().custom_metadata_map
    reference = _frozen_copy(model)
    resolution = int(reference.config.resolution)
    if samples.ndim != 4 or tuple(samples.shape[1:]) != (3, resolution, resolution):
        raise DflError(f"verification samples have shape {tuple(samples.shape)}, expected (N, 3, {resolution}, "
                       f"{resolution}); pass faces at the model's resolution")
    kind = props.get("kind")
    samples = samples.detach().to("cpu", torch.float32)
    if kind == KIND_SWAP:
        module: nn.Module = SwapGraph(reference)
        feed = samples
    elif kind == KIND_DFM:
        module = DfmGraph(reference, props.get("input_space", "srgb"))
        feed = samples.permute(0, 2, 3, 1).flip(-1).contiguous()
    else:
        raise DflError(f"{path} has model kind {kind!r}, not one dfl_vfx exports; re-export it")
    with torch.no_grad():
        expected = [t.numpy() for t in module(feed)]
    got = session.run(None, {session.get_inputs()[0].name: feed.numpy()})
    diff = max(float(np.max(np.abs(g.astype(np.float32) - e))) for g, e in zip(got, expected, strict=True))
    if not diff <= atol:
        raise DflError(f"{path}: ONNX Runtime differs from torch by {diff:.3g} (tolerance {atol:g}); do not ship it")
    return diff


def _session(path: str | Path) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own unrelated exception types
        raise DflError(f"cannot load {path} with ONNX Runtime ({str(exc).splitlines()[0]}); re-export it") from None
