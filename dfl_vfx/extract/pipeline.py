"""Face extraction from a plate sequence into a faceset.

Two passes over the shot:

1. **Detect** (parallel over frames): read the frame and find its faces with `dfl_vfx.face.finder` (detection on
   a downscaled sRGB working copy, 68 landmarks fitted on full-resolution crops, then largest, nearest to a point
   or by identity). By default the copy is as small as still shows a ``--min-face`` face (a tenth of the frame's
   shorter side) at the detector's smallest size; see `dfl_vfx.face.detect.base.detection_plan`.
2. **Align** (parallel over frames), after faces are linked into tracks and their landmarks smoothed over time:
   warp each face with DeepFaceLab's alignment in scene-linear light, convert it to the working space and write
   it to the faceset with its metadata.

Face coordinates (rects, landmarks, matrices) are absolute image pixels: the display window's origin is where
the file puts it, and overscan pixels have negative or beyond-size coordinates. Detections are cached in
``FACESET/alignments.json`` (`dfl_vfx.faceset.alignments`), so a rerun with the same detection options skips pass 1
for known frames, and pass 2 skips frames whose faces are already written. Both passes are frame loops of
`dfl_vfx.io.shot_runner`, which keeps ``FACESET/extract_summary.json`` up to date as frames finish (status running,
then complete or interrupted, with each pass's done, skipped, missing and failed frames).
"""

from __future__ import annotations

import functools
import json
import logging
import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from dfl_vfx.color.ocio import (
    WORKING_SPACE,
    WorkingSpace,
    load_config,
    plate_colorspace,
    resolve_colorspace,
    unpremultiply,
)
from dfl_vfx.errors import DflError
from dfl_vfx.extract.parent_watch import exit_with_parent
from dfl_vfx.face.align import aligned_quad, get_transform_mat, transform_points
from dfl_vfx.face.crop import crop_face
from dfl_vfx.face.detect import create_backend
from dfl_vfx.face.detect.base import AUTO
from dfl_vfx.face.draw import draw_landmarks, draw_quad
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.face.finder import FaceSearch, faces_needed, reference_embeddings
from dfl_vfx.face.finder import find_plate_faces as find_plate_faces  # re-exported: bench/extract_bench.py
from dfl_vfx.face.pose import estimate_pitch_yaw_roll
from dfl_vfx.face.selection import FaceFilter
from dfl_vfx.face.smoothing import smooth_landmark_track
from dfl_vfx.face.tracking import link_tracks
from dfl_vfx.faceset import FaceMetadata, Faceset
from dfl_vfx.faceset.alignments import (
    ALIGNMENTS_FILE,
    Alignments,
    FoundFace,
    FrameFaces,
    TrackedFace,
    read_alignments,
    write_alignments,
)
from dfl_vfx.io.atomic import atomic_path, remove_stale_temps
from dfl_vfx.io.image import Image, read_header, read_image, rgba_channels, set_threads
from dfl_vfx.io.outputs import check_output_dir
from dfl_vfx.io.sequence import FrameSequence, format_frames, open_sequence
from dfl_vfx.io.shot_runner import COMPLETE, INTERRUPTED, RUNNING, FrameRun, SummaryFile, missing_frames, run_frames

log = logging.getLogger(__name__)
T = TypeVar("T")

SUMMARY_FILE = "extract_summary.json"


