"""The host client runs in Nuke's and Blender's Pythons: 3.9+, standard library only."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

HOST_PACKAGE = Path(__file__).resolve().parents[2] / "dfl_host"
REPO = HOST_PACKAGE.parent
ENGINE = str(Path(sys.executable).with_name("dfl-vfx"))


def test_vermin_finds_nothing_newer_than_python_39() -> None:
    vermin = Path(sys.executable).with_name("vermin")
    done = subprocess.run([str(vermin), "-t=3.9-", "--no-tips", "--violations", str(HOST_PACKAGE)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "requires" not in done.stdout and "Target versions not met" not in done.stdout


def test_only_the_standard_library_is_imported() -> None:
    imported = set()
    for path in HOST_PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"dfl_host"}


def test_the_client_drives_the_engine_from_python_39(python39: str, tmp_path: Path) -> None:
    script = """
import json, sys
from dfl_host import EngineClient, bake_cache, swap_command
with EngineClient.start(sys.argv[1], output_root=sys.argv[2]) as engine:
    schema = engine.schema()
    pong = engine.ping()["pong"]
    cache = bake_cache("/cache", "shot.nk", "DFLSwap1", "/p/plate.####.exr", "/m/a.onnx", {"blur": 3}, schema)
    args = swap_command(schema, "/p/plate.####.exr", "/m/a.onnx", cache.folder, {"face_scale": 5}, exe=sys.argv[1])
code = engine.process.returncode
print(json.dumps({"version": list(sys.version_info[:2]), "pong": pong, "args": args, "code": code}))
"""
    done = subprocess.run([python39, "-c", script, ENGINE, str(tmp_path)], capture_output=True, text=True,
                          timeout=180, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["version"] == [3, 9] and report["pong"] is True and report["code"] == 0
    assert report["args"][-1] == "--face-scale=5"
