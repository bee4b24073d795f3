"""Facesets: directories of aligned faces with JSON metadata in each image, DFL import and sorting."""

from dfl_vfx.faceset.dfljpg import ImportReport, import_dfl_faceset, read_dfl_metadata
from dfl_vfx.faceset.faceset import FaceRecord, Faceset, FacesetInfo, face_file_name
from dfl_vfx.faceset.metadata import FACE_ATTRIBUTE, FaceMetadata
from dfl_vfx.faceset.sort import SORT_KEYS, sort_faceset

__all__ = [
    "FACE_ATTRIBUTE",
    "SORT_KEYS",
    "FaceMetadata",
    "FaceRecord",
    "Faceset",
    "FacesetInfo",
    "ImportReport",
    "face_file_name",
    "import_dfl_faceset",
    "read_dfl_metadata",
    "sort_faceset",
]
