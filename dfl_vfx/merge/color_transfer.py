"""Colour transfer of the predicted face onto the destination face's statistics (merger reference section 6).

Owns the ``--color-transfer`` modes. All arrays are aligned faces in the network working space (ACEScct): values are
log-encoded, mostly in [0, 1], and are never clipped here. ``target`` is the predicted face whose colours change,
``source`` is the destination plate's face crop whose statistics are matched. The optional masks (H, W) in [0, 1]
weight the statistics only (a pixel with weight 0 is ignored); every mode transforms the target at all pixels.

Opponent space ("Lab" here, used by ``rct`` and ``mix-m``): Reinhard et al. (2001) decorrelate log-LMS with the
orthonormal matrix ``l = (L+M+S)/sqrt(3)``, ``alpha = (L+M-2S)/sqrt(6)``, ``beta = (L-M)/sqrt(2)``. ACEScct is
already a log encoding, so that matrix is applied directly to the encoded R, G, B (no LMS step: a linear 3x3 in
log space would not be one in light). The matrix is orthonormal, so its inverse is its transpose and the round trip
is exact to float rounding, negative values and values above 1 included.

Degenerate statistics never raise: an empty mask makes the mode return a copy, a zero-variance direction is
mean-shifted only.
"""

from collections.abc import Callable

import cv2
import numpy as np

from dfl_vfx.schema import SettingError

LAB_FROM_RGB = np.array(
    [
        [1.0 / np.sqrt(3.0), 1.0 / np.sqrt(3.0), 1.0 / np.sqrt(3.0)],
        [1.0 / np.sqrt(6.0), 1.0 / np.sqrt(6.0), -2.0 / np.sqrt(6.0)],
        [1.0 / np.sqrt(2.0), -1.0 / np.sqrt(2.0), 0.0],
    ]
)
"""Rows: l, alpha, beta axes of the opponent space, in encoded RGB. Orthonormal."""

IDT_BINS = 256
IDT_ROTATIONS = 20
SOT_STEPS = 10
SOT_BATCH = 30
SOT_BINS = 256

_MIN_WEIGHT = 1e-6  # total mask weight below this counts as an empty mask
_MIN_VARIANCE = 1e-12  # variances (encoded units squared) below this count as zero


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Encoded RGB (..., 3) -> opponent l, alpha, beta (..., 3) float32 (see the module docstring)."""
    rgb = np.asarray(rgb, dtype=np.float32)
    return _linear(rgb.reshape(-1, 3), LAB_FROM_RGB).reshape(rgb.shape)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_lab` (the transpose of the orthonormal matrix)."""
    lab = np.asarray(lab, dtype=np.float32)
    return _linear(lab.reshape(-1, 3), LAB_FROM_RGB.T).reshape(lab.shape)


# --- weighted statistics -------------------------------------------------------------------------------------------


def _pixels(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float32).reshape(-1, image.shape[-1])


def _weights(mask: np.ndarray | None, count: int, name: str) -> np.ndarray | None:
    """Flattened float64 weights clipped to [0, 1], None for no mask."""
    if mask is None:
        return None
    weights = np.asarray(mask, dtype=np.float64).reshape(-1)
    if weights.size != count:
        raise ValueError(f"{name} has {weights.size} pixels, the face has {count}")
    return np.clip(np.nan_to_num(weights), 0.0, 1.0)


