"""`dfl-vfx xseg export`: our ONNX contract and DeepFaceLab's, checked with ONNX Runtime against torch."""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from dfl_vfx.cli.main import main
from dfl_vfx.errors import DflError
from dfl_vfx.models.checkpoint import save_checkpoint
from dfl_vfx.xseg.export import export_xseg_onnx
from dfl_vfx.xseg.model import KIND, XSeg, XSegConfig, load_xseg


def test_our_contract_matches_torch(xseg_model: Path, tmp_path: Path) -> None:
    path = export_xseg_onnx(xseg_model, tmp_path / "xseg.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ("face", "mask")
    assert inp.shape[1:] == [3, 64, 64] and out.shape[1:] == [1, 64, 64]
    x = np.random.default_rng(0).random((3, 3, 64, 64), dtype=np.float32)  # a batch size other than the example's
    with torch.no_grad():
        _, expected = load_xseg(xseg_model).model(torch.from_numpy(x))
    got = session.run(None, {"face": x})[0]
    assert np.abs(got - expected.numpy()).max() < 1e-5
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["dfl_vfx:kind"] == "xseg" and meta["dfl_vfx:face_type"] == "whole_face"
    assert meta["dfl_vfx:resolution"] == "64"


def test_dfl_contract_is_nhwc_bgr(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = XSeg(XSegConfig(resolution=256, base_ch=4)).eval()
    config = {"xseg": model.cfg.to_dict(), "face_type": "whole_face"}
    save_checkpoint(tmp_path / "m", {"kind": KIND, "config": config, "model": model.state_dict(), "iteration": 7})
    assert main(["xseg", "export", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "x.onnx"),
                 "--dfl-contract"]) == 0
    session = ort.InferenceSession(str(tmp_path / "x.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["in_face:0"]
    assert [o.name for o in session.get_outputs()] == ["out_mask:0"]
    rgb = np.random.default_rng(1).random((1, 3, 256, 256), dtype=np.float32)
    bgr_nhwc = np.ascontiguousarray(rgb.transpose(0, 2, 3, 1)[..., ::-1])
    got = session.run(None, {"in_face:0": bgr_nhwc})[0]
    assert got.shape == (1, 256, 256, 1)
    with torch.no_grad():
        _, expected = model(torch.from_numpy(rgb))
    assert np.abs(got[..., 0] - expected[:, 0].numpy()).max() < 1e-5


def test_dfl_contract_needs_256(xseg_model: Path, tmp_path: Path) -> None:
    with pytest.raises(DflError, match="contract is 256 px, this model is 64 px"):
        export_xseg_onnx(xseg_model, tmp_path / "x.onnx", dfl_contract=True)
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(DflError, match="give a .onnx file name"):
        export_xseg_onnx(xseg_model, tmp_path / "x.pt")
