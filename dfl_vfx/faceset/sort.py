"""Sort a faceset in place: rank faces by a key and rename them ``{rank:05d}_{original name}``.

Keys (``SORT_KEYS``), each computed on the face pixels converted to sRGB for display, or on the metadata:

- ``blur``: variance of the Laplacian inside the landmark hull (the centre half of the image when the hull
  is degenerate); sharpest first.
- ``yaw`` / ``pitch``: head pose from the metadata, in degrees, ascending (faces turned to the image's left,
  or looking down, first).
- ``hist``: greedy chain over the whole image's RGB histograms: each next face is the remaining one with the
  highest correlation (cv2.compareHist HISTCMP_CORREL, averaged over R, G, B) to the previous; the key is
  that correlation.
- ``brightness``: mean HSV value inside the hull, brightest first.
- ``hue``: circular mean HSV hue inside the hull in degrees [0, 360), ascending.
- ``face``: identity. Greedy chain by 128-d embedding distance (each next face is the nearest remaining one);
  with ``reference`` (an aligned face: a dfl_vfx faceset image or a DeepFaceLab aligned JPEG), ascending
  distance to it. The key is that distance.

Chains start at the first face by file name. Renaming is two-phase (all to temporary names, then to the
final ones), so no rename ever lands on a name another face still holds.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from dfl_vfx.color.ocio import SRGB_SPACE, WorkingSpace
from dfl_vfx.errors import DflError
from dfl_vfx.face.masks import hull_mask
from dfl_vfx.faceset.dfljpg import JPEG_SUFFIXES, read_dfl_metadata
from dfl_vfx.faceset.faceset import FaceRecord, Faceset, face_file_name
from dfl_vfx.faceset.metadata import FACE_ATTRIBUTE, FaceMetadata
from dfl_vfx.io.image import read_header, read_image

RANK_PREFIX = re.compile(r"^\d{5,}_")
HIST_BINS = 256
# Below this fraction of the image the landmark hull is treated as degenerate.
MIN_HULL_FRACTION = 0.01

Ranked = list[tuple[FaceRecord, float]]
SortKey = Callable[[Faceset, list[FaceRecord], Path | None], Ranked]


class _DisplayFaces:
    """Faces of a faceset as sRGB-encoded float32 [0, 1] RGB (what histograms, blur and identity expect)."""

    def __init__(self, faceset: Faceset) -> None:
        self.faceset = faceset
        self.to_srgb = WorkingSpace(plate_space=SRGB_SPACE, working_space=faceset.info.colorspace).from_working

    def rgb(self, record: FaceRecord) -> np.ndarray:
        return np.clip(self.to_srgb(self.faceset.read(record)), 0.0, 1.0)


def _uint8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def face_region(meta: FaceMetadata, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of the face: the landmark hull, or the centre half of the image if the hull is degenerate."""
    landmarks = meta.landmarks_array()
    mask = np.zeros(shape, dtype=bool)
    if np.isfinite(landmarks).all():
        mask = hull_mask(shape, landmarks, meta.eyebrows_expand_mod) > 0.5
    if mask.mean() < MIN_HULL_FRACTION:
        h, w = shape
        mask = np.zeros(shape, dtype=bool)
        mask[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
    return mask


def sharpness(rgb: np.ndarray, mask: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (0..255 scale) inside ``mask``."""
    grey = cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2GRAY).astype(np.float64) * 255.0
    laplacian = cv2.Laplacian(grey, cv2.CV_64F)
    return float(laplacian[mask].var())


def _hsv(rgb: np.ndarray) -> np.ndarray:
    """HSV of float RGB in [0, 1]: hue in degrees [0, 360), saturation and value in [0, 1]."""
    return cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2HSV)


def brightness(rgb: np.ndarray, mask: np.ndarray) -> float:
    """Mean HSV value inside ``mask`` (0..1)."""
    return float(_hsv(rgb)[..., 2][mask].mean())


def mean_hue(rgb: np.ndarray, mask: np.ndarray) -> float:
    """Circular mean HSV hue inside ``mask``, degrees in [0, 360)."""
    hue = np.radians(_hsv(rgb)[..., 0][mask].astype(np.float64))
    return math.degrees(math.atan2(np.sin(hue).mean(), np.cos(hue).mean())) % 360.0


def rgb_histograms(rgb: np.ndarray) -> np.ndarray:
    """(3, HIST_BINS) float32 histograms of the R, G, B channels of an sRGB image in [0, 1]."""
    image = _uint8(rgb)
    return np.stack(
        [cv2.calcHist([image], [c], None, [HIST_BINS], [0, 256]).ravel() for c in range(3)]
    ).astype(np.float32)


def histogram_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over channels of cv2.compareHist(HISTCMP_CORREL) between two (3, bins) histograms."""
    return float(np.mean([cv2.compareHist(a[c], b[c], cv2.HISTCMP_CORREL) for c in range(3)]))


def _standardised(histograms: np.ndarray) -> np.ndarray:
    """(N, 3 * bins) rows whose dot products are the channel-averaged Pearson (HISTCMP_CORREL) correlations."""
    h = histograms.astype(np.float64)
    centred = h - h.mean(axis=2, keepdims=True)
    norms = np.linalg.norm(centred, axis=2, keepdims=True)
    unit = np.divide(centred, norms, out=np.zeros_like(centred), where=norms > 0)
    return unit.reshape(len(h), -1) / math.sqrt(3.0)


def greedy_chain(distances_from: Callable[[int, np.ndarray], np.ndarray], count: int) -> list[tuple[int, float]]:
    """Order 0..count-1 from item 0, each next item the remaining one nearest the previous.

    ``distances_from(i, candidates)`` returns the distances from item i to each candidate index.
    Returns (index, distance to the previous item) pairs; the first has distance 0.
    """
    if count == 0:
        return []
    order = [(0, 0.0)]
    remaining = np.arange(1, count)
    while remaining.size:
        distances = distances_from(order[-1][0], remaining)
        best = int(np.argmin(distances))
        order.append((int(remaining[best]), float(distances[best])))
        remaining = np.delete(remaining, best)
    return order


def _by_value(records: list[FaceRecord], values: list[float], descending: bool) -> Ranked:
    order = sorted(range(len(records)), key=lambda i: (-values[i] if descending else values[i], records[i].name))
    return [(records[i], values[i]) for i in order]


def _pixel_key(measure: Callable[[np.ndarray, np.ndarray], float], descending: bool) -> SortKey:
    def key(faceset: Faceset, records: list[FaceRecord], reference: Path | None) -> Ranked:
        faces = _DisplayFaces(faceset)
        values = []
        for record in records:
            rgb = faces.rgb(record)
            values.append(measure(rgb, face_region(record.meta, rgb.shape[:2])))
        return _by_value(records, values, descending)

    return key


def _pose_key(angle: str) -> SortKey:
    def key(faceset: Faceset, records: list[FaceRecord], reference: Path | None) -> Ranked:
        return _by_value(records, [math.degrees(r.meta.pose[angle]) for r in records], descending=False)

    return key


def sort_by_hist(faceset: Faceset, records: list[FaceRecord], reference: Path | None) -> Ranked:
    faces = _DisplayFaces(faceset)
    if not records:
        return []
    unit = _standardised(np.stack([rgb_histograms(faces.rgb(record)) for record in records]))
    chain = greedy_chain(lambda i, candidates: -(unit[candidates] @ unit[i]), len(records))
    return [(records[i], 1.0 if n == 0 else -distance) for n, (i, distance) in enumerate(chain)]


def _reference_embedding(reference: Path) -> np.ndarray:
    """Identity embedding of an aligned reference face (dfl_vfx faceset image or DeepFaceLab aligned JPEG)."""
    from dfl_vfx.face.identity import FaceEmbedder

    reference = Path(reference)
    if reference.suffix.lower() in JPEG_SUFFIXES:
        dfl = read_dfl_metadata(reference)
        if dfl is not None and "landmarks" in dfl:
            bgr = cv2.imread(str(reference), cv2.IMREAD_COLOR)
            if bgr is None:
                raise DflError(f"{reference}: cannot decode the reference JPEG")
            landmarks = np.asarray(dfl["landmarks"], dtype=np.float64).reshape(68, 2)
            return FaceEmbedder().embed(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), landmarks)
    header = read_header(reference)
    text = header.metadata.get(FACE_ATTRIBUTE)
    if not isinstance(text, str):
        raise DflError(
            f"{reference}: not an aligned face (no {FACE_ATTRIBUTE} metadata or DeepFaceLab APP15); "
            "give a face from a faceset as --reference"
        )
    meta = FaceMetadata.from_json(text, str(reference))
    to_srgb = WorkingSpace(plate_space=SRGB_SPACE, working_space=meta.colorspace).from_working
    rgb = np.clip(to_srgb(read_image(reference).rgb()), 0.0, 1.0)
    return FaceEmbedder().embed(_uint8(rgb), meta.landmarks_array())


def sort_by_face(faceset: Faceset, records: list[FaceRecord], reference: Path | None) -> Ranked:
    from dfl_vfx.face.identity import FaceEmbedder

    target = None if reference is None else _reference_embedding(reference)  # a bad reference fails first
    faces = _DisplayFaces(faceset)
    embedder = FaceEmbedder()
    embeddings = np.array(
        [embedder.embed(_uint8(faces.rgb(r)), r.meta.landmarks_array()) for r in records], dtype=np.float64
    ).reshape(len(records), -1)
    if target is not None:
        return _by_value(records, np.linalg.norm(embeddings - target, axis=1).tolist(), descending=False)
    chain = greedy_chain(
        lambda i, candidates: np.linalg.norm(embeddings[candidates] - embeddings[i], axis=1), len(records)
    )
    return [(records[i], distance) for i, distance in chain]


SORT_KEYS: dict[str, SortKey] = {
    "blur": _pixel_key(sharpness, descending=True),
    "yaw": _pose_key("yaw"),
    "pitch": _pose_key("pitch"),
    "hist": sort_by_hist,
    "brightness": _pixel_key(brightness, descending=True),
    "hue": _pixel_key(mean_hue, descending=False),
    "face": sort_by_face,
}


def original_name(record: FaceRecord) -> str:
    """The face's name without a rank prefix from an earlier sort.

    The naming rule rebuilt from the metadata decides first (so a DeepFaceLab-style ``00001_0.png``, whose
    frame stem is all digits, is never mistaken for a ranked name); a hand-renamed face loses a leading
    ``NNNNN_`` if it has one.
    """
    name = record.name
    expected = face_file_name(record.meta.source_filename, record.meta.face_index, record.path.suffix)
    if name == expected or re.fullmatch(r"\d{5,}_" + re.escape(expected), name):
        return expected
    stripped = RANK_PREFIX.sub("", name, count=1)
    return stripped if Path(stripped).stem else name


def _rename_all(root: Path, moves: list[tuple[str, str]]) -> None:
    """Rename old -> new for every pair via temporary names; undo what was done if a rename fails."""
    sources = {old for old, _ in moves}
    blocked = [new for _, new in moves if new not in sources and (root / new).exists()]
    if blocked:
        raise DflError(f"{root / blocked[0]}: already exists and is not one of the faces being sorted; move it away")
    token = uuid.uuid4().hex[:8]
    temps = [f"sorting-{token}-{i:05d}{Path(old).suffix}" for i, (old, _) in enumerate(moves)]
    done: list[tuple[Path, Path]] = []
    try:
        for (old, _), temp in zip(moves, temps, strict=True):
            (root / old).rename(root / temp)
            done.append((root / old, root / temp))
        for (_, new), temp in zip(moves, temps, strict=True):
            (root / temp).rename(root / new)
            done.append((root / temp, root / new))
    except OSError as exc:
        for source, target in reversed(done):
            target.rename(source)
        raise DflError(f"{root}: renaming faces failed ({exc}); the faceset was left as it was") from None


def sort_faceset(
    faceset: Faceset, by: str, *, reference: Path | None = None, dry_run: bool = False
) -> list[tuple[str, str, float]]:
    """Rank the faces by ``by`` and rename them ``{rank:05d}_{original}``; returns (old, new, key) rows.

    With ``dry_run`` nothing is renamed. ``reference`` applies to ``by="face"`` only.
    """
    if by not in SORT_KEYS:
        raise DflError(f"unknown sort key {by!r}; use one of {', '.join(SORT_KEYS)}")
    if reference is not None and by != "face":
        raise DflError(f"a reference face applies to sorting by face only, not by {by!r}")
    ranked = SORT_KEYS[by](faceset, faceset.records(), reference)
    width = max(5, len(str(len(ranked) - 1)))
    rows = [
        (record.name, f"{rank:0{width}d}_{original_name(record)}", float(key))
        for rank, (record, key) in enumerate(ranked)
    ]
    if not dry_run:
        _rename_all(faceset.root, [(old, new) for old, new, _ in rows if old != new])
    return rows
