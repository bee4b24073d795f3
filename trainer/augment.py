"""Training-sample augmentation (reference 4.5 and the sample options of 4.1) as pure, device-agnostic torch code.

Owns the random affine (rotation, scale, shift, flip), DFL's random warp as a smooth sampling grid, the colour
augmentations (random HSV, Reinhard colour transfer in LAB), blur-out-mask and the uniform-yaw sampling weights, and
``make_samples`` which turns aligned faces into (warped input, unwarped target, masks). Images are (N, C, R, R) in
[0, 1]. Randomness comes only from the ``torch.Generator`` passed in: its numbers are drawn on the generator's own
device and moved to the data's, so a CPU generator gives the same samples on every device.

Coordinates are grid_sample's normalized ones with ``align_corners=False``: -1 and +1 are the outer image edges and
pixel p's centre is ``(2p + 1) / R - 1``, so the identity grid reproduces the image exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

from dfl_vfx.errors import DflError
from dfl_vfx.merge.color_transfer_torch import rct_batch

WARP_CELL_DIVISORS = (2, 4, 8)
WARP_NODE_SIGMA = 0.24
CT_MODES = ("none", "rct")
STD_EPS = 1e-6


def _uniform(shape: tuple[int, ...], generator: torch.Generator, device: torch.device, dtype: torch.dtype) -> Tensor:
    return torch.rand(shape, generator=generator, device=generator.device).to(device=device, dtype=dtype)


def _normal(shape: tuple[int, ...], generator: torch.Generator, device: torch.device, dtype: torch.dtype) -> Tensor:
    return torch.randn(shape, generator=generator, device=generator.device).to(device=device, dtype=dtype)


def identity_grid(batch: int, resolution: int, device: torch.device | str, dtype: torch.dtype) -> Tensor:
    """(N, R, R, 2) grid of the pixel centres (x, y) in normalized coordinates (align_corners=False)."""
    centres = (torch.arange(resolution, device=device, dtype=dtype) * 2 + 1) / resolution - 1
    ys, xs = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack((xs, ys), dim=-1).expand(batch, resolution, resolution, 2)


def random_warp_field(
    batch: int, resolution: int, generator: torch.Generator, device: torch.device | str, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """DFL's random warp as a displacement field: returns (offsets (N, R, R, 2) normalized, cell size (N,) pixels).

    Per sample the image is divided into 2, 4 or 8 cells (cell = res/2, res/4 or res/8, uniformly chosen). The
    nodes of that grid, from image edge to image edge, get offsets N(0, 1) * 0.24 * cell pixels in x and y, border
    nodes stay fixed, and the node field is interpolated bicubically to every pixel centre. The random numbers used
    do not depend on the cells chosen (a full 9x9 node draw per sample), so the stream is stable.
    """
    device = torch.device(device)
    choice = torch.randint(len(WARP_CELL_DIVISORS), (batch,), generator=generator, device=generator.device)
    max_nodes = max(WARP_CELL_DIVISORS) + 1
    noise = _normal((batch, 2, max_nodes, max_nodes), generator, device, dtype)
    choice = choice.to(device)
    cells = torch.tensor(WARP_CELL_DIVISORS, device=device)[choice]
    cell_px = (resolution / cells).to(dtype)
    offsets = torch.empty(batch, 2, resolution, resolution, device=device, dtype=dtype)
    pixel_grid = identity_grid(1, resolution, device, dtype)
    for divisor in WARP_CELL_DIVISORS:
        picked = (cells == divisor).nonzero().flatten()
        if picked.numel() == 0:
            continue
        nodes = noise[picked, :, : divisor + 1, : divisor + 1] * (WARP_NODE_SIGMA * 2.0 / divisor)
        nodes = F.pad(nodes[:, :, 1:-1, 1:-1], (1, 1, 1, 1))
        # align_corners=True puts node 0 at -1 and node `divisor` at +1: the image edges of align_corners=False.
        grid = pixel_grid.expand(picked.numel(), -1, -1, -1)
        offsets[picked] = F.grid_sample(nodes, grid, mode="bicubic", padding_mode="border", align_corners=True)
    return offsets.permute(0, 2, 3, 1), cell_px


def random_warp_grid(
    batch: int, resolution: int, generator: torch.Generator, device: torch.device | str, dtype: torch.dtype
) -> Tensor:
    """Sampling grid (N, R, R, 2) of the random warp: the identity grid plus ``random_warp_field``'s offsets."""
    offsets, _ = random_warp_field(batch, resolution, generator, device, dtype)
    return identity_grid(batch, resolution, device, dtype) + offsets


