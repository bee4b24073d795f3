"""Worker processes that end with their parent: a killed `extract --jobs N` leaves no orphans behind.

A spawn worker blocks on its task queue forever once its parent is gone (it holds the queue's write end itself,
so it never sees end-of-file). `exit_with_parent` asks Linux to SIGKILL the worker when its parent dies
(``prctl(PR_SET_PDEATHSIG)``) and, everywhere, starts a thread that ends the worker once its parent pid changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
POLL_SECONDS = 0.5


def _linux_death_signal() -> bool:
    """Ask the kernel to SIGKILL this process when the thread that started it exits; False when unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    return False


def _watch(parent_pid: int, poll_seconds: float) -> None:
    while True:
        time.sleep(poll_seconds)
        if os.getppid() != parent_pid:  # re-parented: the parent is gone
            os._exit(1)


def exit_with_parent(parent_pid: int, poll_seconds: float = POLL_SECONDS) -> None:
    """End this process when process ``parent_pid`` (its parent) dies, however it dies (SIGKILL included)."""
    if not _linux_death_signal():
        log.debug("no PR_SET_PDEATHSIG here; a thread watches the parent instead")
    if os.getppid() != parent_pid:  # the parent died before the death signal was set
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid, poll_seconds), daemon=True, name="parent-watch").start()
