"""Tests for trainer.augment: geometry (affine, flip, random warp), colour augmentation, blur-out, uniform yaw."""

import math
from functools import cache

import matplotlib.cbook
import matplotlib.image
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data

from dfl_vfx.errors import DflError
from dfl_vfx.merge.color_transfer import LAB_FROM_RGB, transfer_color
from trainer.augment import (
    AugmentConfig,
    blur_out_mask,
    make_samples,
    random_affine_matrices,
    random_hsv,
    random_warp_field,
    random_warp_grid,
    rct_transfer,
    uniform_yaw_weights,
)

NO_GEOMETRY = AugmentConfig(random_warp=False, random_flip=False, rotation=0.0, scale=0.0, shift=0.0)


@cache
def _astronaut() -> torch.Tensor:
    return torch.from_numpy(data.astronaut()).permute(2, 0, 1).float()[None] / 255.0


@cache
def _grace_hopper() -> torch.Tensor:
    pixels = np.array(matplotlib.image.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg")))
    return torch.from_numpy(pixels).permute(2, 0, 1).float()[None] / 255.0


def face_batch(resolution: int = 64, device: str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Two natural crops, (2, 3, R, R) in [0, 1]."""
    image = _astronaut()
    crops = torch.cat((image[:, :, 0:256, 128:384], image[:, :, 256:512, 0:256]))
    return F.interpolate(crops, size=(resolution, resolution), mode="area").to(device, dtype)


def disc_mask(
    resolution: int, radius: float, batch: int = 2, centre: tuple[float, float] | None = None
) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(resolution), torch.arange(resolution), indexing="ij")
    cx, cy = centre if centre is not None else ((resolution - 1) / 2, (resolution - 1) / 2)
    inside = ((xx - cx) ** 2 + (yy - cy) ** 2) < radius**2
    return inside.float()[None, None].expand(batch, 1, resolution, resolution).clone()


def _samples(cfg: AugmentConfig, seed: int, device: str = "cpu", dtype: torch.dtype = torch.float32) -> dict:
    faces = face_batch(64, device, dtype)
    masks = disc_mask(64, 24).to(device, dtype)
    eyes = disc_mask(64, 8, centre=(24.0, 26.0)).to(device, dtype)
    return make_samples(faces, masks, eyes, cfg, torch.Generator().manual_seed(seed))


def test_identity_settings_reproduce_the_input(device: str, dtype: torch.dtype) -> None:
    faces = face_batch(64, device, dtype)
    masks = disc_mask(64, 24).to(device, dtype)
    eyes = disc_mask(64, 8, centre=(24.0, 26.0)).to(device, dtype)
    out = make_samples(faces, masks, eyes, NO_GEOMETRY, torch.Generator().manual_seed(0))
    for name, expected in (("input", faces), ("target", faces), ("mask", masks), ("eyes_mouth", eyes)):
        assert out[name].dtype == dtype and out[name].device.type == device
        torch.testing.assert_close(out[name], expected, rtol=0, atol=1e-5)


def test_certain_flip_mirrors_exactly(device: str, dtype: torch.dtype) -> None:
    cfg = AugmentConfig(random_warp=False, rotation=0.0, scale=0.0, shift=0.0, flip_prob=1.0)
    out = _samples(cfg, 0, device, dtype)
    torch.testing.assert_close(out["target"], face_batch(64, device, dtype).flip(-1), rtol=0, atol=1e-5)


def test_random_warp_changes_input_not_target() -> None:
    warp_only = AugmentConfig(random_warp=True, random_flip=False, rotation=0.0, scale=0.0, shift=0.0)
    out = _samples(warp_only, 1)
    faces = face_batch(64)
    torch.testing.assert_close(out["target"], faces, rtol=0, atol=1e-5)
    torch.testing.assert_close(out["mask"], disc_mask(64, 24), rtol=0, atol=1e-5)
    per_sample = (out["input"] - faces).abs().mean(dim=(1, 2, 3))
    assert (per_sample > 0.005).all()


def test_warp_does_not_change_the_affine_target() -> None:
    with_warp = _samples(AugmentConfig(random_warp=True), 5)
    without = _samples(AugmentConfig(random_warp=False), 5)
    for name in ("target", "mask", "eyes_mouth"):
        torch.testing.assert_close(with_warp[name], without[name], rtol=0, atol=0)
    torch.testing.assert_close(without["input"], without["target"], rtol=0, atol=0)
    assert (with_warp["input"] - with_warp["target"]).abs().mean().item() > 0.005


def test_same_seed_same_samples_other_seed_differs() -> None:
    cfg = AugmentConfig(hsv_power=0.05)
    first, again, other = _samples(cfg, 7), _samples(cfg, 7), _samples(cfg, 8)
    for name in first:
        torch.testing.assert_close(first[name], again[name], rtol=0, atol=0)
    assert (first["input"] - other["input"]).abs().mean().item() > 0.005
    assert (first["target"] - other["target"]).abs().mean().item() > 0.005


def test_warp_node_offsets_have_dfl_magnitude() -> None:
    resolution, batch = 128, 150
    offsets, cell = random_warp_field(batch, resolution, torch.Generator().manual_seed(11), "cpu", torch.float64)
    counts = torch.bincount(cell.long(), minlength=65)[[16, 32, 64]]
    assert (counts > batch / 3 * 0.7).all()  # each of res/2, res/4, res/8 drawn about a third of the time
    ratios, node_px = [], []
    for n in range(batch):
        step = int(cell[n])
        nodes = torch.arange(step, resolution, step)  # interior nodes sit half a pixel before these centres
        px = (offsets[n][nodes][:, nodes] * resolution / 2).abs().flatten()
        node_px.append(px)
        ratios.append(px / step)
    measured = torch.cat(ratios).mean().item()
    expected = 0.24 * math.sqrt(2 / math.pi)  # E|N(0, 0.24 cell)| / cell = 0.1915
    assert measured == pytest.approx(expected, rel=0.3)
    edge_px = torch.cat((offsets[:, 0], offsets[:, -1], offsets[:, :, 0], offsets[:, :, -1])).abs() * resolution / 2
    assert edge_px.mean().item() < 0.03 * torch.cat(node_px).mean().item()  # border nodes fixed: edges barely move
    grid = random_warp_grid(batch, resolution, torch.Generator().manual_seed(11), "cpu", torch.float64)
    assert grid.shape == (batch, resolution, resolution, 2) and grid.abs().max().item() < 1.5


def test_affine_ranges_and_flip_probability() -> None:
    theta = random_affine_matrices(2000, torch.Generator().manual_seed(4))
    linear = theta[:, :, :2]
    det = torch.linalg.det(linear)
    flip_rate = (det < 0).float().mean().item()
    assert flip_rate == pytest.approx(0.4, abs=0.05)
    zoom = 1 / det.abs().sqrt()
    assert zoom.min().item() >= 0.85 - 1e-6 and zoom.max().item() <= 1.15 + 1e-6 and zoom.std().item() > 0.05
    unflipped = torch.where((det < 0)[:, None, None], linear * torch.tensor([[-1.0], [1.0]]), linear)
    angle = torch.rad2deg(torch.atan2(unflipped[:, 0, 1], unflipped[:, 0, 0]))
    assert angle.abs().max().item() <= 10 + 1e-4 and angle.abs().max().item() > 9
    shift = -torch.linalg.solve(linear, theta[:, :, 2]) / 2  # fraction of the image size
    assert shift.abs().max().item() <= 0.05 + 1e-6 and shift.abs().max().item() > 0.045


def test_affine_scale_and_shift_move_content_forward() -> None:
    resolution = 64
    disc = disc_mask(resolution, 12, batch=1).expand(400, 3, -1, -1)
    cfg = AugmentConfig(random_warp=False, random_flip=False, rotation=0.0, scale=0.15, shift=0.05)
    generator = torch.Generator().manual_seed(9)
    out = make_samples(disc, disc[:, :1], disc[:, :1], cfg, generator)
    theta = random_affine_matrices(400, torch.Generator().manual_seed(9), 0.0, 0.15, 0.05, 0.0)
    zoom = 1 / theta[:, 0, 0]
    area_ratio = out["mask"].sum(dim=(1, 2, 3)) / disc[:, 0].sum(dim=(1, 2))
    torch.testing.assert_close(area_ratio, zoom**2, rtol=0.03, atol=0)
    ys, xs = torch.meshgrid(torch.arange(float(resolution)), torch.arange(float(resolution)), indexing="ij")
    weight = out["mask"][:, 0]
    centroid_x = (weight * xs).sum(dim=(1, 2)) / weight.sum(dim=(1, 2))
    expected_x = (resolution - 1) / 2 + (-theta[:, 0, 2] * zoom) * resolution / 2
    torch.testing.assert_close(centroid_x, expected_x, rtol=0, atol=0.05)


def test_hsv_power_zero_is_identity_and_power_bounds_the_shift() -> None:
    faces = face_batch(64)
    torch.testing.assert_close(random_hsv(faces, 0.0, torch.Generator().manual_seed(0)), faces, rtol=0, atol=1e-5)
    gray = torch.linspace(0.2, 0.8, 32).expand(100, 3, 32, 32).contiguous()
    shifted = random_hsv(gray, 0.05, torch.Generator().manual_seed(1))
    # HSV value is the largest channel: it moves by one per-sample shift in [-0.05, 0.05].
    value_shift = shifted.amax(dim=1) - gray[:, 0]
    per_sample = value_shift.mean(dim=(1, 2))
    torch.testing.assert_close(value_shift, per_sample[:, None, None].expand_as(value_shift), rtol=0, atol=1e-5)
    assert per_sample.abs().max().item() <= 0.05 + 1e-6 and per_sample.abs().max().item() > 0.045
    assert per_sample.min().item() < -0.02 and per_sample.max().item() > 0.02
    coloured = random_hsv(faces, 0.3, torch.Generator().manual_seed(2))
    assert coloured.min().item() >= 0.0 and coloured.max().item() <= 1.0
    assert (coloured - faces).abs().mean().item() > 0.02


def test_rct_is_the_mergers_rct_and_moves_masked_statistics_to_dst(device: str, dtype: torch.dtype) -> None:
    src = (0.2 + 0.6 * face_batch(64)[:1]).to(device, dtype)
    hopper = F.interpolate(_grace_hopper()[:, :, 50:450, 100:500], size=(64, 64), mode="area")
    dst = ((0.25 + 0.5 * hopper) * torch.tensor([1.0, 0.9, 0.8])[:, None, None]).to(device, dtype)
    src_mask = disc_mask(64, 20, batch=1).to(device, dtype)
    dst_mask = disc_mask(64, 18, batch=1, centre=(30.0, 35.0)).to(device, dtype)
    dst_outside_garish = torch.where(dst_mask > 0, dst, torch.tensor([0.0, 1.0, 0.0], device=device, dtype=dtype)[
        :, None, None])
    out = rct_transfer(src, dst_outside_garish, src_mask, dst_mask)
    assert out.dtype == dtype and out.min().item() >= 0.0 and out.max().item() <= 1.0
    # "rct" means one thing: the merger's transfer (NumPy, channels last) gives the same face, clamped like a sample
    hwc = [x[0].permute(1, 2, 0).double().cpu().numpy() for x in (src, dst_outside_garish)]
    masks = [m[0, 0].double().cpu().numpy() for m in (src_mask, dst_mask)]
    merged = np.clip(transfer_color("rct", hwc[0], hwc[1], masks[0], masks[1]), 0.0, 1.0)
    np.testing.assert_allclose(out[0].permute(1, 2, 0).double().cpu().numpy(), merged, atol=2e-6)
    # and it did work: the masked means along the opponent axes move onto dst's
    axes = torch.as_tensor(LAB_FROM_RGB, dtype=torch.float64, device=device)

    def opponent_mean(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        pixels = x[0].double().reshape(3, -1).T @ axes.T
        w = m[0, 0].double().reshape(-1)
        return (w[:, None] * pixels).sum(0) / w.sum()

    before = (opponent_mean(src, src_mask) - opponent_mean(dst, dst_mask)).abs().max().item()
    after = (opponent_mean(out, src_mask) - opponent_mean(dst, dst_mask)).abs().max().item()
    assert before > 0.05 and after < 0.01 * before


def test_make_samples_colour_transfer_path() -> None:
    faces = face_batch(64)
    masks = disc_mask(64, 24)
    cfg = AugmentConfig(ct_mode="rct", blur_out_mask=True, hsv_power=0.05)
    with pytest.raises(ValueError, match="color_reference"):
        make_samples(faces, masks, masks, cfg, torch.Generator().manual_seed(0))
    reference = (faces.flip(0) * torch.tensor([1.0, 0.8, 0.6])[:, None, None], masks)
    out = make_samples(faces, masks, masks, cfg, torch.Generator().manual_seed(0), color_reference=reference)
    assert out["input"].shape == faces.shape and out["mask"].shape == masks.shape
    assert out["target"].min().item() >= 0.0 and out["target"].max().item() <= 1.0


def test_augment_config_rejects_unknown_ct_mode() -> None:
    with pytest.raises(DflError, match="ct_mode 'sot'"):
        AugmentConfig(ct_mode="sot")


def test_blur_out_mask_keeps_the_face_and_smooths_the_background(device: str, dtype: torch.dtype) -> None:
    faces = face_batch(128, device, dtype)
    masks = disc_mask(128, 40).to(device, dtype)
    out = blur_out_mask(faces, masks, 128)  # sigma 1 px
    inside = masks.expand_as(faces) > 0
    assert torch.equal(out[inside], faces[inside])

    def roughness(x: torch.Tensor) -> float:
        return (x[..., :, 1:] - x[..., :, :-1]).abs()[~inside[..., :, 1:]].mean().item()

    assert roughness(out) < 0.8 * roughness(faces)
    white_face = masks.expand_as(faces).clone()  # face 1, background 0: no face colour may bleed outward
    torch.testing.assert_close(blur_out_mask(white_face, masks, 128), white_face, rtol=0, atol=1e-6)


def test_uniform_yaw_weights_equalise_occupied_bins() -> None:
    yaws = torch.cat((torch.full((100,), 0.01), torch.full((10,), 0.5), torch.tensor([-1.0, 2.0, 1.19])))
    weights = uniform_yaw_weights(yaws)
    assert weights.sum().item() == pytest.approx(1.0, abs=1e-6)
    # Four occupied bins; 2.0 is clamped into 1.19's (last) bin.
    groups = (weights[:100].sum(), weights[100:110].sum(), weights[110], weights[111:].sum())
    for total in groups:
        assert total.item() == pytest.approx(0.25, abs=1e-6)
    draws = torch.multinomial(weights, 20000, replacement=True, generator=torch.Generator().manual_seed(0))
    frequencies = torch.stack(((draws < 100).sum(), ((draws >= 100) & (draws < 110)).sum(), (draws == 110).sum(),
                               (draws > 110).sum())).float() / 20000
    torch.testing.assert_close(frequencies, torch.full((4,), 0.25), rtol=0, atol=0.02)
