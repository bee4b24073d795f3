"""The swap model contract: what an exported file is called inside, in one torch-free place.

:mod:`dfl_vfx.export` writes files to it and :mod:`dfl_vfx.runtime` reads them by it, so the runtime (and anything
that only inspects models) needs neither torch nor the exporter.
"""

KIND_SWAP = "dfl_vfx.swap"  # metadata "kind" of our ONNX export
KIND_DFM = "dfl_vfx.swap.dfm"  # ... of our DeepFaceLive-contract export
WORKING_COLOR_SPACE = "ACEScct"  # what the network sees (input_space "working")
INPUT_SPACES = ("srgb", "working")

SWAP_INPUT = "face"  # (N, 3, R, R) float32 in the working space
SWAP_OUTPUTS = ("rgb", "mask_src", "mask_dst")  # (N, 3, R, R), (N, 1, R, R), (N, 1, R, R)
DFM_INPUT = "in_face:0"  # (N, R, R, 3) BGR
DFM_OUTPUTS = ("out_face_mask:0", "out_celeb_face:0", "out_celeb_face_mask:0")
BATCH_AXIS_NAME = "batch"
