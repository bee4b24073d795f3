"""Linking faces across frames into tracks."""

from dfl_vfx.face.tracking import link_tracks, rect_iou


def test_rect_iou() -> None:
    assert rect_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert rect_iou((0, 0, 10, 10), (5, 0, 15, 10)) == 50 / 150
    assert rect_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_two_moving_faces_keep_their_tracks_when_order_swaps() -> None:
    left = [(100 + 3 * t, 100, 200 + 3 * t, 200) for t in range(5)]
    right = [(400 - 3 * t, 100, 500 - 3 * t, 200) for t in range(5)]
    frames = [[left[0], right[0]], [right[1], left[1]], [left[2], right[2]], [right[3]], [left[4], right[4]]]
    ids = link_tracks(frames)
    assert ids == [[0, 1], [1, 0], [0, 1], [1], [0, 1]]  # face 0 is missing in frame 3 and comes back


def test_gap_longer_than_max_gap_starts_a_new_track() -> None:
    box = (0, 0, 50, 50)
    ids = link_tracks([[box], [], [], [box]], max_gap=1)
    assert ids == [[0], [], [], [1]]


def test_far_jump_is_a_new_face() -> None:
    assert link_tracks([[(0, 0, 50, 50)], [(500, 0, 550, 50)]]) == [[0], [1]]
