"""XSeg training-sample augmentation (reference section 3) as torch ops on the training device.

``augment_batch`` turns aligned faces (N, 3, R, R) in [0, 1] and their label masks (N, 1, R, R) into an augmented
(input, target mask) pair:

1. random background swap (probability 0.5 per sample): the face (label 1) is composited over another face of the
   batch (shifted and flipped at random), so the network cannot learn the plate's background;
2. geometry: one random affine (rotation, scale, shift, flip) and DeepFaceLab's random warp, shared by image and
   mask (trainer.augment's functions);
3. colour: random HSV shift and random per-channel levels (input black/white points, gamma);
4. degradation, each with probability 0.25 per sample and localised by a random faded circle: sharpen, motion blur,
   gaussian blur (kernel <= 5), nearest/bilinear downscale (to as little as 25 %), and a JPEG-like 8x8 block-DCT
   quantisation.

Randomness comes only from the generator passed in (drawn on its own device, moved to the data's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

from trainer.augment import (
    apply_affine_to_grid,
    identity_grid,
    random_affine_matrices,
    random_hsv,
    random_warp_grid,
)

DEGRADE_PROB = 0.25
JPEG_BLOCK = 8


@dataclass(frozen=True)
class XSegAugmentConfig:
    """Augmentation strengths; the defaults follow the reference's list."""

    background_swap: float = 0.5
    random_warp: bool = True
    rotation: float = 10.0
    scale: float = 0.15
    shift: float = 0.05
    flip_prob: float = 0.5
    hsv_power: float = 0.1
    levels: float = 0.1  # black point up to this, white point down to 1 - this, gamma 1 +- 2x this
    degrade: float = DEGRADE_PROB  # probability of each degradation


def _rand(shape: tuple[int, ...], generator: torch.Generator, like: Tensor) -> Tensor:
    return torch.rand(shape, generator=generator, device=generator.device).to(like.device, like.dtype)


def _sample(images: Tensor, grid: Tensor, mode: str = "bilinear") -> Tensor:
    return F.grid_sample(images, grid, mode=mode, padding_mode="border", align_corners=False)


def background_swap(images: Tensor, masks: Tensor, prob: float, generator: torch.Generator) -> Tensor:
    """Per sample with probability ``prob``: ``mask * image + (1 - mask) * other``, ``other`` another face of the
    batch (a rolled index) shifted by up to a quarter of the image and flipped with probability 0.5."""
    n, _, res, _ = images.shape
    u = _rand((n, 4), generator, images)
    if n < 2 or prob <= 0:
        return images
    theta = torch.zeros(n, 2, 3, device=images.device, dtype=images.dtype)
    flip = torch.where(u[:, 1] < 0.5, -1.0, 1.0).to(images.dtype)
    theta[:, 0, 0] = flip
    theta[:, 1, 1] = 1.0
    theta[:, :, 2] = (u[:, 2:4] - 0.5) * 0.5
    other = torch.roll(images, 1, dims=0)
    grid = apply_affine_to_grid(identity_grid(n, res, images.device, images.dtype), theta)
    other = F.grid_sample(other, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    swap = (u[:, 0] < prob).to(images.dtype)[:, None, None, None]
    m = masks.clamp(0.0, 1.0)
    return images * (1 - swap) + swap * (m * images + (1 - m) * other)


def random_geometry(images: Tensor, masks: Tensor, cfg: XSegAugmentConfig, generator: torch.Generator
                    ) -> tuple[Tensor, Tensor]:
    """The same random affine (and random warp) applied to image and mask."""
    n, _, res, _ = images.shape
    theta = random_affine_matrices(n, generator, cfg.rotation, cfg.scale, cfg.shift, cfg.flip_prob,
                                   images.device, images.dtype)
    base = (random_warp_grid(n, res, generator, images.device, images.dtype) if cfg.random_warp
            else identity_grid(n, res, images.device, images.dtype))
    grid = apply_affine_to_grid(base, theta)
    return _sample(images, grid), _sample(masks, grid)


def random_levels(images: Tensor, power: float, generator: torch.Generator) -> Tensor:
    """Per sample and channel: input black point U(0, power), white point 1 - U(0, power), gamma 1 +- 2 power."""
    n, c = images.shape[:2]
    u = _rand((n, c, 3), generator, images)
    black = u[..., 0, None, None] * power
    white = 1.0 - u[..., 1, None, None] * power
    gamma = 1.0 + (u[..., 2, None, None] * 2 - 1) * 2 * power
    return ((images - black) / (white - black)).clamp(0.0, 1.0) ** gamma


def faded_circles(n: int, res: int, generator: torch.Generator, like: Tensor) -> Tensor:
    """(N, 1, R, R) weights: a random circle (centre anywhere, radius 0.25..1 of the image) fading from 1 at its
    centre to 0 at its rim, where a degradation applies."""
    u = _rand((n, 3), generator, like)
    centres = u[:, :2] * res
    radius = (0.25 + 0.75 * u[:, 2]) * res
    coords = torch.arange(res, device=like.device, dtype=like.dtype)
    dy = coords[None, :, None] - centres[:, 1, None, None]
    dx = coords[None, None, :] - centres[:, 0, None, None]
    dist = torch.sqrt(dx * dx + dy * dy) / radius[:, None, None]
    return (1.0 - dist).clamp(0.0, 1.0)[:, None]


def _motion_blur(images: Tensor, generator: torch.Generator) -> Tensor:
    angle = float(_rand((1,), generator, images)[0]) * 180.0
    return kornia.filters.motion_blur(images, 5, angle, 0.0)


def _gaussian_blur(images: Tensor, generator: torch.Generator) -> Tensor:
    sigma = 0.5 + float(_rand((1,), generator, images)[0]) * 1.0
    return kornia.filters.gaussian_blur2d(images, (5, 5), (sigma, sigma), border_type="reflect")


def _sharpen(images: Tensor, generator: torch.Generator) -> Tensor:
    amount = 0.5 + float(_rand((1,), generator, images)[0]) * 1.5
    blurred = F.avg_pool2d(F.pad(images, (1, 1, 1, 1), mode="reflect"), 3, stride=1)
    return images + amount * (images - blurred)


def _downscale(images: Tensor, generator: torch.Generator) -> Tensor:
    u = _rand((2,), generator, images)
    res = images.shape[-1]
    small = max(4, int(round(res * (0.25 + 0.75 * float(u[0])))))
    mode = "nearest" if float(u[1]) < 0.5 else "bilinear"
    down = F.interpolate(images, size=(small, small), mode=mode, **({} if mode == "nearest" else
                                                                     {"align_corners": False}))
    return F.interpolate(down, size=(res, res), mode=mode, **({} if mode == "nearest" else {"align_corners": False}))


def _dct_matrix(size: int, like: Tensor) -> Tensor:
    k = torch.arange(size, device=like.device, dtype=like.dtype)
    basis = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * size))
    basis[0] /= math.sqrt(2.0)
    return basis * math.sqrt(2.0 / size)


