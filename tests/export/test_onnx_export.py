"""ONNX and DFM export: graph contracts, ORT vs torch numbers, colour math vs OpenColorIO, metadata, failures."""

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import skimage.data
import torch
from torch import Tensor, nn

import dfl_vfx
from dfl_vfx.color.ocio import ColorTransform
from dfl_vfx.errors import DflError
from dfl_vfx.export.onnx_export import (
    KIND_DFM,
    KIND_SWAP,
    ExportMetadata,
    acescct_to_srgb,
    export_dfm,
    export_onnx,
    read_metadata,
    srgb_to_acescct,
    verify_export,
)

RES = 64
SRGB = "sRGB Encoded Rec.709 (sRGB)"
FP32_ATOL = 1e-4
# Measured on the stand-in (random faces, batch 5): fp16 swap graph 2.5e-4; fp16 DFM with the sRGB stages 3.5e-3
# (the stages run in fp16 too: exp() of an argument up to 5.4 rounded to fp16 and the ACEScct -> sRGB slope of ~5
# amplify half-precision error; under one 8-bit code value).
FP16_SWAP_ATOL = 1e-3
FP16_DFM_ATOL = 5e-3


@dataclass
class TinyConfig:
    resolution: int = RES
    archi: str = "stand-in"
    face_type_name: str = "whole_face"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class StandInSwap(nn.Module):
    """DF-like: a shared encoder, a src and a dst decoder (pixel-shuffle upscaling), sigmoid RGB + mask heads."""

    def __init__(self, seed: int = 0, resolution: int = RES, out_scale: int = 1) -> None:
        super().__init__()
        self.config = TinyConfig(resolution=resolution)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.encoder = nn.Sequential(
                nn.Conv2d(3, 24, 5, stride=2, padding=2), nn.LeakyReLU(0.1), nn.Conv2d(24, 48, 3, stride=2, padding=1)
            )
            self.decoder_src = self._decoder(out_scale)
            self.decoder_dst = self._decoder(out_scale)

    @staticmethod
    def _decoder(out_scale: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(48, 96, 3, padding=1), nn.LeakyReLU(0.1), nn.PixelShuffle(2),
            nn.Conv2d(24, 4 * 4, 3, padding=1), nn.PixelShuffle(2), nn.AvgPool2d(out_scale) if out_scale > 1 else
            nn.Identity(), nn.Sigmoid(),
        )

    def swap(self, dst: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        code = self.encoder(dst)
        src_out, dst_out = self.decoder_src(code), self.decoder_dst(code)
        return src_out[:, :3], src_out[:, 3:], dst_out[:, 3:]


class WrongResolutionSwap(StandInSwap):
    """Claims 64 px but returns 32 px faces."""

    def __init__(self) -> None:
        super().__init__(out_scale=2)


@pytest.fixture(scope="module")
def model() -> StandInSwap:
    return StandInSwap()


@pytest.fixture(scope="module")
def metadata(model: StandInSwap) -> ExportMetadata:
    return ExportMetadata.for_model(model, iterations=12000, shot="sh010")


@pytest.fixture(scope="module")
def exported(model, metadata, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("export")
    return {
        "onnx": export_onnx(model, out / "face.onnx", metadata, max_batch=8),
        "onnx16": export_onnx(model, out / "face_fp16.onnx", metadata, fp16=True),
        "dfm": export_dfm(model, out / "face_SAEHD_model.dfm", metadata),
        "dfm16": export_dfm(model, out / "face16_SAEHD_model.dfm", metadata, fp16=True),
        "dfm_working": export_dfm(model, out / "face_working.dfm", metadata, input_space="working"),
    }


def astronaut(batch: int = 1) -> np.ndarray:
    """(batch, RES, RES, 3) float32 RGB in [0, 1]: the astronaut face region, shifted per batch item."""
    image = skimage.data.astronaut()
    crops = [image[20 + 12 * i : 260 + 12 * i, 120 + 8 * i : 360 + 8 * i] for i in range(batch)]
    return np.stack([cv2.resize(c, (RES, RES), interpolation=cv2.INTER_AREA) for c in crops]).astype(np.float32) / 255


def run_ort(path: Path, feed: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: feed})


def graph_io(path: Path) -> tuple[list[tuple[str, list]], list[tuple[str, list]]]:
    graph = onnx.load(str(path)).graph

    def shape(value: onnx.ValueInfoProto) -> list:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    return [(v.name, shape(v)) for v in graph.input], [(v.name, shape(v)) for v in graph.output]


def default_opset(path: Path) -> int:
    return next(o.version for o in onnx.load(str(path)).opset_import if o.domain in ("", "ai.onnx"))


# --------------------------------------------------------------------------------------------------------------
# Graph contracts


def test_onnx_graph_contract(exported):
    path = exported["onnx"]
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    inputs, outputs = graph_io(path)
    assert inputs == [("face", ["batch", 3, RES, RES])]
    assert outputs == [("rgb", ["batch", 3, RES, RES]), ("mask_src", ["batch", 1, RES, RES]),
                       ("mask_dst", ["batch", 1, RES, RES])]
    assert default_opset(path) == 17


@pytest.mark.parametrize("name", ["dfm", "dfm16", "dfm_working"])
def test_dfm_graph_contract(exported, name):
    path = exported[name]
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    inputs, outputs = graph_io(path)
    assert inputs == [("in_face:0", ["batch", RES, RES, 3])]
    assert outputs == [("out_face_mask:0", ["batch", RES, RES, 1]), ("out_celeb_face:0", ["batch", RES, RES, 3]),
                       ("out_celeb_face_mask:0", ["batch", RES, RES, 1])]
    assert default_opset(path) == 12
    for value in onnx.load(str(path)).graph.input:
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


# --------------------------------------------------------------------------------------------------------------
# Numbers: ORT vs torch


@pytest.mark.parametrize("batch", [1, 3, 5])
def test_onnx_matches_torch_at_any_batch(exported, model, batch):
    samples = torch.rand(batch, 3, RES, RES, generator=torch.Generator().manual_seed(batch))
    assert verify_export(exported["onnx"], model, samples, atol=FP32_ATOL) < FP32_ATOL
    rgb, mask_src, mask_dst = run_ort(exported["onnx"], samples.numpy())
    with torch.no_grad():
        expected = model.swap(samples)
    assert [rgb.shape, mask_src.shape, mask_dst.shape] == [tuple(t.shape) for t in expected]
    assert np.abs(mask_dst - expected[2].numpy()).max() < FP32_ATOL


@pytest.mark.parametrize("batch", [1, 3, 5])
def test_dfm_matches_torch_at_any_batch(exported, model, batch):
    samples = torch.rand(batch, 3, RES, RES, generator=torch.Generator().manual_seed(10 + batch))
    assert verify_export(exported["dfm"], model, samples, atol=FP32_ATOL) < FP32_ATOL
    assert verify_export(exported["dfm_working"], model, samples, atol=FP32_ATOL) < FP32_ATOL


def test_fp16_export_within_bound_and_smaller(exported, model):
    samples = torch.rand(3, 3, RES, RES, generator=torch.Generator().manual_seed(7))
    swap_diff = verify_export(exported["onnx16"], model, samples, atol=FP16_SWAP_ATOL)
    dfm_diff = verify_export(exported["dfm16"], model, samples, atol=FP16_DFM_ATOL)
    assert 0 < swap_diff < FP16_SWAP_ATOL and 0 < dfm_diff < FP16_DFM_ATOL  # > 0: the arithmetic really is fp16
    assert exported["onnx16"].stat().st_size < 0.6 * exported["onnx"].stat().st_size
    assert exported["dfm16"].stat().st_size < 0.6 * exported["dfm"].stat().st_size
    proto = onnx.load(str(exported["onnx16"]))
    assert {i.data_type for i in proto.graph.initializer if i.name.endswith("weight")} == {onnx.TensorProto.FLOAT16}
    assert [v.type.tensor_type.elem_type for v in [*proto.graph.input, *proto.graph.output]] == [
        onnx.TensorProto.FLOAT
    ] * 4


def test_verify_export_rejects_a_different_model(exported):
    samples = torch.rand(2, 3, RES, RES)
    with pytest.raises(DflError, match="differs from torch"):
        verify_export(exported["onnx"], StandInSwap(seed=1), samples, atol=FP32_ATOL)
    with pytest.raises(DflError, match=r"expected \(N, 3, 64, 64\)"):
        verify_export(exported["onnx"], StandInSwap(), torch.rand(2, 3, 32, 32), atol=FP32_ATOL)


# --------------------------------------------------------------------------------------------------------------
# DFM layout and colour


def test_dfm_working_space_is_bgr_nhwc(exported, model):
    rgb = astronaut(batch=2)
    mask_dst, face_bgr, mask_src = run_ort(exported["dfm_working"], np.ascontiguousarray(rgb[..., ::-1]))
    with torch.no_grad():
        swap_rgb, swap_mask, dst_mask = model.swap(torch.from_numpy(rgb).permute(0, 3, 1, 2))
    np.testing.assert_allclose(face_bgr[..., ::-1], swap_rgb.permute(0, 2, 3, 1).numpy(), atol=FP32_ATOL)
    np.testing.assert_allclose(mask_dst[..., 0], dst_mask[:, 0].numpy(), atol=FP32_ATOL)
    np.testing.assert_allclose(mask_src[..., 0], swap_mask[:, 0].numpy(), atol=FP32_ATOL)
    # the colour channels are distinguishable: reading the output as RGB instead would be far off
    assert np.abs(face_bgr - swap_rgb.permute(0, 2, 3, 1).numpy()).max() > 0.01
    assert np.abs(mask_dst[..., 0] - swap_mask[:, 0].numpy()).max() > 0.01


def test_dfm_srgb_matches_ocio_pipeline(exported, model):
    srgb = astronaut(batch=2)
    mask_dst, face_bgr, mask_src = run_ort(exported["dfm"], np.ascontiguousarray(srgb[..., ::-1]))
    cct = ColorTransform(SRGB, "ACEScct")(srgb)
    with torch.no_grad():
        swap_rgb, swap_mask, dst_mask = model.swap(torch.from_numpy(cct).permute(0, 3, 1, 2))
    expected = np.clip(ColorTransform("ACEScct", SRGB)(swap_rgb.permute(0, 2, 3, 1).numpy()), 0, 1)
    np.testing.assert_allclose(face_bgr[..., ::-1], expected, atol=FP32_ATOL)
    np.testing.assert_allclose(mask_dst[..., 0], dst_mask[:, 0].numpy(), atol=FP32_ATOL)
    np.testing.assert_allclose(mask_src[..., 0], swap_mask[:, 0].numpy(), atol=FP32_ATOL)


def unit_cube(steps: int = 33) -> np.ndarray:
    axis = np.linspace(0.0, 1.0, steps, dtype=np.float32)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)


