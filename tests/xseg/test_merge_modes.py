"""The merger's XSeg mask modes (xseg-prd, xseg-dst, their products, DeepFaceLab's 6..9) with a trained model."""

from pathlib import Path

import numpy as np
import pytest
import torch

from dfl_vfx.color.ocio import WorkingSpace
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.faceset import Faceset
from dfl_vfx.merge.masks import combine_masks
from dfl_vfx.merge.merger import FaceMerger, FacePlan, MergeSettings, PreparedFace
from dfl_vfx.schema import SettingError
from dfl_vfx.xseg.masker import XSegMasker
from dfl_vfx.xseg.model import load_xseg

WF = FaceType.parse("wf")


def _faces(labelled_faceset: Path) -> tuple[np.ndarray, np.ndarray]:
    faceset = Faceset.open(labelled_faceset)
    first, second = faceset.records()[:2]
    return faceset.read(first), faceset.read(second)


def _finish(mode: str, model: Path, dst: np.ndarray, prd: np.ndarray, resolution: int = 64) -> np.ndarray:
    settings = MergeSettings(mask_mode=mode, xseg_model=str(model), color_transfer="none")
    merger = FaceMerger(settings, WorkingSpace(plate_space="ACEScg"), resolution, WF, backend="reference")
    prepared = PreparedFace(FacePlan(np.zeros((68, 2))), np.eye(2, 3), dst, np.ones((resolution,) * 2, np.float32))
    learned = np.full((resolution, resolution), 0.5, np.float32)
    _, mask = merger.finish_face(prepared, prd, learned, learned, several_faces=False)
    return mask


def _xseg(model: Path, face: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        _, probs = load_xseg(model).model(torch.from_numpy(face.transpose(2, 0, 1))[None])
    p = probs[0, 0].numpy()
    return np.where(p < 0.1, 0.0, p)


def test_xseg_modes_use_the_model_on_the_right_face(labelled_faceset: Path, xseg_model: Path) -> None:
    dst, prd = _faces(labelled_faceset)
    on_dst, on_prd = _xseg(xseg_model, dst), _xseg(xseg_model, prd)
    assert np.abs(on_dst - on_prd).mean() > 0.02  # two different faces, two different masks
    np.testing.assert_allclose(_finish("xseg-dst", xseg_model, dst, prd), on_dst, atol=1e-5)
    np.testing.assert_allclose(_finish("7", xseg_model, dst, prd), on_dst, atol=1e-5)
    np.testing.assert_allclose(_finish("6", xseg_model, dst, prd), on_prd, atol=1e-5)
    np.testing.assert_allclose(_finish("8", xseg_model, dst, prd), on_prd * on_dst, atol=1e-5)
    np.testing.assert_allclose(_finish("9", xseg_model, dst, prd), 0.25 * on_prd * on_dst, atol=1e-5)
    np.testing.assert_allclose(_finish("hull*xseg-dst", xseg_model, dst, prd), on_dst, atol=1e-5)


def test_other_resolution_is_resized(labelled_faceset: Path, xseg_model: Path) -> None:
    dst, _ = _faces(labelled_faceset)
    big = np.repeat(np.repeat(dst, 2, axis=0), 2, axis=1)  # the swap model at 128 px, the XSeg model at 64
    mask = XSegMasker(xseg_model, "whole_face", 128)(big)
    assert mask.shape == (128, 128)
    small = mask.reshape(64, 2, 64, 2).mean(axis=(1, 3))
    assert np.abs(small - _xseg(xseg_model, dst)).mean() < 0.03


def test_tensor_faces_give_tensor_masks(labelled_faceset: Path, xseg_model: Path) -> None:
    dst, _ = _faces(labelled_faceset)
    masker = XSegMasker(xseg_model, "whole_face", 64)
    out = masker(torch.from_numpy(dst))
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), masker(dst), atol=1e-6)


def test_bad_xseg_settings_name_the_setting(xseg_model: Path, tmp_path: Path) -> None:
    with pytest.raises(SettingError, match="uses XSeg masks: set xseg_model"):
        FaceMerger(MergeSettings(mask_mode="9"), WorkingSpace(plate_space="ACEScg"), 64, WF)
    with pytest.raises(SettingError, match="xseg_model .*trained on whole_face faces, the swap model uses full_face"):
        FaceMerger(MergeSettings(mask_mode="xseg-dst", xseg_model=str(xseg_model)),
                   WorkingSpace(plate_space="ACEScg"), 64, FaceType.parse("f"))
    with pytest.raises(SettingError, match="^xseg_model .*: no checkpoint here"):
        FaceMerger(MergeSettings(mask_mode="xseg-dst", xseg_model=str(tmp_path)),
                   WorkingSpace(plate_space="ACEScg"), 64, WF)