def random_affine_matrices(
    batch: int,
    generator: torch.Generator,
    rotation: float = 10.0,
    scale: float = 0.15,
    shift: float = 0.05,
    flip_prob: float = 0.4,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """(N, 2, 3) matrices mapping output to input normalized coordinates (``F.affine_grid``'s theta convention).

    Forward (input -> output) each sample is: optional horizontal flip (probability ``flip_prob``), rotation by
    U(-rotation, rotation) degrees and scaling by 1 + U(-scale, scale) about the image centre, then a shift by
    U(-shift, shift) of the image size in x and y. The matrix returned is that transform's inverse.
    """
    device = torch.device(device)
    u = _uniform((batch, 5), generator, device, dtype) * 2 - 1
    angle = torch.deg2rad(u[:, 0] * rotation)
    zoom = 1 + u[:, 1] * scale
    shift_xy = u[:, 2:4] * shift * 2.0  # a fraction of the image size; the normalized image spans 2
    flip = (u[:, 4] + 1) / 2 < flip_prob
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    inverse = torch.stack((torch.stack((cos, sin), -1), torch.stack((-sin, cos), -1)), dim=1)
    inverse[:, 0] = torch.where(flip[:, None], -inverse[:, 0], inverse[:, 0])
    translation = -(inverse @ shift_xy[..., None])
    return torch.cat((inverse, translation), dim=2)


def apply_affine_to_grid(grid: Tensor, theta: Tensor) -> Tensor:
    """Map every (x, y) of an (N, H, W, 2) grid through per-sample (N, 2, 3) affines."""
    return torch.einsum("nhwj,nij->nhwi", grid, theta[:, :, :2]) + theta[:, None, None, :, 2]


@dataclass(frozen=True)
class AugmentConfig:
    """Sample augmentation options (reference 4.1 / 4.5). ``hsv_power`` and ``ct_mode`` are for src samples only."""

    random_warp: bool = True
    random_flip: bool = True
    rotation: float = 10.0
    scale: float = 0.15
    shift: float = 0.05
    flip_prob: float = 0.4
    hsv_power: float = 0.0
    ct_mode: str = "none"
    blur_out_mask: bool = False

    def __post_init__(self) -> None:
        if self.ct_mode not in CT_MODES:
            raise DflError(f"ct_mode '{self.ct_mode}' is not supported; use one of {', '.join(CT_MODES)}")
        if not 0.0 <= self.hsv_power <= 1.0:
            raise DflError(f"random_hsv_power {self.hsv_power} is out of range; use 0..0.3 (typical 0.05)")
        if not 0.0 <= self.flip_prob <= 1.0:
            raise DflError(f"flip probability {self.flip_prob} is out of range; use 0..1")


def _sample(images: Tensor, grid: Tensor) -> Tensor:
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def make_samples(
    faces: Tensor,
    masks: Tensor,
    eyes_mouth: Tensor,
    cfg: AugmentConfig,
    generator: torch.Generator,
    color_reference: tuple[Tensor, Tensor] | None = None,
) -> dict[str, Tensor]:
    """Augmented training samples from aligned faces (N, 3, R, R) and their masks (N, 1, R, R).

    Colour first: ``ct_mode='rct'`` recolours each face toward a random face of ``color_reference`` (dst faces and
    masks, required then), ``hsv_power`` shifts HSV randomly, ``blur_out_mask`` blurs the background; these change
    input and target alike. Then geometry: one random affine per sample (flip only when ``random_flip``) gives the
    ``target`` and, with ``random_warp``, the affine of the randomly warped grid gives the network ``input``
    (without it, ``input`` equals ``target``). ``mask`` and ``eyes_mouth`` follow the target's geometry. Each
    output is one bilinear ``grid_sample`` (border padding).
    """
    n, _, res, res_w = faces.shape
    if faces.shape[1] != 3 or res != res_w or masks.shape != (n, 1, res, res) or eyes_mouth.shape != masks.shape:
        raise ValueError(f"make_samples needs faces (N, 3, R, R) and masks (N, 1, R, R), got {tuple(faces.shape)}, "
                         f"{tuple(masks.shape)}, {tuple(eyes_mouth.shape)}")
    device, out_dtype = faces.device, faces.dtype
    dtype = torch.float64 if out_dtype == torch.float64 else torch.float32  # half-precision grids are too coarse
    images = faces.to(dtype)
    if cfg.ct_mode == "rct":
        if color_reference is None:
            raise ValueError("make_samples: ct_mode 'rct' needs color_reference=(dst faces, dst masks)")
        ref_faces, ref_masks = color_reference
        pick = torch.randint(ref_faces.shape[0], (n,), generator=generator, device=generator.device).to(device)
        images = rct_transfer(images, ref_faces[pick], masks, ref_masks[pick])
    if cfg.hsv_power > 0:
        images = random_hsv(images, cfg.hsv_power, generator)
    if cfg.blur_out_mask:
        images = blur_out_mask(images, masks, res)

    theta = random_affine_matrices(
        n, generator, cfg.rotation, cfg.scale, cfg.shift, cfg.flip_prob if cfg.random_flip else 0.0, device, dtype
    )
    base = identity_grid(n, res, device, dtype)
    target_grid = apply_affine_to_grid(base, theta)
    if cfg.random_warp:
        input_grid = apply_affine_to_grid(random_warp_grid(n, res, generator, device, dtype), theta)
    else:
        input_grid = target_grid
    target = _sample(images, target_grid)
    warped_masks = _sample(torch.cat((masks, eyes_mouth), dim=1).to(dtype), target_grid)
    samples = {
        "input": _sample(images, input_grid) if cfg.random_warp else target,
        "target": target,
        "mask": warped_masks[:, :1],
        "eyes_mouth": warped_masks[:, 1:],
    }
    return {name: value.to(out_dtype) for name, value in samples.items()}


def random_hsv(images: Tensor, power: float, generator: torch.Generator) -> Tensor:
    """Random per-sample HSV shift: hue by U(-power, power) of the full circle, saturation and value by
    U(-power, power); saturation, value and the resulting RGB are clamped to [0, 1]. DFL applies it to src only
    (typical power 0.05). Power 0 returns the images unchanged up to the HSV round trip (about 1e-7 in float32)."""
    n = images.shape[0]
    work = images.float() if images.dtype in (torch.float16, torch.bfloat16) else images
    shifts = (_uniform((n, 3), generator, images.device, work.dtype) * 2 - 1) * power
    hsv = kornia.color.rgb_to_hsv(work.clamp(0.0, 1.0))
    hue = torch.remainder(hsv[:, :1] + shifts[:, 0, None, None, None] * 2 * math.pi, 2 * math.pi)
    sat = (hsv[:, 1:2] + shifts[:, 1, None, None, None]).clamp(0.0, 1.0)
    val = (hsv[:, 2:3] + shifts[:, 2, None, None, None]).clamp(0.0, 1.0)
    return kornia.color.hsv_to_rgb(torch.cat((hue, sat, val), dim=1)).clamp(0.0, 1.0).to(images.dtype)


def rct_transfer(
    src: Tensor, dst: Tensor, src_mask: Tensor | None = None, dst_mask: Tensor | None = None
) -> Tensor:
    """``ct_mode=rct``: give each ``src`` face (N, 3, H, W) the masked mean and std of its ``dst`` face.

    The merger's ``rct`` itself (:func:`dfl_vfx.merge.color_transfer_torch.rct_batch`: mean/std along the opponent
    axes of the working space, statistics weighted by the (N, 1, H, W) masks), so "rct" means one thing in training
    and in the merge; the result is clamped to [0, 1] like every training sample.
    """
    return rct_batch(src, dst, src_mask, dst_mask).clamp(0.0, 1.0)


def blur_out_mask(images: Tensor, masks: Tensor, resolution: int) -> Tensor:
    """Blur the background outside the mask with a Gaussian of sigma ``resolution / 128`` (+-3 sigma window).

    The blur is a normalized convolution of the background alone (face colours do not bleed outward); the result is
    ``mask * image + (1 - mask) * blurred``, so pixels with mask 1 are returned unchanged.
    """
    sigma = resolution / 128.0
    size = 2 * math.ceil(3 * sigma) + 1
    m = masks.to(images.dtype).clamp(0.0, 1.0)
    background = 1.0 - m

    def blur(x: Tensor) -> Tensor:
        return kornia.filters.gaussian_blur2d(x, (size, size), (sigma, sigma), border_type="reflect")

    blurred = blur(images * background) / blur(background).clamp_min(STD_EPS)
    return m * images + background * blurred


def uniform_yaw_weights(yaws: Tensor, bins: int = 128, lo: float = -1.2, hi: float = 1.2) -> Tensor:
    """Sampling probabilities (N,) summing to 1 that make every occupied yaw bin equally likely (DFL's uniform_yaw).

    ``bins`` equal bins over [lo, hi] radians; yaws outside fall into the end bins. Within a bin faces are equally
    likely. Draw with ``torch.multinomial(weights, k, replacement=True, generator=...)``.
    """
    index = torch.floor((yaws - lo) / (hi - lo) * bins).clamp(0, bins - 1).long()
    counts = torch.bincount(index, minlength=bins)
    occupied = (counts > 0).sum()
    dtype = yaws.dtype if yaws.is_floating_point() else torch.float32
    return 1.0 / (counts[index].to(dtype) * occupied.to(dtype))
