"""Tests for dfl_vfx.models.losses: DSSIM semantics, loss mask, reconstruction and style losses, helpers."""

from functools import cache

import kornia
import pytest
import torch
import torch.nn.functional as F
from skimage import data

from dfl_vfx.errors import DflError
from dfl_vfx.models.losses import (
    LossConfig,
    bce_with_logits,
    dssim,
    loss_mask,
    reconstruction_loss,
    structure_kernels,
    style_losses,
    total_variation,
)


@cache
def _astronaut() -> torch.Tensor:
    image = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float()[None] / 255.0
    return image


def face_batch(resolution: int = 64, device: str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Two natural face-sized crops of skimage's astronaut, (2, 3, R, R) in [0, 1]."""
    image = _astronaut()
    crops = torch.cat((image[:, :, 0:256, 128:384], image[:, :, 256:512, 0:256]))
    return F.interpolate(crops, size=(resolution, resolution), mode="area").to(device, dtype)


def disc_mask(resolution: int, radius: float, batch: int = 2) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(resolution), torch.arange(resolution), indexing="ij")
    centre = (resolution - 1) / 2
    inside = ((xx - centre) ** 2 + (yy - centre) ** 2) < radius**2
    return inside.float()[None, None].expand(batch, 1, resolution, resolution).clone()


def test_dssim_identical_zero_noise_large_symmetric(device: str, dtype: torch.dtype) -> None:
    faces = face_batch(64, device, dtype)
    noise = torch.rand(faces.shape, generator=torch.Generator().manual_seed(1)).to(device, dtype)
    same = dssim(faces, faces, 11)
    against_noise = dssim(faces, noise, 11)
    assert same.shape == (2,)
    assert same.abs().max().item() < 1e-6
    assert (against_noise > 0.2).all() and (against_noise < 0.6).all()
    torch.testing.assert_close(dssim(noise, faces, 11), against_noise, rtol=0, atol=1e-6)


def test_dssim_equals_kornia_valid_ssim_loss_for_odd_windows(device: str, dtype: torch.dtype) -> None:
    faces = face_batch(64, device, dtype)
    other = faces.flip(0) * 0.7 + 0.1
    for kernel in (5, 11):
        ours = dssim(faces, other, kernel)
        theirs = kornia.losses.ssim_loss(faces, other, kernel, eps=0.0, padding="valid", reduction="none")
        torch.testing.assert_close(ours, theirs.mean(dim=(1, 2, 3)), rtol=0, atol=1e-6)


def test_dssim_even_window_is_centred_and_per_sample() -> None:
    faces = face_batch(64)
    noise = torch.rand(faces.shape, generator=torch.Generator().manual_seed(2))
    pred = torch.stack((faces[0], noise[1]))
    # A 22-tap window (DFL's for 256) centred between pixels: mirroring both images leaves the value unchanged.
    value = dssim(pred, faces, 22)
    torch.testing.assert_close(dssim(pred.flip(-1), faces.flip(-1), 22), value, rtol=0, atol=1e-6)
    torch.testing.assert_close(dssim(pred.flip(-2), faces.flip(-2), 22), value, rtol=0, atol=1e-6)
    assert value[0].item() < 1e-6 and value[1].item() > 0.2


def test_dssim_rejects_a_window_larger_than_the_image() -> None:
    with pytest.raises(ValueError, match="kernel 22"):
        dssim(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16), 22)


@pytest.mark.parametrize(
    ("resolution", "expected"),
    [(64, [(10.0, 5)]), (128, [(10.0, 11)]), (224, [(10.0, 19)]), (256, [(5.0, 22), (5.0, 11)])],
)
def test_structure_kernels(resolution: int, expected: list[tuple[float, int]]) -> None:
    assert structure_kernels(resolution) == expected


