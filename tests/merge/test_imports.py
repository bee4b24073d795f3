"""The CPU merge loads and runs without torch: only a CUDA merge imports it (dfl_vfx.merge.cuda_ops)."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CPU_MERGE = textwrap.dedent("""
    import sys

    import numpy as np

    import dfl_vfx.swap.engine  # the engine module too: it only imports torch for a GPU stage
    import dfl_vfx.swap.header
    from dfl_vfx.color.ocio import WorkingSpace
    from dfl_vfx.face.face_type import FaceType
    from dfl_vfx.face.template import FRONTAL_FACE_68
    from dfl_vfx.merge.merger import FaceMerger, FacePlan, MergeLayers, MergeSettings

    settings = MergeSettings(color_transfer="rct", sharpen_mode="gaussian", sharpen_amount=30.0, motion_blur=20.0,
                             mask_mode="hull", erode=10.0, blur=20.0)
    merger = FaceMerger(settings, WorkingSpace("ACEScg"), 64, FaceType.WHOLE_FACE)
    plate = np.full((160, 180, 4), 0.18, np.float16)
    plate[..., 3] = 1.0
    landmarks = FRONTAL_FACE_68 * 60.0 + (60.0, 50.0)
    prepared = merger.prepare(plate, 3, (0, 0), FacePlan(landmarks, motion=np.array([4.0, 1.0])))
    face, mask = merger.finish_face(prepared, prepared.model_input + 0.1, prepared.hull, prepared.hull, False)
    layers = MergeLayers(mask=np.zeros(plate.shape[:2], np.float16))
    merger.paste(plate, 3, (0, 0), prepared, face, mask, layers)
    assert float(layers.mask.max()) > 0.9, "the face was not merged"
    print(" ".join(sorted(name for name in sys.modules if name == "torch" or name.startswith("torch."))) or "-")
""")


def test_a_cpu_merge_of_a_face_does_not_import_torch() -> None:
    result = subprocess.run([sys.executable, "-c", CPU_MERGE], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "-", f"torch modules loaded by a CPU merge: {result.stdout.strip()}"
