"""SAEHD networks: parameter counts against reference table 4.6, output contract, precision modes, ONNX export."""

import io

import pytest
import torch

from dfl_vfx.errors import DflError
from dfl_vfx.models.blocks import CosActivation, pixel_norm
from dfl_vfx.models.config import ModelConfig, preset
from dfl_vfx.models.saehd import OUTPUT_KEYS, SAEHD, parameter_breakdown_for

# (archi, resolution, ae/e/d/dm, total M, {submodule: M}) from reference table 4.6 (AMP excluded).
TABLE_4_6 = [
    ("df-ud", 128, (256, 64, 64, 0), 54.5, {"encoder": 4.3, "inter": 11.8, "decoder_src": 19.2, "decoder_dst": 19.2}),
    ("liae-ud", 128, (256, 64, 64, 0), 82.4, {"encoder": 4.3, "inter_AB": 19.9, "inter_B": 19.9, "decoder": 38.2}),
    ("df-ud", 224, (256, 64, 64, 0), 73.9, {"inter": 31.3}),
    ("liae-ud", 224, (256, 64, 64, 0), 125.7, {"inter_AB": 41.6, "inter_B": 41.6}),
    ("df-ud", 256, (256, 64, 64, 0), 82.8, {"inter": 40.1}),
    ("liae-ud", 256, (256, 64, 64, 0), 145.3, {"inter_AB": 51.4, "inter_B": 51.4}),
    ("df-udt", 256, (256, 64, 64, 0), 97.2, {"encoder": 15.7, "inter": 12.6, "decoder_src": 34.5, "decoder_dst": 34.5}),
    ("liae-udt", 256, (256, 64, 64, 0), 102.8, {"encoder": 15.7, "inter_AB": 16.8, "inter_B": 16.8, "decoder": 53.5}),
    ("df", 224, (256, 64, 64, 0), 83.5, {"inter": 40.9}),
    ("liae", 224, (256, 64, 64, 0), 164.3, {"inter_AB": 60.9, "inter_B": 60.9}),
    ("liae-ud", 224, (512, 64, 80, 0), 316.5, {}),
    ("df-ud", 96, (128, 64, 64, 16), 38.3, {}),
]


def small_config(archi: str, resolution: int = 64) -> ModelConfig:
    return ModelConfig(archi=archi, resolution=resolution, ae_dims=64, e_dims=16, d_dims=16)


def images(n: int = 2, res: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, res, res, generator=torch.Generator().manual_seed(seed))


TABLE_IDS = [f"{row[0]}-{row[1]}-ae{row[2][0]}" for row in TABLE_4_6]


@pytest.mark.parametrize(("archi", "res", "dims", "total", "parts"), TABLE_4_6, ids=TABLE_IDS)
def test_parameter_counts_match_reference_table(archi, res, dims, total, parts):
    ae, e, d, dm = dims
    breakdown = parameter_breakdown_for(ModelConfig(archi, res, "f", ae, e, d, dm))
    assert sum(breakdown.values()) / 1e6 == pytest.approx(total, rel=0.01)
    for name, millions in parts.items():
        assert breakdown[name] / 1e6 == pytest.approx(millions, rel=0.02), name


def test_exact_counts_of_default_model_and_quick96():
    # Hand count for liae-ud 128: encoder 4 Downscales 5x5 (3->64->128->256->512).
    encoder = (3 * 64 + 64 * 128 + 128 * 256 + 256 * 512) * 25 + (64 + 128 + 256 + 512)
    inter = (8 * 8 * 512 * 256 + 256) + (256 * 4 * 4 * 512 + 4 * 4 * 512) + (512 * 2048 * 9 + 2048)
    with torch.device("meta"):
        model = SAEHD(ModelConfig())
    breakdown = model.parameter_breakdown()
    assert breakdown["encoder"] == encoder == 4_306_560
    assert breakdown["inter_AB"] == breakdown["inter_B"] == inter == 19_933_440
    assert model.parameter_count() == 82_367_339
    assert sum(parameter_breakdown_for(preset("quick96")).values()) == 38_275_898