def test_loss_mask_range_and_blur_margin(device: str, dtype: torch.dtype) -> None:
    mask = torch.zeros(1, 1, 128, 128, device=device, dtype=dtype)
    mask[..., :64] = 1.0
    soft = loss_mask(mask, 128)  # blur sigma 128 // 32 = 4 px, window +-8 px
    assert soft.min().item() >= 0.0 and soft.max().item() <= 1.0
    row = soft[0, 0, 64].cpu()
    assert (row[:64] > 1 - 1e-6).all()  # inside the mask: blurred >= 0.5, clipped, doubled -> 1
    assert 0.8 < row[64].item() < 0.95  # half a pixel outside: ~2 * P(Z < -0.5 / 4)
    assert (row[64:72].diff() < 0).all()  # fades outward ...
    assert row[73:].abs().max().item() < 1e-6  # ... to 0 beyond the 8 px window
    assert loss_mask(torch.ones_like(mask), 128).min().item() > 1 - 1e-6


def _config(**kwargs: object) -> LossConfig:
    return LossConfig(resolution=64, **kwargs)


def test_reconstruction_loss_zero_when_perfect_and_grows_with_error(device: str, dtype: torch.dtype) -> None:
    target = face_batch(64, device, dtype)
    mask = disc_mask(64, 24).to(device, dtype)
    cfg = _config(eyes_mouth_prio=True)
    eyes = torch.zeros_like(mask)
    eyes[..., 20:30, 16:48] = 1.0
    perfect, parts = reconstruction_loss(target, target, mask, mask, cfg, eyes)
    assert perfect.ndim == 0 and perfect.item() < 1e-6
    assert set(parts) == {"structure", "pixel", "eyes_mouth", "mask"}
    generator = torch.Generator().manual_seed(3)
    noise = torch.randn(target.shape, generator=generator).to(device, dtype)
    losses = [
        reconstruction_loss(target + s * noise, target, mask, mask, cfg, eyes)[0].item() for s in (0.01, 0.05, 0.2)
    ]
    assert 0 < losses[0] < losses[1] < losses[2]


def test_masked_training_ignores_errors_outside_the_blurred_mask() -> None:
    target = face_batch(64)
    mask = disc_mask(64, 16)
    outside = loss_mask(mask, 64) == 0
    pred = torch.where(outside, 1.0 - target, target)
    masked, _ = reconstruction_loss(pred, target, mask, mask, _config(masked_training=True))
    unmasked, _ = reconstruction_loss(pred, target, mask, mask, _config(masked_training=False))
    assert masked.item() < 1e-6
    assert unmasked.item() > 0.5


def test_pixel_and_mask_terms_have_dfl_weights() -> None:
    target = face_batch(64) * 0.8
    mask = disc_mask(64, 24)
    _, parts = reconstruction_loss(target + 0.1, target, mask - 0.2, mask, _config(masked_training=False))
    assert parts["pixel"].item() == pytest.approx(10 * 0.1**2, rel=1e-5)
    assert parts["mask"].item() == pytest.approx(10 * 0.2**2, rel=1e-5)


def test_eyes_mouth_term_only_when_enabled_and_only_inside_region() -> None:
    target = face_batch(64)
    mask = disc_mask(64, 28)
    eyes = torch.zeros_like(mask)
    eyes[..., 20:30, 16:48] = 1.0
    cfg_on = _config(eyes_mouth_prio=True)
    cheek = torch.zeros_like(mask)
    cheek[..., 38:46, 20:44] = 1.0
    pred_cheek = target + 0.2 * cheek
    _, parts = reconstruction_loss(pred_cheek, target, mask, mask, cfg_on, eyes)
    assert parts["eyes_mouth"].item() < 1e-7 and parts["pixel"].item() > 1e-3
    pred_eyes = target + 0.2 * eyes
    total_on, parts = reconstruction_loss(pred_eyes, target, mask, mask, cfg_on, eyes)
    expected = 300 * (0.2 * eyes).mean().item()  # 300 * mean |target*em - pred*em| over the whole image
    assert parts["eyes_mouth"].item() == pytest.approx(expected, rel=1e-5)
    total_off, parts_off = reconstruction_loss(pred_eyes, target, mask, mask, _config(), eyes)
    assert "eyes_mouth" not in parts_off
    assert total_on.item() == pytest.approx(total_off.item() + expected, rel=1e-5)
    with pytest.raises(ValueError, match="eyes_mouth"):
        reconstruction_loss(pred_eyes, target, mask, mask, cfg_on)


