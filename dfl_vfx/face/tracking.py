"""Link faces across the frames of a shot into tracks (one identity-agnostic track per on-screen face)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

Rect = tuple[float, float, float, float]


def rect_iou(a: Rect, b: Rect) -> float:
    """Intersection over union of two (left, top, right, bottom) rects."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def link_tracks(frames: Sequence[Sequence[Rect]], min_iou: float = 0.2, max_gap: int = 5) -> list[list[int]]:
    """Track ids for every face of every frame, in the same nesting as ``frames``.

    Faces are matched to the tracks seen in the last ``max_gap`` frames by maximum total IoU (Hungarian
    assignment); a face overlapping no track by ``min_iou`` starts a new track. Ids count from 0 in order of
    first appearance.
    """
    ids: list[list[int]] = []
    last_rect: dict[int, Rect] = {}
    last_seen: dict[int, int] = {}
    next_id = 0
    for index, rects in enumerate(frames):
        live = [t for t, seen in last_seen.items() if index - seen <= max_gap]
        frame_ids = [-1] * len(rects)
        if live and rects:
            cost = np.array([[1.0 - rect_iou(r, last_rect[t]) for t in live] for r in rects])
            for i, j in zip(*linear_sum_assignment(cost), strict=True):
                if 1.0 - cost[i, j] >= min_iou:
                    frame_ids[i] = live[j]
        for i, rect in enumerate(rects):
            if frame_ids[i] < 0:
                frame_ids[i] = next_id
                next_id += 1
            last_rect[frame_ids[i]] = rect
            last_seen[frame_ids[i]] = index
        ids.append(frame_ids)
    return ids
