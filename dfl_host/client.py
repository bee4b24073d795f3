"""The host's connection to the engine: start ``dfl-vfx serve`` on stdio (or connect to one on 127.0.0.1), speak
its JSON-RPC 2.0 protocol, stream progress, cancel, and survive the engine dying.

One thread reads the engine's messages and routes them to the call waiting for them; progress callbacks run in
the thread that waits (a host's own thread), so a callback may update the host's UI and return False to cancel.
Every wait has a timeout, and an engine that dies wakes every waiting call with :class:`EngineDied` at once.

    with EngineClient.start(output_root="/shots/a/cache") as engine:
        engine.swap_frame("/plates/a.####.exr", 1001, "/models/a.onnx", "a.1001.exr", {"blur": 40})
        engine.swap_range("/plates/a.####.exr", "/models/a.onnx", "bake", frames="1001-1010",
                          on_progress=lambda p: print(p.done, p.total))
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from dfl_host.errors import EngineDied, EngineError, EngineTimeout, Unauthorized, error_from_answer
from dfl_host.locate import find_engine
from dfl_host.schema import Schema

log = logging.getLogger("dfl_host")

LOCALHOST = "127.0.0.1"
START_TIMEOUT_S = 120.0  # the engine imports torch, OpenImageIO ... before it answers
QUICK_TIMEOUT_S = 30.0  # hello, ping, schema, models, cancel, unload, inspect
WORK_TIMEOUT_S = 600.0  # load (a TensorRT engine build takes minutes), swap_frame
RANGE_IDLE_TIMEOUT_S = 600.0  # swap_range: longest wait between two progress messages
CLOSE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Progress:
    """A frame of a swap range finished: ``done`` of ``total``; status swapped, no_face, skipped or failed."""

    request_id: Any
    done: int
    total: int
    frame: int
    status: str
    error: str | None = None


ProgressCallback = Callable[[Progress], Any]


class Call:
    """A request in flight: :meth:`wait` for its result; :meth:`cancel` stops a swap range."""

    def __init__(self, client: EngineClient, request_id: int, method: str,
                 on_progress: ProgressCallback | None) -> None:
        self.client = client
        self.id = request_id
        self.method = method
        self.on_progress = on_progress
        self.events: queue.Queue = queue.Queue()
        self.cancelled = False

    def wait(self, timeout: float | None = WORK_TIMEOUT_S, idle_timeout: float | None = None) -> Any:
        """The result; an :class:`EngineError` for an error answer. ``timeout``: overall seconds (None: no limit);
        ``idle_timeout``: seconds without any message for this call (progress counts)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            limits = [t for t in (idle_timeout, None if deadline is None else deadline - time.monotonic())
                      if t is not None]
            wait_s = max(0.0, min(limits)) if limits else None
            try:
                kind, payload = self.events.get(timeout=wait_s)
            except queue.Empty:
                self.client._forget(self.id)
                if self.method == "swap_range" and not self.cancelled:
                    self._cancel_quietly()
                raise EngineTimeout(f"{self.method} got no answer within {wait_s:g} s; the engine may be stuck "
                                    "(closing the client stops it)") from None
            if kind == "progress":
                if self.on_progress is not None and self.on_progress(_progress(payload)) is False \
                        and not self.cancelled:
                    self._cancel_quietly()
                continue
            if kind == "died":
                raise EngineDied(str(payload))
            if "error" in payload:
                raise error_from_answer(payload["error"] if isinstance(payload["error"], dict) else {})
            return payload.get("result")

    def cancel(self) -> bool:
        """Ask the engine to stop this swap range after the frames in flight; whether it was still running."""
        self.cancelled = True
        result = self.client.call("cancel", {"id": self.id}, timeout=QUICK_TIMEOUT_S)
        return bool(result.get("cancelled"))

    def _cancel_quietly(self) -> None:
        try:
            self.cancel()
        except EngineError as exc:
            log.warning("dfl_host: could not cancel %s %s: %s", self.method, self.id, exc)


