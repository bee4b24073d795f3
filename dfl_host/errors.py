"""What can go wrong talking to the engine, as exceptions a host can show in one line.

An engine error answer (JSON-RPC ``error`` object) becomes the :class:`EngineError` subclass of its code. A setting
error keeps the setting's schema name in :attr:`SettingError.setting`, so a host words it with its own label
(:meth:`SettingError.worded`): ``Face scale 99: out of range; use -50..50 (percent)``.
"""

from __future__ import annotations

from typing import Any

# JSON-RPC 2.0 codes and the engine's own (docs/dev/host-protocol.md); tests keep them equal to the server's
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
UNAUTHORIZED = -32001
OUTPUT_REFUSED = -32002
INVALID_SETTING = -32003
REQUEST_FAILED = -32004
REQUEST_CANCELLED = -32800


class EngineError(Exception):
    """An error from (or about) the engine. ``str()`` is one line for the user; ``code`` and ``data`` are the
    engine's (None when the client itself found the problem)."""

    def __init__(self, message: str, code: int | None = None, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = " ".join(str(message).split())
        self.code = code
        self.data = data or {}

    def __str__(self) -> str:
        return self.message


class SettingError(EngineError):
    """A setting's value was refused; :attr:`setting` is its schema name (``face_scale``)."""

    def __init__(self, message: str, code: int | None = None, data: dict[str, Any] | None = None) -> None:
        super().__init__(message, code, data)
        self.setting: str = str(self.data.get("setting", ""))
        self.value: Any = self.data.get("value")
        self.problem: str = str(self.data.get("problem", self.message))

    def worded(self, label: str) -> str:
        """The message with the host's own ``label`` for the setting in front."""
        value = ",".join(str(v) for v in self.value) if isinstance(self.value, list) else self.value
        if isinstance(value, float) and value % 1 == 0:
            value = int(value)
        return f"{label} {value}: {self.problem}"


class OutputRefused(EngineError):
    """An output path outside the declared output root, over an input, or no output root declared."""


class RequestFailed(EngineError):
    """The engine could not do it: a missing frame, an unreadable model, a faceset that does not match ..."""


class RequestCancelled(EngineError):
    """A swap range stopped by cancel; :attr:`report` says which frames were done (all written whole)."""

    @property
    def report(self) -> dict[str, Any]:
        return self.data


class Unauthorized(EngineError):
    """The server wants its token (TCP): wrong or missing."""


class ProtocolError(EngineError):
    """The engine did not understand the request: a bug in the client or a version mismatch."""


class EngineNotFound(EngineError):
    """No engine executable: set ``DFL_VFX_EXE`` or pass its path."""


class EngineDied(EngineError):
    """The engine process ended (or the connection closed) before answering."""


class EngineTimeout(EngineError):
    """No answer in time; the engine may be stuck (close the client to stop it)."""


_BY_CODE = {
    UNAUTHORIZED: Unauthorized,
    OUTPUT_REFUSED: OutputRefused,
    INVALID_SETTING: SettingError,
    REQUEST_FAILED: RequestFailed,
    REQUEST_CANCELLED: RequestCancelled,
}


def error_from_answer(error: dict[str, Any]) -> EngineError:
    """The exception for a JSON-RPC error object."""
    code = error.get("code")
    message = str(error.get("message") or "the engine gave no message")
    data = error.get("data") if isinstance(error.get("data"), dict) else None
    kind = _BY_CODE.get(code) if isinstance(code, int) else None
    if kind is None:
        kind = ProtocolError if isinstance(code, int) and -32700 <= code <= -32600 and code != INTERNAL_ERROR \
            else EngineError
    return kind(message, code if isinstance(code, int) else None, data)