@dataclass
class ExtractOptions:
    """Everything `dfl-vfx extract` can be told; defaults follow DeepFaceLab's where it has one."""

    face_type: str = "wf"
    size: int = 512
    detector: str = "dlib"
    detector_options: dict[str, str] = field(default_factory=dict)
    detect_size: int = AUTO  # longest side of the detection copy; AUTO (0): derived from min_face
    min_face: int = AUTO  # smallest face to find, in plate pixels; AUTO (0): a tenth of the shorter side, >= 40
    select: str = "all"
    max_faces: int = 0
    point: tuple[float, float] | None = None
    reference: list[str] = field(default_factory=list)
    identity_threshold: float = 0.6
    smooth: int = 0
    colorspace: str | None = None
    ocio_config: str | None = None
    encoding: str = "exr"  # half EXR: faster to write than 16-bit PNG and keeps values above 1
    jobs: int = 1
    debug_dir: str | None = None
    overwrite: bool = False
    progress: bool | None = None  # None: a bar when stderr is a terminal, log lines otherwise; False: nothing

    def enough_faces(self) -> int:
        """How many faces a frame needs for the selection to be decided by the largest (0: every face counts)."""
        return faces_needed(self.select, self.max_faces)

    def face_search(self, reference: np.ndarray | None = None) -> FaceSearch:
        """How a frame's faces are found and chosen under these options (a new backend, not shared)."""
        return FaceSearch(
            backend=create_backend(self.detector, **self.detector_options),
            face_filter=FaceFilter(self.select, self.max_faces, self.point, self.identity_threshold),
            detect_size=self.detect_size, min_face=self.min_face, reference=reference,
        )

    def detection_key(self) -> dict[str, object]:
        """The options that change detections: a cached pass 1 is reused only when these match."""
        return {
            "detector": self.detector,
            "detector_options": dict(sorted(self.detector_options.items())),
            "detect_size": self.detect_size,
            "min_face": self.min_face,
            "select": self.select,
            "max_faces": self.max_faces,
            "point": list(self.point) if self.point else None,
            "reference": sorted(self.reference),
            "identity_threshold": self.identity_threshold,
            "colorspace": self.colorspace,
        }


@dataclass
class ExtractSummary:
    """What an extraction did; printed at the end and saved as ``extract_summary.json``."""

    plate: str
    faceset: str
    frames: int = 0
    faces_written: int = 0
    faces_kept: int = 0
    tracks: int = 0
    frames_without_face: list[int] = field(default_factory=list)
    skipped: list[dict[str, object]] = field(default_factory=list)  # {frame, reason}
    warnings: list[str] = field(default_factory=list)
    resumed_frames: int = 0  # frames whose faces were already in the faceset (not rewritten)
    detection: str = ""  # how the first frame was searched (copy size, smallest face)
    seconds: float = 0.0
    frames_per_second: float = 0.0
    status: str = RUNNING  # running (or the process died), interrupted, complete
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    detect: FrameRun = field(default_factory=FrameRun)  # pass 1; skipped: detections cached by an earlier run
    align: FrameRun = field(default_factory=FrameRun)  # pass 2 over frames with faces; skipped: already written

    def to_json(self) -> str:
        """The summary file's text: every field, the passes' frame records included."""
        data = {name: value for name, value in asdict(self).items() if name not in ("detect", "align")}
        return json.dumps(data | {"frames_read": self.frames_read, "detect": self.detect.to_dict(),
                                  "align": self.align.to_dict()}, indent=2)

    @property
    def frames_read(self) -> int:
        """Frames searched for faces: the asked frames less the skipped ones (missing, unreadable)."""
        return self.frames - len({item["frame"] for item in self.skipped})

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        read = f"{self.frames_read} of {self.frames}" if self.frames_read != self.frames else f"{self.frames}"
        out = [
            f"extracted {self.faces_written} face(s) from {read} frame(s) into {self.faceset} "
            f"in {self.seconds:.1f} s ({self.frames_per_second:.2f} frames/s), {self.tracks} track(s)",
        ]
        if self.detection:
            out.append(f"  {self.detection}")
        if self.resumed_frames:
            out.append(f"  {self.resumed_frames} frame(s) already extracted were kept (use --overwrite to redo)")
        if self.frames_without_face:
            missing = self.frames_without_face
            out.append(f"  no face in {len(missing)} frame(s): {format_frames(missing)}")
        for item in self.skipped:
            out.append(f"  skipped frame {item['frame']}: {item['reason']}")
        out.extend(f"  warning: {w}" for w in self.warnings)
        return out

    def nothing_extracted(self) -> str:
        """Why no face was kept, and what to do: one line for the error an empty extraction ends with."""
        unreadable = [item for item in self.skipped if "file missing" not in str(item["reason"])]
        if not self.frames_without_face and self.skipped:
            example = (unreadable or self.skipped)[0]
            return (f"no faces extracted: none of the {len(self.skipped)} frame(s) could be used "
                    f"(frame {example['frame']}: {example['reason']})")
        return (f"no faces extracted: no face found in {len(self.frames_without_face)} frame(s); if the faces are "
                "smaller than --min-face (see the detection line above), give a smaller --min-face")


