"""Colour curves and matrices as torch ops (channels last): sRGB, ACEScct, Rec.709 <-> AP1.

Traceable for ONNX export and usable on GPU tensors, so faces can go to and from the working space without leaving
the device. The forms are the ones OpenColorIO evaluates (see the constants' notes); tests compare them with it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

# Linear Rec.709 (D65) -> linear AP1 (ACES white), Bradford adaptation; equals OpenColorIO's Rec.709 -> AP0 -> AP1.
REC709_TO_AP1 = np.array(
    [
        [0.613097402401, 0.339523146184, 0.047379451415],
        [0.070193722470, 0.916353879057, 0.013452398473],
        [0.020615592882, 0.109569772938, 0.869814634180],
    ]
)
AP1_TO_REC709 = np.linalg.inv(REC709_TO_AP1)

# sRGB (IEC 61966-2-1) from its defining gamma 2.4 and offset 0.055, with the straight segment where it meets the
# power curve with equal slope (12.9232 at encoded 0.03929; the standard rounds these to 12.92 and 0.04045). This is
# the form OpenColorIO evaluates; the rounded constants differ from it by 2.5e-4 relative below the break.
_SRGB_GAMMA = 2.4
_SRGB_OFFSET = 0.055
_SRGB_BREAK = _SRGB_OFFSET / (_SRGB_GAMMA - 1.0)
_SRGB_LINEAR_BREAK = ((_SRGB_BREAK + _SRGB_OFFSET) / (1.0 + _SRGB_OFFSET)) ** _SRGB_GAMMA
_SRGB_SLOPE = _SRGB_BREAK / _SRGB_LINEAR_BREAK

# ACEScct (S-2016-001): log2 segment above the linear break, a straight toe below it.
_CCT_LIN_BREAK = 0.0078125
_CCT_LOG_BREAK = 0.155251141552511
_CCT_TOE_SLOPE = 10.5402377416545
_CCT_TOE_OFFSET = 0.0729055341958355
_LN2 = math.log(2.0)


def srgb_eotf(encoded: Tensor) -> Tensor:
    """sRGB-encoded -> linear; the straight segment continues below zero."""
    curve = ((encoded.clamp(min=_SRGB_BREAK) + _SRGB_OFFSET) / (1.0 + _SRGB_OFFSET)) ** _SRGB_GAMMA
    return torch.where(encoded <= _SRGB_BREAK, encoded / _SRGB_SLOPE, curve)


def srgb_inverse_eotf(linear: Tensor) -> Tensor:
    """Linear -> sRGB-encoded, the inverse of :func:`srgb_eotf`."""
    curve = (1.0 + _SRGB_OFFSET) * linear.clamp(min=_SRGB_LINEAR_BREAK) ** (1.0 / _SRGB_GAMMA) - _SRGB_OFFSET
    return torch.where(linear <= _SRGB_LINEAR_BREAK, linear * _SRGB_SLOPE, curve)


def linear_to_acescct(linear: Tensor) -> Tensor:
    """Linear AP1 -> ACEScct."""
    log = (torch.log(linear.clamp(min=_CCT_LIN_BREAK)) / _LN2 + 9.72) / 17.52
    return torch.where(linear <= _CCT_LIN_BREAK, linear * _CCT_TOE_SLOPE + _CCT_TOE_OFFSET, log)


def acescct_to_linear(cct: Tensor) -> Tensor:
    """ACEScct -> linear AP1 (no half-float clamp, like OpenColorIO)."""
    exp = torch.exp((cct.clamp(min=_CCT_LOG_BREAK) * 17.52 - 9.72) * _LN2)
    return torch.where(cct <= _CCT_LOG_BREAK, (cct - _CCT_TOE_OFFSET) / _CCT_TOE_SLOPE, exp)


def apply_matrix(rgb: Tensor, matrix: np.ndarray) -> Tensor:
    """``matrix @ rgb`` per pixel, with the coefficients as scalars (constants in a traced graph)."""
    r, g, b = rgb.unbind(-1)
    return torch.stack([float(m0) * r + float(m1) * g + float(m2) * b for m0, m1, m2 in matrix], dim=-1)
