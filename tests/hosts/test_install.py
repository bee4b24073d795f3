"""`dfl-vfx host install nuke --dest DIR`: the plugin folder, the engine's path, and never a studio's file lost."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

from dfl_vfx.cli.main import main
from dfl_vfx.hosts.install import CONFIG_NAME, PLUGIN_NAME, REPO

ENGINE = str(Path(sys.executable).with_name("dfl-vfx"))


def test_install_copies_the_plugin_and_the_client_and_records_the_engine(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    assert main(["host", "install", "nuke", "--dest", str(tmp_path / "plugins")]) == 0
    target = tmp_path / "plugins" / PLUGIN_NAME
    for name in ("init.py", "menu.py", "gizmos/DFLSwap.gizmo", "gizmos/DFLMask.gizmo", "gizmos/DFLSwapNative.gizmo",
                 "gizmos/DFLExtract.gizmo", "dfl_nuke/swap_node.py", "dfl_nuke/native.py", "dfl_nuke/extract.py",
                 "dfl_nuke/inputs.py", "dfl_host/client.py"):
        assert (target / name).read_bytes() == (REPO / ("nuke" if not name.startswith("dfl_host") else "")
                                                / name).read_bytes(), name
    assert not list(target.rglob("__pycache__"))
    config = json.loads((target / CONFIG_NAME).read_text())
    assert config["engine"] == ENGINE
    assert "gizmos/DFLSwap.gizmo" in config["files"]
    # the installed plugin finds that engine through its own code
    bake = runpy.run_path(str(target / "dfl_nuke" / "bake.py"), run_name="installed_bake")
    assert bake["configured_engine"](str(target)) == ENGINE
    out = capsys.readouterr().out
    assert f'nuke.pluginAddPath("{target}")' in out
    assert not [p for p in (tmp_path / "plugins").iterdir() if p.name != PLUGIN_NAME]  # no stage left behind


def test_reinstall_updates_but_never_overwrites_a_studio_file(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    dest = tmp_path / "plugins"
    assert main(["host", "install", "nuke", "--dest", str(dest), "--engine", "/opt/a/dfl-vfx"]) == 0
    target = dest / PLUGIN_NAME
    (target / "gizmos" / "DFLSwap.gizmo").write_text("old\n")
    assert main(["host", "install", "nuke", "--dest", str(dest), "--engine", "/opt/b/dfl-vfx"]) == 0
    assert json.loads((target / CONFIG_NAME).read_text())["engine"] == "/opt/b/dfl-vfx"
    assert (target / "gizmos" / "DFLSwap.gizmo").read_text() != "old\n"

    studio = target / "gizmos" / "StudioKeyer.gizmo"
    studio.write_text("keep me\n")
    capsys.readouterr()
    assert main(["host", "install", "nuke", "--dest", str(dest)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{studio} is not a file of ours" in err
    assert studio.read_text() == "keep me\n"
    assert json.loads((target / CONFIG_NAME).read_text())["engine"] == "/opt/b/dfl-vfx"


@pytest.mark.parametrize("what", ["folder", "file"])
def test_a_folder_or_file_of_that_name_not_made_by_us_is_refused(tmp_path: Path, what: str,
                                                               capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / PLUGIN_NAME
    if what == "folder":
        target.mkdir()
        (target / "init.py").write_text("# the studio's\n")
    else:
        target.write_text("x")
    assert main(["host", "install", "nuke", "--dest", str(tmp_path)]) == 2
    assert "dfl-vfx host: error: --dest: " in capsys.readouterr().err
    if what == "folder":
        assert (target / "init.py").read_text() == "# the studio's\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [PLUGIN_NAME]


def test_dest_that_is_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "f").write_text("x")
    assert main(["host", "install", "nuke", "--dest", str(tmp_path / "f")]) == 2
    assert "dfl-vfx host: error: --dest " in capsys.readouterr().err


def test_host_script_writes_a_comp_that_parses(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from dfl_vfx.hosts import nk

    out = tmp_path / "demo" / "comp.nk"
    (tmp_path / "plate").mkdir()
    for frame in range(1001, 1049):
        (tmp_path / "plate" / f"plate.{frame}.exr").write_bytes(b"")  # the plate's frames exist
    plate = str(tmp_path / "plate" / "plate.####.exr")
    assert main(["host", "script", "nuke", str(out), "--plate", plate, "--model", "m.onnx",
                 "--frames", "1001-1048"]) == 0
    nodes = {s.name: s for s in nk.parse(out.read_text()) if isinstance(s, nk.Node)}
    assert nodes["Plate"].value("file") == plate
    assert nodes["DFLSwap1"].value("cache_root") == str(tmp_path / "demo" / "nuke_cache")
    assert (nodes["DFLSwap1"].value("first_frame"), nodes["DFLSwap1"].value("last_frame")) == ("1001", "1048")
    assert nodes["Write1"].value("file") == str(tmp_path / "demo" / "comp" / "comp.####.exr")
    capsys.readouterr()
    assert main(["host", "script", "nuke", str(out), "--plate", "p.####.exr", "--model", "m", "--frames",
                 "1048-1001"]) == 2
    assert "dfl-vfx host: error: --frames 1048-1001: give FIRST-LAST" in capsys.readouterr().err


def _pybind11_path() -> str | None:
    """A folder to put on PYTHONPATH so setup.py can import pybind11 (a build requirement the venv may lack)."""
    import importlib.util
    import sysconfig

    if importlib.util.find_spec("pybind11") is not None:
        return ""
    base = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})["purelib"]
    return base if (Path(base) / "pybind11").is_dir() else None


def test_an_installed_package_installs_the_plugin_from_its_package_data(tmp_path: Path) -> None:
    """setup.py's build_py puts nuke/ into the package (what a wheel holds); that package, away from the checkout,
    installs the plugin through importlib.resources (the native extensions are not built: install needs none)."""
    import os
    import subprocess

    extra = _pybind11_path()
    if extra is None:
        pytest.skip("setup.py needs pybind11 (a build requirement) and neither this venv nor its base has it")
    build = tmp_path / "lib"
    env = dict(os.environ, PYTHONPATH=extra)
    done = subprocess.run([sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(tmp_path), "build_py",
                           "--build-lib", str(build)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    packaged = build / "dfl_vfx" / "hosts" / "plugins" / "nuke"
    assert (packaged / "gizmos" / "DFLSwap.gizmo").read_bytes() == (REPO / "nuke/gizmos/DFLSwap.gizmo").read_bytes()
    script = ("import sys, dfl_vfx.hosts.install as i; from pathlib import Path; "
              "print(i.__file__); print(i.packaged_plugin()); print(i.install_nuke(Path(sys.argv[1]), '/opt/dfl-vfx'))")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "dest")], cwd=tmp_path, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(build)), timeout=120)
    assert done.returncode == 0, done.stderr
    module, resource, target = done.stdout.split()
    assert module == str(build / "dfl_vfx" / "hosts" / "install.py")  # the built package, not the checkout
    assert resource == str(packaged)
    installed = Path(target)
    for name in ("init.py", "menu.py", "gizmos/DFLSwap.gizmo", "dfl_nuke/bake.py"):
        assert (installed / name).read_bytes() == (REPO / "nuke" / name).read_bytes(), name
    assert (installed / "dfl_host" / "client.py").read_bytes() == (REPO / "dfl_host" / "client.py").read_bytes()
    assert json.loads((installed / CONFIG_NAME).read_text())["engine"] == "/opt/dfl-vfx"
