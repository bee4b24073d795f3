"""Shared helpers for benchmark scripts: machine and version facts, JSON output."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

PACKAGES = ("dfl-vfx", "numpy", "OpenImageIO", "opencolorio", "opencv-python-headless", "dlib-bin", "onnxruntime")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, object]:
    """Facts about where a benchmark ran."""
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
    }


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def write_result(outdir: Path, name: str, figures: dict[str, object], settings: dict[str, object]) -> Path:
    """Write ``outdir/<name>.json`` with machine, versions, settings and figures; return its path."""
    outdir.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "settings": settings,
        "figures": figures,
    }
    path = outdir / f"{name}.json"
    path.write_text(json.dumps(result, indent=2))
    return path
