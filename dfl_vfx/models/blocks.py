"""Building blocks of SAEHD-class networks (reference 4.3): Downscale, Upscale, ResidualBlock, activations, pixel norm.

All blocks take and return NCHW tensors, use only ops that work under channels_last, autocast and legacy ONNX export,
and have no data-dependent Python control flow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LEAKY_SLOPE = 0.1
RESIDUAL_LEAKY_SLOPE = 0.2
PIXEL_NORM_EPS = 1e-6


class CosActivation(nn.Module):
    """``x * cos(x)``: the activation of the ``c`` archi letter."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.cos(x)


def activation(kind: str = "leaky_relu") -> nn.Module:
    """Activation module for Downscale/Upscale: ``'leaky_relu'`` (slope 0.1, DFL default) or ``'cos'`` (letter c)."""
    if kind == "leaky_relu":
        return nn.LeakyReLU(LEAKY_SLOPE)
    if kind == "cos":
        return CosActivation()
    raise ValueError(f"unknown activation kind {kind!r}; use 'leaky_relu' or 'cos'")


def pixel_norm(x: Tensor, dim: int = 1) -> Tensor:
    """Scale ``x`` to unit mean square along ``dim``: ``x * rsqrt(mean(x^2) + 1e-6)`` (the ``u`` archi letter)."""
    return x * torch.rsqrt(torch.mean(x * x, dim=dim, keepdim=True) + PIXEL_NORM_EPS)


class Downscale(nn.Module):
    """Conv ``kernel``x``kernel`` stride 2 with 'same' padding (output side ``ceil(n/2)``), then the activation."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 5, act: str = "leaky_relu") -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=2, padding=kernel // 2)
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv(x))


class Upscale(nn.Module):
    """Conv3x3 to ``4 * out_ch`` channels, activation, then pixel shuffle by 2 (DFL's depth_to_space).

    Torch's pixel shuffle orders sub-pixels channel-major where TF's NHWC depth_to_space is position-major; since a
    learned convolution feeds it, the two are the same function family and need no reordering.
    """

    def __init__(self, in_ch: int, out_ch: int, act: str = "leaky_relu") -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch * 4, 3, padding=1)
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        return F.pixel_shuffle(self.act(self.conv(x)), 2)


class ResidualBlock(nn.Module):
    """``lrelu(x + conv(lrelu(conv(x))))`` with two Conv3x3 and leaky ReLU 0.2, whatever the archi activation."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h = F.leaky_relu(self.conv1(x), RESIDUAL_LEAKY_SLOPE)
        return F.leaky_relu(x + self.conv2(h), RESIDUAL_LEAKY_SLOPE)


def init_glorot(module: nn.Module) -> None:
    """DFL's TF defaults: Glorot/Xavier-uniform weights for every Conv2d and Linear below ``module``, zero biases.

    Torch's ``xavier_uniform_`` uses fan_in = in·k·k and fan_out = out·k·k for convolutions, the same as Keras.
    """
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
