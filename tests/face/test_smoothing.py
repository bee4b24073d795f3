"""Landmark track smoothing: jitter removal, no lag on real motion, valid-frame runs."""

import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.face.smoothing import jitter, smooth_landmark_track
from dfl_vfx.face.template import FRONTAL_FACE_68

FRAMES = 96


def true_track() -> np.ndarray:
    """A face drifting 2 px/frame right while bobbing 25 px vertically (period 48 frames) and breathing in scale."""
    t = np.arange(FRAMES, dtype=np.float64)[:, None, None]
    base = FRONTAL_FACE_68[None] * 200.0
    motion = np.stack([300.0 + 2.0 * t[..., 0], 400.0 + 25.0 * np.sin(2 * np.pi * t[..., 0] / 48.0)], axis=-1)
    breathing = 1.0 + 0.05 * np.sin(2 * np.pi * t / 64.0)
    return base * breathing + motion


@pytest.fixture
def noisy():
    truth = true_track()
    rng = np.random.default_rng(6)
    return truth, truth + rng.normal(0.0, 2.0, size=truth.shape)


def mean_error(track: np.ndarray, truth: np.ndarray) -> float:
    return float(np.linalg.norm(track - truth, axis=-1).mean())


def test_removes_jitter_and_error(noisy):
    truth, observed = noisy
    smoothed = smooth_landmark_track(observed, 9)
    assert smoothed.shape == observed.shape
    assert jitter(observed) / jitter(smoothed) >= 3.0
    assert mean_error(observed, truth) / mean_error(smoothed, truth) >= 1.8


def test_follows_fast_move_without_lag():
    # A 60 px move over 16 frames with an eased (cosine) speed profile: fast, but without steps or kinks.
    t = np.arange(FRAMES, dtype=np.float64)
    progress = np.clip((t - 40.0) / 16.0, 0.0, 1.0)
    shift = 60.0 * (1 - np.cos(np.pi * progress)) / 2
    track = FRONTAL_FACE_68[None] * 200.0 + np.stack([shift, 0.5 * shift], axis=-1)[:, None, :]
    smoothed = smooth_landmark_track(track, 9)
    assert np.abs(smoothed - track).max() < 1.5
    # a trailing (causal) 9-frame mean of the same track lags by far more
    causal = np.array([track[max(0, i - 8) : i + 1].mean(axis=0) for i in range(FRAMES)])
    assert np.abs(causal - track).max() > 10.0


def test_invalid_frames_untouched_and_runs_separate(noisy):
    _, observed = noisy
    observed = observed.copy()
    valid = np.ones(FRAMES, dtype=bool)
    valid[[20, 21, 50]] = False
    observed[21] = np.nan  # a frame with no face
    observed[20] += 500.0  # a wrong detection flagged invalid: must not leak into its neighbours
    smoothed = smooth_landmark_track(observed, 9, valid)
    np.testing.assert_array_equal(smoothed[[20, 50]], observed[[20, 50]])
    assert np.isnan(smoothed[21]).all()
    assert np.isfinite(np.delete(smoothed, 21, axis=0)).all()
    # each run is filtered alone: frames 0..19 match smoothing that run by itself
    np.testing.assert_allclose(smoothed[:20], smooth_landmark_track(observed[:20], 9), atol=1e-9)
    # a non-finite frame splits the runs even without flags
    unflagged = smooth_landmark_track(observed, 9)
    assert np.isnan(unflagged[21]).all()
    np.testing.assert_allclose(unflagged[22:], smooth_landmark_track(observed[22:], 9), atol=1e-9)


def test_short_runs_and_trivial_windows(noisy):
    _, observed = noisy
    np.testing.assert_array_equal(smooth_landmark_track(observed, 1), observed)
    np.testing.assert_array_equal(smooth_landmark_track(observed[:2], 9), observed[:2])
    valid = np.zeros(FRAMES, dtype=bool)
    valid[10:12] = True  # a 2-frame run stays as is
    valid[30:35] = True  # a 5-frame run gets a 5-frame window
    smoothed = smooth_landmark_track(observed, 9, valid)
    np.testing.assert_array_equal(smoothed[10:12], observed[10:12])
    assert not np.allclose(smoothed[30:35], observed[30:35])
    np.testing.assert_allclose(smoothed[30:35], smooth_landmark_track(observed[30:35], 5), atol=1e-9)
    # an even window is rounded up to the next odd size
    np.testing.assert_array_equal(smooth_landmark_track(observed, 8), smooth_landmark_track(observed, 9))
    copy = smooth_landmark_track(observed, 0)
    assert copy is not observed and np.shares_memory(copy, observed) is False


def test_jitter_measure():
    rng = np.random.default_rng(7)
    noise = rng.normal(0.0, 2.0, size=(2000, 68, 2))
    assert jitter(noise) == pytest.approx(np.sqrt(6) * 2.0, rel=0.02)
    t = np.arange(50, dtype=np.float64)[:, None, None]
    assert jitter(np.broadcast_to(3.0 * t, (50, 68, 2))) == pytest.approx(0.0, abs=1e-9)
    assert jitter(np.broadcast_to(0.5 * t**2, (50, 68, 2))) == pytest.approx(1.0, abs=1e-9)
    assert jitter(noise[:2]) == 0.0


def test_bad_input_raises():
    with pytest.raises(DflError):
        smooth_landmark_track(np.zeros((10, 68)), 5)
    with pytest.raises(DflError):
        smooth_landmark_track(np.zeros((10, 68, 2)), 5, valid=np.ones(9, dtype=bool))
