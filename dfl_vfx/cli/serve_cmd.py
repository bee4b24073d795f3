"""`dfl-vfx serve`: keep models loaded and swap frames for host front ends (JSON-RPC 2.0 on stdio or 127.0.0.1)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

EPILOG = """\
protocol: JSON-RPC 2.0, one message per line (docs/dev/host-protocol.md); hosts use the dfl_host client.
  {"jsonrpc": "2.0", "id": 1, "method": "hello", "params": {"output_root": "/shots/a/cache"}}
  {"jsonrpc": "2.0", "id": 2, "method": "swap_frame", "params": {"plate": "/p/a.####.exr", "frame": 1001,
   "model": "/m/a.onnx", "out": "/shots/a/cache/a.1001.exr", "settings": {"erode": 10, "blur": 40}}}
  -> {"jsonrpc": "2.0", "id": 2, "result": {"out": "/shots/a/cache/a.1001.exr", "faces": 1, ...}}
methods: hello, ping, schema, load, unload, models, swap_frame, swap_range (progress notifications), cancel,
inspect, shutdown. Settings use the names of `dfl-vfx schema`. Frames are written only inside the output root the
client declares with hello (or --output-root); nothing is written before one is declared.

TCP: bound to 127.0.0.1; each connection must first send hello with the token, which is generated at start,
written to --token-file (mode 0600) and printed on stderr. stdio needs no token.

examples:
  dfl-vfx serve                                 # stdin/stdout (a host starts it as a subprocess)
  dfl-vfx serve --port 0 --max-models 1         # TCP on a free port; prints {"listening": PORT, ...} first
"""


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="persistent swap worker for Nuke/Blender (JSON-RPC 2.0 lines)",
                       description="Keep models loaded and answer swap requests for frames and frame ranges.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, help="listen on 127.0.0.1:PORT instead of stdin/stdout (0 = any free port)")
    p.add_argument("--token-file", type=Path,
                   help="where the TCP token is written, mode 0600 (default: $XDG_RUNTIME_DIR/dfl-vfx/ or "
                        "<temp>/dfl-vfx-<uid>/serve-PORT.token)")
    p.add_argument("--output-root", type=Path,
                   help="folder clients may write in until they declare their own with hello (default: none, "
                        "so nothing is written before a client declares one)")
    p.add_argument("--max-models", type=int, default=2, help="loaded models kept, least recently used dropped "
                                                             "first (default 2)")
    p.add_argument("--workers", type=int, default=4, help="requests worked on at once (default 4)")
    p.add_argument("--threads", type=int, default=0,
                   help="inference and merge threads per model (default 0: the libraries' own)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dfl_vfx.errors import DflError
    from dfl_vfx.swap.serve import (
        LocalServer,
        SwapService,
        default_token_file,
        new_token,
        serve_stdio,
        write_token_file,
    )

    if args.port is None:
        service = SwapService(args.output_root, args.max_models, args.workers, args.threads)
        # the protocol owns stdout: anything else a library prints goes to stderr
        protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
        sys.stdout.flush()
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        try:
            serve_stdio(service, sys.stdin.buffer, protocol_out)
        finally:
            service.close()
            with contextlib.suppress(OSError):
                protocol_out.close()
        return 0
    if not 0 <= args.port <= 65535:
        raise DflError(f"--port {args.port} must be 0..65535")
    token = new_token()
    service = SwapService(args.output_root, args.max_models, args.workers, args.threads, token=token)
    try:
        server = LocalServer(service, args.port)
    except OSError as exc:
        raise DflError(f"--port {args.port}: cannot listen on 127.0.0.1 ({exc.strerror}); choose another port "
                       "or 0") from None
    token_file = args.token_file or default_token_file(server.port)
    try:
        write_token_file(token_file, token)
    except OSError as exc:
        server.server_close()
        raise DflError(f"--token-file {token_file}: cannot write ({exc.strerror}); choose another path") from None
    except DflError:
        server.server_close()
        raise
    print(f"dfl-vfx serve: listening on 127.0.0.1:{server.port}; token {token} (also in {token_file}, mode 0600)",
          file=sys.stderr, flush=True)
    print(json.dumps({"listening": server.port, "host": "127.0.0.1", "token_file": str(token_file)}), flush=True)
    try:
        with server:
            server.serve_forever()
    except KeyboardInterrupt:
        print("dfl-vfx serve: stopped", file=sys.stderr)
    finally:
        service.close()
        with contextlib.suppress(OSError):
            token_file.unlink()
    return 0
