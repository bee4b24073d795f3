"""Swapping shots: the per-frame engine (model + merger), face sources, and the frame-range pipeline."""