@pytest.mark.parametrize("archi", ["df-ud", "liae-ud", "df", "liae-u", "df-udt", "liae-udt", "df-udtc"])
def test_forward_output_shapes_and_range(archi):
    torch.manual_seed(0)
    model = SAEHD(small_config(archi))
    with torch.no_grad():
        out = model(images(2, seed=1), images(2, seed=2))
    assert tuple(out) == OUTPUT_KEYS
    for key in ("src", "dst", "swap"):
        assert out[f"{key}_rgb"].shape == (2, 3, 64, 64)
        assert out[f"{key}_mask"].shape == (2, 1, 64, 64)
        for tensor in (out[f"{key}_rgb"], out[f"{key}_mask"]):
            assert tensor.min() >= 0.0 and tensor.max() <= 1.0
            assert tensor.std() > 1e-4  # not a constant image
    assert out["src_code"].shape == out["dst_code"].shape == (2, *model.code_shape)


def test_code_shapes_per_routing():
    assert SAEHD(small_config("df-ud")).code_shape == (64, 4, 4)  # ae_dims at res/32 * 2
    assert SAEHD(small_config("liae-ud")).code_shape == (256, 4, 4)  # 2 * (2 * ae_dims)
    assert SAEHD(small_config("df-udt")).code_shape == (64, 2, 2)  # no inter upscale with 't'
    assert SAEHD(small_config("liae")).code_shape == (256, 8, 8)


def test_liae_src_code_repeats_inter_ab():
    model = SAEHD(small_config("liae-ud")).eval()
    with torch.no_grad():
        code = model(images(2, seed=1), images(2, seed=2))["src_code"]
    assert torch.equal(code[:, :128], code[:, 128:])


def test_cos_activation_variant_runs():
    model = SAEHD(small_config("liae-udc"))
    assert any(isinstance(m, CosActivation) for m in model.modules())
    assert not any(isinstance(m, torch.nn.LeakyReLU) for m in model.encoder.modules())
    out = model(images(1, seed=1), images(1, seed=2))
    assert all(torch.isfinite(t).all() for t in out.values())
    out["swap_rgb"].mean().backward()
    assert model.encoder.body[0].conv.weight.grad.abs().sum() > 0


def test_pixel_norm_gives_unit_mean_square_encoder_output():
    x = torch.randn(3, 10) * 7.0
    assert torch.mean(pixel_norm(x) ** 2, dim=1) == pytest.approx(torch.ones(3), abs=1e-5)
    model = SAEHD(small_config("df-ud"))
    with torch.no_grad():
        features = model.encoder(images(2, seed=3))
        raw = torch.flatten(model.encoder.body(images(2, seed=3)), 1)
    torch.testing.assert_close(features, pixel_norm(raw))
    # Glorot-initialised features have mean square ~2e-3, so the 1e-6 epsilon costs ~0.1%.
    assert torch.mean(features**2, dim=1) == pytest.approx(torch.ones(2), abs=5e-3)


