"""The OpenCue backend, through OpenCue's own ``opencue-pyoutline``: an outline of Shell layers, serialised to the
job spec XML the Cuebot takes, and launched when a Cuebot is configured.

One layer per step: a chunked step is a layer over the frame range with ``chunk`` (its command gets
``#FRAME_START#`` / ``#FRAME_END#``); a single task is a layer of frame ``1``; a multi-node training step is a layer
of frames ``0-N-1``, one per node, whose frame number is the node rank (``#IFRAME#``). GPU steps get ``gpus``,
``gpu_memory`` (``0g`` for ``farm.gpu_memory_gb = 0``: no requirement) and the tag ``farm.group`` (default
``gpu``); training gets a ``timeout`` (minutes). Steps depend
layer on layer, the comp frame by frame on the swap (a comp chunk runs when its swap frames are done). Commands
are raw (``use_pycuerun=False``): RQD runs the layer's command line, made from the argument list with
:func:`shlex.join`. OpenCue has no pools: ``farm.pools`` is not used (a warning says so); the job is filed under
``farm.show`` (else ``$SHOW``).

pyoutline is an optional extra (``pip install 'dfl-vfx[opencue]'``, which ``make`` installs): it is imported only
here, when the engine is used.
"""

from __future__ import annotations

import getpass
import logging
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

from dfl_vfx.errors import DflError
from dfl_vfx.farm.job import FIRST, FRAMES, LAST, NODE_RANK, Job, Step
from dfl_vfx.io.atomic import write_text_atomic
from dfl_vfx.io.sequence import format_frames

log = logging.getLogger(__name__)

SPEC_NAME = "job.xml"
TOKENS = {FRAMES: "#FRAME_START#-#FRAME_END#", FIRST: "#FRAME_START#", LAST: "#FRAME_END#", NODE_RANK: "#IFRAME#"}
GPU_TAG = "gpu"
CUEBOT_ENV = ("CUEBOT_HOSTS", "OPENCUE_CONFIG_FILE", "OPENCUE_CONF")


def _outline() -> Any:
    quiet = logging.getLogger("outline")  # pyoutline logs its set-up steps at INFO
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        import outline
        import outline.cuerun
        import outline.modules.shell
    except ImportError:
        raise DflError("--engine opencue: opencue-pyoutline is not installed; pip install 'dfl-vfx[opencue]' "
                       "(make installs it)") from None
    finally:
        quiet.setLevel(level)
    return outline


def user() -> str:
    """The submitting user (OpenCue records it on the job); ``dfl`` where the system has no name for this uid."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "dfl"


def show_of(job: Job) -> str:
    return job.show or os.environ.get("SHOW", "")


def check(job: Job) -> None:
    """A show to file the job under, frame chunks OpenCue can cut, and a warning for pools."""
    refuse(job)
    if job.pools:
        log.warning("farm.pools are not used by OpenCue: layers go to hosts by tag (farm.group) and the show's "
                    "subscriptions")


def refuse(job: Job) -> None:
    """What OpenCue cannot take: no show, or chunks of a frame list with gaps."""
    if not show_of(job):
        raise DflError("farm.show: OpenCue files every job under a show; set farm.show (or $SHOW)")
    for step in job.steps:
        gaps = step.frames and list(step.frames) != list(range(step.frames[0], step.frames[-1] + 1))
        if gaps and step.chunk_size > 1:
            raise DflError(f"shot.frames {format_frames(list(step.frames))}: OpenCue runs a chunk as "
                           "#FRAME_START#-#FRAME_END#, which would swap the frames between; give one whole range or "
                           "farm.chunk_size = 1")


def command_line(step: Step) -> str:
    """The layer's command: the argument list quoted for RQD's shell, with OpenCue's frame tokens."""
    line = shlex.join(step.command)
    for token, cue in TOKENS.items():
        line = line.replace(token, cue)
    return line


def _range(step: Step) -> tuple[str, int]:
    if step.nodes > 1:
        return f"0-{step.nodes - 1}", 1
    if step.chunks:
        return format_frames(list(step.frames)), step.chunk_size
    return "1", 1