# ----------------------------------------------------------------------------------------------------------
# Per-process worker state (one backend, colour converters and embedder per process).


@dataclass
class _Worker:
    options: ExtractOptions
    search: FaceSearch
    faceset_root: str = ""
    spaces: dict[str, WorkingSpace] = field(default_factory=dict)

    def space(self, plate_space: str) -> WorkingSpace:
        if plate_space not in self.spaces:
            self.spaces[plate_space] = WorkingSpace(plate_space, WORKING_SPACE, self.options.ocio_config)
        return self.spaces[plate_space]


# The worker state of the running extraction. Thread-local: two extractions may run in threads of one process
# (jobs=1 runs in the caller's thread), each with its own backend and options.
_LOCAL = threading.local()


def _new_worker(options: ExtractOptions, reference: np.ndarray | None, faceset_root: str) -> _Worker:
    return _Worker(options=options, search=options.face_search(reference), faceset_root=faceset_root)


def _current_worker() -> _Worker:
    worker = getattr(_LOCAL, "worker", None)
    assert worker is not None, "extraction worker used before set-up"
    return worker


def _init_pool_worker(options: ExtractOptions, reference: np.ndarray | None, faceset_root: str, threads: int,
                      parent_pid: int) -> None:
    """Set-up of a pool process: die with the parent, cap OpenCV and OpenImageIO threads, make the worker state."""
    exit_with_parent(parent_pid)
    if threads:
        cv2.setNumThreads(threads)
        set_threads(threads)
    _LOCAL.worker = _new_worker(options, reference, faceset_root)


def _read_plate(
    path: Path, frame: int, warnings: list[str], rows: tuple[int, int] | None = None, with_alpha: bool = True
) -> tuple[Image, np.ndarray, np.ndarray | None]:
    """The frame (or a band of its rows), its finite RGB (NaN/Inf replaced by 0 with a warning) and alpha.

    Only the colour and alpha channels are read; other layers are not needed to find or align faces.
    """
    channels = rgba_channels(path)
    if not with_alpha:
        channels = [c for c in channels if c != "A"]
    image = read_image(path, channels=channels, rows=rows)
    rgb = image.pixels[:, :, :3] if channels[:3] == ["R", "G", "B"] and len(channels) == 3 else image.rgb()
    bad = ~np.isfinite(rgb)
    if bad.any():
        warnings.append(f"frame {frame}: {int(bad.sum())} NaN/Inf value(s) in {path.name} treated as 0")
        rgb[bad] = 0.0
    alpha = image.alpha()
    if alpha is not None and alpha.min() >= 1.0:
        alpha = None  # opaque: nothing to unpremultiply
    return image, rgb, alpha


def _detect_frame(frame: int, path: str) -> FrameFaces:
    worker = _current_worker()
    opts = worker.options
    result = FrameFaces(frame=frame)
    try:
        image, rgb, _ = _read_plate(Path(path), frame, result.warnings, with_alpha=False)
        space = worker.space(plate_colorspace(opts.colorspace, image.metadata, load_config(opts.ocio_config)))
        result.plate_colorspace = space.plate_space
        faces = worker.search.find(rgb, space.display_uint8)
    except DflError as exc:
        result.error = str(exc)
        return result
    origin = np.array([image.data_window.x, image.data_window.y], np.float64)
    for face in faces:
        l, t, r, b = face.rect
        result.faces.append(FoundFace(
            rect=[float(l + origin[0]), float(t + origin[1]), float(r + origin[0]), float(b + origin[1])],
            score=float(face.score),
            landmarks=(face.landmarks + origin).round(4).tolist(),
        ))
    return result