def test_srgb_to_acescct_matches_ocio():
    rgb = unit_cube()
    ours = srgb_to_acescct(torch.from_numpy(rgb)).numpy()
    np.testing.assert_allclose(ours, ColorTransform(SRGB, "ACEScct")(rgb), atol=1e-4, rtol=0)
    assert ours.min() > 0.07 and ours.max() < 0.56  # ACEScct of sRGB [0, 1]: toe offset .0729 .. ~0.554


def test_acescct_to_srgb_matches_ocio():
    """Compared clipped to [0, 1], as the DFM emits it: outside, out-of-gamut AP1 highlights (linear ~200) cancel
    to small negative Rec.709 values in float32 (OCIO and ours differ by up to 1e-3 there, both float32 rounding)."""
    cct = unit_cube()
    ours = np.clip(acescct_to_srgb(torch.from_numpy(cct)).numpy(), 0, 1)
    reference = ColorTransform("ACEScct", SRGB)(cct)
    np.testing.assert_allclose(ours, np.clip(reference, 0, 1), atol=1e-4, rtol=0)
    in_range = (reference > 0.001) & (reference < 0.999)
    assert in_range.mean() > 0.1 and (reference < 0).any() and (reference > 1).any()


# --------------------------------------------------------------------------------------------------------------
# Metadata


