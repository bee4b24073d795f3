"""XSeg labels of aligned faces: include/exclude polygons in each face's metadata, and imported mattes.

Polygons are stored as DeepFaceLab stores them, in the face's metadata (``extra["seg_ie_polys"]``)::

    [{"type": 1, "pts": [[x, y], ...]},   # include: paints 1
     {"type": 0, "pts": [[x, y], ...]}]   # exclude: paints 0, applied after the polygons before it

in aligned-face pixels at the face's ``size`` (x right, y down, integer values at pixel centres). A face without
polygons may have a matte imported from a compositor (``FACESET/xseg_labels/<face stem>.png``, 16-bit, see
:mod:`dfl_vfx.xseg.mattes`); :func:`label_mask` gives the polygons when there are any, else that matte.

Rasterizing covers a pixel when its centre lies inside the polygon (even-odd rule; a centre exactly on a left
or top edge is inside, on a right or bottom edge outside), so a rectangle with half-integer corners covers exactly
its area in pixels. Writing polygons rewrites only the face's metadata attribute: the pixels are copied in their
stored type (bit-identical) and every other header attribute is kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio

from dfl_vfx.errors import DflError
from dfl_vfx.faceset.faceset import FaceRecord, Faceset
from dfl_vfx.faceset.metadata import FACE_ATTRIBUTE, FaceMetadata
from dfl_vfx.io.atomic import atomic_path
from dfl_vfx.io.image import read_image

POLYS_KEY = "seg_ie_polys"
LABELS_DIR = "xseg_labels"
KINDS = {"include": 1, "exclude": 0}
EDGE_TOLERANCE_PX = 1.0  # points may lie this far outside [0, size] (a click on the face's border)
_LOSSY_SUFFIXES = (".jpg", ".jpeg")


@dataclass
class Polygon:
    """One label polygon: ``kind`` "include" or "exclude", ``points`` (N, 2) float64 aligned pixels (x, y)."""

    kind: str
    points: np.ndarray

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DflError(f"polygon kind {self.kind!r} is unknown; use 'include' or 'exclude'")
        points = np.asarray(self.points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2:
            raise DflError(f"polygon points must be (N, 2) x, y pairs, got shape {points.shape}")
        self.points = points

    def to_dict(self) -> dict[str, Any]:
        """DeepFaceLab's form: {"type": 1 include / 0 exclude, "pts": [[x, y], ...]}."""
        return {"type": KINDS[self.kind], "pts": self.points.tolist()}

    @classmethod
    def from_dict(cls, data: Any, where: str = "polygon") -> Polygon:
        if not isinstance(data, dict) or "type" not in data or "pts" not in data:
            raise DflError(f"{where}: a label polygon must be {{'type': 1|0, 'pts': [[x, y], ...]}}")
        kind = {1: "include", 0: "exclude"}.get(data["type"]) if isinstance(data["type"], int) else None
        if kind is None:
            raise DflError(f"{where}: label polygon type {data['type']!r} is neither 1 (include) nor 0 (exclude)")
        try:
            points = np.asarray(data["pts"], dtype=np.float64)
        except (TypeError, ValueError):
            raise DflError(f"{where}: label polygon points are not numbers") from None
        if points.size == 0:
            points = points.reshape(0, 2)
        if points.ndim != 2 or points.shape[1] != 2 or not np.isfinite(points).all():
            raise DflError(f"{where}: label polygon points must be finite [x, y] pairs")
        return cls(kind, points)


def read_polygons(meta: FaceMetadata, where: str | None = None) -> list[Polygon]:
    """The label polygons of a face (empty when it has none); malformed ones are a DflError naming the face."""
    where = where or meta.source_filename
    value = meta.extra.get(POLYS_KEY)
    if value is None:
        return []
    if not isinstance(value, list):
        raise DflError(f"{where}: {POLYS_KEY} is not a list of polygons; relabel this face")
    return [Polygon.from_dict(item, f"{where} polygon {i}") for i, item in enumerate(value)]


def _distinct_points(points: np.ndarray) -> np.ndarray:
    """Points without consecutive repeats (a double click), the closing repeat included."""
    if len(points) == 0:
        return points
    keep = np.any(points != np.roll(points, 1, axis=0), axis=1)
    if not keep.any():
        keep[0] = True
    return points[keep]


def _cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a[..., 0] - o[..., 0]) * (b[..., 1] - o[..., 1]) - (a[..., 1] - o[..., 1]) * (b[..., 0] - o[..., 0])


