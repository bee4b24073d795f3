"""Installing a host front end: ``dfl-vfx host install nuke|blender --dest DIR``.

Owns the installed layout: ``DIR/dfl_vfx_nuke/`` holds the Nuke plugin folder (``init.py``, ``menu.py``,
``gizmos/``, ``dfl_nuke/``), a copy of the ``dfl_host`` client and ``dfl_nuke_config.json`` (the engine's path and
the list of installed files). The plugin comes from the package data of an installed wheel
(``dfl_vfx/hosts/plugins/nuke``, which setup.py's build_py copies from ``nuke/``), else from the source checkout's
``nuke/`` (an editable install). The folder is built beside its target and renamed into place, so an install is all or
nothing; a file there that an earlier install did not write (a studio's own) stops it with a one-line error.

Blender: ``DIR/dfl_blender/`` is the add-on (``blender_addon/dfl_blender`` of the source checkout) with the client in
``vendor/dfl_host`` and ``dfl_blender_config.json`` (the engine's path, which fills the add-on's Engine preference).
DIR is an extensions repository folder (``~/.config/blender/4.2/extensions/user_default``) or a legacy
``scripts/addons`` folder.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from dfl_vfx import __version__
from dfl_vfx.errors import DflError

REPO = Path(__file__).resolve().parents[2]
PLUGIN_NAME = "dfl_vfx_nuke"
CONFIG_NAME = "dfl_nuke_config.json"
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "README.md")


def running_engine() -> str:
    """The ``dfl-vfx`` executable of this Python (the one running this command)."""
    beside = Path(sys.executable).with_name("dfl-vfx")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("dfl-vfx")
    if found is None:
        raise DflError("cannot find the dfl-vfx executable of this install; run `host install` through it")
    return os.path.abspath(found)


def packaged_plugin() -> Path:
    """Where an installed (non-editable) package keeps the Nuke plugin folder."""
    return Path(str(importlib.resources.files("dfl_vfx.hosts") / "plugins" / "nuke"))


def _sources() -> tuple[Path, Path]:
    packaged = packaged_plugin()
    plugin = packaged if (packaged / "gizmos").is_dir() else REPO / "nuke"
    client = Path(str(importlib.resources.files("dfl_host")))
    for folder, what in ((plugin / "gizmos", "the Nuke plugin (nuke/)"), (client, "the host client (dfl_host/)")):
        if not folder.is_dir():
            raise DflError(f"{what} is not beside this dfl_vfx ({folder} missing); reinstall dfl-vfx")
    return plugin, client


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _previous_files(target: Path, config_name: str = CONFIG_NAME, host: str = "nuke") -> set[str]:
    """The files an earlier install wrote into ``target``; a folder we did not make is refused."""
    config = target / config_name
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        files = set(data["files"])
        assert data.get("installed_by") == "dfl-vfx host install"
    except (OSError, ValueError, KeyError, TypeError, AssertionError):
        raise DflError(f"--dest: {target} exists and was not made by `dfl-vfx host install {host}`; it is never "
                       "overwritten: choose another --dest or move it away") from None
    return files


def install_nuke(dest: Path, engine: str | None = None) -> Path:
    """Install the Nuke plugin into ``dest/dfl_vfx_nuke`` and return that folder."""
    from dfl_vfx.io.outputs import check_output_dir

    dest = check_output_dir(dest, "--dest", create=True)
    plugin, client = _sources()
    target = dest / PLUGIN_NAME
    if target.is_symlink() or target.is_file():
        raise DflError(f"--dest: {target} is a file or link, not an install of ours; move it away")
    previous = _previous_files(target) if target.exists() else set()
    stage = Path(tempfile.mkdtemp(prefix=f".{PLUGIN_NAME}.", dir=dest))
    try:
        shutil.copytree(plugin, stage / "plugin", ignore=SKIP)
        shutil.copytree(client, stage / "plugin" / "dfl_host", ignore=SKIP)
        built = stage / "plugin"
        files = _files(built) + [CONFIG_NAME]
        if target.exists():
            foreign = sorted(set(_files(target)) - previous - {CONFIG_NAME})
            if foreign:
                raise DflError(f"--dest: {target / foreign[0]} is not a file of ours (a studio's own?); it is never "
                               "overwritten: move it out of the folder, then install again")
        config = {"installed_by": "dfl-vfx host install", "dfl_vfx_version": __version__,
                  "engine": engine or running_engine(), "files": files}
        (built / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            old = stage / "old"
            target.rename(old)
        built.rename(target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return target


BLENDER_ADDON = "dfl_blender"
BLENDER_CONFIG = "dfl_blender_config.json"


def install_blender(dest: Path, engine: str | None = None) -> Path:
    """Install the Blender add-on into ``dest/dfl_blender`` (all or nothing) and return that folder."""
    from dfl_vfx.io.outputs import check_output_dir

    addon = REPO / "blender_addon" / BLENDER_ADDON
    client = Path(str(importlib.resources.files("dfl_host")))
    if not (addon / "blender_manifest.toml").is_file():
        raise DflError(f"the Blender add-on is not beside this dfl_vfx ({addon} missing); install from a source "
                       "checkout, or install the zip of `make blender-addon` in Blender")
    dest = check_output_dir(dest, "--dest", create=True)
    target = dest / BLENDER_ADDON
    if target.is_symlink() or target.is_file():
        raise DflError(f"--dest: {target} is a file or link, not an install of ours; move it away")
    previous = _previous_files(target, BLENDER_CONFIG, "blender") if target.exists() else set()
    stage = Path(tempfile.mkdtemp(prefix=f".{BLENDER_ADDON}.", dir=dest))
    try:
        built = stage / "addon"
        shutil.copytree(addon, built, ignore=SKIP)
        shutil.copytree(client, built / "vendor" / "dfl_host", ignore=SKIP)
        files = _files(built) + [BLENDER_CONFIG]
        foreign = sorted(set(_files(target)) - previous - {BLENDER_CONFIG}) if target.exists() else []
        if foreign:
            raise DflError(f"--dest: {target / foreign[0]} is not a file of ours; it is never overwritten: move it "
                           "out of the folder, then install again")
        config = {"installed_by": "dfl-vfx host install", "dfl_vfx_version": __version__,
                  "engine": engine or running_engine(), "files": files}
        (built / BLENDER_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            target.rename(stage / "old")
        built.rename(target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return target


def init_line(target: Path) -> str:
    """The line a studio adds to its ``init.py`` (or its NUKE_PATH) to load the plugin."""
    return f"nuke.pluginAddPath({json.dumps(str(target))})"
