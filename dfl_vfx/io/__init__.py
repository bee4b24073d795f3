"""Plates and derived frames on disk: image files (OpenImageIO), frame sequences (fileseq), atomic writes."""
