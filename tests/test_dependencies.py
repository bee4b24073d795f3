"""Dependencies point the right way round, read from the imports themselves (any import, at any depth)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path, package: str | None = None) -> set[str]:
    """Every module a file imports, top level or inside functions (relative imports resolved in ``package``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if package is None:
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(p for p in [*parts, base] if p)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _files(folder: str, exclude: tuple[str, ...] = ()) -> list[Path]:
    return [p for p in sorted((ROOT / folder).rglob("*.py")) if not any(p.is_relative_to(ROOT / e) for e in exclude)]


def _offenders(files: list[Path], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    bad = {}
    for path in files:
        hits = sorted(m for m in imported_modules(path) if any(m == f or m.startswith(f + ".") for f in forbidden))
        if hits:
            bad[str(path.relative_to(ROOT))] = hits
    return bad


def test_the_trainer_does_not_import_the_cli() -> None:
    # trainer/__main__.py is the `python -m trainer` launcher: an entry point that hands arguments to the CLI
    files = [p for p in _files("trainer") if p.name != "__main__.py"]
    assert _offenders(files, ("dfl_vfx.cli",)) == {}


def test_the_engine_does_not_import_the_cli() -> None:
    assert _offenders(_files("dfl_vfx", exclude=("dfl_vfx/cli",)), ("dfl_vfx.cli",)) == {}


def test_the_runtime_reads_models_without_the_exporter() -> None:
    assert _offenders(_files("dfl_vfx/runtime"), ("dfl_vfx.export",)) == {}


@pytest.mark.parametrize("module", ["dfl_vfx/schema.py", "dfl_vfx/models/contract.py", "dfl_vfx/errors.py"])
def test_light_modules_import_nothing_heavy(module: str) -> None:
    heavy = ("torch", "numpy", "cv2", "OpenImageIO", "PyOpenColorIO", "onnx", "onnxruntime", "dlib", "trainer")
    assert _offenders([ROOT / module], heavy) == {}


def test_the_checker_sees_nested_and_relative_imports(tmp_path: Path) -> None:
    sample = tmp_path / "probe.py"
    sample.write_text("def f():\n    from ..cli import main\n    import torch.nn\n")
    found = imported_modules(sample, package="dfl_vfx.swap")
    assert {"dfl_vfx.cli", "dfl_vfx.cli.main", "torch.nn"} <= found


def test_swap_and_eval_find_faces_without_the_extraction_pipeline() -> None:
    files = _files("dfl_vfx/swap") + _files("dfl_vfx/eval")
    assert _offenders(files, ("dfl_vfx.extract.pipeline",)) == {}