def _selected(pixels: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The pixels with positive weight and their weights (all pixels when unweighted)."""
    if weights is None:
        return pixels, None
    keep = weights > 0
    return pixels[keep], _drop_unit(weights[keep])


def _drop_unit(weights: np.ndarray) -> np.ndarray | None:
    """None when every weight is 1 (a hard mask: the unweighted paths are faster), else the weights."""
    return None if len(weights) and np.all(weights == 1.0) else weights


def _is_empty(weights: np.ndarray | None, count: int) -> bool:
    return count == 0 or (weights is not None and weights.sum() < _MIN_WEIGHT)


def _mean_cov(pixels: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean (C,) and covariance (C, C) in float64, normalised by the total weight."""
    data = pixels.astype(np.float64)
    if weights is None:
        mean = data.mean(axis=0)
        centred = data - mean
        return mean, centred.T @ centred / len(data)
    total = weights.sum()
    mean = weights @ data / total
    centred = data - mean
    return mean, (centred * weights[:, None]).T @ centred / total


def _sym_power(matrix: np.ndarray, power: float, floor: float) -> np.ndarray:
    """``matrix ** power`` of a symmetric PSD matrix, eigenvalues clamped to ``floor`` first."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    values = np.maximum(values, floor)
    return (vectors * values**power) @ vectors.T


def _eigen_floor(cov: np.ndarray) -> float:
    return max(_MIN_VARIANCE, 1e-9 * float(np.trace(cov)))


def _linear(pixels: np.ndarray, matrix: np.ndarray, offset: np.ndarray | None = None) -> np.ndarray:
    """``pixels (N, C) @ matrix.T (+ offset)`` -> (N, K) float32, via OpenCV's SIMD transform (BLAS is slow here)."""
    rows = np.asarray(matrix, dtype=np.float64)
    if offset is not None:
        rows = np.hstack([rows, np.asarray(offset, dtype=np.float64)[:, None]])
    flat = np.ascontiguousarray(pixels, dtype=np.float32).reshape(len(pixels), 1, -1)
    return cv2.transform(flat, rows).reshape(len(pixels), len(rows))


def _apply_affine(pixels: np.ndarray, matrix: np.ndarray, mean_from: np.ndarray, mean_to: np.ndarray) -> np.ndarray:
    """``(x - mean_from) @ matrix.T + mean_to`` for every pixel, float32."""
    return _linear(pixels, matrix, mean_to - matrix @ mean_from)


# --- linear modes --------------------------------------------------------------------------------------------------


def _opponent_mean_std_transfer(
    target: np.ndarray, source: np.ndarray, wt: np.ndarray | None, ws: np.ndarray | None, axes: np.ndarray
) -> np.ndarray:
    """Match mean and std along each orthonormal row of ``axes`` (``x.axis`` is one channel of that space).

    Per channel ``(x - mu_t) * sigma_s / sigma_t + mu_s``, a mean shift where sigma_t is 0. Since the axes are
    orthonormal it is one affine map ``axes' diag(sigma_s / sigma_t) axes`` in the input space.
    """
    sel_t, sw_t = _selected(target, wt)
    sel_s, sw_s = _selected(source, ws)
    if _is_empty(sw_t, len(sel_t)) or _is_empty(sw_s, len(sel_s)):
        return target.copy()
    mean_t, cov_t = _mean_cov(sel_t, sw_t)
    mean_s, cov_s = _mean_cov(sel_s, sw_s)
    var_t = np.einsum("ki,ij,kj->k", axes, cov_t, axes)
    var_s = np.einsum("ki,ij,kj->k", axes, cov_s, axes)
    scale = np.where(var_t > _MIN_VARIANCE, np.sqrt(np.maximum(var_s, 0.0) / np.maximum(var_t, _MIN_VARIANCE)), 1.0)
    return _apply_affine(target, (axes.T * scale) @ axes, mean_t, mean_s)


def _covariance_transfer(
    target: np.ndarray, source: np.ndarray, wt: np.ndarray | None, ws: np.ndarray | None, form: str
) -> np.ndarray:
    """Affine map giving the target the source's mean and covariance; ``form`` "pca" (LCT) or "mkl"."""
    sel_t, sw_t = _selected(target, wt)
    sel_s, sw_s = _selected(source, ws)
    if _is_empty(sw_t, len(sel_t)) or _is_empty(sw_s, len(sel_s)):
        return target.copy()
    mean_t, cov_t = _mean_cov(sel_t, sw_t)
    mean_s, cov_s = _mean_cov(sel_s, sw_s)
    if np.trace(cov_t) < _MIN_VARIANCE:  # flat target: only the mean can move
        return _apply_affine(target, np.eye(target.shape[1]), mean_t, mean_s)
    floor = _eigen_floor(cov_t)
    if form == "pca":
        # T = Cs^1/2 Ct^-1/2 (symmetric square roots from the eigen decompositions): T Ct T' = Cs.
        matrix = _sym_power(cov_s, 0.5, 0.0) @ _sym_power(cov_t, -0.5, floor)
    else:
        # Pitie & Kokaram 2007: T = Ct^-1/2 (Ct^1/2 Cs Ct^1/2)^1/2 Ct^-1/2, the least-displacement linear map.
        half_t = _sym_power(cov_t, 0.5, floor)
        inv_half_t = _sym_power(cov_t, -0.5, floor)
        matrix = inv_half_t @ _sym_power(half_t @ cov_s @ half_t, 0.5, 0.0) @ inv_half_t
    return _apply_affine(target, matrix, mean_t, mean_s)


# --- 1-D distribution matching along projections --------------------------------------------------------------------


def _histograms(bin_index: np.ndarray, weights: np.ndarray | None, bins: int) -> np.ndarray:
    """Histograms (K, bins) of the columns of ``bin_index`` (N, K), a column's bins ``0..bins-1``."""
    columns = bin_index.shape[1]
    flat = (bin_index + np.arange(columns, dtype=np.int32) * bins).reshape(-1)
    flat_weights = None if weights is None else np.repeat(weights, columns)
    return np.bincount(flat, weights=flat_weights, minlength=columns * bins).reshape(columns, bins)


def _match_projections(
    projected: np.ndarray, keep_t: np.ndarray | None, wt: np.ndarray | None, sel_s: np.ndarray, ws: np.ndarray | None,
    bins: int,
) -> np.ndarray:
    """Displacement (N, K) moving each column of ``projected`` onto the source's 1-D distribution along that axis.

    Overwrites ``projected`` and ``sel_s``. The target statistics come from the rows ``keep_t`` (all rows when None)
    weighted by ``wt``, the source's from ``sel_s`` weighted by ``ws``. Both are histogrammed over the same ``bins``
    uniform bins spanning them; the transfer function ``Fs^-1(Ft(x))`` is evaluated on the bin edges and its
    displacement interpolated linearly. Values outside the span take the displacement of the nearest edge, so unmasked
    outliers keep their structure instead of being flattened.
    """
    columns = projected.shape[1]
    sel_t = projected if keep_t is None else projected[keep_t]
    low = np.minimum(sel_t.min(axis=0), sel_s.min(axis=0)).astype(np.float64)
    high = np.maximum(sel_t.max(axis=0), sel_s.max(axis=0)).astype(np.float64)
    width = np.maximum(high - low, 1e-9) / bins
    hist_s = _histograms(_bin_positions(sel_s, low, width, bins)[0], ws, bins)
    bin_index, position = _bin_positions(projected, low, width, bins)
    hist_t = _histograms(bin_index if keep_t is None else bin_index[keep_t], wt, bins)

    steps = np.arange(bins + 1, dtype=np.float64)
    edge_shift = np.empty((columns, bins + 1), dtype=np.float64)
    for k in range(columns):
        edges = low[k] + width[k] * steps
        edge_shift[k] = np.interp(_cdf(hist_t[k]), _cdf(hist_s[k]), edges) - edges
    base = edge_shift[:, :-1].astype(np.float32).reshape(-1)
    slope = np.diff(edge_shift, axis=1).astype(np.float32).reshape(-1)

    fraction = position
    fraction -= bin_index
    bin_index += np.arange(columns, dtype=np.int32) * bins
    displacement = slope[bin_index]
    displacement *= fraction
    displacement += base[bin_index]
    return displacement


def _bin_positions(values: np.ndarray, low: np.ndarray, width: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """In place: ``values`` (N, K) become positions in bin units clipped to [0, bins]; also returns their bins."""
    values -= low.astype(np.float32)
    values *= (1.0 / width).astype(np.float32)
    np.clip(values, 0.0, float(bins), out=values)
    bin_index = values.astype(np.int32)
    np.minimum(bin_index, bins - 1, out=bin_index)
    return bin_index, values


def _cdf(histogram: np.ndarray) -> np.ndarray:
    """CDF at the bin edges, strictly increasing (a tiny floor per bin keeps empty bins invertible)."""
    counts = histogram + 1e-9 * max(histogram.sum(), 1e-12) + 1e-300
    cdf = np.concatenate(([0.0], np.cumsum(counts)))
    return cdf / cdf[-1]


def _random_rotation(rng: np.random.Generator, dims: int) -> np.ndarray:
    """A uniformly random orthogonal matrix (QR of a Gaussian matrix with the sign ambiguity removed)."""
    q, r = np.linalg.qr(rng.standard_normal((dims, dims)))
    return q * np.sign(np.diag(r))


def _random_directions(rng: np.random.Generator, count: int, dims: int) -> np.ndarray:
    directions = rng.standard_normal((count, dims))
    return directions / np.linalg.norm(directions, axis=1, keepdims=True)


def _idt(target: np.ndarray, source: np.ndarray, wt: np.ndarray | None, ws: np.ndarray | None,
         seed: int) -> np.ndarray:
    """Pitie et al. 2005 iterative distribution transfer: per-axis histogram matching along random rotations."""
    return _iterate_projections(target, source, wt, ws, seed, IDT_ROTATIONS, IDT_BINS, None)


def _sot(target: np.ndarray, source: np.ndarray, wt: np.ndarray | None, ws: np.ndarray | None,
         seed: int) -> np.ndarray:
    """Sliced optimal transport: each step moves every pixel by the mean 1-D transport over a batch of directions."""
    return _iterate_projections(target, source, wt, ws, seed, SOT_STEPS, SOT_BINS, SOT_BATCH)


def _iterate_projections(
    target: np.ndarray, source: np.ndarray, wt: np.ndarray | None, ws: np.ndarray | None, seed: int,
    steps: int, bins: int, batch: int | None,
) -> np.ndarray:
    """``steps`` rounds of 1-D matching along random axes: a rotation (``batch`` None) or ``batch`` directions.

    A rotation applies the full per-axis displacement (IDT); a batch of directions applies the mean of the
    per-direction displacements (SOT). The random axes come from ``seed`` alone.
    """
    keep_t = None if wt is None else wt > 0
    weights_t = None if wt is None else _drop_unit(wt[keep_t])
    sel_s, weights_s = _selected(source, ws)
    if _is_empty(weights_t, len(target) if keep_t is None else int(keep_t.sum())) or _is_empty(weights_s, len(sel_s)):
        return target.copy()
    rng = np.random.default_rng(seed)
    current = np.array(target, dtype=np.float32)
    dims = current.shape[1]
    for _ in range(steps):
        axes = _random_rotation(rng, dims) if batch is None else _random_directions(rng, batch, dims)
        moved = _match_projections(_linear(current, axes), keep_t, weights_t, _linear(sel_s, axes), weights_s, bins)
        back = axes.T if batch is None else axes.T / batch
        current += _linear(moved, back)
    return current


# --- modes ---------------------------------------------------------------------------------------------------------

ModeFunction = Callable[..., np.ndarray]


def _flat_inputs(
    target: np.ndarray, source: np.ndarray, target_mask: np.ndarray | None, source_mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Pixels (N, 3) float32 of both faces and their flattened weights."""
    target = np.asarray(target, dtype=np.float32)
    source = np.asarray(source, dtype=np.float32)
    if target.ndim != 3 or target.shape[-1] != 3 or source.ndim != 3 or source.shape[-1] != 3:
        raise ValueError(f"colour transfer needs (H, W, 3) faces, got {target.shape} and {source.shape}")
    t, s = _pixels(target), _pixels(source)
    return t, s, _weights(target_mask, len(t), "target_mask"), _weights(source_mask, len(s), "source_mask")


def _none(t: np.ndarray, s: np.ndarray, wt: np.ndarray | None, ws: np.ndarray | None, seed: int) -> np.ndarray:
    return t.copy()


def _rct(t: np.ndarray, s: np.ndarray, wt: np.ndarray | None, ws: np.ndarray | None, seed: int) -> np.ndarray:
    return _opponent_mean_std_transfer(t, s, wt, ws, LAB_FROM_RGB)


def _lct(t: np.ndarray, s: np.ndarray, wt: np.ndarray | None, ws: np.ndarray | None, seed: int) -> np.ndarray:
    return _covariance_transfer(t, s, wt, ws, "pca")


def _mkl(t: np.ndarray, s: np.ndarray, wt: np.ndarray | None, ws: np.ndarray | None, seed: int) -> np.ndarray:
    return _covariance_transfer(t, s, wt, ws, "mkl")


def _mix(t: np.ndarray, s: np.ndarray, wt: np.ndarray | None, ws: np.ndarray | None, seed: int) -> np.ndarray:
    lab_t, lab_s = _linear(t, LAB_FROM_RGB), _linear(s, LAB_FROM_RGB)
    lightness = _opponent_mean_std_transfer(lab_t[:, :1], lab_s[:, :1], wt, ws, np.ones((1, 1)))
    chroma = _sot(np.ascontiguousarray(lab_t[:, 1:]), np.ascontiguousarray(lab_s[:, 1:]), wt, ws, seed)
    return _linear(np.hstack([lightness, chroma]), LAB_FROM_RGB.T)


_MODES: dict[str, tuple[Callable[..., np.ndarray], bool]] = {
    "none": (_none, False),
    "rct": (_rct, True),
    "lct": (_lct, True),
    "mkl": (_mkl, False),
    "mkl-m": (_mkl, True),
    "idt": (_idt, False),
    "idt-m": (_idt, True),
    "sot-m": (_sot, True),
    "mix-m": (_mix, True),
}
"""mode -> (function on flattened pixels, whether the masks weight its statistics)."""


def _mode_function(name: str) -> ModeFunction:
    function, masked = _MODES[name]

    def transfer(
        target: np.ndarray,
        source: np.ndarray,
        target_mask: np.ndarray | None = None,
        source_mask: np.ndarray | None = None,
        *,
        seed: int = 0,
    ) -> np.ndarray:
        t, s, wt, ws = _flat_inputs(target, source, target_mask, source_mask)
        if not masked:
            wt = ws = None
        elif _is_empty(wt, len(t)) or _is_empty(ws, len(s)):
            return t.reshape(np.shape(target)).copy()
        return function(t, s, wt, ws, seed).reshape(np.shape(target))

    transfer.__name__ = f"color_transfer_{name.replace('-', '_')}"
    transfer.__doc__ = f"color_transfer {name}: float32 (H, W, 3) target recoloured from source (masks: {masked})."
    return transfer


COLOR_TRANSFER_MODES: dict[str, ModeFunction] = {name: _mode_function(name) for name in _MODES}
"""``--color-transfer`` value -> ``f(target, source, target_mask=None, source_mask=None, *, seed=0)``.

none: copy. rct: Reinhard mean/std per opponent channel. lct: mean + covariance, PCA form. mkl / mkl-m:
Monge-Kantorovich linear map, unmasked / masked. idt / idt-m: iterative distribution transfer, 256 bins, 20 random
rotations, unmasked / masked. sot-m: sliced optimal transport, 10 steps of 30 directions, masked. mix-m: mean/std on
opponent l plus sliced optimal transport on alpha, beta, masked. rct and lct use the masks too.
"""


def check_color_transfer_mode(mode: str) -> None:
    """A SettingError (``color_transfer``) listing each valid mode once when ``mode`` is not one of them."""
    if mode not in COLOR_TRANSFER_MODES:
        raise SettingError("color_transfer", mode, f"unknown; use one of {', '.join(COLOR_TRANSFER_MODES)}")


def transfer_color(
    mode: str,
    target: np.ndarray,
    source: np.ndarray,
    target_mask: np.ndarray | None = None,
    source_mask: np.ndarray | None = None,
    *,
    seed: int = 0,
) -> np.ndarray:
    """Recolour ``target`` (H, W, 3) to match ``source`` with the ``--color-transfer`` ``mode``; float32 (H, W, 3).

    ``seed`` drives the random rotations/directions of idt, sot-m and mix-m (same seed, same result).
    """
    check_color_transfer_mode(mode)
    return COLOR_TRANSFER_MODES[mode](target, source, target_mask, source_mask, seed=seed)