def test_metadata_props_are_strings_and_json():
    meta = ExportMetadata(resolution=256, face_type="whole_face", archi="liae-ud", iterations=150000,
                          extra={"shot": "sh010"})
    assert meta.to_props() == {
        "resolution": "256", "face_type": "whole_face", "archi": "liae-ud", "iterations": "150000",
        "color_space": "ACEScct", "dfl_vfx_version": dfl_vfx.__version__, "kind": KIND_SWAP, "shot": "sh010",
    }
    with pytest.raises(DflError, match="reserved"):
        dataclasses.replace(meta, extra={"kind": "x"}).to_props()


def test_metadata_round_trips_through_files(exported, metadata):
    onnx_props = read_metadata(exported["onnx"])
    assert onnx_props == metadata.to_props() | {"max_batch": "8"}
    assert ExportMetadata.from_props(onnx_props) == dataclasses.replace(metadata, extra={"shot": "sh010",
                                                                                        "max_batch": "8"})
    dfm_props = read_metadata(exported["dfm"])
    assert dfm_props == metadata.to_props() | {"kind": KIND_DFM, "input_space": "srgb"}
    assert read_metadata(exported["dfm_working"])["input_space"] == "working"
    assert read_metadata(exported["onnx16"])["resolution"] == str(RES)


