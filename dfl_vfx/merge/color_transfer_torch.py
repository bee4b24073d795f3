"""The colour-transfer modes that have a torch form, for faces that stay on the GPU (others run on the host).

``rct`` here is the same masked mean/std match along the orthonormal opponent axes as
:mod:`dfl_vfx.merge.color_transfer` (statistics in float64, the same variance floor); tests compare the two.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dfl_vfx.merge.color_transfer import LAB_FROM_RGB

TORCH_TRANSFER_MODES = ("none", "rct")
_MIN_WEIGHT = 1e-6
_MIN_VARIANCE = 1e-12


def _weighted_mean_cov(pixels: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    total = weights.sum()
    mean = weights @ pixels / total
    centred = pixels - mean
    return mean, (centred * weights[:, None]).T @ centred / total


def rct(target: Tensor, source: Tensor, target_mask: Tensor, source_mask: Tensor) -> Tensor:
    """Reinhard transfer of ``target`` (H, W, 3) to ``source``'s masked statistics; float32 result, same device."""
    t = target.reshape(-1, 3).double()
    s = source.reshape(-1, 3).double()
    wt = target_mask.reshape(-1).double().nan_to_num(0.0).clamp(0.0, 1.0)
    ws = source_mask.reshape(-1).double().nan_to_num(0.0).clamp(0.0, 1.0)
    if wt.sum() < _MIN_WEIGHT or ws.sum() < _MIN_WEIGHT:
        return target.float().clone()
    axes = torch.as_tensor(LAB_FROM_RGB, dtype=torch.float64, device=target.device)
    mean_t, cov_t = _weighted_mean_cov(t, wt)
    mean_s, cov_s = _weighted_mean_cov(s, ws)
    var_t = torch.einsum("ki,ij,kj->k", axes, cov_t, axes)
    var_s = torch.einsum("ki,ij,kj->k", axes, cov_s, axes)
    scale = torch.where(var_t > _MIN_VARIANCE,
                        torch.sqrt(var_s.clamp(min=0.0) / var_t.clamp(min=_MIN_VARIANCE)), torch.ones_like(var_t))
    matrix = (axes.T * scale) @ axes
    out = (t - mean_t) @ matrix.T + mean_s
    return out.reshape(target.shape).float()


def transfer_color(mode: str, target: Tensor, source: Tensor, mask: Tensor) -> Tensor:
    """``none`` or ``rct`` with one mask weighting both faces' statistics (as the merger uses it)."""
    if mode == "none":
        return target.float().clone()
    if mode == "rct":
        return rct(target, source, mask, mask)
    raise ValueError(f"colour transfer {mode!r} has no torch form; use one of {', '.join(TORCH_TRANSFER_MODES)}")