class EngineClient:
    """A connection to a dfl-vfx engine (a ``dfl-vfx serve`` process this client started, or a TCP server).

    Thread-safe: several threads may have calls in flight at once. Use it as a context manager, or call
    :meth:`close`, so a started engine is shut down.
    """

    def __init__(self, reader: BinaryIO, writer: BinaryIO, process: subprocess.Popen | None = None,
                 sock: socket.socket | None = None) -> None:
        self.process = process
        self.server: dict[str, Any] = {}  # what hello answered: version, protocol, output_root ...
        self._reader = reader
        self._writer = writer
        self._sock = sock
        self._calls: dict[int, Call] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._dead: str | None = None
        self._closing = False
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self._stderr_thread: threading.Thread | None = None
        if process is not None and process.stderr is not None:
            self._stderr_thread = threading.Thread(target=self._drain_stderr, args=(process.stderr,),
                                                   name="dfl-host-stderr", daemon=True)
            self._stderr_thread.start()
        self._reader_thread = threading.Thread(target=self._read_loop, name="dfl-host-reader", daemon=True)
        self._reader_thread.start()

    # -- starting and connecting ----------------------------------------------------------------------------------

    @classmethod
    def start(cls, exe: str | None = None, output_root: str | None = None, serve_args: Sequence[str] = (),
              env: dict[str, str] | None = None, timeout: float = START_TIMEOUT_S) -> EngineClient:
        """Start ``dfl-vfx serve`` on stdio (the engine found as :func:`dfl_host.locate.find_engine` does) and
        greet it, declaring ``output_root`` (the only folder it may write in)."""
        command = [find_engine(exe), "serve"] + [str(arg) for arg in serve_args]
        try:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, env=env, bufsize=0, close_fds=True)
        except OSError as exc:
            raise EngineError(f"{command[0]}: cannot start ({exc.strerror or exc})") from None
        assert process.stdout is not None and process.stdin is not None
        client = cls(process.stdout, process.stdin, process=process)
        try:
            client.hello(output_root=output_root, timeout=timeout)
        except BaseException:
            client.close()
            raise
        return client

    @classmethod
    def connect(cls, port: int, token: str | None = None, token_file: str | None = None,
                output_root: str | None = None, timeout: float = QUICK_TIMEOUT_S) -> EngineClient:
        """Connect to ``dfl-vfx serve --port PORT`` on 127.0.0.1 and present its token (given, or read from the
        token file the server wrote)."""
        if token is None and token_file is not None:
            try:
                with open(token_file, encoding="utf-8") as handle:
                    token = handle.read().strip()
            except OSError as exc:
                raise Unauthorized(f"token file {token_file}: cannot read ({exc.strerror or exc})") from None
        try:
            sock = socket.create_connection((LOCALHOST, int(port)), timeout=timeout)
        except OSError as exc:
            raise EngineDied(f"no engine listening on {LOCALHOST}:{port} ({exc.strerror or exc})") from None
        sock.settimeout(None)
        client = cls(sock.makefile("rb"), sock.makefile("wb"), sock=sock)
        try:
            client.hello(output_root=output_root, token=token, timeout=timeout)
        except BaseException:
            client.close()
            raise
        return client

    # -- the protocol ---------------------------------------------------------------------------------------------

    def request(self, method: str, params: dict[str, Any] | None = None,
                on_progress: ProgressCallback | None = None) -> Call:
        """Send a request and return at once; :meth:`Call.wait` gives its answer."""
        call = Call(self, next(self._ids), method, on_progress)
        with self._lock:
            if self._dead is not None:
                raise EngineDied(self._dead)
            self._calls[call.id] = call
        message = {"jsonrpc": "2.0", "id": call.id, "method": method, "params": params or {}}
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode("utf-8")
        try:
            with self._write_lock:
                self._writer.write(data)
                self._writer.flush()
        except (OSError, ValueError) as exc:
            self._forget(call.id)
            self._died(f"cannot send to the engine ({exc})")
            raise EngineDied(self._dead or "the engine is gone") from None
        return call

    def call(self, method: str, params: dict[str, Any] | None = None,
             timeout: float | None = WORK_TIMEOUT_S) -> Any:
        """Send a request and wait for its result (an :class:`EngineError` for an error answer)."""
        return self.request(method, params).wait(timeout)

    def hello(self, output_root: str | None = None, token: str | None = None,
              timeout: float = QUICK_TIMEOUT_S) -> dict[str, Any]:
        """Greet the engine: present the token (TCP) and declare the output root; its answer is kept in
        :attr:`server`."""
        params: dict[str, Any] = {}
        if token is not None:
            params["token"] = token
        if output_root is not None:
            params["output_root"] = str(output_root)
        self.server = self.call("hello", params, timeout)
        return self.server

    def ping(self, timeout: float = QUICK_TIMEOUT_S) -> dict[str, Any]:
        return self.call("ping", timeout=timeout)

    def schema(self, timeout: float = QUICK_TIMEOUT_S) -> Schema:
        return Schema(self.call("schema", timeout=timeout))

    def load(self, model: str, settings: dict[str, Any] | None = None,
             timeout: float = WORK_TIMEOUT_S) -> dict[str, Any]:
        """Load (warm) a model; ``settings`` may choose backend, device, batch."""
        return self.call("load", {"model": str(model), "settings": settings or {}}, timeout)

    def unload(self, model: str | None = None, timeout: float = QUICK_TIMEOUT_S) -> int:
        """Drop a loaded model (every one with None); how many were dropped."""
        params = {} if model is None else {"model": str(model)}
        return int(self.call("unload", params, timeout)["unloaded"])

    def models(self, timeout: float = QUICK_TIMEOUT_S) -> list[dict[str, Any]]:
        return list(self.call("models", timeout=timeout)["models"])

    def swap_frame(self, plate: str, frame: int, model: str, out: str | None = None,
                   settings: dict[str, Any] | None = None, faceset: str | None = None,
                   compression: str | None = None, timeout: float = WORK_TIMEOUT_S) -> dict[str, Any]:
        """Swap one frame into ``out`` (inside the output root; relative paths are relative to it)."""
        params = _without_none({"plate": str(plate), "frame": int(frame), "model": str(model), "out": out,
                                "settings": settings or {}, "faceset": faceset, "compression": compression})
        return self.call("swap_frame", params, timeout)

    def start_swap_range(self, plate: str, model: str, out: str, frames: str | None = None,
                         settings: dict[str, Any] | None = None, faceset: str | None = None,
                         jobs: int | None = None, overwrite: bool = False, compression: str | None = None,
                         on_progress: ProgressCallback | None = None) -> Call:
        """Start swapping frames into the folder ``out``; wait on (or cancel) the returned :class:`Call`."""
        params = _without_none({"plate": str(plate), "model": str(model), "out": str(out), "frames": frames,
                                "settings": settings or {}, "faceset": faceset, "jobs": jobs,
                                "overwrite": overwrite, "compression": compression})
        return self.request("swap_range", params, on_progress)

    def swap_range(self, plate: str, model: str, out: str, frames: str | None = None,
                   settings: dict[str, Any] | None = None, faceset: str | None = None, jobs: int | None = None,
                   overwrite: bool = False, compression: str | None = None,
                   on_progress: ProgressCallback | None = None,
                   idle_timeout: float = RANGE_IDLE_TIMEOUT_S) -> dict[str, Any]:
        """Swap frames into the folder ``out`` and wait; ``on_progress(Progress)`` runs in this thread after each
        frame (return False to cancel). A cancelled range raises :class:`~dfl_host.errors.RequestCancelled`."""
        call = self.start_swap_range(plate, model, out, frames, settings, faceset, jobs, overwrite, compression,
                                     on_progress)
        return call.wait(timeout=None, idle_timeout=idle_timeout)

    def cancel(self, request_id: int) -> bool:
        return bool(self.call("cancel", {"id": request_id}, QUICK_TIMEOUT_S)["cancelled"])

    def inspect(self, path: str, timeout: float = QUICK_TIMEOUT_S) -> dict[str, Any]:
        """A swapped frame's ``dfl_vfx:*`` header attributes (settings, faces), channels and windows."""
        return self.call("inspect", {"path": str(path)}, timeout)

    def shutdown(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Stop the engine (a TCP server too): running ranges are cancelled, frames in flight finish."""
        self.call("shutdown", timeout=timeout)

    # -- lifetime -------------------------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._dead is None

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Shut down an engine this client started (waiting up to ``timeout``, then terminating it); close a TCP
        connection (the server keeps running)."""
        self._closing = True
        if self.process is not None:
            if self.alive and self.process.poll() is None:
                try:
                    self.shutdown(timeout)
                except EngineError as exc:
                    log.debug("dfl_host: shutdown: %s", exc)
            _close_quietly(self._writer)  # end of input: a serve that missed shutdown stops too
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        elif self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)  # wakes the reading thread
            except OSError:
                pass
        self._reader_thread.join(timeout)
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout)
        for stream in (self._writer, self._reader, self.process.stderr if self.process else None, self._sock):
            _close_quietly(stream)

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the reading thread ---------------------------------------------------------------------------------------

    def _forget(self, request_id: int) -> None:
        with self._lock:
            self._calls.pop(request_id, None)

    def _read_loop(self) -> None:
        reason = "the connection to the engine closed"
        try:
            for line in self._reader:
                self._route(line)
        except (OSError, ValueError) as exc:
            reason = f"reading from the engine failed ({exc})"
        self._died(reason)

    def _route(self, line: bytes) -> None:
        try:
            message = json.loads(line.decode("utf-8"))
        except ValueError:
            log.warning("dfl_host: not a protocol message from the engine: %r", line[:200])
            return
        if not isinstance(message, dict):
            return
        if "id" in message and ("result" in message or "error" in message):
            with self._lock:
                call = self._calls.pop(message["id"], None)
            if call is not None:
                call.events.put(("answer", message))
            elif message["id"] is None:
                log.warning("dfl_host: the engine refused a message: %s", message.get("error"))
            return
        if message.get("method") == "progress" and isinstance(message.get("params"), dict):
            with self._lock:
                call = self._calls.get(message["params"].get("id"))
            if call is not None:
                call.events.put(("progress", message["params"]))

    def _drain_stderr(self, stream: BinaryIO) -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._stderr_tail.append(line)
                log.debug("engine: %s", line)

    def _died(self, reason: str) -> None:
        """Mark the engine gone and wake every waiting call with the reason (exit status, last stderr line)."""
        with self._lock:
            if self._dead is not None:
                return
        if self.process is not None:
            try:
                code = self.process.wait(5)
            except subprocess.TimeoutExpired:
                code = None
            if self._stderr_thread is not None:
                self._stderr_thread.join(2)
            last = next((line for line in reversed(self._stderr_tail) if line.strip()), "")
            status = "still running" if code is None else f"exit status {code}"
            reason = f"the engine stopped ({status})" + (f": {last}" if last else "")
        with self._lock:
            self._dead = reason
            calls = list(self._calls.values())
            self._calls.clear()
        if not self._closing:
            log.warning("dfl_host: %s", reason)
        for call in calls:
            call.events.put(("died", reason))


def _progress(params: dict[str, Any]) -> Progress:
    return Progress(params.get("id"), int(params.get("done", 0)), int(params.get("total", 0)),
                    int(params.get("frame", 0)), str(params.get("status", "")), params.get("error"))


def _close_quietly(stream: Any) -> None:
    if stream is not None:
        try:
            stream.close()
        except (OSError, ValueError):
            pass


def _without_none(params: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in params.items() if value is not None}
