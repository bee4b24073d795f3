"""Temporal smoothing of one face's landmark track across a shot, and a jitter measure to judge it."""

from __future__ import annotations

import numpy as np

from dfl_vfx.errors import DflError

POLYORDER = 2


def _valid_runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of consecutive True values."""
    padded = np.concatenate([[False], valid, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def smooth_landmark_track(track: np.ndarray, window: int, valid: np.ndarray | None = None) -> np.ndarray:
    """Savitzky-Golay smoothing (polyorder 2) of a (T, K, 2) landmark track over ``window`` frames.

    The filter is centred, so it removes frame-to-frame jitter without delaying real motion: a quadratic
    fitted over the window reproduces linear and accelerating moves exactly. An even ``window`` becomes the
    next odd number. Each run of consecutive valid frames is smoothed on its own, with the window clamped to
    the run's length (runs shorter than 3 frames stay as they are) and the run's ends fitted from the nearest
    full window rather than padded. Frames that are invalid (``valid`` False, or any non-finite coordinate)
    are returned unchanged. ``window`` <= 1 or T < 3 returns an unchanged copy. Returns float64.
    """
    track = np.asarray(track, dtype=np.float64)
    if track.ndim != 3 or track.shape[2] != 2:
        raise DflError(f"a landmark track must have shape (frames, points, 2), got {track.shape}")
    frames = track.shape[0]
    usable = np.isfinite(track).all(axis=(1, 2))
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != (frames,):
            raise DflError(f"the valid-frame flags must have shape ({frames},), got {valid.shape}")
        usable &= valid
    result = track.copy()
    if window <= 1 or frames < 3:
        return result
    from scipy.signal import savgol_filter  # imported here: scipy.signal costs ~1 s at import

    odd_window = window if window % 2 else window + 1
    for start, stop in _valid_runs(usable):
        length = stop - start
        run_window = min(odd_window, length if length % 2 else length - 1)
        if run_window <= POLYORDER:
            continue
        result[start:stop] = savgol_filter(track[start:stop], run_window, POLYORDER, axis=0, mode="interp")
    return result


def jitter(track: np.ndarray) -> float:
    """RMS of the second temporal difference x[t+1] - 2 x[t] + x[t-1] over all frames, points and coordinates.

    In px per frame^2: white noise of standard deviation sigma scores sqrt(6) sigma, while smooth motion scores
    about its acceleration, so lower is steadier. Tracks shorter than 3 frames score 0.
    """
    track = np.asarray(track, dtype=np.float64)
    if track.shape[0] < 3:
        return 0.0
    second_difference = np.diff(track, n=2, axis=0)
    return float(np.sqrt(np.mean(second_difference**2)))
