"""SAEHD training losses (reference 4.4 and the style options of 4.1) as pure, batch-first torch functions.

Owns DSSIM with DeepFaceLab's window semantics, the blurred loss mask, the per-side reconstruction loss
(structure + pixel + eyes/mouth + mask head), the face/background style losses and the small helpers the GAN and
TrueFace discriminators need (total variation, BCE on logits). Every loss is computed in float32 (float64 inputs stay
float64) with autocast switched off, so the same code runs under bfloat16/float16 autocast on CPU and GPU.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

from dfl_vfx.errors import DflError

SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
STD_EPS = 1e-6


@contextmanager
def _full_precision(device: torch.device) -> Iterator[None]:
    """Switch autocast off for the losses: moments, blurs and reductions need more than bfloat16's 8 bits."""
    with torch.autocast(device_type=device.type, enabled=False):
        yield


def _loss_dtype(x: Tensor) -> Tensor:
    """Half-precision tensors are promoted to float32; float32 and float64 are kept."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _per_sample_mean(x: Tensor) -> Tensor:
    return x.flatten(1).mean(dim=1)


def dssim(pred: Tensor, target: Tensor, kernel_size: int) -> Tensor:
    """Per-sample structural dissimilarity ``(1 - SSIM) / 2`` of (N, C, H, W) images, shape (N,).

    Gaussian window sigma 1.5 with ``kernel_size`` taps, k1 0.01, k2 0.03, data range 1, VALID filtering (only
    windows lying fully inside the image), SSIM averaged over channels and valid pixels, as DeepFaceLab does.
    ``kornia.losses.ssim_loss`` is not called directly because it rejects even windows, and DFL's kernels are often
    even (256 -> 22); it is built from kornia's even-capable Gaussian kernel and separable VALID filter instead and
    equals ``ssim_loss(padding='valid', reduction='none')`` averaged per sample for odd windows (tested). Unlike kornia
    no ``eps`` is added to the denominator (c1, c2 > 0 already) and the map is not clamped.
    """
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"dssim needs two (N, C, H, W) tensors of one shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    if kernel_size < 1 or min(pred.shape[-2:]) < kernel_size:
        raise ValueError(f"dssim kernel {kernel_size} does not fit images of size {tuple(pred.shape[-2:])}")
    with _full_precision(pred.device):
        x, y = _loss_dtype(pred), _loss_dtype(target)
        dtype = torch.promote_types(x.dtype, y.dtype)
        x, y = x.to(dtype), y.to(dtype)
        window = kornia.filters.get_gaussian_kernel1d(
            kernel_size, SSIM_SIGMA, force_even=True, device=x.device, dtype=dtype
        )

        def local_mean(img: Tensor) -> Tensor:
            return kornia.filters.filter2d_separable(img, window, window, padding="valid")

        c1, c2 = SSIM_K1**2, SSIM_K2**2
        mu_x, mu_y = local_mean(x), local_mean(y)
        mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
        var_x = local_mean(x * x) - mu_xx
        var_y = local_mean(y * y) - mu_yy
        cov_xy = local_mean(x * y) - mu_xy
        ssim_map = ((2 * mu_xy + c1) * (2 * cov_xy + c2)) / ((mu_xx + mu_yy + c1) * (var_x + var_y + c2))
        return (1.0 - _per_sample_mean(ssim_map)) / 2.0


def structure_kernels(resolution: int) -> list[tuple[float, int]]:
    """DFL's (weight, DSSIM kernel size) pairs: res < 256 -> 10*k(res/11.6); else 5*k(res/11.6) + 5*k(res/23.2)."""
    if resolution < 256:
        return [(10.0, int(resolution / 11.6))]
    return [(5.0, int(resolution / 11.6)), (5.0, int(resolution / 23.2))]


def dfl_gaussian_blur(x: Tensor, radius: float) -> Tensor:
    """DFL-style ``gaussian_blur(x, radius)``: ``radius`` is the Gaussian sigma, the window spans +-2 sigma.

    Kernel size ``2 * ceil(2 * radius) + 1`` (4 * radius + 1 taps for integer radii, at least 3), borders reflected.
    DFL pads with zeros; after ``loss_mask``'s clip at 0.5 the two agree for masks that reach the border.
    """
    size = max(3, 2 * math.ceil(2 * radius) + 1)
    return kornia.filters.gaussian_blur2d(x, (size, size), (float(radius), float(radius)), border_type="reflect")


