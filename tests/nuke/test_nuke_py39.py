"""The Nuke side imports and works in Python 3.9 (Nuke 14's), not only in the engine's 3.11."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

NUKE_PLUGIN = Path(__file__).resolve().parents[2] / "nuke"
REPO = NUKE_PLUGIN.parent
ENGINE = str(Path(sys.executable).with_name("dfl-vfx"))
SCRIPT = """
import json, sys, types
sys.modules["nuke"] = types.ModuleType("nuke")  # only the names used at import time: none
import dfl_nuke.swap_node, dfl_nuke.native, dfl_nuke.extract, dfl_nuke.inputs
from dfl_host import read_schema
from dfl_nuke.bake import frame_list, knob_settings, plate_pattern
settings = knob_settings(read_schema(sys.argv[1]), {"blur": 3, "face_type": "default", "device": "a b"})
print(json.dumps({"version": list(sys.version_info[:2]), "settings": settings,
                  "curve": dfl_nuke.native.curve([(1, 0.5), (2, -3.0)]),
                  "limit": dfl_nuke.extract.time_limit_s("25m"),
                  "frames": frame_list([3, 1, 2, 7]), "plate": plate_pattern("p.%04d.exr")}))
"""


def test_dfl_nuke_runs_in_python_39(python39: str) -> None:
    done = subprocess.run([python39, "-c", SCRIPT, ENGINE], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(NUKE_PLUGIN), str(REPO)])))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["version"] == [3, 9]
    assert report["settings"]["blur"] == 3.0 and report["settings"]["device"] == "a b"
    assert "face_type" not in report["settings"]
    assert report["frames"] == "1-3,7" and report["plate"] == "p.####.exr"
    assert report["curve"] == "{curve x1 0.5 x2 -3}" and report["limit"] == 1500
