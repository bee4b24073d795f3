"""Debug drawing: landmarks and quads land on the right pixels of a copy."""

import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.face.draw import default_radius, draw_landmarks, draw_quad
from dfl_vfx.face.template import FRONTAL_FACE_68

GREEN = (0, 255, 0)


def blank(height: int = 300, width: int = 400) -> np.ndarray:
    return np.full((height, width, 3), 40, dtype=np.uint8)


def test_draw_landmarks_marks_points_on_a_copy():
    image = blank()
    landmarks = FRONTAL_FACE_68 * 180 + [110.0, 40.0]
    drawn = draw_landmarks(image, landmarks, color=GREEN, radius=3)
    assert drawn is not image and drawn.shape == image.shape and drawn.dtype == np.uint8
    assert (image == 40).all()  # the input is untouched
    xy = np.round(landmarks).astype(int)
    np.testing.assert_array_equal(drawn[xy[:, 1], xy[:, 0]], np.tile(GREEN, (68, 1)))
    # outlines join the dots: the midpoint between jaw points 3 and 4 is coloured
    mid = np.round((landmarks[3] + landmarks[4]) / 2).astype(int)
    assert drawn[mid[1], mid[0], 1] > 150
    # nothing drawn far from the face
    assert (drawn[:, :60] == 40).all() and (drawn[:, 340:] == 40).all()
    changed = (drawn != image).any(axis=2).mean()
    assert 0.02 < changed < 0.25


def test_default_radius_scales_with_resolution():
    assert default_radius(blank(300, 400)) == 1
    assert default_radius(np.zeros((2160, 3840, 3), np.uint8)) == 8
    image = blank(600, 800)
    landmarks = FRONTAL_FACE_68 * 360 + [220.0, 80.0]
    np.testing.assert_array_equal(draw_landmarks(image, landmarks), draw_landmarks(image, landmarks, radius=2))
    # a radius-4 dot reaches 3 px below the chin point (the jaw line runs across it), a radius-1 dot does not
    x, y = np.round(landmarks[8]).astype(int)
    assert draw_landmarks(image, landmarks, GREEN, radius=4)[y + 3, x, 1] > 200
    assert draw_landmarks(image, landmarks, GREEN, radius=1)[y + 3, x, 1] == 40


def test_draw_quad_outlines_with_thick_top():
    image = blank()
    quad = np.array([(100.0, 50.0), (300.0, 50.0), (300.0, 250.0), (100.0, 250.0)])
    drawn = draw_quad(image, quad, color=(255, 0, 0), thickness=1)
    assert (image == 40).all()
    for x, y in [(200, 250), (100, 150), (300, 150), (200, 50)]:
        assert drawn[y, x, 0] > 200 and drawn[y, x, 1] < 20  # anti-aliased 1 px line
    assert (drawn[150, 200] == 40).all()  # the inside stays empty
    top = (drawn[40:61, 200, 0] > 200).sum()
    bottom = (drawn[240:261, 200, 0] > 200).sum()
    assert top >= 3 and bottom <= 2 and top > bottom


def test_bad_input_raises():
    with pytest.raises(DflError, match="uint8"):
        draw_landmarks(np.zeros((10, 10, 3), np.float32), FRONTAL_FACE_68)
    with pytest.raises(DflError, match="68"):
        draw_landmarks(blank(), FRONTAL_FACE_68[:10])
    with pytest.raises(DflError, match="4"):
        draw_quad(blank(), np.zeros((3, 2)))