# ----------------------------------------------------------------------------------------------------------
# Pass 2: align and write.


def face_crop(
    rgb: np.ndarray, origin: tuple[int, int], landmarks: np.ndarray, size: int, face_type: FaceType
) -> tuple[np.ndarray, np.ndarray]:
    """(aligned face in plate colours, absolute frame->aligned matrix) of the unpremultiplied plate ``rgb``: the
    crop extraction, the merger and eval share (:func:`dfl_vfx.face.crop.crop_face`)."""
    return crop_face(rgb, None, origin, landmarks, face_type, size)


def _face_rows(jobs: list[TrackedFace], size: int, face_type: FaceType) -> tuple[int, int]:
    """The band of scanlines (y_begin, y_end) that all the faces' aligned crops need."""
    quads = [aligned_quad(get_transform_mat(np.asarray(j.landmarks), size, face_type), size) for j in jobs]
    ys = np.concatenate([q[:, 1] for q in quads])
    return int(np.floor(ys.min())) - 4, int(np.ceil(ys.max())) + 5


def _align_frame(frame: int, path: str, plate_space: str, jobs: list[TrackedFace]) -> tuple[int, int, list[str]]:
    worker = _current_worker()
    opts = worker.options
    face_type = FaceType.parse(opts.face_type)
    faceset = Faceset.open(worker.faceset_root)
    rows = None if opts.debug_dir else _face_rows(jobs, opts.size, face_type)  # debug frames need it all
    try:
        image, rgb, alpha = _read_plate(Path(path), frame, [], rows)
    except DflError as exc:
        return frame, 0, [str(exc)]
    space = worker.space(plate_space)
    if alpha is not None:
        rgb = unpremultiply(rgb, alpha)  # colour is transformed and resampled unpremultiplied
    origin = (image.data_window.x, image.data_window.y)
    written = 0
    debug = []
    for job in jobs:
        landmarks = np.asarray(job.landmarks, np.float64)
        crop, mat = face_crop(rgb, origin, landmarks, opts.size, face_type)
        aligned = transform_points(landmarks, mat)
        pitch, yaw, roll = estimate_pitch_yaw_roll(aligned, opts.size)
        meta = FaceMetadata(
            face_type=face_type.cli_name,
            size=opts.size,
            source_filename=Path(path).name,
            source_frame=frame,
            face_index=job.face_index,
            source_rect=job.rect,
            source_landmarks=landmarks.round(4).tolist(),
            landmarks=aligned.round(4).tolist(),
            image_to_face_mat=mat.tolist(),
            pose={"pitch": pitch, "yaw": yaw, "roll": roll},
            detector=opts.detector,
            score=job.score,
            colorspace=space.working_space,
            plate_colorspace=space.plate_space,
            track_id=job.track_id,
            extra={"raw_source_landmarks": job.raw_landmarks, "display_window": list(_window(image.display_window))},
        )
        faceset.add(job.name, space.to_working(crop), meta)
        written += 1
        debug.append((landmarks, mat, job.rect))
    if opts.debug_dir:
        _write_debug_frame(Path(opts.debug_dir) / f"{Path(path).stem}.jpg", rgb, origin, space, debug, opts.size)
    return frame, written, []


def _window(w) -> tuple[int, int, int, int]:
    return (w.x, w.y, w.width, w.height)