@pytest.mark.parametrize("archi", ["df-ud", "liae-ud"])
def test_swap_equals_forward_outputs(archi):
    torch.manual_seed(1)
    model = SAEHD(small_config(archi)).eval()
    dst = images(2, seed=5)
    with torch.no_grad():
        out = model(images(2, seed=4), dst)
        swap_rgb, swap_mask, dst_mask = model.swap(dst)
    torch.testing.assert_close(swap_rgb, out["swap_rgb"], atol=1e-5, rtol=0)
    torch.testing.assert_close(swap_mask, out["swap_mask"], atol=1e-5, rtol=0)
    torch.testing.assert_close(dst_mask, out["dst_mask"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("archi", ["df-ud", "liae-ud"])
def test_channels_last_bfloat16_autocast_matches_fp32(archi):
    torch.manual_seed(2)
    model = SAEHD(small_config(archi)).eval()
    src, dst = images(2, seed=6), images(2, seed=7)
    with torch.no_grad():
        reference = model(src, dst)
        model = model.to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = model(src.to(memory_format=torch.channels_last), dst.to(memory_format=torch.channels_last))
    assert fast["swap_rgb"].dtype == torch.bfloat16
    for key in OUTPUT_KEYS:
        if not key.endswith("_code"):
            torch.testing.assert_close(fast[key].float(), reference[key], atol=0.02, rtol=0)


def test_reset_parameters_changes_only_inter():
    model = SAEHD(small_config("df-ud"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert model.inter_modules() == ["inter"]
    model.reset_parameters(["inter"])
    after = model.state_dict()
    for key, value in before.items():
        if key.startswith("inter.") and key.endswith("weight"):
            assert not torch.equal(value, after[key]), key
        elif not key.startswith("inter."):
            assert torch.equal(value, after[key]), key
    assert after["inter.dense1.bias"].abs().sum() == 0


def test_reset_parameters_liae_inters_and_unknown_name():
    model = SAEHD(small_config("liae-ud"))
    assert model.inter_modules() == ["inter_AB", "inter_B"]
    decoder_before = model.decoder.rgb_out.weight.clone()
    inter_b_before = model.inter_B.dense1.weight.clone()
    model.reset_parameters(model.inter_modules())
    assert not torch.equal(inter_b_before, model.inter_B.dense1.weight)
    assert torch.equal(decoder_before, model.decoder.rgb_out.weight)
    with pytest.raises(DflError, match="'inter'.*inter_AB"):
        model.reset_parameters(["inter"])


def test_submodule_names():
    assert list(SAEHD(small_config("df")).parameter_breakdown()) == ["encoder", "inter", "decoder_src", "decoder_dst"]
    assert list(SAEHD(small_config("liae")).parameter_breakdown()) == ["encoder", "inter_AB", "inter_B", "decoder"]


def test_glorot_init_and_zero_biases():
    model = SAEHD(small_config("df-ud"))
    weight = model.inter.dense1.weight  # fan_in 4*4*128, fan_out 64
    bound = (6.0 / (weight.shape[0] + weight.shape[1])) ** 0.5
    assert weight.abs().max() <= bound and weight.abs().max() > 0.9 * bound
    assert all(p.abs().sum() == 0 for name, p in model.named_parameters() if name.endswith("bias"))


def test_invalid_config_is_refused():
    with pytest.raises(DflError, match="^resolution 100"):
        SAEHD(ModelConfig(resolution=100))


@pytest.mark.parametrize("archi", ["df-ud", "liae-udt"])
def test_swap_exports_to_onnx_with_dynamic_batch(archi):
    onnxruntime = pytest.importorskip("onnxruntime")

    class SwapGraph(torch.nn.Module):
        def __init__(self, model: SAEHD) -> None:
            super().__init__()
            self.model = model

        def forward(self, face: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            return self.model.swap(face)

    model = SAEHD(small_config(archi)).eval()
    buffer = io.BytesIO()
    with pytest.warns(DeprecationWarning):  # legacy exporter, as the brief requires
        torch.onnx.export(
            SwapGraph(model),
            (images(1),),
            buffer,
            dynamo=False,
            opset_version=17,
            input_names=["in_face"],
            output_names=["swap_rgb", "swap_mask", "dst_mask"],
            dynamic_axes={"in_face": {0: "n"}},
        )
    session = onnxruntime.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    faces = images(3, seed=9)
    results = session.run(None, {"in_face": faces.numpy()})
    with torch.no_grad():
        expected = model.swap(faces)
    for got, want in zip(results, expected, strict=True):
        torch.testing.assert_close(torch.from_numpy(got), want, atol=1e-5, rtol=0)
