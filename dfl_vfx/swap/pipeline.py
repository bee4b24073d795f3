"""`dfl-vfx swap` over a frame range: read, swap and write frames concurrently, skip finished ones, summarise.

Each frame is one task (read -> crop -> infer -> merge -> write its two files, docs/dev/swap-output.md) on a thread
pool of ``jobs`` workers; OpenImageIO, ONNX Runtime, torch and the native merge release the GIL, so the stages of
neighbouring frames overlap and the slowest stage sets the pace. Outputs are written to a temporary name and renamed.
A rerun skips frames whose output (and layers file) exist and were made with the same settings (``settings_hash`` in
the header); an interrupted run leaves only whole files.

The frame loop is the shot runner's (`dfl_vfx.io.shot_runner`): the summary is rewritten (atomically) after every
finished frame with ``status`` running, then complete or interrupted, so even a native crash leaves the frames done
so far; a frame that fails (unreadable, missing) is listed and the run goes on. A whole-sequence run writes
``OUT/swap_summary.json``; a ``--frames`` chunk writes ``OUT/swap_summary.<frames>.json`` (e.g.
``swap_summary.1001-1050.json``), so farm chunks sharing a folder do not overwrite each other's.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dfl_vfx.errors import DflError
from dfl_vfx.io.atomic import remove_stale_temps
from dfl_vfx.io.image import file_compression, lossless_compression, read_header
from dfl_vfx.io.outputs import check_output_dir
from dfl_vfx.io.sequence import FrameSequence, format_frames, open_sequence, output_sequence
from dfl_vfx.io.shot_runner import COMPLETE, INTERRUPTED, RUNNING, FrameRun, SummaryFile, missing_frames, run_frames
from dfl_vfx.merge.merger import FacePlan
from dfl_vfx.swap.engine import (
    StageTimes,
    SwapEngine,
    SwapSettings,
    check_output_format,
)
from dfl_vfx.swap.faces import FaceFinder, check_faceset_matches, faceset_plans
from dfl_vfx.swap.frame import swap_frame
from dfl_vfx.swap.layout import LAYERS_FOLDER, frame_written_with

log = logging.getLogger(__name__)

SUMMARY_FILE = "swap_summary.json"  # a whole-sequence run; a --frames chunk: swap_summary.<frames>.json
__all__ = ["COMPLETE", "INTERRUPTED", "RUNNING", "SUMMARY_FILE", "ShotSwapper", "SwapSummary", "summary_name",
           "swap_shot"]


def summary_name(chunk: str | None) -> str:
    """``swap_summary.json`` for the whole sequence, ``swap_summary.1001-1050.json`` for a ``--frames`` chunk."""
    return SUMMARY_FILE if chunk is None else f"swap_summary.{chunk}.json"


@dataclass
class SwapSummary:
    """What a swap run did; printed and saved as ``OUT/swap_summary[.<frames>].json`` while the run goes.

    The frames' fate (done, skipped, failed, missing, status) is the shot runner's record, ``run``.
    """

    plate: str
    out: str
    model: str
    backend: str = ""
    device: str = ""
    chunk: str | None = None  # the --frames chunk, None for the whole sequence
    run: FrameRun = field(default_factory=FrameRun)
    no_face: list[int] = field(default_factory=list)
    faces: int = 0
    times: StageTimes = field(default_factory=StageTimes)
    setup_s: float = 0.0  # loading the model and planning, before the first frame
    wall_s: float = 0.0
    settings: dict[str, object] = field(default_factory=dict)
    plate_compression: str = ""  # the plate's first frame's EXR compression ("dwaa:45")
    compression: str = ""  # what the delivered frames are written with
    compression_note: str = ""  # why it differs from the plate's when nobody asked for a codec
    parts_note: str = ""  # a multi-part plate: only its first part is delivered

    @property
    def status(self) -> str:
        """running (or the process died), interrupted (stopped or an error), complete."""
        return self.run.status

    @property
    def error(self) -> str:
        """What stopped an interrupted run, when it was not a signal."""
        return self.run.error

    @property
    def frames_total(self) -> int:
        return self.run.total

    @property
    def done(self) -> list[int]:
        return self.run.done

    @property
    def skipped(self) -> list[int]:
        """Frames already written with the same settings."""
        return self.run.skipped

    @property
    def failed(self) -> dict[int, str]:
        """Frames that could not be swapped, missing plate files included, with the reason."""
        return dict(sorted((self.run.missing | self.run.failed).items()))

    @property
    def frames_s(self) -> float:
        """The frame loop: what --frames chunks scale with."""
        return self.run.frames_s

    @property
    def fps(self) -> float:
        """Frames per second of the frame loop (model loading excluded)."""
        return self.run.fps

    def to_json(self) -> str:
        timing = {f"{k}_s": round(v, 4) for k, v in asdict(self.times).items()}
        timing |= {"setup_s": round(self.setup_s, 4), "frames_s": round(self.frames_s, 4),
                   "wall_s": round(self.wall_s, 4), "fps": round(self.fps, 4)}
        return json.dumps({
            "format": "dfl_vfx.swap_summary",
            "status": self.status,
            "host": self.run.host,
            "pid": self.run.pid,
            "error": self.error or None,
            "plate": self.plate,
            "out": self.out,
            "chunk": self.chunk,
            "model": self.model,
            "backend": self.backend,
            "device": self.device,
            "frames": {"total": self.frames_total, "done": sorted(self.done), "skipped": sorted(self.skipped),
                       "no_face": sorted(self.no_face),
                       "failed": {str(k): v for k, v in self.failed.items()},
                       "missing": sorted(self.run.missing)},
            "faces": self.faces,
            "compression": {"plate": self.plate_compression, "delivered": self.compression},
            "timing": timing,
            "settings": self.settings,
        }, indent=2)

    def lines(self) -> list[str]:
        out = [f"swapped {len(self.done)} frame(s), {self.faces} face(s) with {self.model} "
               f"({self.backend} on {self.device}) -> {self.out}"]
        if self.done:
            n = len(self.done)
            t = self.times
            out.append(f"  {self.fps:.2f} frames/s after {self.setup_s:.1f} s of set-up; per frame: "
                       f"read {t.read / n * 1e3:.0f} ms, crop {t.prepare / n * 1e3:.0f} ms, "
                       f"infer {t.infer / n * 1e3:.0f} ms, merge {t.merge / n * 1e3:.0f} ms, "
                       f"write {t.write / n * 1e3:.0f} ms")
        if self.compression_note:
            out.append(f"  {self.compression_note}")
        if self.parts_note:
            out.append(f"  {self.parts_note}")
        if self.skipped:
            out.append(f"  skipped {len(self.skipped)} frame(s) already swapped with these settings")
        if self.no_face:
            out.append(f"  no face (plate passed through): {format_frames(self.no_face)}")
        for frame, reason in self.failed.items():
            out.append(f"  failed frame {frame}: {reason}")
        if self.status == INTERRUPTED:
            out.append(f"  interrupted with {self.run.left} frame(s) left" + (f": {self.error}" if self.error else ""))
        return out


@dataclass
class _Job:
    frame: int
    source: Path
    target: Path
    plans: list[FacePlan] | None  # None: detect on the fly


class ShotSwapper:
    """Runs the engine over a sequence."""

    def __init__(self, engine: SwapEngine, compression: str | None = None, finder: FaceFinder | None = None) -> None:
        self.engine = engine
        self.compression = compression
        self.finder = finder

    def run_job(self, job: _Job) -> tuple[int, int, StageTimes]:
        outcome = swap_frame(self.engine, job.source, job.target, job.frame, job.plans, self.finder,
                             self.compression)
        return job.frame, len(outcome.faces), outcome.times


def swap_shot(plate: str, out: str, settings: SwapSettings, frames: str | None = None,
              faceset: str | None = None, jobs: int = 2, overwrite: bool = False, compression: str | None = None,
              progress: bool | None = None, detector: str = "dlib") -> SwapSummary:
    """Swap every frame of ``plate`` (a sequence spec, optionally limited to ``frames``) into ``out``.

    Everything the user can get wrong (output folder, output format for the layers, the model, the faceset) is
    checked before the first frame; the summary is then kept up to date in ``out`` as frames finish.
    """
    start = time.perf_counter()
    if jobs < 1:
        raise DflError(f"--jobs {jobs} must be 1 or more")
    out_dir = check_output_dir(out, "--out")
    sequence: FrameSequence = open_sequence(plate, frames)
    target = output_sequence(str(out_dir) + os.sep, sequence)
    if Path(target.pattern).resolve() == Path(sequence.pattern).resolve():
        raise DflError(f"--out {out} would overwrite the plate; choose another folder")
    check_output_format(target.pattern, settings.layers)
    if settings.threads == 0:  # frames in flight share the cores: each inference / merge call gets its part
        settings = dataclasses.replace(settings, threads=max(1, (os.cpu_count() or 1) // jobs))
    engine = SwapEngine(settings)
    summary = SwapSummary(plate=sequence.pattern, out=target.pattern, model=engine.model_name,
                          backend=engine.runtime.backend_name, device=engine.runtime.device,
                          chunk=None if frames is None else format_frames(sequence.frames),
                          settings=settings.merge.to_dict() | {"layers": list(settings.layers)})
    on_disk = sorted(set(sequence.frames) - set(sequence.missing()))
    if on_disk:
        plate_header = read_header(sequence.path(on_disk[0]))
        summary.plate_compression = file_compression(plate_header)
        summary.compression = lossless_compression(plate_header, compression)
        if compression is None and summary.compression != summary.plate_compression:
            summary.compression_note = (
                f"the plate's {summary.plate_compression} compression is lossy: frames delivered with "
                f"{summary.compression} so pixels outside the matte stay bit-identical "
                f"(--compression {summary.plate_compression} keeps it)")
            log.info(summary.compression_note)
        parts = plate_header.metadata.get("oiio:subimages", 1)
        if isinstance(parts, int) and parts > 1:
            summary.parts_note = (
                f"the plate has {parts} EXR parts: only the first ({' '.join(plate_header.channels)}) is swapped and "
                f"delivered, the other {parts - 1} are not in the output; merge them back in the comp, or give a "
                "single-part plate")
            log.warning(summary.parts_note)
    finder = None
    if faceset:
        check_faceset_matches(faceset, engine.resolution, engine.face_type.cli_name)
        plans = faceset_plans(faceset, list(sequence.frames))
    else:
        finder = FaceFinder(detector)
        plans = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for folder in (out_dir, out_dir / LAYERS_FOLDER):  # what a killed run (kill -9, a native crash) left; live
        remove_stale_temps(folder)  # writers' temps stay
    work = {f: _Job(f, sequence.path(f), target.path(f), plans.get(f) if faceset else None) for f in sequence.frames}
    swapper = ShotSwapper(engine, compression, finder)

    def swapped(frame: int, result: tuple[int, int, StageTimes]) -> None:
        _, faces, times = result
        summary.faces += faces
        summary.times.add(times)
        if faces == 0:
            summary.no_face.append(frame)

    def render() -> str:
        summary.wall_s = time.perf_counter() - start
        return summary.to_json()

    summary.setup_s = time.perf_counter() - start
    try:
        run_frames(
            sequence.frames, lambda frame: swapper.run_job(work[frame]), run=summary.run,
            missing=missing_frames(sequence),
            already_done=None if overwrite else lambda f: frame_written_with(target.path(f), engine.settings_hash,
                                                                              settings.layers),
            on_result=swapped, threads=jobs, summary=SummaryFile(out_dir / summary_name(summary.chunk), render),
            progress=progress, desc="swap",
        )
    finally:
        summary.no_face.sort()
    return summary