def _write_debug_frame(target: Path, rgb: np.ndarray, origin: tuple[int, int], space: WorkingSpace,
                       faces: list[tuple[np.ndarray, np.ndarray, list[float]]], size: int) -> None:
    """A display-referred JPEG of the whole data window with rects, landmarks and aligned crop outlines."""
    shown = space.display_uint8(rgb).copy()
    for landmarks, mat, rect in faces:
        shift = np.array(origin, np.float64)
        shown = draw_quad(shown, aligned_quad(mat, size) - shift, (255, 200, 0))
        l, t, r, b = (np.array(rect) - np.tile(shift, 2)).round().astype(int)
        cv2.rectangle(shown, (l, t), (r, b), (255, 64, 64), 2)
        shown = draw_landmarks(shown, landmarks - shift)
    with atomic_path(target) as tmp:
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(shown, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        tmp.write_bytes(data.tobytes())


# ----------------------------------------------------------------------------------------------------------
# Driver.


def _in_worker(worker: _Worker, fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` with ``worker`` as this thread's worker state (another extraction may have used the thread)."""
    _LOCAL.worker = worker
    return fn(*args)


class _Workers:
    """Where per-frame work runs: this thread (jobs=1) or one spawn pool shared by both passes.

    Pool workers exit when this process dies (`exit_with_parent`), even when it is killed with SIGKILL.
    """

    def __init__(self, options: ExtractOptions, init_args: tuple) -> None:
        self.options = options
        self.init_args = init_args
        self.pool: ProcessPoolExecutor | None = None
        self.local: _Worker | None = None

    def run(self, fn: Callable[..., T], frames: list[int], arguments: Callable[[int], tuple], desc: str,
            run: FrameRun, on_result: Callable[[int, T], str | None], summary: SummaryFile,
            already_done: Callable[[int], bool], missing: dict[int, str] | None = None) -> None:
        """``fn(*arguments(frame))`` for each frame through the shot runner, reporting progress as ``desc``.

        Frames in ``missing`` and those ``already_done`` are not run; one frame to do runs in this thread.
        """
        missing = missing or {}
        common = dict(arguments=arguments, run=run, missing=missing, already_done=already_done,
                      on_result=on_result, summary=summary, progress=self.options.progress, desc=desc)
        todo = [f for f in frames if f not in missing and not already_done(f)]
        if self.options.jobs <= 1 or len(todo) <= 1:
            if self.local is None:
                self.local = _new_worker(*self.init_args)
            run_frames(frames, functools.partial(_in_worker, self.local, fn), **common)
            return
        if self.pool is None:
            threads = max(1, (os.cpu_count() or 1) // self.options.jobs)
            self.pool = ProcessPoolExecutor(
                self.options.jobs, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_pool_worker, initargs=(*self.init_args, threads, os.getpid()),
            )
        run_frames(frames, fn, executor=self.pool, in_flight=2 * self.options.jobs, **common)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None
        if self.local is not None and getattr(_LOCAL, "worker", None) is self.local:
            _LOCAL.worker = None  # let the backend and embedder go with the extraction


def _cached_detections(path: Path, key: dict[str, object]) -> dict[int, FrameFaces]:
    """Pass-1 results of an earlier run with the same detection options (none when the file is unusable)."""
    if not path.is_file():
        return {}
    try:
        alignments = read_alignments(path)
    except DflError as exc:
        log.warning("%s; detecting every frame again", exc)
        return {}
    return alignments.frames if alignments.detection == key else {}


def _validate(options: ExtractOptions) -> FaceType:
    face_type = FaceType.parse(options.face_type)
    if not face_type.has_crop:
        raise DflError("--face-type mark_only writes no faces; choose half, mf, f, wf or head")
    if not 64 <= options.size <= 4096:
        raise DflError(f"--size {options.size} is out of range; use 64..4096 (DeepFaceLab default 512)")
    if options.encoding not in ("png16", "exr"):
        raise DflError(f"--format {options.encoding!r} is unknown; use png16 or exr")
    if options.jobs < 1:
        raise DflError(f"--jobs {options.jobs} must be 1 or more")
    if options.detect_size < 0:
        raise DflError(f"--detect-size {options.detect_size} must be a number of pixels, or auto")
    if options.min_face < 0:
        raise DflError(f"--min-face {options.min_face} must be a face size in pixels, or auto")
    if options.smooth < 0:
        raise DflError(f"--smooth {options.smooth} must be 0 (off) or a window in frames")
    if options.colorspace:
        resolve_colorspace(options.colorspace, load_config(options.ocio_config))
    FaceFilter(options.select, options.max_faces, options.point, options.identity_threshold)
    if options.select == "identity" and not options.reference:
        raise DflError("--select identity needs --reference IMAGE (a photo of the person to keep)")
    create_backend(options.detector, **options.detector_options)
    return face_type


def plan_tracks(
    frames: dict[int, FrameFaces], sources: dict[int, str], smooth: int, name_for: Callable[[str, int], str]
) -> dict[int, list[TrackedFace]]:
    """Link faces into tracks, smooth each track's landmarks over time, and name every face.

    ``sources`` maps frames to their file names; ``name_for(source, face_index)`` is the faceset's naming rule.
    """
    order = sorted(f for f in frames if frames[f].error is None)
    rects = [[tuple(face.rect) for face in frames[f].faces] for f in order]
    ids = link_tracks(rects)
    jobs: dict[int, list[TrackedFace]] = {}
    tracks: dict[int, list[tuple[int, int]]] = {}
    for f, frame_ids in zip(order, ids, strict=True):
        for i, track in enumerate(frame_ids):
            tracks.setdefault(track, []).append((f, i))
    smoothed: dict[tuple[int, int], np.ndarray] = {}
    for members in tracks.values():
        # A track spans first..last frame; frames where it is absent are gaps (invalid) in the filter.
        span = list(range(members[0][0], members[-1][0] + 1))
        where = dict(members)
        track = np.zeros((len(span), 68, 2))
        valid = np.zeros(len(span), bool)
        for k, f in enumerate(span):
            if f in where:
                track[k] = frames[f].faces[where[f]].landmarks
                valid[k] = True
        result = smooth_landmark_track(track, smooth, valid) if smooth > 1 else track
        for k, f in enumerate(span):
            if valid[k]:
                smoothed[(f, where[f])] = result[k]
    for f, frame_ids in zip(order, ids, strict=True):
        for i, track in enumerate(frame_ids):
            face = frames[f].faces[i]
            jobs.setdefault(f, []).append(
                TrackedFace(
                    name=name_for(sources[f], i),
                    face_index=i,
                    track_id=track,
                    rect=list(face.rect),
                    score=float(face.score),
                    landmarks=smoothed[(f, i)].tolist(),
                    raw_landmarks=face.landmarks,
                )
            )
    return jobs


def extract(plate: str, faceset_dir: str, options: ExtractOptions, frames: str | None = None) -> ExtractSummary:
    """Extract aligned faces of ``plate`` (a sequence spec) into the faceset at ``faceset_dir``."""
    start = time.perf_counter()
    face_type = _validate(options)
    check_output_dir(faceset_dir, "--out")
    if options.debug_dir:
        check_output_dir(options.debug_dir, "--debug")
    sequence: FrameSequence = open_sequence(plate, frames)
    for folder in (faceset_dir, options.debug_dir):
        if folder:
            remove_stale_temps(folder)  # what a killed run left; the temps of live writers stay
    faceset = Faceset.create(
        faceset_dir, face_type=face_type.cli_name, size=options.size, colorspace=WORKING_SPACE,
        encoding=options.encoding,
    )
    summary = ExtractSummary(plate=sequence.pattern, faceset=str(faceset_dir), frames=len(sequence))
    missing = missing_frames(sequence)
    summary.skipped.extend({"frame": f, "reason": reason} for f, reason in sorted(missing.items()))
    present = [f for f in sequence.frames if f not in missing]
    if present:
        summary.detection = describe_detection(sequence.path(present[0]), options)
    reference = reference_embeddings(options.reference, create_backend(options.detector, **options.detector_options),
                                     options.colorspace, options.ocio_config, options.detect_size, options.min_face)

    def render() -> str:
        summary.seconds = time.perf_counter() - start
        return summary.to_json()

    summary_file = SummaryFile(Path(faceset_dir) / SUMMARY_FILE, render)
    workers = _Workers(options, (options, reference, str(faceset_dir)))
    try:
        _detect_and_align(workers, sequence, missing, summary, summary_file, faceset, options)
        summary.status = COMPLETE
    except BaseException:
        summary.status = INTERRUPTED
        raise
    finally:
        workers.close()
        summary.seconds = time.perf_counter() - start
        summary.frames_per_second = len(present) / summary.seconds if summary.seconds > 0 else 0.0
        summary_file.write()
    return summary


def _detect_and_align(workers: _Workers, sequence: FrameSequence, missing: dict[int, str], summary: ExtractSummary,
                      summary_file: SummaryFile, faceset: Faceset, options: ExtractOptions) -> None:
    """Pass 1 over the frames not detected yet, tracks and smoothing, pass 2 over the frames not written yet."""
    alignments_path = Path(faceset.root) / ALIGNMENTS_FILE
    key = options.detection_key()
    cached = {} if options.overwrite else _cached_detections(alignments_path, key)
    detected = {f: cached[f] for f in sequence.frames if f not in missing and f in cached and cached[f].error is None}

    def found(frame: int, result: FrameFaces) -> str | None:
        detected[frame] = result
        return result.error

    try:
        workers.run(_detect_frame, sequence.frames, lambda f: (f, str(sequence.path(f))), "detect", summary.detect,
                    found, summary_file, already_done=detected.__contains__, missing=missing)
    except BaseException:  # interrupted (SIGTERM, Ctrl-C): keep the detections made so far for the rerun
        write_alignments(alignments_path, Alignments(key, {f: r for f, r in detected.items() if r.error is None}))
        raise
    for f in sorted(detected):
        result = detected[f]
        summary.warnings.extend(result.warnings)
        if result.error:
            summary.skipped.append({"frame": f, "reason": result.error})
        elif not result.faces:
            summary.frames_without_face.append(f)

    sources = {f: sequence.path(f).name for f in detected}
    tracked = plan_tracks(detected, sources, options.smooth, faceset.name_for)
    write_alignments(alignments_path, Alignments(key, detected, tracked))
    summary.tracks = len({face.track_id for faces in tracked.values() for face in faces})
    summary.faces_kept = sum(len(faces) for faces in tracked.values())

    def written(frame: int, result: tuple[int, int, list[str]]) -> None:
        _, count, warnings = result
        summary.faces_written += count
        summary.warnings.extend(warnings)

    def already_written(frame: int) -> bool:
        return not options.overwrite and all(faceset.has(face.name) for face in tracked[frame])

    workers.run(_align_frame, sorted(tracked),
                lambda f: (f, str(sequence.path(f)), detected[f].plate_colorspace, tracked[f]), "align",
                summary.align, written, summary_file, already_done=already_written)
    summary.resumed_frames = len(summary.align.skipped)


def describe_detection(path: Path, options: ExtractOptions) -> str:
    """How a frame like ``path`` is searched: the smallest face and the detection copy's size, for the summary."""
    try:
        rgba_channels(path)  # a frame without colour is not searched at all
        window = read_header(path).data_window
    except DflError:
        return ""  # the frame's own error is reported with the skipped frames
    search = options.face_search()
    return f"detection: {search.describe((window.height, window.width))}"


def default_jobs() -> int:
    """One worker per core."""
    return max(1, os.cpu_count() or 1)
