"""Swap quality metrics as pure functions (no I/O), after the DFL paper's table (reference 10), and the report.

- SSIM: structural similarity of a reconstruction to its input, optionally only under a mask (higher is better).
- identity: Euclidean distance of dlib 128-d face descriptors to a reference (lower = more like it; 0.6 is dlib's
  same-person threshold).
- landmarks: mean 68-point distance in the aligned face space, normalised to a 256 px face.
- pose: mean absolute pitch/yaw/roll difference in degrees (solvePnP on aligned landmarks).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from skimage.metrics import structural_similarity

from dfl_vfx.face.align import transform_points
from dfl_vfx.face.pose import estimate_pitch_yaw_roll
from dfl_vfx.io.sequence import format_frames

NORMALISED_FACE = 256  # landmark distances are reported in pixels of a face aligned at this size


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """SSIM of two float images in [0, 1] ((H, W) or (H, W, C)); with ``mask`` ((H, W), > 0.5 counts), the mean
    of the SSIM map (averaged over channels) under the mask instead of over the whole image."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"ssim needs images of one shape, got {a.shape} and {b.shape}")
    channel_axis = -1 if a.ndim == 3 else None
    if mask is None:
        return float(structural_similarity(a, b, channel_axis=channel_axis, data_range=1.0))
    inside = np.asarray(mask) > 0.5
    if inside.shape != a.shape[:2]:
        raise ValueError(f"ssim mask is {inside.shape}, the images are {a.shape[:2]}")
    if not inside.any():
        raise ValueError("ssim mask is empty")
    _, ssim_map = structural_similarity(a, b, channel_axis=channel_axis, data_range=1.0, full=True)
    if ssim_map.ndim == 3:
        ssim_map = ssim_map.mean(axis=2)
    return float(ssim_map[inside].mean())


def identity_distance(embeddings: np.ndarray, reference: np.ndarray) -> float:
    """Mean Euclidean distance of (N, 128) descriptors to one (128,) reference descriptor."""
    embeddings = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
    reference = np.asarray(reference, dtype=np.float64).reshape(-1)
    if embeddings.shape[0] == 0 or embeddings.shape[1] != reference.shape[0]:
        raise ValueError(f"identity_distance needs (N, {reference.shape[0]}) descriptors, got {embeddings.shape}")
    return float(np.linalg.norm(embeddings - reference, axis=1).mean())


def landmark_distance(pred: np.ndarray, ref: np.ndarray, matrix: np.ndarray, resolution: int) -> float:
    """Mean distance of two 68-point sets in frame pixels, measured after ``matrix`` (frame -> a face aligned at
    ``resolution`` px) and scaled to a 256 px face, so the number does not depend on the plate's resolution."""
    if resolution <= 0:
        raise ValueError(f"landmark_distance needs a positive resolution, got {resolution}")
    offsets = transform_points(pred, matrix) - transform_points(ref, matrix)
    return float(np.linalg.norm(offsets, axis=1).mean() * NORMALISED_FACE / resolution)


def pose_distance(pred: np.ndarray, ref: np.ndarray, matrix: np.ndarray | None = None, resolution: int = 256
                  ) -> float:
    """Mean absolute difference of pitch, yaw and roll, in degrees, between two 68-point sets.

    As DeepFaceLab does, pose is estimated on aligned landmarks: with ``matrix`` (frame -> aligned at
    ``resolution`` px) both sets are frame pixels and mapped first; without it they are already pixels of a
    ``resolution`` px aligned face.
    """
    if matrix is not None:
        pred, ref = transform_points(pred, matrix), transform_points(ref, matrix)
    angles_pred = np.array(estimate_pitch_yaw_roll(pred, resolution))
    angles_ref = np.array(estimate_pitch_yaw_roll(ref, resolution))
    return float(np.degrees(np.abs(angles_pred - angles_ref)).mean())


@dataclass
class EvalReport:
    """The metrics of one evaluated shot; a metric that could not be measured is None."""

    ssim_src: float | None = None  # model's src -> src reconstruction under the face hull
    ssim_dst: float | None = None  # model's dst -> dst reconstruction of the plate's faces
    identity_swap_to_src: float | None = None  # swapped faces to the mean src descriptor
    identity_dst_to_src: float | None = None  # baseline: the original dst faces to the same reference
    landmarks: float | None = None  # re-detected swap landmarks vs the dst landmarks, px at 256
    pose: float | None = None  # re-detected swap pose vs the dst pose, degrees
    frames: int = 0  # frames evaluated
    faces: int = 0  # swapped faces evaluated
    src_faces: int = 0  # src faceset faces in the identity reference (and src SSIM)
    missed: list[int] = field(default_factory=list)  # frames where a swapped face was not found again

    def lines(self) -> list[str]:
        """One line per metric: name, arrow (as in the paper's table), value and what it means."""
        missed = f"; no face re-detected in {len(self.missed)} frame(s): {format_frames(self.missed)}" if self.missed \
            else ""
        rows = [
            ("SSIM src reconstruction", "↑", self.ssim_src, 3,
             "model's src->src reconstruction vs its input under the face hull (1 = identical)", "--model"),
            ("SSIM dst reconstruction", "↑", self.ssim_dst, 3,
             "model's dst->dst reconstruction of the plate's faces under the face hull", "--model and --plate"),
            ("identity swap->src", "↓", self.identity_swap_to_src, 3,
             "dlib distance of the swapped faces to the mean src face (< 0.6: same person)", ""),
            ("identity dst->src", " ", self.identity_dst_to_src, 3,
             "baseline: the original dst faces to the same reference; the swap should be well below it", "--plate"),
            ("landmarks", "↓", self.landmarks, 2,
             "mean landmark offset swap vs dst, px of a 256 px aligned face (expression kept)", ""),
            ("pose", "↓", self.pose, 2, "mean |pitch, yaw, roll| difference swap vs dst, degrees (head pose kept)", ""),
        ]
        out = [f"evaluated {self.faces} face(s) in {self.frames} frame(s) against {self.src_faces} src face(s)"
               f"{missed}"]
        for name, arrow, value, digits, meaning, needs in rows:
            shown = f"{value:.{digits}f}" if value is not None else "n/a"
            note = f"(needs {needs})" if value is None and needs else meaning
            out.append(f"  {name:<24} {arrow} {shown:>6}  {note}")
        return out

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready values (None for metrics not measured)."""
        return asdict(self)
