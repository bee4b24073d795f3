"""Discriminators for SAEHD training: the U-Net patch GAN discriminator and the TrueFace code discriminator.

Receptive field of the U-Net's centre output. Its encoder is a chain of Conv3x3 layers (the 1x1 input conv adds
nothing); layer ``i`` with kernel ``k_i`` and stride ``s_i`` widens the field by ``(k_i - 1) * prod(s_j, j < i)``:

    rf = 1 + sum_i (k_i - 1) * prod_{j < i} s_j

The first layer has stride 2 and the others stride 1 or 2 (the last stride only changes the output grid, not the
field). ``choose_encoder_strides`` takes the fewest layers whose field reaches ``patch_size``, and among those the
stride pattern that overshoots least (ties: more stride-2 layers, i.e. smaller feature maps). DFL's default patch size
is ``resolution // 8`` with 16 base channels: at res 128 (patch 16) that is 4 layers, strides 2,1,2,2, field 19.
The full-resolution output adds the decoder's 3x3 convolutions on top, so its field is larger still.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dfl_vfx.errors import DflError
from dfl_vfx.models.blocks import init_glorot

DISCRIMINATOR_SLOPE = 0.2
PATCH_SIZE_RANGE = (3, 640)
KERNEL = 3
MAX_LAYERS = 10


def receptive_field(layers: list[tuple[int, int]]) -> int:
    """Receptive field (pixels per side) of a chain of ``(kernel, stride)`` convolutions."""
    field, jump = 1, 1
    for kernel, stride in layers:
        field += (kernel - 1) * jump
        jump *= stride
    return field


def choose_encoder_strides(patch_size: int) -> list[int]:
    """Strides of the fewest Conv3x3 layers (first stride 2) whose receptive field is >= ``patch_size``."""
    low, high = PATCH_SIZE_RANGE
    if not low <= patch_size <= high:
        raise DflError(f"gan_patch_size {patch_size} is out of range: use {low} to {high}")
    for count in range(1, MAX_LAYERS + 1):
        candidates = [[2, *rest] for rest in itertools.product((1, 2), repeat=count - 1)]
        reaching = [s for s in candidates if receptive_field([(KERNEL, st) for st in s]) >= patch_size]
        if reaching:
            return list(min(reaching, key=lambda s: (receptive_field([(KERNEL, st) for st in s]), -sum(s))))
    raise AssertionError("unreachable: 10 stride-2 layers cover 2047 pixels")


class UNetPatchDiscriminator(nn.Module):
    """U-Net patch discriminator; ``forward`` returns (centre logits at the coarsest grid, logits at input size).

    Encoder: Conv1x1 to ``base_dims`` then Conv3x3 layers (strides from ``choose_encoder_strides``) with widths
    ``base_dims * min(2**i, 8)``. Decoder: per encoder layer, nearest upsampling to the skip's size, concat with the
    skip, Conv3x3. Leaky ReLU 0.2 throughout; logits are raw (use BCE-with-logits).
    """

    def __init__(self, in_ch: int = 3, patch_size: int = 16, base_dims: int = 16) -> None:
        super().__init__()
        self.strides = choose_encoder_strides(patch_size)
        self.receptive_field = receptive_field([(KERNEL, s) for s in self.strides])
        widths = [base_dims] + [base_dims * min(2**i, 8) for i in range(len(self.strides))]
        self.in_conv = nn.Conv2d(in_ch, base_dims, 1)
        self.down = nn.ModuleList(
            nn.Conv2d(widths[i], widths[i + 1], KERNEL, stride=stride, padding=KERNEL // 2)
            for i, stride in enumerate(self.strides)
        )
        self.center_out = nn.Conv2d(widths[-1], 1, 1)
        self.up = nn.ModuleList(
            nn.Conv2d(widths[i + 1] + widths[i], widths[i], KERNEL, padding=KERNEL // 2)
            for i in range(len(self.strides))
        )
        self.out = nn.Conv2d(base_dims, 1, 1)
        init_glorot(self)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = F.leaky_relu(self.in_conv(x), DISCRIMINATOR_SLOPE)
        skips = []
        for conv in self.down:
            skips.append(x)
            x = F.leaky_relu(conv(x), DISCRIMINATOR_SLOPE)
        center = self.center_out(x)
        for conv, skip in zip(reversed(self.up), reversed(skips), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = F.leaky_relu(conv(torch.cat([x, skip], 1)), DISCRIMINATOR_SLOPE)
        return center, self.out(x)


class CodeDiscriminator(nn.Module):
    """TrueFace discriminator (DF only): inter code (N, C, R, R) → one logit per sample, shape (N, 1).

    Stride-2 Conv3x3 layers (leaky ReLU 0.2) halve the grid until it is at most 2x2, then a Dense layer.
    """

    def __init__(self, code_channels: int, code_res: int, dims: int = 256) -> None:
        super().__init__()
        n_down = max(1, math.ceil(math.log2(code_res)) - 1)
        layers: list[nn.Module] = []
        in_ch, side = code_channels, code_res
        for _ in range(n_down):
            layers += [nn.Conv2d(in_ch, dims, 3, stride=2, padding=1), nn.LeakyReLU(DISCRIMINATOR_SLOPE)]
            in_ch, side = dims, math.ceil(side / 2)
        self.body = nn.Sequential(*layers, nn.Flatten(1))
        self.dense = nn.Linear(dims * side * side, 1)
        init_glorot(self)

    def forward(self, code: Tensor) -> Tensor:
        return self.dense(self.body(code))