def build_outline(job: Job) -> Any:
    """The pyoutline ``Outline`` of the job: layers in step order, with their dependencies."""
    outline = _outline()
    from outline.depend import DependType
    from outline.modules.shell import Shell

    ol = outline.Outline(job.name, shot=job.name, show=show_of(job), user=user())
    layers: dict[str, Any] = {}
    for step in job.steps:
        frame_range, chunk = _range(step)
        options: dict[str, Any] = {"range": frame_range, "chunk": chunk,
                                   "type": "Render" if step.gpus or step.comp else "Util"}
        if step.cores:
            options["cores"] = step.cores
        if step.gpus or step.gpu_memory_gb:
            # pyoutline writes 1g for a gpu_memory it is not given (or given 0): "0g" (a true string) is written
            # as is, which the Cuebot reads as no requirement (raised to its mem_gpu_reserved_min, 0 by default)
            options.update(gpus=max(step.gpus, 1), tags=[job.group or GPU_TAG],
                           gpu_memory=f"{step.gpu_memory_gb}g")
        if step.timeout_s:
            options["timeout"] = -(-step.timeout_s // 60)
        layer = Shell(step.name, command=command_line(step), **options)
        ol.add_layer(layer)
        for name in step.depends_on:
            kind = DependType.FrameByFrame if step.frame_dependent else DependType.LayerOnLayer
            layer.depend_on(layers[name], kind)
        layers[step.name] = layer
    return ol


def launcher(job: Job) -> Any:
    outline = _outline()
    return outline.cuerun.OutlineLauncher(build_outline(job), user=user(), priority=job.priority)


def job_spec(job: Job) -> str:
    """The job spec XML the Cuebot takes (raw commands, no pycuerun wrapper). pyoutline's set-up writes a session
    folder (the outline for pycuerun, which raw commands do not use): it goes to a temporary folder, not
    ``~/.opencue/sessions``, and pyoutline's progress lines stay out of the log."""
    outline = _outline()
    quiet = logging.getLogger("outline")
    level, sessions = quiet.level, outline.config.get("outline", "session_dir", raw=True)
    with tempfile.TemporaryDirectory(prefix="dfl-cue-") as folder:
        quiet.setLevel(logging.WARNING)
        outline.config.set("outline", "session_dir", folder)
        try:
            return launcher(job).serialize(use_pycuerun=False)
        finally:
            outline.config.set("outline", "session_dir", sessions)
            quiet.setLevel(level)


def write(job: Job, out_dir: Path) -> list[Path]:
    """``out_dir/job.xml``; returns the files written."""
    refuse(job)
    spec = job_spec(job)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / SPEC_NAME
    write_text_atomic(target, spec + "\n")
    return [target]


def cuebot_configured() -> bool:
    """A Cuebot to talk to: ``$CUEBOT_HOSTS``, a pycue config file (``$OPENCUE_CONFIG_FILE``) or the user's
    ``opencue.yaml`` in pycue's config folder (``~/.config/opencue``)."""
    from opencue.config import config_base_directory

    user_file = Path(config_base_directory()) / "opencue.yaml"
    return any(os.environ.get(name) for name in CUEBOT_ENV) or user_file.is_file()


def submit(job: Job, out_dir: Path) -> int:
    """Write the spec and launch it on the configured Cuebot; prints each job's ID."""
    _outline()
    if not cuebot_configured():
        raise DflError("--engine opencue: no Cuebot configured; set CUEBOT_HOSTS (or an opencue.yaml), or write "
                       "the job with --dry-run --out DIR")
    write(job, out_dir)
    import opencue

    try:
        jobs = opencue.api.launchSpecAndWait((out_dir / SPEC_NAME).read_text(encoding="utf-8"))
    except opencue.exception.CueException as exc:
        raise DflError(f"--engine opencue: the Cuebot refused the job ({' '.join(str(exc).split())})") from None
    for launched in jobs:
        print(f"{launched.name()}: JobID={launched.id()}")
    return 0
