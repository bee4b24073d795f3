"""Loads the compiled native core, or reports why it is missing (pure-Python paths then serve)."""

from __future__ import annotations

try:
    from dfl_vfx import _native
except ImportError:  # pragma: no cover - exercised only on a broken install
    _native = None


def available() -> bool:
    """True when the compiled module imported."""
    return _native is not None


def build_info() -> dict[str, object]:
    """Compiler and CUDA facts of the native build; {} when it is not built."""
    return dict(_native.build_info()) if _native is not None else {}