def self_intersection(points: np.ndarray) -> tuple[int, int] | None:
    """(i, j) of two edges of the closed polygon that cross or touch (edge i runs from point i to i+1), or None."""
    n = len(points)
    start, end = points, np.roll(points, -1, axis=0)
    # adjacent edges share a point; they only overlap when the second turns straight back along the first
    d_in, d_out = end - start, np.roll(end - start, -1, axis=0)
    turn = d_in[:, 0] * d_out[:, 1] - d_in[:, 1] * d_out[:, 0]
    back = (np.abs(turn) <= 1e-12 * (np.hypot(*d_in.T) * np.hypot(*d_out.T))) & ((d_in * d_out).sum(1) < 0)
    if back.any():
        i = int(np.argmax(back))
        return i, (i + 1) % n
    i, j = np.triu_indices(n, k=2)
    apart = (j - i) % n != n - 1  # the last edge is adjacent to the first
    i, j = i[apart], j[apart]
    p1, p2, q1, q2 = start[i], end[i], start[j], end[j]
    d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
    d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
    collinear = (d1 == 0) & (d2 == 0)
    crossing = (d1 * d2 <= 0) & (d3 * d4 <= 0) & ~collinear
    lo_p, hi_p = np.minimum(p1, p2), np.maximum(p1, p2)
    lo_q, hi_q = np.minimum(q1, q2), np.maximum(q1, q2)
    overlapping = collinear & np.all((lo_p <= hi_q) & (lo_q <= hi_p), axis=1)
    hit = np.flatnonzero(crossing | overlapping)
    return (int(i[hit[0]]), int(j[hit[0]])) if len(hit) else None


def _collinear(points: np.ndarray) -> bool:
    """Whether all points lie on one line (to within a thousandth of a pixel)."""
    centred = points - points.mean(axis=0)
    return bool(np.linalg.svd(centred, compute_uv=False)[-1] < 1e-3)


def validate_polygons(polygons: list[Polygon], size: int, where: str) -> None:
    """Refuse, with one line naming ``where`` (the face), a polygon with fewer than 3 distinct points, no area,
    crossing edges, or points outside the face ([0, size] with :data:`EDGE_TOLERANCE_PX` of slack)."""
    for k, polygon in enumerate(polygons):
        name = f"{where}: {polygon.kind} polygon {k + 1}"
        points = _distinct_points(polygon.points)
        if len(points) < 3:
            raise DflError(f"{name} has {len(points)} distinct point(s); a polygon needs at least 3, add points")
        if not np.isfinite(points).all():
            raise DflError(f"{name} has a point that is not a finite number; redraw it")
        low, high = -EDGE_TOLERANCE_PX, size + EDGE_TOLERANCE_PX
        outside = np.flatnonzero(np.any((points < low) | (points > high), axis=1))
        if len(outside):
            x, y = points[outside[0]]
            raise DflError(
                f"{name}: point ({x:.1f}, {y:.1f}) lies outside the {size}x{size} face; keep points inside it"
            )
        if _collinear(points):
            raise DflError(f"{name} has no area (its points lie on one line); redraw it")
        crossing = self_intersection(points)
        if crossing is not None:
            a, b = crossing
            raise DflError(
                f"{name} crosses itself (edges {a + 1} and {b + 1}); redraw it without crossing lines"
            )


