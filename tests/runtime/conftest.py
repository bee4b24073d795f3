"""Runtime test models, built once per session: a tiny SAEHD folder, its ONNX and DFM exports, and stand-in DFMs."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from dfl_vfx.export.onnx_export import KIND_SWAP, ExportMetadata, export_dfm, export_onnx
from dfl_vfx.models.checkpoint import save_checkpoint
from dfl_vfx.models.config import ModelConfig
from dfl_vfx.models.saehd import SAEHD

# The root conftest's TINY_MODEL (its fixture is per test; these exports are shared by the whole session).
TINY = {"archi": "df-ud", "resolution": 64, "face_type": "f", "ae_dims": 32, "e_dims": 16, "d_dims": 16,
        "d_mask_dims": 16}
AMP_RES = 16
ITERATIONS = 7


@dataclass(frozen=True)
class RuntimeModels:
    model: SAEHD  # eval mode, CPU float32; do not modify
    folder: Path  # trained model folder (checkpoint.pt)
    onnx: Path  # dfl_vfx.swap export
    dfm: Path  # dfl_vfx.swap.dfm, sRGB input
    dfm_working: Path  # dfl_vfx.swap.dfm, working-space input
    external_dfm: Path  # the sRGB DFM with its metadata removed, as a DeepFaceLab DFM looks
    amp_dfm: Path  # AMP-like stand-in: out_celeb_face = in_face * morph, masks = B and R channels


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(single_thread):
    """Every test here runs with one torch thread (tests/conftest.py)."""


def amp_stand_in(resolution: int = AMP_RES) -> onnx.ModelProto:
    """A DFM with the AMP contract (in_face:0, morph_value:0) whose outputs reveal channel order and the morph."""
    face = helper.make_tensor_value_info("in_face:0", TensorProto.FLOAT, ["N", resolution, resolution, 3])
    morph = helper.make_tensor_value_info("morph_value:0", TensorProto.FLOAT, [1])
    outputs = [
        helper.make_tensor_value_info("out_face_mask:0", TensorProto.FLOAT, ["N", resolution, resolution, 1]),
        helper.make_tensor_value_info("out_celeb_face:0", TensorProto.FLOAT, ["N", resolution, resolution, 3]),
        helper.make_tensor_value_info("out_celeb_face_mask:0", TensorProto.FLOAT, ["N", resolution, resolution, 1]),
    ]
    constants = [helper.make_tensor(name, TensorProto.INT64, [1], [value])
                 for name, value in [("zero", 0), ("one", 1), ("two", 2), ("three", 3)]]
    nodes = [
        helper.make_node("Slice", ["in_face:0", "zero", "one", "three"], ["out_face_mask:0"]),  # B
        helper.make_node("Mul", ["in_face:0", "morph_value:0"], ["out_celeb_face:0"]),
        helper.make_node("Slice", ["in_face:0", "two", "three", "three"], ["out_celeb_face_mask:0"]),  # R
    ]
    graph = helper.make_graph(nodes, "amp_stand_in", [face, morph], outputs, initializer=constants)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)], ir_version=7)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _halve_nodes(source: str, target: str, computed: bool) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """NCHW ``source`` -> ``target`` at half its height and width: a 2x2 average pool, or (``computed``) a resize
    to sizes computed from the input's shape at run time, which shape inference cannot follow."""
    if not computed:
        return [helper.make_node("AveragePool", [source], [target], kernel_shape=[2, 2], strides=[2, 2])], []
    constants = [helper.make_tensor(name, TensorProto.INT64, [len(values)], values)
                 for name, values in [("at0", [0]), ("at2", [2]), ("at4", [4]), ("halves", [2, 2])]]
    nodes = [
        helper.make_node("Shape", [source], ["shape"]),
        helper.make_node("Slice", ["shape", "at0", "at2"], ["batch_channels"]),
        helper.make_node("Slice", ["shape", "at2", "at4"], ["height_width"]),
        helper.make_node("Div", ["height_width", "halves"], ["half_height_width"]),
        helper.make_node("Concat", ["batch_channels", "half_height_width"], ["sizes"], axis=0),
        helper.make_node("Resize", [source, "", "", "sizes"], [target], mode="linear"),
    ]
    return nodes, constants


