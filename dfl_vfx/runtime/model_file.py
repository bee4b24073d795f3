"""What a swap model file is: our ONNX export, a DFM (ours or DeepFaceLab's), or a trained model folder.

:func:`inspect_model` reads only what a runtime needs to feed the model and unpack its outputs (kind, resolution,
face type, input colour space, tensor layout, input and output names mapped to the rgb / mask_src / mask_dst roles)
plus the file's SHA-256, which keys engine caches. Our ONNX files say what they are in their ``kind`` metadata; a
model's role is never guessed from tensor shapes. DFM files follow DeepFaceLab's contract by position (reference
section 7): input 0 named ``in_face...`` (N, R, R, 3) BGR, outputs (dst mask, swapped face, src mask). Every
static dimension of the face input and the three outputs must match the declared resolution and the channels of
its role (3 for the face, 1 for a mask); a model that does not is refused when it is inspected, naming both.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from dfl_vfx.errors import DflError
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.models.contract import (
    DFM_INPUT,
    KIND_DFM,
    KIND_SWAP,
    SWAP_INPUT,
    SWAP_OUTPUTS,
    WORKING_COLOR_SPACE,
)

KIND_EXTERNAL_DFM = "dfm"
KIND_CHECKPOINT = "checkpoint"

INPUT_SPACE_WORKING = "working"
INPUT_SPACE_SRGB = "srgb"
LAYOUT_NCHW_RGB = "nchw_rgb"
LAYOUT_NHWC_BGR = "nhwc_bgr"

DFM_INPUT_MARK = "in_face"
DFM_MORPH_MARK = "morph_value"

# Face types by the short names the CLI options use; types without one keep their long CLI name.
_SHORT_FACE_TYPE = {
    FaceType.HALF: "h",
    FaceType.MID_FULL: "mf",
    FaceType.FULL: "f",
    FaceType.WHOLE_FACE: "wf",
    FaceType.HEAD: "head",
}


@dataclass(frozen=True)
class ModelInfo:
    """How to run one swap model; ``output_names`` are the model's own tensor names in (rgb, mask_src, mask_dst)
    role order. ``face_type`` is a short CLI name (``"f"``, ``"wf"``, ``"head"``) or None where the file does not
    say (external DFMs). ``input_space`` is ``"working"`` (ACEScct RGB) or ``"srgb"`` (sRGB-encoded, as DFMs take).
    """

    path: Path
    kind: str
    resolution: int
    face_type: str | None
    input_space: str
    layout: str
    input_name: str
    output_names: tuple[str, str, str]
    needs_morph: bool
    sha256: str
    metadata: dict[str, str] = field(default_factory=dict)


def inspect_model(path: str | Path) -> ModelInfo:
    """Describe a ``.onnx``, ``.dfm``, model folder or ``checkpoint.pt``; DflError naming the file if unusable."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".pt":
        return _inspect_checkpoint(path)
    if not path.is_file():
        raise DflError(f"{path}: no such model file; pass an exported .onnx, a .dfm or a trained model folder")
    if path.suffix.lower() not in (".onnx", ".dfm"):
        raise DflError(f"{path}: unknown model file type; pass an exported .onnx, a .dfm or a trained model folder")
    return _inspect_onnx(path)


def short_face_type(name: str) -> str:
    """A face type name in any accepted spelling -> its short CLI name (``full_face`` -> ``f``)."""
    face_type = FaceType.parse(name)
    return _SHORT_FACE_TYPE.get(face_type, face_type.cli_name)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# ONNX and DFM files


def _inspect_onnx(path: Path) -> ModelInfo:
    proto = _load_proto(path)
    metadata = {prop.key: prop.value for prop in proto.metadata_props}
    kind = metadata.get("kind")
    if kind == KIND_SWAP:
        return _our_swap_info(path, proto, metadata)
    if kind == KIND_DFM:
        return _dfm_info(path, proto, metadata, kind)
    if kind is None and path.suffix.lower() == ".dfm":
        return _dfm_info(path, proto, metadata, KIND_EXTERNAL_DFM)
    if kind is None:
        raise DflError(
            f"{path}: this ONNX file was not exported by dfl-vfx (no 'kind' metadata); export the model with "
            "`dfl-vfx export`, or give a DeepFaceLab model its .dfm extension"
        )
    raise DflError(f"{path}: model kind {kind!r} is not a swap model dfl-vfx can run; export one with `dfl-vfx export`")


