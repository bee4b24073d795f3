"""Checks on output locations, made before any work: a folder that is a file or cannot be written is a user error."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from dfl_vfx.errors import DflError


def _nearest_existing(path: Path) -> Path:
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def check_output_dir(path: str | os.PathLike[str], option: str, create: bool = False) -> Path:
    """Check that ``path`` is (or can become) a writable folder; name ``option`` (e.g. ``--out``) in the error.

    Writability is tested by creating and removing a file, which also catches read-only mounts and ACLs that
    permission bits do not show. With ``create`` the folder is made.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise DflError(f"{option} {folder} is a file, not a folder; give a folder path (or move the file away)")
    existing = _nearest_existing(folder.absolute())
    if not existing.is_dir():
        raise DflError(f"{option} {folder}: {existing} is a file, so the folder cannot be made; give another path")
    try:
        fd, probe = tempfile.mkstemp(prefix=".dfl-vfx-write-test.", dir=existing)
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise DflError(f"{option} {folder}: cannot write in {existing} ({reason}); choose a folder you can write "
                       "to or fix its permissions") from None
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DflError(f"{option} {folder}: cannot create the folder ({exc.strerror}); choose another "
                           "path") from None
    return folder
