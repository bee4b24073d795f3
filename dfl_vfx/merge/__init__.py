"""Merging a predicted face back into the plate: warp, mask erode/dilate and blur, premultiplied composite.

``reference`` is the NumPy/OpenCV definition of each operation (docs/dev/merge-ops.md), ``ops`` dispatches to the
native C++ core when it is built; ``merger`` runs DeepFaceLab's per-face merge on scene-linear plates.
"""
