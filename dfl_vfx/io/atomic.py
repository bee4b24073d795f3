"""Atomic file writes: write to a temporary file beside the target, then rename over it.

Temporary names carry the writer's host and pid (``.NAME.~HOST~PID~RANDOM.tmp.EXT``), so a rerun can tell the
leftovers of a killed run (same host, pid no longer alive) from the files of a writer still at work, such as another
farm chunk writing into the same folder, and remove only the former (:func:`remove_stale_temps`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

# .NAME.~HOST~PID~RANDOM.tmp[.EXT]
_TEMP_RE = re.compile(r"^\..+\.~(?P<host>[A-Za-z0-9._-]+)~(?P<pid>\d+)~[0-9a-f]+\.tmp(\.[^.]+)?$")
# what atomic_path wrote before temp names carried host and pid: .NAME.XXXXXXXX.tmp[.EXT] (mkstemp's 8 characters)
_LEGACY_TEMP_RE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[^.]+)?$")
OTHER_HOST_STALE_S = 24 * 3600  # a temp file of another host is only taken as stale after a day untouched


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "host"


def temp_name(target: Path) -> Path:
    """A fresh temporary name beside ``target``, with the same suffix so writers pick the right format."""
    token = secrets.token_hex(4)
    return target.parent / f".{target.stem}.~{_host()}~{os.getpid()}~{token}.tmp{target.suffix}"


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``target`` (same suffix, so writers pick the right format).

    On a clean exit the temporary file replaces ``target`` in one rename; on an exception it is removed, so a
    killed or failing writer never leaves a truncated file under the final name.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = temp_name(target)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any file
        except FileExistsError:
            continue
        os.close(fd)
        break
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_text_atomic(target: str | os.PathLike[str], text: str) -> None:
    """Write a small text file (JSON, logs, summaries) atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def is_stale_temp(path: Path, now: float | None = None) -> bool:
    """Whether ``path`` is a temporary file of :func:`atomic_path` whose writer is gone.

    Same host: its pid is no longer alive. Another host (a shared farm folder): untouched for a day. The older
    unmarked form (``.NAME.XXXXXXXX.tmp.EXT``) counts as stale after an hour untouched.
    """
    name = path.name
    match = _TEMP_RE.match(name)
    try:
        age = (now if now is not None else time.time()) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if match:
        if match["host"] == _host():
            return int(match["pid"]) != os.getpid() and not _pid_alive(int(match["pid"]))
        return age > OTHER_HOST_STALE_S
    if _LEGACY_TEMP_RE.match(name):
        return age > 3600
    return False


def remove_stale_temps(folder: str | os.PathLike[str], recursive: bool = False) -> list[Path]:
    """Delete the temporary files that killed writers left in ``folder``; only names of our own temp pattern."""
    root = Path(folder)
    if not root.is_dir():
        return []
    candidates = root.rglob(".*.tmp*") if recursive else root.glob(".*.tmp*")
    removed = []
    for path in candidates:
        if path.is_file() and is_stale_temp(path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted run in %s", len(removed), root)
    return removed
