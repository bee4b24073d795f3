"""Build the Blender add-on zip (`make blender-addon`): ``dfl_blender/`` with the host client ``dfl_host`` inside
(``vendor/dfl_host``), laid out as a Blender extension (``blender_manifest.toml`` at the zip's root) for
Edit > Preferences > Get Extensions > Install from Disk, or ``blender --command extension install-file``.

Standard library only; the same bytes for the same sources (sorted entries, fixed timestamps).
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ADDON = HERE / "dfl_blender"
CLIENT = HERE.parent / "dfl_host"
FIXED_TIME = (2024, 1, 1, 0, 0, 0)


def addon_files(addon: Path = ADDON, client: Path = CLIENT) -> list[tuple[Path, str]]:
    """(source file, name in the zip) of every file the add-on ships, sorted by name."""
    skip = {"__pycache__"}
    files = [(p, str(p.relative_to(addon))) for p in addon.rglob("*")
             if p.is_file() and not skip & set(p.parts) and p.suffix != ".pyc"]
    files += [(p, f"vendor/dfl_host/{p.relative_to(client)}") for p in client.rglob("*.py")
              if not skip & set(p.parts)]
    return sorted(files, key=lambda item: item[1])


def build(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for source, name in addon_files():
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, source.read_bytes())
    partial.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/dfl_blender.zip"), help="the zip to write")
    args = parser.parse_args(argv)
    if not (ADDON / "blender_manifest.toml").is_file() or not (CLIENT / "client.py").is_file():
        print(f"build_addon: run from a source checkout ({ADDON} and {CLIENT} must exist)", file=sys.stderr)
        return 2
    print(f"wrote {build(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
