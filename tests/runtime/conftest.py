"""Runtime test models, built once per session: a tiny SAEHD folder, its ONNX and DFM exports, and stand-in DFMs."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from dfl_vfx.export.onnx_export import ExportMetadata, export_dfm, export_onnx
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
def faces() -> np.ndarray:
    """11 random (64, 64, 3) float32 RGB faces in [0, 1]."""
    return np.random.default_rng(5).random((11, TINY["resolution"], TINY["resolution"], 3), dtype=np.float32)
