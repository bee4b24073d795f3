"""The XSeg network: the reference's size, shapes, FRN/TLU and BlurPool behaviour, config checks."""

import pytest
import torch

from dfl_vfx.errors import DflError
from dfl_vfx.xseg.model import FRN, BlurPool, XSeg, XSegConfig, parameter_count


def test_full_model_matches_reference_size() -> None:
    # reference §3: "≈17.6 M parameters ≈ 67 MiB fp32"; the figure is rounded to 0.1 M, so +-0.05 M
    count = parameter_count(XSeg())
    assert count == 17_569_281
    assert abs(count - 17.6e6) <= 0.05e6
    assert abs(count * 4 / 2**20 - 67) < 0.5


def test_shapes_and_sigmoid() -> None:
    torch.manual_seed(0)
    model = XSeg(XSegConfig.reduced()).eval()
    x = torch.rand(2, 3, 64, 64)
    logits, probs = model(x)
    assert logits.shape == probs.shape == (2, 1, 64, 64)
    torch.testing.assert_close(probs, torch.sigmoid(logits))
    # no batch statistics: a face's output does not depend on the rest of the batch
    alone, _ = model(x[:1])
    torch.testing.assert_close(alone, logits[:1], atol=1e-5, rtol=1e-5)


def test_full_resolution_bottleneck_is_4x4x256() -> None:
    model = XSeg()
    assert model.dense1.in_features == 4 * 4 * 256 and model.dense1.out_features == 512
    assert [p.kernel.shape[-1] for p in model.pools] == [4, 3, 2, 2, 2, 2]


def test_blurpool_halves_and_keeps_flat_images() -> None:
    for size in (2, 3, 4):
        pool = BlurPool(2, size)
        flat = torch.full((1, 2, 16, 16), 0.7)
        out = pool(flat)
        assert out.shape == (1, 2, 8, 8)
        torch.testing.assert_close(out, torch.full_like(out, 0.7))
    # a one-pixel checkerboard (the highest frequency) is blurred away, not aliased into a pattern
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2
    out = BlurPool(1, 4)(checker.float()[None, None])
    assert float(out[..., 1:-1, 1:-1].std()) < 1e-6


def test_frn_tlu() -> None:
    frn = FRN(1)
    x = torch.tensor([[[[3.0, -4.0]]]])  # rms 3.5355
    with torch.no_grad():
        frn.tau.fill_(-0.5)
    out = frn(x)
    torch.testing.assert_close(out, torch.tensor([[[[3.0 / 3.5355339, -0.5]]]]), atol=1e-5, rtol=0)


def test_bad_resolution_is_one_line_error() -> None:
    with pytest.raises(DflError, match="multiple of 64"):
        XSeg(XSegConfig(resolution=100))
    with pytest.raises(DflError, match="base_ch"):
        XSegConfig.from_dict({"resolution": 64, "base_ch": 1})
