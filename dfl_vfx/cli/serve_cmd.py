"""`dfl-vfx serve`: keep models loaded and swap frames on request (JSON lines on stdin/stdout or 127.0.0.1)."""

from __future__ import annotations

import argparse
import json
import sys

EPILOG = """\
protocol: one JSON request per line, one JSON response per line, matched by "id":
  {"id": 1, "method": "swap", "params": {"plate": "/p/shot.####.exr", "frame": 1001, "model": "/m/shot.onnx",
   "out": "/tmp/shot.1001.exr", "settings": {"erode": 10, "blur": 40}, "layers": ["rgba", "mask"]}}
  -> {"id": 1, "ok": true, "result": {"out": "/tmp/shot.1001.exr", "faces": 1, "seconds": 0.4}}
methods: ping, load (warm a model), swap, models, shutdown. Errors come back as {"ok": false, "error": "..."}.

examples:
  dfl-vfx serve                  # stdin/stdout (a host spawns it as a subprocess)
  dfl-vfx serve --port 0         # TCP on 127.0.0.1; prints {"listening": PORT} first
"""


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="persistent swap worker for Nuke/Blender (JSON lines)",
                       description="Keep models loaded and answer swap requests for single frames.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, help="listen on 127.0.0.1:PORT instead of stdin/stdout (0 = any free port)")
    p.add_argument("--cache", help="folder for frames when a request gives no out path (default: a temp folder)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dfl_vfx.swap.serve import LocalServer, SwapService, serve_stdio

    service = SwapService(args.cache)
    if args.port is None:
        serve_stdio(service)
        return 0
    with LocalServer(service, args.port) as server:
        print(json.dumps({"listening": server.port, "host": "127.0.0.1"}), flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("dfl-vfx serve: stopped", file=sys.stderr)
    return 0
