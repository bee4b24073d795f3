"""U-Net patch discriminator (receptive field vs patch size, measured by gradients) and TrueFace code discriminator."""

import pytest
import torch

from dfl_vfx.errors import DflError
from dfl_vfx.models.discriminators import (
    CodeDiscriminator,
    UNetPatchDiscriminator,
    choose_encoder_strides,
    receptive_field,
)


@pytest.mark.parametrize(
    ("layers", "field"),
    [([(3, 2)] * 4, 31), ([(3, 1)] * 3, 7), ([(5, 2), (5, 2)], 13), ([(3, 2), (3, 1), (3, 2), (3, 2)], 19), ([], 1)],
)
def test_receptive_field_formula(layers, field):
    assert receptive_field(layers) == field


@pytest.mark.parametrize("patch", [3, 8, 16, 20, 28, 64, 80, 160, 640])
def test_chosen_strides_are_the_fewest_layers_reaching_the_patch(patch):
    strides = choose_encoder_strides(patch)
    assert strides[0] == 2 and set(strides) <= {1, 2}
    assert receptive_field([(3, s) for s in strides]) >= patch
    # One layer fewer cannot reach it even with every stride 2.
    assert receptive_field([(3, 2)] * (len(strides) - 1)) < patch


def test_default_patch_for_128_uses_four_layers():
    assert choose_encoder_strides(128 // 8) == [2, 1, 2, 2]  # field 19 >= 16


@pytest.mark.parametrize("patch", [2, 641])
def test_patch_size_out_of_range(patch):
    with pytest.raises(DflError, match="^gan_patch_size"):
        choose_encoder_strides(patch)


@pytest.mark.parametrize(("res", "patch", "center_side"), [(128, 16, 16), (96, 12, 12), (64, 3, 32), (128, 40, 8)])
def test_output_shapes(res, patch, center_side):
    model = UNetPatchDiscriminator(3, patch_size=patch, base_dims=8)
    center, final = model(torch.rand(2, 3, res, res))
    assert center.shape == (2, 1, center_side, center_side)
    assert final.shape == (2, 1, res, res)


def measured_field(model: UNetPatchDiscriminator, side: int) -> tuple[int, int]:
    """Height and width of the input region whose gradient w.r.t. the central centre logit is nonzero."""
    image = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0), requires_grad=True)
    center, _ = model(image)
    center[0, 0, center.shape[2] // 2, center.shape[3] // 2].backward()
    touched = image.grad.abs().sum(dim=(0, 1)) > 0
    rows = torch.nonzero(touched.any(dim=1)).flatten()
    cols = torch.nonzero(touched.any(dim=0)).flatten()
    assert rows.min() > 0 and cols.min() > 0 and rows.max() < side - 1 and cols.max() < side - 1  # not clipped
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


@pytest.mark.parametrize("patch", [3, 8, 16, 28, 40])
def test_receptive_field_measured_by_gradient_covers_patch(patch):
    torch.manual_seed(patch)
    model = UNetPatchDiscriminator(3, patch_size=patch, base_dims=4)
    height, width = measured_field(model, 128)
    assert height == width == model.receptive_field
    assert model.receptive_field >= patch


def test_final_logits_depend_on_input():
    model = UNetPatchDiscriminator(3, patch_size=16, base_dims=4)
    image = torch.rand(1, 3, 64, 64, requires_grad=True)
    _, final = model(image)
    final[0, 0, 32, 32].backward()
    assert image.grad[0, :, 32, 32].abs().sum() > 0


@pytest.mark.parametrize(("channels", "res"), [(256, 8), (128, 16), (512, 7), (64, 1), (256, 2)])
def test_code_discriminator_gives_one_logit_per_sample(channels, res):
    model = CodeDiscriminator(channels, res, dims=32)
    code = torch.randn(3, channels, res, res, requires_grad=True)
    logits = model(code)
    assert logits.shape == (3, 1)
    logits.sum().backward()
    assert code.grad.abs().sum() > 0
