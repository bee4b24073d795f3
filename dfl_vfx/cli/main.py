"""The `dfl-vfx` command: subcommands from an explicit registry, one-line errors, logging set-up."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import signal
import sys
from collections.abc import Sequence

from dfl_vfx import __version__
from dfl_vfx.cli import (
    colorspaces_cmd,
    demo_cmd,
    demo_shot_cmd,
    eval_cmd,
    export_cmd,
    extract_cmd,
    faceset_cmd,
    farm_cmd,
    host_cmd,
    schema_cmd,
    serve_cmd,
    shot_cmd,
    swap_cmd,
    train_cmd,
    xseg_cmd,
)
from dfl_vfx.errors import DflError
from dfl_vfx.schema import SettingError, cli_label

# name -> module with add_parser(subparsers) and run(args) -> int
COMMANDS = {
    "demo": demo_cmd,
    "demo-shot": demo_shot_cmd,
    "extract": extract_cmd,
    "faceset": faceset_cmd,
    "train": train_cmd,
    "export": export_cmd,
    "swap": swap_cmd,
    "serve": serve_cmd,
    "schema": schema_cmd,
    "eval": eval_cmd,
    "colorspaces": colorspaces_cmd,
    "shot": shot_cmd,
    "farm": farm_cmd,
    "host": host_cmd,
    "xseg": xseg_cmd,
}

DESCRIPTION = """\
dfl_vfx: DeepFaceLab-class face replacement for scene-linear VFX plates.

Typical shot:
  dfl-vfx demo-shot build/demo                      # or use your own plate
  dfl-vfx extract build/demo/plate/plate.####.exr --out build/demo/dst_faces --smooth 5
  dfl-vfx faceset info build/demo/dst_faces
  dfl-vfx train --src build/demo/src_faces --dst build/demo/dst_faces --model-dir build/demo/model
  dfl-vfx export build/demo/model --out build/demo/model.onnx
  dfl-vfx swap build/demo/plate/plate.####.exr --model build/demo/model.onnx \\
      --faceset build/demo/dst_faces --out build/demo/swap
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dfl-vfx", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"dfl_vfx {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    parser.add_argument("--log-file", metavar="PATH", help="also write the log to this file")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        module.add_parser(sub, name)
    return parser


def _enable_faulthandler(stream: object) -> None:
    for candidate in (stream, sys.__stderr__):
        try:
            faulthandler.enable(file=candidate, all_threads=True)  # type: ignore[arg-type]
            return
        except (AttributeError, ValueError, OSError):  # no file descriptor (a captured stream)
            continue


def _setup_logging(verbose: bool, log_file: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        try:
            file_handler = logging.FileHandler(log_file)
        except OSError as exc:
            raise DflError(f"--log-file {log_file}: cannot write ({exc.strerror}); choose another path") from None
        handlers.append(file_handler)
    # a native crash (a segfault in a C library) leaves every thread's Python stack in the log or on stderr
    _enable_faulthandler(file_handler.stream if log_file else sys.stderr)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s" if verbose else "%(message)s",
        handlers=handlers,
        force=True,
    )


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (a farm pre-empting the task) unwinds like Ctrl-C, so work in progress is saved."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        _setup_logging(args.verbose, args.log_file)
        return int(args.run(args) or 0)
    except SettingError as exc:  # named by the setting; the CLI says the option
        print(f"dfl-vfx {args.command}: error: {cli_label(exc)}", file=sys.stderr)
        return 2
    except DflError as exc:
        print(f"dfl-vfx {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dfl-vfx {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def trainer_main(argv: Sequence[str] | None = None) -> int:
    """The standalone `trainer` command and `python -m trainer`: `trainer ARGS` == `dfl-vfx train ARGS`."""
    return main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