def half_size_swap(resolution: int, *, dfm: bool, outputs: str = "static") -> onnx.ModelProto:
    """A swap graph with the right names whose outputs are half the input size; the masks are the mean of the
    channels. ``dfm``: DFM names, NHWC and no metadata, else our swap names, NCHW and metadata declaring
    ``resolution``. ``outputs``: "static" declares the half size, "symbolic" leaves it to shape inference,
    "computed" makes it a run-time computation that shape inference cannot follow."""
    half = resolution // 2 if outputs == "static" else "H"
    computed = outputs == "computed"
    if dfm:
        face = helper.make_tensor_value_info("in_face:0", TensorProto.FLOAT, ["N", resolution, resolution, 3])
        values = [
            helper.make_tensor_value_info("out_face_mask:0", TensorProto.FLOAT, ["N", half, half, 1]),
            helper.make_tensor_value_info("out_celeb_face:0", TensorProto.FLOAT, ["N", half, half, 3]),
            helper.make_tensor_value_info("out_celeb_face_mask:0", TensorProto.FLOAT, ["N", half, half, 1]),
        ]
        halve, constants = _halve_nodes("nchw", "pooled", computed)
        nodes = [
            helper.make_node("Transpose", ["in_face:0"], ["nchw"], perm=[0, 3, 1, 2]),
            *halve,
            helper.make_node("Transpose", ["pooled"], ["out_celeb_face:0"], perm=[0, 2, 3, 1]),
            helper.make_node("ReduceMean", ["out_celeb_face:0"], ["out_face_mask:0"], axes=[3], keepdims=1),
            helper.make_node("Identity", ["out_face_mask:0"], ["out_celeb_face_mask:0"]),
        ]
    else:
        face = helper.make_tensor_value_info("face", TensorProto.FLOAT, ["N", 3, resolution, resolution])
        values = [
            helper.make_tensor_value_info("rgb", TensorProto.FLOAT, ["N", 3, half, half]),
            helper.make_tensor_value_info("mask_src", TensorProto.FLOAT, ["N", 1, half, half]),
            helper.make_tensor_value_info("mask_dst", TensorProto.FLOAT, ["N", 1, half, half]),
        ]
        halve, constants = _halve_nodes("face", "rgb", computed)
        nodes = [
            *halve,
            helper.make_node("ReduceMean", ["rgb"], ["mask_src"], axes=[1], keepdims=1),
            helper.make_node("Identity", ["mask_src"], ["mask_dst"]),
        ]
    graph = helper.make_graph(nodes, "half_size_swap", [face], values, initializer=constants)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    if not dfm:
        helper.set_model_props(proto, {"kind": KIND_SWAP, "resolution": str(resolution), "face_type": "f"})
    onnx.checker.check_model(proto, full_check=True)
    return proto


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> RuntimeModels:
    root = tmp_path_factory.mktemp("runtime_models")
    torch.manual_seed(11)
    config = ModelConfig(**TINY)
    model = SAEHD(config).eval()
    folder = root / "shot010_model"
    state = {"iteration": ITERATIONS, "model": model.state_dict(), "config": {"model": config.to_dict()}}
    save_checkpoint(folder, state)
    metadata = ExportMetadata.for_model(model, ITERATIONS)
    onnx_path = export_onnx(model, root / "shot010.onnx", metadata)
    dfm = export_dfm(model, root / "shot010.dfm", metadata)
    dfm_working = export_dfm(model, root / "shot010_working.dfm", metadata, input_space="working")
    external = onnx.load(str(dfm))
    del external.metadata_props[:]
    external_dfm = root / "external_SAEHD_model.dfm"
    onnx.save(external, str(external_dfm))
    amp_dfm = root / "amp_SAEHD_model.dfm"
    onnx.save(amp_stand_in(), str(amp_dfm))
    return RuntimeModels(model, folder, onnx_path, dfm, dfm_working, external_dfm, amp_dfm)


@pytest.fixture()
def half_size_model(tmp_path: Path):
    """Writes a :func:`half_size_swap` graph (``.dfm`` or ``.onnx``) and returns its path."""

    def write(resolution: int = 64, *, dfm: bool = False, outputs: str = "static") -> Path:
        path = tmp_path / f"half_size_{resolution}_{outputs}{'.dfm' if dfm else '.onnx'}"
        onnx.save(half_size_swap(resolution, dfm=dfm, outputs=outputs), str(path))
        return path

    return write


@pytest.fixture()
def faces() -> np.ndarray:
    """11 random (64, 64, 3) float32 RGB faces in [0, 1]."""
    return np.random.default_rng(5).random((11, TINY["resolution"], TINY["resolution"], 3), dtype=np.float32)