def _polygon_coverage(points: np.ndarray, size: int) -> np.ndarray:
    """Bool (size, size): pixels whose centre is inside the closed polygon (even-odd, half-open edges)."""
    x0, y0 = points[:, 0], points[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    rows = np.arange(size, dtype=np.float64)[:, None]
    crosses = ((y0 <= rows) & (rows < y1)) | ((y1 <= rows) & (rows < y0))
    with np.errstate(divide="ignore", invalid="ignore"):
        xs = x0 + (rows - y0) * (x1 - x0) / (y1 - y0)
    xs = np.sort(np.where(crosses, xs, np.inf), axis=1)  # a row crosses an even number of edges
    count = crosses.sum(axis=1)
    diff = np.zeros((size, size + 1), np.int32)
    for pair in range(0, xs.shape[1] - 1, 2):
        row = np.flatnonzero(count > pair)
        start = np.clip(np.ceil(xs[row, pair]), 0, size).astype(np.intp)
        stop = np.clip(np.ceil(xs[row, pair + 1]), 0, size).astype(np.intp)
        np.add.at(diff, (row, start), 1)
        np.add.at(diff, (row, stop), -1)
    return np.cumsum(diff[:, :size], axis=1) > 0


def rasterize(polygons: list[Polygon], size: int) -> np.ndarray:
    """float32 (size, size) mask: polygons applied in order, include paints 1, exclude paints 0."""
    mask = np.zeros((size, size), np.float32)
    for polygon in polygons:
        points = _distinct_points(polygon.points)
        if len(points) < 3:
            continue
        mask[_polygon_coverage(points, size)] = 1.0 if polygon.kind == "include" else 0.0
    return mask


def face_record(faceset: Faceset, face_file: str | Path | FaceRecord) -> FaceRecord:
    """The face named by a file name in the faceset, a path, or a record; a DflError when it has no metadata."""
    if isinstance(face_file, FaceRecord):
        return face_file
    path = Path(face_file)
    if len(path.parts) == 1:
        path = faceset.face_path(path.name)
    if not path.is_file():
        raise DflError(f"{path}: no such face in the faceset {faceset.root}")
    record = faceset.record(path)
    if record is None:
        raise DflError(f"{path}: not a dfl_vfx aligned face (no {FACE_ATTRIBUTE} metadata); re-extract it")
    return record


def matte_label_path(faceset: Faceset, face_file: str | Path | FaceRecord) -> Path:
    """Where an imported matte of a face is kept: ``FACESET/xseg_labels/<face stem>.png``."""
    name = face_file.path.name if isinstance(face_file, FaceRecord) else Path(face_file).name
    return faceset.root / LABELS_DIR / f"{Path(name).stem}.png"


def _rewrite_face_attribute(path: Path, text: str) -> None:
    """Write ``path`` again with the face attribute replaced: same pixel type, pixels, header and compression."""
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise DflError(f"{path}: cannot read the face ({oiio.geterror().strip()}); is the file complete?")
    try:
        spec = oiio.ImageSpec(inp.spec())
        pixels = inp.read_image(0, 0, 0, spec.nchannels, oiio.UNKNOWN)  # the stored type, untouched
        error = inp.geterror()
    finally:
        inp.close()
    if pixels is None or error:
        raise DflError(f"{path}: cannot read the face's pixels ({error.strip()}); is the file complete?")
    spec.attribute(FACE_ATTRIBUTE, text)
    with atomic_path(path) as tmp:
        out = oiio.ImageOutput.create(str(tmp))
        ok = out is not None and out.open(str(tmp), spec) and out.write_image(pixels)
        error = out.geterror() if out is not None else oiio.geterror()
        if out is not None:
            out.close()
        if not ok or error:
            raise DflError(f"{path}: saving the labels failed ({error.strip()}); check disk space and permissions")


def write_polygons(faceset: Faceset, face_file: str | Path | FaceRecord, polygons: list[Polygon]) -> Path:
    """Validate ``polygons`` and store them in the face's metadata (an empty list removes the labels).

    The face file is replaced atomically; its pixels and all other metadata stay bit-identical. Returns its path.
    """
    record = face_record(faceset, face_file)
    path = record.path
    if path.suffix.lower() in _LOSSY_SUFFIXES:
        raise DflError(f"{path}: a JPEG face cannot be saved again without changing its pixels; import it "
                       "into a faceset (dfl-vfx faceset import-dfl) and label that")
    validate_polygons(polygons, record.meta.size, path.name)
    data = json.loads(record.meta.to_json())
    extra = dict(data.get("extra") or {})
    if polygons:
        extra[POLYS_KEY] = [polygon.to_dict() for polygon in polygons]
    else:
        extra.pop(POLYS_KEY, None)
    data["extra"] = extra
    _rewrite_face_attribute(path, json.dumps(data, separators=(",", ":")))
    return path


def read_matte_label(path: Path) -> np.ndarray:
    """An imported matte label as float32 (H, W) in [0, 1]."""
    image = read_image(path)
    return np.clip(image.pixels[:, :, 0], 0.0, 1.0).astype(np.float32)


def label_mask(faceset: Faceset, face_file: str | Path | FaceRecord) -> np.ndarray | None:
    """The face's label as float32 (size, size) in [0, 1]: its polygons when it has any, else its imported matte,
    else None."""
    record = face_record(faceset, face_file)
    polygons = read_polygons(record.meta, record.path.name)
    if polygons:
        return rasterize(polygons, record.meta.size)
    matte = matte_label_path(faceset, record)
    if not matte.is_file():
        return None
    mask = read_matte_label(matte)
    if mask.shape != (record.meta.size, record.meta.size):
        raise DflError(f"{matte}: matte label is {mask.shape[1]}x{mask.shape[0]}, the face is "
                       f"{record.meta.size}x{record.meta.size}; import the mattes again (dfl-vfx xseg import-mattes)")
    return mask


def has_label(faceset: Faceset, record: FaceRecord) -> bool:
    """Whether the face has polygons or an imported matte."""
    return bool(record.meta.extra.get(POLYS_KEY)) or matte_label_path(faceset, record).is_file()


def labelled_faces(faceset: Faceset) -> list[Path]:
    """Paths of the faces that have a label (polygons or an imported matte), sorted by name."""
    return [record.path for record in faceset.records() if has_label(faceset, record)]


def label_summary(faceset: Faceset) -> dict[str, int]:
    """How many faces there are, and how many are labelled by polygons or by mattes."""
    records = faceset.records()
    polygons = sum(1 for r in records if r.meta.extra.get(POLYS_KEY))
    mattes = sum(1 for r in records if not r.meta.extra.get(POLYS_KEY) and matte_label_path(faceset, r).is_file())
    unlabelled = len(records) - polygons - mattes
    return {"faces": len(records), "polygons": polygons, "mattes": mattes, "unlabelled": unlabelled}
