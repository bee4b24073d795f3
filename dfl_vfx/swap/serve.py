"""`dfl-vfx serve`: a persistent worker that keeps models loaded and swaps frames for host front ends.

It owns the JSON-RPC 2.0 protocol (one message per line, UTF-8, on stdin/stdout or a TCP socket bound to
127.0.0.1 only), the per-connection session (token, declared output root, running requests), the bounded cache of
loaded models, and the methods (``hello``, ``ping``, ``schema``, ``load``, ``unload``, ``models``, ``swap_frame``,
``swap_range`` with ``progress`` notifications, ``cancel``, ``inspect``, ``shutdown``). The protocol is described
in ``docs/dev/host-protocol.md``; the host side is the standard-library client ``dfl_host``.

    -> {"jsonrpc": "2.0", "id": 1, "method": "hello", "params": {"output_root": "/shots/a/cache"}}
    -> {"jsonrpc": "2.0", "id": 2, "method": "swap_frame", "params": {"plate": "/p/a.####.exr", "frame": 1001,
        "model": "/m/a.onnx", "out": "/shots/a/cache/a.1001.exr", "settings": {"blur": 40}}}
    <- {"jsonrpc": "2.0", "id": 2, "result": {"out": "/shots/a/cache/a.1001.exr", "faces": 1, ...}}
    <- {"jsonrpc": "2.0", "id": 3, "error": {"code": -32003, "message": "face_scale 99: out of range; ...",
        "data": {"setting": "face_scale", "value": 99, "problem": "out of range; ..."}}}

Requests are handled concurrently: the reading thread answers the quick methods itself (so ``ping`` and ``cancel``
come back while a range runs) and hands the others to a worker pool; responses are written whole under a lock.
A failing request answers with an error and the server stays up. Every loaded model is shared by all requests:
per-request settings make a light :class:`SwapEngine` view over the cached runtime, never a new load.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import secrets
import socketserver
import stat
import tempfile
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import dfl_vfx
from dfl_vfx.errors import DflError
from dfl_vfx.io.atomic import remove_stale_temps
from dfl_vfx.io.image import Window, read_header
from dfl_vfx.io.outputs import check_output_dir
from dfl_vfx.io.sequence import FrameSequence, open_sequence, output_sequence
from dfl_vfx.schema import SWAP_SETTINGS, SettingError, schema_document
from dfl_vfx.swap.engine import (
    ModelCaches,
    SwapEngine,
    SwapSettings,
    check_output_format,
)
from dfl_vfx.swap.faces import FaceFinder, check_faceset_matches, faceset_plans
from dfl_vfx.swap.frame import swap_frame
from dfl_vfx.swap.header import SWAP_ATTRIBUTE, SwapHeader
from dfl_vfx.swap.layout import LAYERS_FOLDER, frame_written_with, layers_path, wants_layers_file
from dfl_vfx.swap.settings import swap_settings

log = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"
PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 1 << 20  # one message; a longer line is refused and skipped
HELLO_TIMEOUT_S = 30.0  # a TCP client must present its token within this time

# JSON-RPC 2.0 error codes, then the server's own (-32000..-32099 are the implementation's to define)
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
UNAUTHORIZED = -32001  # no valid token on a TCP connection: the connection is closed after the answer
OUTPUT_REFUSED = -32002  # an output path outside the output root, over an input, or no output root declared
INVALID_SETTING = -32003  # data: {"setting", "value", "problem"}
REQUEST_FAILED = -32004  # the engine cannot do it: a missing frame, an unreadable model, a faceset mismatch ...
REQUEST_CANCELLED = -32800  # a swap_range stopped by cancel (as in LSP); data: what was done


class RpcError(Exception):
    """An error answer: a JSON-RPC code, a one-line message and optional data for the host."""

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None,
                 request_id: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = _one_line(message)
        self.data = data
        self.request_id = request_id  # of a request refused before it could be handled

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def _one_line(text: object) -> str:
    return " ".join(str(text).split("\n"))


def _error_of(exc: BaseException) -> RpcError:
    """The error answer for an exception raised by a method."""
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, SettingError):
        value = list(exc.value) if isinstance(exc.value, tuple) else exc.value
        if not isinstance(value, (str, int, float, bool, list, type(None))):
            value = str(value)
        return RpcError(INVALID_SETTING, str(exc), {"setting": exc.setting, "value": value, "problem": exc.problem})
    if isinstance(exc, DflError):
        return RpcError(REQUEST_FAILED, str(exc))
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return RpcError(REQUEST_FAILED, f"{where}{exc.strerror or exc}")
    log.error("serve: internal error", exc_info=exc)
    return RpcError(INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {_one_line(exc)}")


# -- params ---------------------------------------------------------------------------------------------------------

_MISSING = object()


def _param(params: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str,
           default: Any = _MISSING) -> Any:
    """``params[name]`` of the JSON type ``kind`` (described as ``what``), or ``default`` when absent."""
    value = params.get(name, _MISSING)
    if value is _MISSING or (value is None and default is not _MISSING):
        if default is _MISSING:
            raise RpcError(INVALID_PARAMS, f"params.{name} is required ({what})", {"param": name})
        return default
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        raise RpcError(INVALID_PARAMS, f"params.{name} {json.dumps(value)[:80]} must be {what}", {"param": name})
    return value


def _count(params: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = _param(params, name, int, f"an integer {low}..{high}", default)
    if not low <= value <= high:
        raise RpcError(INVALID_PARAMS, f"params.{name} {value} is out of range; use {low}..{high}", {"param": name})
    return int(value)


def request_settings(model: str, values: dict[str, Any], threads: int) -> SwapSettings:
    """The settings of a request by the schema's names and rules, as the CLI's; an unknown name is refused with
    the name in ``data.setting`` like any other setting error."""
    unknown = [name for name in values if name not in SWAP_SETTINGS]
    if unknown:
        raise RpcError(INVALID_SETTING, f"unknown setting {unknown[0]!r}; known: {', '.join(SWAP_SETTINGS)}",
                       {"setting": unknown[0], "value": values[unknown[0]], "problem": "unknown setting"})
    return swap_settings(model, values, threads)


# -- loaded models --------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class _Slot:
    """A model loaded (or being loaded) for one key."""

    key: tuple
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    runtime: Any = None
    caches: ModelCaches | None = None


class ModelCache:
    """Loaded runtimes keyed by what made them (model file and its time stamp, backend, device, batch, threads),
    least recently used first out beyond ``max_models``. Settings never load a model: each request gets a light
    :class:`SwapEngine` view over the cached runtime. Thread-safe; a model is loaded once even when asked twice."""

    def __init__(self, max_models: int = 2) -> None:
        if max_models < 1:
            raise DflError(f"--max-models {max_models} must be 1 or more")
        self.max_models = max_models
        self._slots: OrderedDict[tuple, _Slot] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(settings: SwapSettings) -> tuple:
        path = Path(settings.model).expanduser()
        try:
            stamp = path.stat().st_mtime_ns  # a model exported again is loaded again
        except OSError:
            stamp = 0  # loading says what is wrong
        return (str(path.resolve()), stamp, settings.backend, settings.device, settings.batch, settings.threads)

    def engine(self, settings: SwapSettings) -> SwapEngine:
        """A :class:`SwapEngine` for ``settings`` over the cached runtime (loaded on first use)."""
        from dfl_vfx.runtime import load_runtime

        key = self.key(settings)
        with self._lock:
            slot = self._slots.setdefault(key, _Slot(key))
            self._slots.move_to_end(key)
        with slot.lock:
            if slot.runtime is None:
                try:
                    runtime = load_runtime(settings.model, backend=settings.backend, device=settings.device,
                                           max_batch=settings.batch, threads=settings.threads)
                except BaseException:
                    with self._lock:
                        if self._slots.get(key) is slot:
                            del self._slots[key]
                    raise
                slot.runtime, slot.caches = runtime, ModelCaches(runtime)
                log.info("serve: loaded %s (%s on %s)", settings.model, runtime.backend_name, runtime.device)
        with self._lock:  # models being loaded by other requests stay; they evict when they are done
            idle = [k for k, s in self._slots.items() if k != key and s.runtime is not None]
            for oldest in idle[:max(0, len(self._slots) - self.max_models)]:
                log.info("serve: unloaded %s (more than --max-models %d)", oldest[0], self.max_models)
                del self._slots[oldest]  # requests still using it keep their reference until they finish
        return SwapEngine(settings, runtime=slot.runtime, caches=slot.caches)

    def unload(self, model: str | None) -> int:
        """Forget the runtimes of ``model`` (every one with None); how many were dropped."""
        wanted = None if model is None else str(Path(model).expanduser().resolve())
        with self._lock:
            keys = [k for k in self._slots if wanted is None or k[0] == wanted]
            for k in keys:
                del self._slots[k]
        return len(keys)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            slots = [s for s in self._slots.values() if s.runtime is not None]
        return [{"model": s.key[0], "backend": s.runtime.backend_name, "device": s.runtime.device,
                 "batch": s.key[4], "threads": s.key[5], "resolution": int(s.runtime.info.resolution),
                 "face_type": s.runtime.info.face_type} for s in reversed(slots)]  # most recently used first

    def __len__(self) -> int:
        with self._lock:
            return len(self._slots)


# -- sessions -------------------------------------------------------------------------------------------------------

class Session:
    """One client connection: how to answer it, whether it presented the token, the output root it declared,
    and its requests in flight (swap ranges can be cancelled by id)."""

    def __init__(self, write: Callable[[bytes], None], needs_token: bool, output_root: Path | None,
                 on_authenticated: Callable[[], None] | None = None) -> None:
        self._write = write
        self._write_lock = threading.Lock()
        self.authenticated = not needs_token
        self.output_root = output_root
        self.on_authenticated = on_authenticated
        self.cancel_events: dict[object, threading.Event] = {}
        self.in_flight: set[Future] = set()
        self.lock = threading.Lock()
        self.broken = False

    def send(self, message: dict[str, Any]) -> None:
        """Write one message as one line; a client gone away is remembered, not raised."""
        data = (json.dumps(message, separators=(",", ":"), default=str) + "\n").encode("utf-8")
        with self._write_lock:
            if self.broken:
                return
            try:
                self._write(data)
            except (OSError, ValueError):  # a closed pipe or socket
                self.broken = True

    def reply(self, request_id: object, result: Any = None, error: RpcError | None = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
        if error is not None:
            message["error"] = error.to_json()
        else:
            message["result"] = result
        self.send(message)

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def cancel_all(self) -> None:
        with self.lock:
            for event in self.cancel_events.values():
                event.set()

    def wait_in_flight(self) -> None:
        while True:
            with self.lock:
                pending = list(self.in_flight)
            if not pending:
                return
            wait(pending)


class MessageTooLong(Exception):
    """A line longer than the limit (already skipped up to its end)."""


def read_message(readline: Callable[[int], bytes], limit: int) -> bytes | None:
    """The next line (at most ``limit`` bytes) or None at the end; :class:`MessageTooLong` for a longer line,
    whose rest is skipped so the next message reads cleanly."""
    line = readline(limit + 1)
    if not line:
        return None
    if len(line) > limit and not line.endswith(b"\n"):
        while True:
            chunk = readline(1 << 16)
            if not chunk or chunk.endswith(b"\n"):
                break
        raise MessageTooLong
    return line


@dataclasses.dataclass
class Request:
    """One parsed request."""

    request_id: object
    method: str
    params: dict[str, Any]
    answer: bool  # False for a notification (no id): run, but never answered
    output_root: Path | None = None  # the session's when the request arrived (a later hello does not change it)


def parse_request(raw: bytes) -> Request:
    """One line -> a request, or an :class:`RpcError` (with the request's id when it could be read)."""
    try:
        message = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RpcError(PARSE_ERROR, "the request is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise RpcError(PARSE_ERROR, f"the request is not JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise RpcError(PARSE_ERROR, "the request is nested too deeply to read; send a flat JSON object") from None
    if isinstance(message, list):
        raise RpcError(INVALID_REQUEST, "batches are not supported; send one request object per line")
    if not isinstance(message, dict):
        raise RpcError(INVALID_REQUEST, "a request must be a JSON object with jsonrpc, id, method and params")
    request_id = message.get("id")
    if request_id is not None and (isinstance(request_id, bool) or not isinstance(request_id, (int, str))):
        raise RpcError(INVALID_REQUEST, "id must be a string or an integer")
    if message.get("jsonrpc") != "2.0":
        raise RpcError(INVALID_REQUEST, 'jsonrpc must be "2.0" (JSON-RPC 2.0, one message per line)',
                       request_id=request_id)
    method = message.get("method")
    if not isinstance(method, str):
        raise RpcError(INVALID_REQUEST, "method must be a string, e.g. \"ping\"", request_id=request_id)
    params = message.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise RpcError(INVALID_PARAMS, "params must be a JSON object of named values, e.g. "
                                       "{\"plate\": ..., \"frame\": 1001}", request_id=request_id)
    return Request(request_id, method, params, "id" in message)


# -- the service ----------------------------------------------------------------------------------------------------

def _plate_file_pattern(sequence: FrameSequence) -> tuple[Path, re.Pattern[str]]:
    """The plate's folder and a pattern matching the name of any of its frames (on disk or not)."""
    pattern = Path(sequence.pattern)
    name = pattern.name
    token = re.search(r"%0?\d*d", name)
    regex = re.escape(name) if token is None else (
        re.escape(name[:token.start()]) + r"-?\d+" + re.escape(name[token.end():]))
    return pattern.parent.resolve(), re.compile(regex)


def _window(window: Window) -> list[int]:
    return [window.x, window.y, window.width, window.height]


def _is_inside(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


class SwapService:
    """The methods, the model cache and the worker pool shared by every connection (thread-safe)."""

    QUICK = ("hello", "ping", "schema", "models", "unload", "cancel")  # answered by the reading thread
    WORK = ("load", "swap_frame", "swap_range", "inspect")  # run on the worker pool

    def __init__(self, output_root: str | Path | None = None, max_models: int = 2, workers: int = 4,
                 threads: int = 0, token: str | None = None, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        """``output_root``: where sessions may write until they declare their own with ``hello`` (None: nowhere).
        ``token``: what TCP connections must present. ``threads``: inference and merge threads per model
        (0: the libraries' default)."""
        if workers < 1:
            raise DflError(f"--workers {workers} must be 1 or more")
        self.default_output_root = (None if output_root is None else
                                    self._root(Path(output_root).expanduser().absolute(), "--output-root"))
        self.loaded = ModelCache(max_models)
        self.threads = threads
        self.token = token
        self.max_line_bytes = max_line_bytes
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="serve")
        self._finder: FaceFinder | None = None
        self._lock = threading.Lock()
        self._sessions: set[Session] = set()
        self.stopping = threading.Event()
        self._methods: dict[str, Callable[[Session, Request], Any]] = {
            "hello": self.hello, "ping": self.ping, "schema": self.schema, "models": self.models,
            "unload": self.unload, "cancel": self.cancel, "load": self.load, "swap_frame": self.swap_frame,
            "swap_range": self.swap_range, "inspect": self.inspect}

    @staticmethod
    def _root(path: str | Path, option: str) -> Path:
        """An output root: an absolute folder, made when missing, with symlinks resolved."""
        root = Path(path).expanduser()
        if not root.is_absolute():
            raise DflError(f"{option} {path} must be an absolute path")
        check_output_dir(root, option, create=True)
        return root.resolve()

    def finder(self) -> FaceFinder:
        """The face finder for frames swapped without a faceset, made on first use."""
        with self._lock:
            if self._finder is None:
                self._finder = FaceFinder()
            return self._finder

    # -- connections --------------------------------------------------------------------------------------------

    def open_session(self, write: Callable[[bytes], None], needs_token: bool,
                     on_authenticated: Callable[[], None] | None = None) -> Session:
        session = Session(write, needs_token, self.default_output_root, on_authenticated)
        with self._lock:
            self._sessions.add(session)
        return session

    def serve_session(self, session: Session, readline: Callable[[int], bytes]) -> bool:
        """Answer ``session``'s messages until the end of its input or ``shutdown`` (then True).

        Either way its running ranges are cancelled and its requests in flight answered before returning.
        """
        shutdown = False
        try:
            while not self.stopping.is_set():
                try:
                    raw = read_message(readline, self.max_line_bytes)
                except OSError:  # a socket timeout (no hello in time) or a reset connection
                    break
                except MessageTooLong:
                    session.reply(None, error=RpcError(INVALID_REQUEST, f"a message longer than "
                                                       f"{self.max_line_bytes} bytes was skipped; send one "
                                                       "message per line, and file paths rather than data"))
                    if not session.authenticated:
                        break
                    continue
                if raw is None:
                    break
                if not raw.strip():
                    continue
                verdict = self._receive(session, raw)
                if verdict == "close":
                    break
                if verdict == "shutdown":
                    shutdown = True
                    break
        finally:
            session.cancel_all()
            session.wait_in_flight()
            with self._lock:
                self._sessions.discard(session)
        return shutdown

    def _receive(self, session: Session, raw: bytes) -> str:
        """Handle one message: "go" on, "close" the connection, or "shutdown" the server."""
        try:
            request = parse_request(raw)
        except RpcError as exc:
            session.reply(exc.request_id, error=exc)
            return "go" if session.authenticated else "close"
        if not session.authenticated:
            try:
                if request.method != "hello":
                    raise RpcError(UNAUTHORIZED, "this connection has not presented the server's token; send "
                                                 "hello with the token from the file serve printed first")
                result = self.hello(session, request)
            except (RpcError, DflError) as exc:
                session.reply(request.request_id, error=_error_of(exc))
                return "close"
            session.reply(request.request_id, result)
            return "go"
        if request.method == "shutdown":
            self.stopping.set()
            session.cancel_all()
            session.wait_in_flight()
            if request.answer:
                session.reply(request.request_id, {"bye": True})
            return "shutdown"
        request.output_root = session.output_root
        if request.method in self.QUICK:
            self._run(session, request)
        elif request.method in self.WORK:
            self._submit(session, request)
        elif request.answer:
            session.reply(request.request_id, error=RpcError(
                METHOD_NOT_FOUND, f"unknown method {request.method!r}; use "
                                  f"{', '.join(self.QUICK + self.WORK + ('shutdown',))}", {"method": request.method}))
        return "go"

    def _submit(self, session: Session, request: Request) -> None:
        with session.lock:
            if request.method == "swap_range" and request.answer:
                if request.request_id in session.cancel_events:
                    session.reply(request.request_id, error=RpcError(
                        INVALID_REQUEST, f"id {request.request_id!r} is already used by a running swap_range; "
                                         "give every request its own id"))
                    return
                session.cancel_events[request.request_id] = threading.Event()
            future = self._pool.submit(self._run, session, request)
            session.in_flight.add(future)
        future.add_done_callback(lambda done: self._forget(session, done))

    @staticmethod
    def _forget(session: Session, future: Future) -> None:
        with session.lock:
            session.in_flight.discard(future)

    def _run(self, session: Session, request: Request) -> None:
        handler = self._methods[request.method]
        started = time.perf_counter()
        try:
            result = handler(session, request)
        except Exception as exc:  # every failure is an answer; the server stays up
            error = _error_of(exc)
            log.debug("serve: %s %r failed (%s) in %.3f s", request.method, request.request_id, error.message,
                      time.perf_counter() - started)
            if request.answer:
                session.reply(request.request_id, error=error)
        else:
            if request.answer:
                session.reply(request.request_id, result)
        finally:
            if request.method == "swap_range":
                with session.lock:
                    session.cancel_events.pop(request.request_id, None)

    def close(self) -> None:
        """Stop: cancel every running range and wait for the requests in flight."""
        self.stopping.set()
        with self._lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.cancel_all()
        self._pool.shutdown(wait=True, cancel_futures=False)

    # -- quick methods ------------------------------------------------------------------------------------------

    def hello(self, session: Session, request: Request) -> dict[str, Any]:
        if not session.authenticated:
            token = request.params.get("token")
            if self.token is None or not isinstance(token, str) or not secrets.compare_digest(
                    token.encode("utf-8"), self.token.encode("utf-8")):
                raise RpcError(UNAUTHORIZED, "wrong or missing token; read it from the token file serve printed")
            session.authenticated = True
            if session.on_authenticated is not None:
                session.on_authenticated()
        root = _param(request.params, "output_root", str, "an absolute folder path", None)
        if root is not None:
            try:
                session.output_root = self._root(root, "params.output_root")
            except DflError as exc:
                raise RpcError(OUTPUT_REFUSED, str(exc), {"param": "output_root"}) from None
        return {"server": "dfl-vfx", "version": dfl_vfx.__version__, "protocol": PROTOCOL_VERSION,
                "output_root": None if session.output_root is None else str(session.output_root),
                "max_line_bytes": self.max_line_bytes, "max_models": self.loaded.max_models,
                "methods": list(self.QUICK + self.WORK + ("shutdown",))}

    def ping(self, session: Session, request: Request) -> dict[str, Any]:
        return {"pong": True, "version": dfl_vfx.__version__, "models": len(self.loaded)}

    def schema(self, session: Session, request: Request) -> dict[str, Any]:
        return schema_document()

    def models(self, session: Session, request: Request) -> dict[str, Any]:
        return {"models": self.loaded.entries(), "max_models": self.loaded.max_models}

    def unload(self, session: Session, request: Request) -> dict[str, Any]:
        model = _param(request.params, "model", str, "a model path (leave it out to unload every model)", None)
        return {"unloaded": self.loaded.unload(model)}

    def cancel(self, session: Session, request: Request) -> dict[str, Any]:
        target = _param(request.params, "id", (int, str), "the id of a running swap_range")
        with session.lock:
            event = session.cancel_events.get(target)
        if event is not None:
            event.set()
        return {"cancelled": event is not None}

    # -- work ---------------------------------------------------------------------------------------------------

    def _settings(self, params: dict[str, Any]) -> SwapSettings:
        model = _param(params, "model", str, "an .onnx, .dfm or model folder path")
        values = _param(params, "settings", dict, "an object of settings by name (see the schema method)", {})
        threads = _count(params, "threads", self.threads, 0, 1024)
        return request_settings(model, values, threads)

    def load(self, session: Session, request: Request) -> dict[str, Any]:
        engine = self.loaded.engine(self._settings(request.params))
        info = engine.runtime.info
        return {"model": str(info.path), "resolution": engine.resolution, "face_type": engine.face_type.cli_name,
                "backend": engine.runtime.backend_name, "device": engine.runtime.device,
                "settings_hash": engine.settings_hash}

    @staticmethod
    def _output(request: Request, value: object, param: str) -> Path:
        """An output path inside the session's output root (symlinks resolved), or an error."""
        if not isinstance(value, str) or not value:
            raise RpcError(INVALID_PARAMS, f"params.{param} must be a path inside the output root", {"param": param})
        root = request.output_root
        if root is None:
            raise RpcError(OUTPUT_REFUSED, f"params.{param} {value}: no output root declared; send hello with "
                                           "output_root first (or start serve with --output-root)", {"param": param})
        path = Path(value).expanduser()
        resolved = (path if path.is_absolute() else root / path).resolve()
        if resolved == root or not resolved.is_relative_to(root):
            raise RpcError(OUTPUT_REFUSED, f"params.{param} {value} is outside the output root {root}; write inside "
                                           "it or declare another root with hello",
                           {"param": param, "output_root": str(root)})
        return resolved

    @staticmethod
    def _refuse_inputs(out: Path, param: str, model: str, faceset: str | None,
                       sequence: FrameSequence | None = None) -> None:
        """An output must not land on the plate's frames, the model or the faceset."""
        refused = {"param": param}
        if sequence is not None:
            plate_dir, plate_names = _plate_file_pattern(sequence)
            if out.parent == plate_dir and plate_names.fullmatch(out.name):
                raise RpcError(OUTPUT_REFUSED, f"params.{param} {out} is a frame of the plate {sequence.pattern}; "
                                               "write the swap somewhere else", refused)
        model_path = Path(model).expanduser().resolve()
        if _is_inside(out, model_path):
            raise RpcError(OUTPUT_REFUSED, f"params.{param} {out} would write over the model {model}", refused)
        if faceset and _is_inside(out, Path(faceset).expanduser().resolve()):
            raise RpcError(OUTPUT_REFUSED, f"params.{param} {out} is inside the faceset {faceset}", refused)

    @staticmethod
    def _out_folder_checked(folder: Path, param: str) -> None:
        try:
            check_output_dir(folder, f"params.{param}")
        except DflError as exc:
            raise RpcError(OUTPUT_REFUSED, str(exc), {"param": param}) from None

    def swap_frame(self, session: Session, request: Request) -> dict[str, Any]:
        start = time.perf_counter()
        params = request.params
        plate = _param(params, "plate", str, "a plate sequence (name.####.exr) or file")
        frame = _param(params, "frame", int, "a frame number")
        faceset = _param(params, "faceset", str, "a faceset folder", None)
        compression = _param(params, "compression", str, "an EXR compression name", None)
        settings = self._settings(params)
        sequence = open_sequence(plate, str(frame))
        source = sequence.path(frame)
        if not source.is_file():
            raise RpcError(REQUEST_FAILED, f"frame {frame}: {source} does not exist", {"param": "frame"})
        out = self._output(request, params.get("out") or source.name, "out")
        if out.is_dir():
            raise RpcError(OUTPUT_REFUSED, f"params.out {out} is a folder; give the path of the frame to write",
                           {"param": "out"})
        if out == source.resolve():
            raise RpcError(OUTPUT_REFUSED, f"params.out {out} is the plate frame itself; write the swap somewhere "
                                           "else", {"param": "out"})
        self._refuse_inputs(out, "out", settings.model, faceset, sequence)
        self._out_folder_checked(out.parent, "out")
        check_output_format(out, settings.layers, "settings.layers", f"params.out frames like {out.name}",
                            'give an .exr out or "layers": ["rgba"]')
        engine = self.loaded.engine(settings)
        plans = None
        if faceset:
            check_faceset_matches(faceset, engine.resolution, engine.face_type.cli_name)
            plans = faceset_plans(faceset, [frame]).get(frame, [])
        result = swap_frame(engine, source, out, frame, plans, None if plans is not None else self.finder(),
                            compression)
        layers = layers_path(out) if wants_layers_file(settings.layers) else None
        return {"out": str(out), "layers": None if layers is None else str(layers), "frame": frame,
                "faces": len(result.faces), "bboxes": [list(face.bbox) for face in result.faces],
                "settings_hash": engine.settings_hash,
                "seconds": round(time.perf_counter() - start, 4), "infer_s": round(result.times.infer, 4),
                "merge_s": round(result.times.merge, 4)}

    def swap_range(self, session: Session, request: Request) -> dict[str, Any]:
        """Frames of a sequence into an output folder, ``progress`` sent as each finishes; frames already written
        with the same settings are skipped. ``cancel`` stops it after the frames in flight (whole files only)."""
        start = time.perf_counter()
        params, request_id = request.params, request.request_id
        plate = _param(params, "plate", str, "a plate sequence (name.####.exr) or folder")
        frames = _param(params, "frames", str, "a frame range like 1001-1010", None)
        faceset = _param(params, "faceset", str, "a faceset folder", None)
        compression = _param(params, "compression", str, "an EXR compression name", None)
        jobs = _count(params, "jobs", 2, 1, 64)
        overwrite = _param(params, "overwrite", bool, "true or false", False)
        settings = self._settings(params)
        out_dir = self._output(request, params.get("out"), "out")
        sequence = open_sequence(plate, frames)
        target = output_sequence(str(out_dir) + os.sep, sequence)
        if Path(target.pattern).resolve() == Path(sequence.pattern).resolve():
            raise RpcError(OUTPUT_REFUSED, f"params.out {out_dir} would overwrite the plate; choose another folder",
                           {"param": "out"})
        self._refuse_inputs(out_dir, "out", settings.model, faceset)
        self._out_folder_checked(out_dir, "out")
        check_output_format(target.pattern, settings.layers, "settings.layers",
                            f"the output frames like {Path(target.pattern).name}",
                            'give an EXR plate or "layers": ["rgba"]')
        engine = self.loaded.engine(settings)
        plans: dict[int, list] = {}
        if faceset:
            check_faceset_matches(faceset, engine.resolution, engine.face_type.cli_name)
            plans = faceset_plans(faceset, list(sequence.frames))
        finder = None if faceset else self.finder()
        out_dir.mkdir(parents=True, exist_ok=True)
        for folder in (out_dir, out_dir / LAYERS_FOLDER):
            remove_stale_temps(folder)
        with session.lock:
            cancel = session.cancel_events.get(request_id) or threading.Event()

        total = len(sequence.frames)
        layers = str(layers_path(target.pattern)) if wants_layers_file(settings.layers) else None
        report: dict[str, Any] = {"status": "running", "out": target.pattern, "layers": layers, "total": total,
                                  "done": [],
                                  "skipped": [], "no_face": [], "failed": {}, "faces": 0,
                                  "settings_hash": engine.settings_hash}

        def finished(frame: int, status: str, error: str | None = None) -> None:
            count = len(report["done"]) + len(report["skipped"]) + len(report["failed"])
            progress: dict[str, Any] = {"id": request_id, "done": count, "total": total, "frame": frame,
                                        "status": status}
            if error:
                progress["error"] = error
            session.notify("progress", progress)

        missing = set(sequence.missing())
        queue: deque[int] = deque()
        for f in sequence.frames:
            if f in missing:
                report["failed"][str(f)] = f"file missing: {sequence.path(f)}"
                finished(f, "failed", report["failed"][str(f)])
            elif not overwrite and frame_written_with(target.path(f), engine.settings_hash, settings.layers):
                report["skipped"].append(f)
                finished(f, "skipped")
            else:
                queue.append(f)

        def one(f: int) -> int:
            plan = plans.get(f, []) if faceset else None
            return len(swap_frame(engine, sequence.path(f), target.path(f), f, plan, finder, compression).faces)

        crashed: BaseException | None = None
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="serve-range") as pool:
            pending: dict[Future, int] = {}
            while pending or (queue and not cancel.is_set() and crashed is None):
                while queue and not cancel.is_set() and crashed is None and len(pending) < jobs:
                    f = queue.popleft()
                    pending[pool.submit(one, f)] = f
                done_now, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done_now:
                    f = pending.pop(future)
                    try:
                        faces = future.result()
                    except DflError as exc:  # this frame alone fails (unreadable, no colour channels ...)
                        report["failed"][str(f)] = str(exc)
                        finished(f, "failed", str(exc))
                    except Exception as exc:  # stop after the frames in flight, then answer
                        crashed = crashed or exc
                    else:
                        report["done"].append(f)
                        report["faces"] += faces
                        if faces == 0:
                            report["no_face"].append(f)
                        finished(f, "swapped" if faces else "no_face")
        for key in ("done", "no_face"):
            report[key].sort()
        report["seconds"] = round(time.perf_counter() - start, 4)
        if crashed is not None:
            raise crashed
        if queue:
            report["status"] = "cancelled"
            count = len(report["done"]) + len(report["skipped"]) + len(report["failed"])
            raise RpcError(REQUEST_CANCELLED, f"swap_range {request_id} cancelled after {count} of {total} "
                                              "frame(s); the frames written are whole", report)
        report["status"] = "complete"
        return report

    def inspect(self, session: Session, request: Request) -> dict[str, Any]:
        """A swapped frame's ``dfl_vfx:*`` header attributes (JSON ones decoded), channels and windows, and its
        layers file's channels and windows (None when it has none)."""
        path = _param(request.params, "path", str, "the path of a swapped frame")
        header = read_header(path)
        companion = layers_path(path)
        layers = None
        if companion.is_file():
            found = read_header(companion)
            layers = {"path": str(companion), "channels": list(found.channels),
                      "data_window": _window(found.data_window), "display_window": _window(found.display_window)}
        attributes: dict[str, Any] = {}
        for name, value in header.metadata.items():
            if name.startswith("dfl_vfx:"):
                attributes[name] = value if isinstance(value, (str, int, float, bool, list, dict)) else str(value)
        swap = SwapHeader.from_metadata(header.metadata, path)  # a malformed header is a one-line error
        if swap is not None:
            attributes |= swap.to_dict()
        return {"path": str(path), "swapped": SWAP_ATTRIBUTE in attributes, "channels": list(header.channels),
                "data_window": _window(header.data_window), "display_window": _window(header.display_window),
                "layers": layers, "attributes": attributes}


# -- transports -----------------------------------------------------------------------------------------------------

def serve_stdio(service: SwapService, stdin: Any, stdout: Any) -> None:
    """Answer JSON-RPC lines read from the binary stream ``stdin`` on ``stdout`` until the end or ``shutdown``.

    No token: the host that started the process owns its pipes.
    """
    def write(data: bytes) -> None:
        stdout.write(data)
        stdout.flush()

    session = service.open_session(write, needs_token=False)
    service.serve_session(session, stdin.readline)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        service: SwapService = self.server.service  # type: ignore[attr-defined]
        self.connection.settimeout(HELLO_TIMEOUT_S)

        def write(data: bytes) -> None:
            self.wfile.write(data)
            self.wfile.flush()

        session = service.open_session(write, needs_token=True,
                                       on_authenticated=lambda: self.connection.settimeout(None))
        if service.serve_session(session, self.rfile.readline):
            threading.Thread(target=self.server.shutdown, daemon=True).start()


class LocalServer(socketserver.ThreadingTCPServer):
    """A TCP server on 127.0.0.1 only; a connection must present the service's token before anything else."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, service: SwapService, port: int = 0) -> None:
        if not service.token:
            raise ValueError("a TCP server needs a token")
        super().__init__((LOCALHOST, port), _Handler)
        self.service = service

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def new_token() -> str:
    return secrets.token_urlsafe(32)


def default_token_file(port: int) -> Path:
    """``$XDG_RUNTIME_DIR/dfl-vfx/serve-PORT.token``, else ``<temp>/dfl-vfx-<uid>/serve-PORT.token``."""
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime_dir) / "dfl-vfx" if runtime_dir else Path(tempfile.gettempdir()) / f"dfl-vfx-{os.getuid()}"
    return base / f"serve-{port}.token"


def write_token_file(path: Path, token: str) -> None:
    """Write ``token`` to ``path`` readable by this user only (0600), in a folder only this user controls."""
    folder = path.parent
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise DflError(f"--token-file {path}: {folder} is not a folder of this user; choose another --token-file")
    if info.st_mode & 0o022:
        raise DflError(f"--token-file {path}: {folder} is writable by others; choose a private folder")
    tmp = folder / f".{path.name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (token + "\n").encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