def test_combine_masks_accepts_xseg_names() -> None:
    a = np.array([[0.2, 1.0]], np.float32)
    b = np.array([[0.5, 0.5]], np.float32)
    np.testing.assert_allclose(combine_masks("8", {"xseg-prd": a, "xseg-dst": b}), a * b)


def _constant_xseg(folder: Path, bias: float) -> Path:
    """A full-face XSeg model whose mask is sigmoid(bias) everywhere (out_conv weights 0)."""
    from dfl_vfx.models.checkpoint import save_checkpoint
    from dfl_vfx.xseg.model import KIND, XSeg, XSegConfig

    model = XSeg(XSegConfig(resolution=64, base_ch=4))
    with torch.no_grad():
        model.out_conv.weight.zero_()
        model.out_conv.bias.fill_(bias)
    save_checkpoint(folder, {"kind": KIND, "config": {"xseg": model.cfg.to_dict(), "face_type": "full_face"},
                             "model": model.state_dict(), "iteration": 0})
    return folder


def test_swap_with_xseg_dst(small_shot: Path, facesets: tuple[Path, Path], swap_model: tuple[Path, Path],
                            tmp_path: Path) -> None:
    """End to end through `dfl-vfx swap`: an XSeg mask of 1 everywhere swaps like mask mode full; one below 0.1
    (zeroed) pastes nothing, so the frame keeps the plate's pixels exactly."""
    from dfl_vfx.cli.main import main
    from dfl_vfx.io.image import read_image

    plate = str(small_shot / "plate" / "plate.####.exr")
    common = ["--model", str(swap_model[1]), "--faceset", str(facesets[1]), "--frames", "1005", "--no-progress",
              "--color-transfer", "none"]
    runs = {"full": ["--mask-mode", "full"],
            "ones": ["--mask-mode", "xseg-dst", "--xseg-model", str(_constant_xseg(tmp_path / "ones", 12.0))],
            "zeros": ["--mask-mode", "7", "--xseg-model", str(_constant_xseg(tmp_path / "zeros", -12.0))]}
    frames = {}
    for name, extra in runs.items():
        assert main(["swap", plate, "--out", str(tmp_path / name), *common, *extra]) == 0
        frames[name] = read_image(tmp_path / name / "plate.1005.exr").pixels
    original = read_image(small_shot / "plate" / "plate.1005.exr").pixels
    assert np.abs(frames["full"] - original).max() > 0.01  # a face was pasted
    np.testing.assert_allclose(frames["ones"], frames["full"], atol=2e-3)  # sigmoid(12) = 1 - 6e-6
    np.testing.assert_array_equal(frames["zeros"], original)


def test_swap_writes_the_xseg_layer(small_shot: Path, facesets: tuple[Path, Path], swap_model: tuple[Path, Path],
                                    tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--layers xseg: the dst faces' XSeg mask warped into the plate as xseg.A of OUT/layers/; with a constant-1
    XSeg model it is the faces' coverage (raw.A), whatever the mask mode."""
    from dfl_vfx.cli.main import main
    from dfl_vfx.swap.layout import read_layers

    plate = str(small_shot / "plate" / "plate.####.exr")
    ones = str(_constant_xseg(tmp_path / "ones", 12.0))
    assert main(["swap", plate, "--model", str(swap_model[1]), "--faceset", str(facesets[1]), "--frames", "1005",
                 "--out", str(tmp_path / "out"), "--no-progress", "--layers", "rgba,raw,xseg", "--mask-mode", "hull",
                 "--xseg-model", ones]) == 0
    layers = read_layers(tmp_path / "out" / "plate.1005.exr", ["raw", "xseg"])
    coverage = layers["raw"][..., 3]
    assert coverage.max() > 0.99
    np.testing.assert_allclose(layers["xseg"], coverage, atol=2e-3)
    code = main(["swap", plate, "--model", str(swap_model[1]), "--out", str(tmp_path / "o2"), "--layers", "xseg"])
    assert code == 2
    assert "--layers rgba,xseg: the xseg layer needs xseg_model" in capsys.readouterr().err