def jpeg_like(images: Tensor, step: float) -> Tensor:
    """8x8 block DCT, coefficients rounded to multiples of ``step`` (more for higher frequencies), inverse DCT: the
    blocking and ringing of JPEG without its colour subsampling. The side must be a multiple of 8 (else returned)."""
    n, c, h, w = images.shape
    if h % JPEG_BLOCK or w % JPEG_BLOCK:
        return images
    d = _dct_matrix(JPEG_BLOCK, images)
    blocks = images.reshape(n, c, h // JPEG_BLOCK, JPEG_BLOCK, w // JPEG_BLOCK, JPEG_BLOCK).transpose(3, 4)
    coeffs = d @ blocks @ d.T
    freq = torch.arange(JPEG_BLOCK, device=images.device, dtype=images.dtype)
    q = step * (1.0 + freq[:, None] + freq[None, :])
    coeffs = torch.round(coeffs / q) * q
    out = (d.T @ coeffs @ d).transpose(3, 4).reshape(n, c, h, w)
    return out


def _jpeg(images: Tensor, generator: torch.Generator) -> Tensor:
    return jpeg_like(images, 0.01 + float(_rand((1,), generator, images)[0]) * 0.04)


DEGRADATIONS = (_sharpen, _motion_blur, _gaussian_blur, _downscale, _jpeg)


def random_degrade(images: Tensor, prob: float, generator: torch.Generator) -> Tensor:
    """Each degradation with probability ``prob`` per sample, blended in through a random faded circle."""
    n, _, res, _ = images.shape
    for degrade in DEGRADATIONS:
        chosen = (_rand((n,), generator, images) < prob).to(images.dtype)[:, None, None, None]
        weight = faded_circles(n, res, generator, images) * chosen
        if bool(chosen.any()):
            images = images + weight * (degrade(images, generator) - images)
    return images


def augment_batch(images: Tensor, masks: Tensor, cfg: XSegAugmentConfig, generator: torch.Generator
                  ) -> tuple[Tensor, Tensor]:
    """(augmented images clamped to [0, 1], target masks in [0, 1]) from faces and label masks."""
    images = background_swap(images, masks, cfg.background_swap, generator)
    images, masks = random_geometry(images, masks, cfg, generator)
    if cfg.hsv_power > 0:
        images = random_hsv(images, cfg.hsv_power, generator)
    if cfg.levels > 0:
        images = random_levels(images, cfg.levels, generator)
    if cfg.degrade > 0:
        images = random_degrade(images, cfg.degrade, generator)
    return images.clamp(0.0, 1.0), masks.clamp(0.0, 1.0)