def _load_proto(path: Path) -> onnx.ModelProto:
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError, RuntimeWarning-like and OSError variants
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise DflError(f"{path}: not a readable ONNX model ({reason}); re-export it or copy it again") from None
    if not proto.graph.input or not proto.graph.output:
        raise DflError(f"{path}: not a readable ONNX model (no graph inputs or outputs); re-export it or copy it again")
    return proto


def _graph_inputs(proto: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Real inputs: old IR versions also list initializers among the graph inputs."""
    initializers = {init.name for init in proto.graph.initializer}
    return [value for value in proto.graph.input if value.name not in initializers]


def _static_dims(value: onnx.ValueInfoProto) -> list[int | None]:
    """Dimensions of a tensor input; None where a dimension is symbolic or unknown."""
    return [dim.dim_value if dim.HasField("dim_value") else None for dim in value.type.tensor_type.shape.dim]


_LARGE_INITIALIZER = 4096  # elements; weights this size are dropped before shape inference, which needs their dims
_INITIALIZER_DATA = ("raw_data", "float_data", "double_data", "int32_data", "int64_data", "uint64_data")


def _tensor_dims(value: onnx.ValueInfoProto | None) -> list[int | None] | None:
    """Dimensions of a tensor (None where symbolic or unknown), or None when the graph gives no shape at all."""
    if value is None or not value.type.tensor_type.HasField("shape"):
        return None
    return _static_dims(value)


def _inferred_values(proto: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto]:
    """Graph inputs and outputs with the shapes ONNX shape inference finds (our exports leave the output sizes
    symbolic); empty when inference fails. Large weights are emptied first (``proto`` is spent): inference needs
    only their dims, and the model stays far below protobuf's 2 GB limit."""
    for initializer in proto.graph.initializer:
        if math.prod(initializer.dims) > _LARGE_INITIALIZER:
            for data in _INITIALIZER_DATA:
                initializer.ClearField(data)
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # inference is a bonus: the static dims and the runtime's output check still hold
        return {}
    return {value.name: value for value in [*inferred.graph.input, *inferred.graph.output]}


def _merged_dims(declared: list[int | None] | None, inferred: list[int | None] | None) -> list[int | None] | None:
    """Declared dims, with the ones it leaves open filled from inference where the ranks agree."""
    if declared is None or inferred is None or len(declared) != len(inferred):
        return declared if declared is not None else inferred
    return [dim if dim is not None else found for dim, found in zip(declared, inferred, strict=True)]


def _shape_text(dims: list[int | None]) -> str:
    return "(" + ", ".join("?" if dim is None else str(dim) for dim in dims) + ")"


def check_graph_contract(
    path: Path,
    proto: onnx.ModelProto,
    resolution: int,
    layout: str,
    input_name: str,
    output_names: tuple[str, str, str],
) -> None:
    """DflError naming the model when a dimension of the face input or an output, as declared or as shape
    inference finds it, disagrees with the declared ``resolution`` or its role's channels (face and rgb 3, masks
    1) in ``layout``. The batch and any size still unknown are not checked (:meth:`SwapRuntime.predict` checks
    what the model returns). Empties ``proto``'s large weights.
    """
    declared = {value.name: value for value in [*proto.graph.input, *proto.graph.output]}
    inferred = _inferred_values(proto)
    roles = [("input", input_name, 3), ("rgb output", output_names[0], 3),
             ("mask_src output", output_names[1], 1), ("mask_dst output", output_names[2], 1)]
    for role, name, channels in roles:
        dims = _merged_dims(_tensor_dims(declared.get(name)), _tensor_dims(inferred.get(name)))
        if dims is None:
            continue
        expected: list[int | None] = [None, resolution, resolution, channels]
        if layout == LAYOUT_NCHW_RGB:
            expected = [None, channels, resolution, resolution]
        wrong = len(dims) != 4 or any(
            want is not None and got is not None and got != want for got, want in zip(dims, expected, strict=True)
        )
        if wrong:
            should = "(N, " + ", ".join(str(dim) for dim in expected[1:]) + ")"
            raise DflError(
                f"{path}: declares resolution {resolution}, so its {role} {name!r} should be {should}, but the graph "
                f"has {_shape_text(dims)}; export the model again"
            )


def _our_face_type(path: Path, metadata: dict[str, str]) -> str:
    try:
        return short_face_type(metadata["face_type"])
    except (KeyError, DflError):
        raise DflError(f"{path}: metadata lacks a valid face_type; re-export it with `dfl-vfx export`") from None


def _metadata_resolution(path: Path, metadata: dict[str, str], graph_resolution: int | None) -> int:
    try:
        resolution = int(metadata["resolution"])
    except (KeyError, ValueError):
        raise DflError(f"{path}: metadata lacks a valid resolution; re-export it with `dfl-vfx export`") from None
    if graph_resolution is not None and graph_resolution != resolution:
        raise DflError(
            f"{path}: metadata says resolution {resolution} but the graph input is {graph_resolution} px; re-export it"
        )
    return resolution


def _our_swap_info(path: Path, proto: onnx.ModelProto, metadata: dict[str, str]) -> ModelInfo:
    inputs = _graph_inputs(proto)
    outputs = {value.name for value in proto.graph.output}
    if [value.name for value in inputs] != [SWAP_INPUT] or not set(SWAP_OUTPUTS) <= outputs:
        raise DflError(
            f"{path}: a {KIND_SWAP} file must have input '{SWAP_INPUT}' and outputs {', '.join(SWAP_OUTPUTS)}; "
            "re-export it with `dfl-vfx export`"
        )
    dims = _static_dims(inputs[0])
    resolution = _metadata_resolution(path, metadata, dims[2] if len(dims) == 4 else None)
    check_graph_contract(path, proto, resolution, LAYOUT_NCHW_RGB, SWAP_INPUT, SWAP_OUTPUTS)
    return ModelInfo(
        path=path,
        kind=KIND_SWAP,
        resolution=resolution,
        face_type=_our_face_type(path, metadata),
        input_space=INPUT_SPACE_WORKING,
        layout=LAYOUT_NCHW_RGB,
        input_name=SWAP_INPUT,
        output_names=SWAP_OUTPUTS,
        needs_morph=False,
        sha256=file_sha256(path),
        metadata=metadata,
    )


def _dfm_info(path: Path, proto: onnx.ModelProto, metadata: dict[str, str], kind: str) -> ModelInfo:
    inputs = _graph_inputs(proto)
    face_input = inputs[0]
    if DFM_INPUT_MARK not in face_input.name:
        raise DflError(
            f"{path}: DFM input 0 is named {face_input.name!r}, the DFM contract needs '{DFM_INPUT}'; "
            "export the model again as a DFM"
        )
    dims = _static_dims(face_input)
    if len(dims) != 4 or dims[3] != 3 or dims[1] is None or dims[1] != dims[2]:
        raise DflError(
            f"{path}: DFM input shape {dims} is not (N, R, R, 3) with a fixed square resolution; export it again"
        )
    if len(proto.graph.output) < 3:
        raise DflError(f"{path}: a DFM needs 3 outputs (dst mask, swapped face, src mask); export it again")
    if len(inputs) > 2 or (len(inputs) == 2 and DFM_MORPH_MARK not in inputs[1].name):
        names = ", ".join(value.name for value in inputs)
        raise DflError(f"{path}: DFM inputs {names} are not in_face[, morph_value]; export it again")
    dst_mask, swapped, src_mask = (value.name for value in proto.graph.output[:3])
    ours = kind == KIND_DFM
    resolution = _metadata_resolution(path, metadata, dims[1]) if ours else int(dims[1])
    check_graph_contract(path, proto, resolution, LAYOUT_NHWC_BGR, face_input.name, (swapped, src_mask, dst_mask))
    return ModelInfo(
        path=path,
        kind=kind,
        resolution=resolution,
        face_type=_our_face_type(path, metadata) if ours else None,
        input_space=metadata.get("input_space", INPUT_SPACE_SRGB) if ours else INPUT_SPACE_SRGB,
        layout=LAYOUT_NHWC_BGR,
        input_name=face_input.name,
        output_names=(swapped, src_mask, dst_mask),
        needs_morph=len(inputs) == 2,
        sha256=file_sha256(path),
        metadata=metadata,
    )


# ---------------------------------------------------------------------------------------------------------------
# Trained model folders


def _inspect_checkpoint(path: Path) -> ModelInfo:
    from dfl_vfx.models.checkpoint import checkpoint_path, load_checkpoint, model_config_of

    weights = checkpoint_path(path)
    state = load_checkpoint(weights)
    config = model_config_of(state, str(weights))
    metadata = {
        "archi": config.archi,
        "resolution": str(config.resolution),
        "face_type": config.face_type_name,
        "iterations": str(int(state.get("iteration", 0))),
        "color_space": WORKING_COLOR_SPACE,
    }
    return ModelInfo(
        path=path,
        kind=KIND_CHECKPOINT,
        resolution=int(config.resolution),
        face_type=short_face_type(config.face_type),
        input_space=INPUT_SPACE_WORKING,
        layout=LAYOUT_NCHW_RGB,
        input_name=SWAP_INPUT,
        output_names=SWAP_OUTPUTS,
        needs_morph=False,
        sha256=file_sha256(weights),
        metadata=metadata,
    )
