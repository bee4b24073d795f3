"""`make demo`'s Blender step: the demo shot rendered by Blender's compositor (real bpy, the DFL Swap add-on
enabled headlessly) for two frames, beside the engine's own swap.

Runs in Blender's environment (``.venv-blender/bin/python blender_addon/render_demo.py --demo build/demo``). The
compositor is the one an artist builds: plate Image node -> DFL Swap -> output, with the demo's swap settings
(hull matte, blur 40, the demo faceset); each frame is baked through the engine (``dfl-vfx serve``) and rendered to
``DEMO/blender/render.FRAME.exr`` at the plate's full data window, as linear float EXR (view transform Standard).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import bpy  # noqa: E402

DEMO_SETTINGS = {"mask_mode": "hull"}  # what `dfl-vfx demo` swaps with (blur 40 is a live group input)
DEMO_BLUR = 40.0


def render_frames(demo: Path, frames: list[int], engine: str) -> list[Path]:
    import addon_utils  # importable once bpy is

    addon_utils.enable("dfl_blender", default_set=True, handle_error=None)
    from dfl_blender import bake_plan, prefs, shim

    from dfl_host.exr_header import read_header

    prefs.preferences().engine = engine
    scene = bpy.context.scene
    api = shim.api_of(scene)
    tree = shim.scene_tree(scene)
    for node in list(tree.nodes):
        tree.nodes.remove(node)
    plates = sorted((demo / "plate").glob("plate.*.exr"))
    first, last = (int(p.name.split(".")[1]) for p in (plates[0], plates[-1]))
    plate = bpy.data.images.load(str(plates[0]))
    plate.source = "SEQUENCE"
    plate.colorspace_settings.name = "Non-Color"  # scene-linear ACEScg values pass through untouched
    reader = tree.nodes.new("CompositorNodeImage")
    reader.image = plate
    reader.frame_start, reader.frame_duration, reader.frame_offset = first, last - first + 1, first - 1
    tree.nodes.active = reader
    bpy.ops.dfl.add_swap_node()
    swap = tree.nodes.active
    settings = swap.node_tree.dfl
    settings.model = str(demo / "model.onnx")
    settings.faceset = str(demo / "dst_faces")
    settings.cache_root = str(demo / "blender" / "cache")
    for name, value in DEMO_SETTINGS.items():
        setattr(settings, name, value)
    swap.inputs["Blur"].default_value = DEMO_BLUR
    scene.frame_start, scene.frame_end = first, last
    window = read_header(str(plates[0])).data_window
    render = scene.render
    render.resolution_x, render.resolution_y, render.resolution_percentage = window.width, window.height, 100
    render.image_settings.file_format = "OPEN_EXR"
    render.image_settings.color_depth = "32"
    scene.view_settings.view_transform = "Standard"
    written = []
    for frame in frames:
        scene.frame_set(frame)
        if bpy.ops.dfl.bake_frame(node_name=swap.name) != {"FINISHED"}:
            raise SystemExit(f"render_demo: bake of frame {frame} failed")
        render.filepath = str(demo / "blender" / f"render.{frame}.exr")
        bpy.ops.render.render(write_still=True)
        written.append(Path(render.filepath))
    print(f"Blender {bpy.app.version_string} compositor ({api} API): plate -> DFL Swap -> output, frames "
          f"{', '.join(map(str, frames))}: {', '.join(str(p) for p in written)}; the engine's own: "
          f"{bake_plan.frame_file(str(demo / 'swap' / 'plate.####.exr'), frames[0])} ...")
    addon_utils.disable("dfl_blender", default_set=True)  # stops the engine it started
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=Path("build/demo"), help="the demo folder (make demo's)")
    parser.add_argument("--frames", default="1001,1024", help="two frames to render, comma separated")
    args = parser.parse_args(sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:])
    demo = args.demo.resolve()
    if not (demo / "model.onnx").is_file():
        print(f"render_demo: {demo / 'model.onnx'} missing; run `dfl-vfx demo --out {args.demo}` first",
              file=sys.stderr)
        return 2
    engine = os.environ.get("DFL_VFX_EXE") or str(HERE.parent / ".venv" / "bin" / "dfl-vfx")
    render_frames(demo, [int(f) for f in args.frames.split(",")], engine)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # bpy 4.5 can hang at exit after a render (environment.md §5); nothing is left to flush
