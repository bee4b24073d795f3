"""The add-on as shipped: `make blender-addon`'s zip installs as a Blender extension and, unpacked into an add-on
folder, loads as a legacy add-on through ``bl_info``; `dfl-vfx host install blender` puts it in Blender's user
extensions folder with the engine's path as its Engine preference. Each way it finds the host client it carries,
with no source checkout on ``sys.path``, in a fresh Blender Python (a subprocess of this interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from blender_comp import ADDON_ROOT, run_engine

sys.path.insert(0, str(ADDON_ROOT))
import build_addon  # noqa: E402

CHECK = """
import json, os, sys
sys.path = [p for p in sys.path if p not in ("", {repo!r}, {addon_root!r})]
import bpy, addon_utils
mode, target = sys.argv[1], sys.argv[2]
if mode == "extension":
    bpy.ops.extensions.package_install_files(filepath=target, repo="user_default", enable_on_install=True)
    module_name = "bl_ext.user_default.dfl_blender"
elif mode == "installed":  # `dfl-vfx host install blender` into the user extensions folder
    module_name = "bl_ext.user_default.dfl_blender"
    addon_utils.enable(module_name, default_set=True, handle_error=None)
else:
    sys.path.insert(0, target)
    addon_utils.enable("dfl_blender", default_set=True, handle_error=None)
    module_name = "dfl_blender"
import dfl_host
module = sys.modules[module_name]
print(json.dumps({{"enabled": module_name in bpy.context.preferences.addons,
                   "operators": [hasattr(bpy.ops.dfl, n) for n in ("add_swap_node", "bake_frame", "bake_range")],
                   "dfl_host": os.path.relpath(dfl_host.__file__, os.path.dirname(module.__file__)),
                   "bl_info": getattr(module, "bl_info", {{}}).get("name"),
                   "engine": sys.modules[module_name + ".prefs"].engine_path(),
                   "engine_preference": bpy.context.preferences.addons[module_name].preferences.engine}}))
sys.stdout.flush()
os._exit(0)
"""


def run_check(mode: str, target: Path, tmp_path: Path) -> dict:
    env = {"BLENDER_USER_RESOURCES": str(tmp_path / "user"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    script = CHECK.format(repo=str(ADDON_ROOT.parent), addon_root=str(ADDON_ROOT))
    done = subprocess.run([sys.executable, "-c", script, mode, str(target)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_zip_installs_as_an_extension(tmp_path: Path) -> None:
    archive = build_addon.build(tmp_path / "dfl_blender.zip")
    names = zipfile.ZipFile(archive).namelist()
    assert {"blender_manifest.toml", "__init__.py", "schema.json", "vendor/dfl_host/client.py"} <= set(names)
    assert not [name for name in names if "__pycache__" in name]
    assert build_addon.build(tmp_path / "again.zip").read_bytes() == archive.read_bytes()  # reproducible
    found = run_check("extension", archive, tmp_path)
    assert found["enabled"] and found["operators"] == [True, True, True]
    assert found["dfl_host"] == "vendor/dfl_host/__init__.py"  # the client it carries, not a checkout's


def test_unpacked_zip_loads_as_a_legacy_addon(tmp_path: Path) -> None:
    archive = build_addon.build(tmp_path / "dfl_blender.zip")
    folder = tmp_path / "addons"
    zipfile.ZipFile(archive).extractall(folder / "dfl_blender")
    found = run_check("legacy", folder, tmp_path)
    assert found["enabled"] and found["operators"] == [True, True, True] and found["bl_info"] == "DFL Swap"
    assert found["dfl_host"] == "vendor/dfl_host/__init__.py"


def test_host_install_blender_sets_the_engine_preference(engine_exe: str, tmp_path: Path) -> None:
    extensions = tmp_path / "user" / "extensions" / "user_default"
    for _ in range(2):  # installing again updates the folder
        printed = run_engine(engine_exe, "host", "install", "blender", f"--dest={extensions}",
                             f"--engine={engine_exe}")
        assert f"installed the Blender add-on in {extensions / 'dfl_blender'}" in printed
    found = run_check("installed", extensions, tmp_path)
    assert found["enabled"] and found["operators"] == [True, True, True]
    assert found["dfl_host"] == "vendor/dfl_host/__init__.py"
    assert found["engine"] == found["engine_preference"] == engine_exe