def test_gradients_reach_prediction_and_mask() -> None:
    target = face_batch(64)
    mask = disc_mask(64, 24)
    pred = (target * 0.9 + 0.05).requires_grad_()
    pred_mask = (mask * 0.9 + 0.05).requires_grad_()
    loss, _ = reconstruction_loss(pred, target, pred_mask, mask, _config(eyes_mouth_prio=True), mask)
    loss.backward()
    assert torch.isfinite(pred.grad).all() and torch.isfinite(pred_mask.grad).all()
    inside = loss_mask(mask, 64).expand_as(pred) > 0
    assert pred.grad[inside].abs().mean().item() > 0
    assert pred.grad[~inside].abs().max().item() == 0  # masked training: no gradient where the loss mask is 0
    assert pred_mask.grad.abs().min().item() > 0


def test_bfloat16_autocast_matches_float32() -> None:
    target = face_batch(64)
    mask = disc_mask(64, 24)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)
    torch.nn.init.dirac_(conv.weight)
    torch.nn.init.constant_(conv.bias, 0.02)
    cfg = _config(face_style_power=10.0, bg_style_power=2.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pred = conv(target)
        assert pred.dtype == torch.bfloat16
        loss_bf16, _ = reconstruction_loss(pred, target, mask, mask, cfg)
        style_bf16 = style_losses(pred, target, mask, mask, cfg)
    loss_bf16.backward()
    assert loss_bf16.dtype == torch.float32 and style_bf16.dtype == torch.float32
    assert torch.isfinite(conv.weight.grad).all()
    loss_fp32, _ = reconstruction_loss(conv(target), target, mask, mask, cfg)
    assert loss_bf16.item() == pytest.approx(loss_fp32.item(), rel=0.05)  # measured 0.6 % apart


def test_face_style_matches_mean_and_std_inside_mask() -> None:
    dst = face_batch(64) * 0.8
    mask = disc_mask(64, 24)
    assert style_losses(dst + 0.1, dst, mask, mask, _config()).item() == 0.0  # both powers 0
    cfg = _config(face_style_power=10.0)
    assert style_losses(dst, dst, mask, mask, cfg).item() < 1e-9
    # A constant shift of 0.1 inside the mask: mean term 0.01 per channel -> 10/100 * 1e4 * 0.01 = 10.
    shifted = dst + 0.1 * mask
    assert style_losses(shifted, dst, mask, mask, cfg).item() == pytest.approx(10.0, rel=1e-4)
    # Changes outside the mask do not count.
    outside = dst + 0.3 * (1 - mask)
    assert style_losses(outside, dst, mask, mask, cfg).item() < 1e-9


def test_bg_style_only_sees_the_background() -> None:
    dst = face_batch(64) * 0.8
    mask = disc_mask(64, 20)
    cfg = _config(bg_style_power=2.0)
    face_region = loss_mask(mask, 64) == 1
    changed_face = torch.where(face_region, 1 - dst, dst)
    assert style_losses(changed_face, dst, mask, mask, cfg).item() < 1e-7
    changed_bg = torch.where(face_region, dst, 1 - dst)
    value = style_losses(changed_bg, dst, mask, mask, cfg).item()
    assert 0.02 * 1.0 < value < 0.02 * 15.0  # p/100 * (5 * DSSIM + 10 * MSE), both terms bounded


def test_total_variation_and_bce() -> None:
    step = torch.zeros(2, 3, 4, 4)
    step[..., 2:] = 1.0  # one unit jump per row, 4 rows, 3 channels
    assert total_variation(step).tolist() == [12.0, 12.0]
    logits = torch.zeros(2, 1, 5, 5)
    assert bce_with_logits(logits, True).item() == pytest.approx(0.693147, abs=1e-6)
    assert bce_with_logits(logits + 20, True).item() < 1e-8
    assert bce_with_logits(logits + 20, False).item() == pytest.approx(20.0, abs=1e-6)


def test_loss_config_rejects_out_of_range_style_power() -> None:
    with pytest.raises(DflError, match="bg_style_power"):
        LossConfig(resolution=128, bg_style_power=150.0)
