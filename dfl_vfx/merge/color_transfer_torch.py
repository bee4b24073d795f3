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


def rct_batch(target: Tensor, source: Tensor, target_mask: Tensor | None = None,
              source_mask: Tensor | None = None) -> Tensor:
    """Reinhard transfer of each ``target`` (N, 3, H, W) to its ``source``'s masked statistics, channels first.

    The one ``rct`` of the project: the merger's (here and in :mod:`dfl_vfx.merge.color_transfer`) and the
    trainer's ``ct_mode=rct`` augmentation. Masks (N, 1, H, W) weight the statistics (None: every pixel); a face
    whose mask is empty is returned unchanged. Statistics in float64; result in ``target``'s dtype.
    """
    n = target.shape[0]
    t = target.permute(0, 2, 3, 1).reshape(n, -1, 3).double()
    s = source.permute(0, 2, 3, 1).reshape(source.shape[0], -1, 3).double()

    def weights(mask: Tensor | None, pixels: Tensor) -> Tensor:
        if mask is None:
            return torch.ones(pixels.shape[:2], dtype=torch.float64, device=pixels.device)
        return mask.reshape(mask.shape[0], -1).double().nan_to_num(0.0).clamp(0.0, 1.0)

    wt, ws = weights(target_mask, t), weights(source_mask, s)
    axes = torch.as_tensor(LAB_FROM_RGB, dtype=torch.float64, device=target.device)

    def mean_var(pixels: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        total = w.sum(dim=1, keepdim=True).clamp_min(_MIN_WEIGHT)
        mean = (w[..., None] * pixels).sum(dim=1) / total
        centred = pixels - mean[:, None]
        cov = torch.einsum("np,npi,npj->nij", w, centred, centred) / total[..., None]
        return mean, torch.einsum("ki,nij,kj->nk", axes, cov, axes)

    mean_t, var_t = mean_var(t, wt)
    mean_s, var_s = mean_var(s, ws)
    scale = torch.where(var_t > _MIN_VARIANCE,
                        torch.sqrt(var_s.clamp(min=0.0) / var_t.clamp(min=_MIN_VARIANCE)), torch.ones_like(var_t))
    matrix = torch.einsum("ki,nk,kj->nij", axes, scale, axes)  # axes' diag(scale) axes
    out = torch.einsum("nij,npj->npi", matrix, t - mean_t[:, None]) + mean_s[:, None]
    empty = (wt.sum(dim=1) < _MIN_WEIGHT) | (ws.sum(dim=1) < _MIN_WEIGHT)
    out = torch.where(empty[:, None, None], t, out)
    return out.reshape(n, *target.shape[2:], 3).permute(0, 3, 1, 2).to(target.dtype)


def rct(target: Tensor, source: Tensor, target_mask: Tensor, source_mask: Tensor) -> Tensor:
    """Reinhard transfer of one ``target`` (H, W, 3) to ``source``'s masked statistics; float32, same device."""
    out = rct_batch(target.permute(2, 0, 1)[None], source.permute(2, 0, 1)[None], target_mask[None, None],
                    source_mask[None, None])
    return out[0].permute(1, 2, 0).float()


def transfer_color(mode: str, target: Tensor, source: Tensor, mask: Tensor) -> Tensor:
    """``none`` or ``rct`` with one mask weighting both faces' statistics (as the merger uses it)."""
    if mode == "none":
        return target.float().clone()
    if mode == "rct":
        return rct(target, source, mask, mask)
    raise ValueError(f"colour transfer {mode!r} has no torch form; use one of {', '.join(TORCH_TRANSFER_MODES)}")