def loss_mask(mask: Tensor, resolution: int) -> Tensor:
    """Soft mask for masked losses: ``clip(gaussian_blur(mask, max(1, res // 32)), 0, 0.5) * 2``, same shape."""
    with _full_precision(mask.device):
        blurred = dfl_gaussian_blur(_loss_dtype(mask), max(1, resolution // 32))
        return blurred.clamp(0.0, 0.5) * 2.0


@dataclass(frozen=True)
class LossWeights:
    """Term weights of reference 4.4 / 4.1 (structure weights come from ``structure_kernels``)."""

    pixel_mse: float = 10.0
    eyes_mouth_l1: float = 300.0
    mask_mse: float = 10.0
    face_style: float = 1e4
    bg_style_dssim: float = 5.0
    bg_style_mse: float = 10.0


@dataclass(frozen=True)
class LossConfig:
    """Which loss terms are on, for a model of the given resolution. Style powers are DFL's 0..100 options."""

    resolution: int
    masked_training: bool = True
    eyes_mouth_prio: bool = False
    face_style_power: float = 0.0
    bg_style_power: float = 0.0
    weights: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self) -> None:
        if self.resolution < 16:
            raise DflError(f"resolution {self.resolution} is too small for the losses; use at least 16 (DFL: 64..640)")
        for name in ("face_style_power", "bg_style_power"):
            value = getattr(self, name)
            if not 0.0 <= value <= 100.0:
                raise DflError(f"{name} {value} is out of range; use a value in 0..100 (typical bg_style_power 2.0)")


def reconstruction_loss(
    pred_rgb: Tensor,
    target_rgb: Tensor,
    pred_mask: Tensor,
    target_mask: Tensor,
    cfg: LossConfig,
    eyes_mouth: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """One side's (src or dst) loss of reference 4.4, averaged over the batch; returns (loss, detached parts).

    With ``masked_training`` the images are multiplied by ``loss_mask(target_mask)`` before the structure (DSSIM)
    and pixel (10 * MSE) terms. ``eyes_mouth_prio`` adds 300 * L1 of the images inside the ``eyes_mouth`` mask
    (N, 1, H, W). The mask head term is 10 * MSE(pred_mask, target_mask) on the raw target mask. Parts:
    ``structure``, ``pixel``, ``mask`` and, when enabled, ``eyes_mouth``.
    """
    if cfg.eyes_mouth_prio and eyes_mouth is None:
        raise ValueError("reconstruction_loss: eyes_mouth_prio is on but no eyes_mouth mask was given")
    w = cfg.weights
    with _full_precision(pred_rgb.device):
        pred, target = _loss_dtype(pred_rgb), _loss_dtype(target_rgb)
        pred_m, target_m = _loss_dtype(pred_mask), _loss_dtype(target_mask)
        if cfg.masked_training:
            soft = loss_mask(target_m, cfg.resolution)
            pred_masked, target_masked = pred * soft, target * soft
        else:
            pred_masked, target_masked = pred, target

        parts: dict[str, Tensor] = {
            "structure": sum(
                weight * dssim(pred_masked, target_masked, k) for weight, k in structure_kernels(cfg.resolution)
            ),
            "pixel": w.pixel_mse * _per_sample_mean((target_masked - pred_masked) ** 2),
        }
        if cfg.eyes_mouth_prio:
            em = _loss_dtype(eyes_mouth)
            parts["eyes_mouth"] = w.eyes_mouth_l1 * _per_sample_mean((target * em - pred * em).abs())
        parts["mask"] = w.mask_mse * _per_sample_mean((target_m - pred_m) ** 2)

        total = torch.stack(list(parts.values())).sum(dim=0).mean()
        return total, {name: value.mean().detach() for name, value in parts.items()}


def _masked_mean_std(x: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel weighted mean and std of (N, C, H, W) images under an (N, 1, H, W) weight."""
    total = weight.sum(dim=(2, 3)).clamp_min(STD_EPS)
    mean = (x * weight).sum(dim=(2, 3)) / total
    var = (((x - mean[..., None, None]) ** 2) * weight).sum(dim=(2, 3)) / total
    return mean, torch.sqrt(var + STD_EPS)


def style_losses(swap_rgb: Tensor, dst_rgb: Tensor, swap_mask: Tensor, dst_mask: Tensor, cfg: LossConfig) -> Tensor:
    """Face and background style losses of the swap (src decoder on dst) against dst, averaged over the batch.

    face_style (``p/100 * 1e4``): squared differences of the per-channel mean and std of the swap inside its own
    (detached) predicted mask and of dst inside ``dst_mask``, averaged over channels. DFL instead compares whole-image
    mean/std of the mask-multiplied images after a gaussian blur; masked statistics measure the face colour alone,
    independent of the face's area. bg_style (``p/100``): ``5 * DSSIM + 10 * MSE`` of swap and dst multiplied by
    ``1 - loss_mask(dst_mask)``. Returns a scalar (0 when both powers are 0).
    """
    w = cfg.weights
    with _full_precision(swap_rgb.device):
        swap, dst = _loss_dtype(swap_rgb), _loss_dtype(dst_rgb)
        loss = swap.new_zeros(swap.shape[0])
        if cfg.face_style_power > 0:
            swap_mean, swap_std = _masked_mean_std(swap, _loss_dtype(swap_mask).detach())
            dst_mean, dst_std = _masked_mean_std(dst, _loss_dtype(dst_mask))
            style = ((swap_mean - dst_mean) ** 2 + (swap_std - dst_std) ** 2).mean(dim=1)
            loss = loss + (cfg.face_style_power / 100.0) * w.face_style * style
        if cfg.bg_style_power > 0:
            outside = 1.0 - loss_mask(_loss_dtype(dst_mask), cfg.resolution)
            swap_bg, dst_bg = swap * outside, dst * outside
            bg = w.bg_style_dssim * dssim(swap_bg, dst_bg, int(cfg.resolution / 11.6))
            bg = bg + w.bg_style_mse * _per_sample_mean((swap_bg - dst_bg) ** 2)
            loss = loss + (cfg.bg_style_power / 100.0) * bg
        return loss.mean()


def total_variation(x: Tensor) -> Tensor:
    """Anisotropic total variation per sample (sum of |dx| + |dy| over C, H, W), shape (N,), like TF's."""
    with _full_precision(x.device):
        return kornia.losses.total_variation(_loss_dtype(x), reduction="sum").flatten(1).sum(dim=1)


def bce_with_logits(logits: Tensor, target_is_real: bool) -> Tensor:
    """Mean binary cross-entropy of discriminator logits against an all-real (1) or all-fake (0) target."""
    with _full_precision(logits.device):
        x = _loss_dtype(logits)
        target = torch.ones_like(x) if target_is_real else torch.zeros_like(x)
        return F.binary_cross_entropy_with_logits(x, target)