# --------------------------------------------------------------------------------------------------------------
# Behaviour around the export


def test_export_leaves_the_callers_model_alone_and_warns_nothing(model, metadata, tmp_path):
    trained = StandInSwap(seed=3)
    trained.train()
    before = [p.clone() for p in trained.parameters()]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        export_onnx(trained, tmp_path / "m.onnx", metadata)
    assert trained.training
    assert all(torch.equal(a, b) for a, b in zip(before, trained.parameters(), strict=True))


def test_wrong_output_shape_is_a_user_error(metadata, tmp_path):
    with pytest.raises(DflError, match=r"returned shapes .*\(1, 3, 32, 32\)"):
        export_onnx(WrongResolutionSwap(), tmp_path / "m.onnx", metadata)
    with pytest.raises(DflError, match="returned shapes"):
        export_dfm(WrongResolutionSwap(), tmp_path / "m.dfm", metadata)
    assert list(tmp_path.iterdir()) == []


def test_bad_options_are_user_errors(model, metadata, tmp_path):
    with pytest.raises(DflError, match="resolution 128"):
        export_onnx(model, tmp_path / "m.onnx", dataclasses.replace(metadata, resolution=128))
    with pytest.raises(DflError, match="input space 'acescg'"):
        export_dfm(model, tmp_path / "m.dfm", metadata, input_space="acescg")
    with pytest.raises(DflError, match="max_batch 0"):
        export_onnx(model, tmp_path / "m.onnx", metadata, max_batch=0)


def test_unwritable_path_is_a_user_error(model, metadata, tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    with pytest.raises(DflError, match="cannot write") as info:
        export_onnx(model, blocker / "m.onnx", metadata)
    assert "\n" not in str(info.value)


def test_failed_write_leaves_no_temp_files(model, metadata, tmp_path):
    target = tmp_path / "m.dfm"
    target.mkdir()  # the final rename onto a directory fails after the temporary file was written
    with pytest.raises(DflError, match="cannot write"):
        export_dfm(model, target, metadata)
    assert [p.name for p in tmp_path.iterdir()] == ["m.dfm"]
    assert list(target.iterdir()) == []


def test_read_metadata_of_a_broken_file_is_a_user_error(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    with pytest.raises(DflError, match="cannot load"):
        read_metadata(broken)


@pytest.mark.parametrize("archi", ["df-ud", "liae-ud"])
def test_real_saehd_exports_match_torch(archi, tmp_path):
    from dfl_vfx.models.config import ModelConfig
    from dfl_vfx.models.saehd import SAEHD

    model = SAEHD(ModelConfig(archi=archi, resolution=64, ae_dims=32, e_dims=16, d_dims=16, d_mask_dims=16))
    meta = ExportMetadata.for_model(model, iterations=0)
    assert (meta.resolution, meta.archi, meta.face_type) == (64, archi, model.config.face_type_name)
    onnx_path = export_onnx(model, tmp_path / "m.onnx", meta)
    dfm_path = export_dfm(model, tmp_path / "m.dfm", meta)
    assert graph_io(onnx_path)[0] == [("face", ["batch", 3, 64, 64])]
    assert [name for name, _ in graph_io(dfm_path)[1]] == ["out_face_mask:0", "out_celeb_face:0",
                                                          "out_celeb_face_mask:0"]
    for path, batch in [(onnx_path, 1), (onnx_path, 5), (dfm_path, 3)]:
        samples = torch.rand(batch, 3, 64, 64, generator=torch.Generator().manual_seed(batch))
        assert verify_export(path, model, samples, atol=FP32_ATOL) < FP32_ATOL
