"""Faces: face types and DeepFaceLab alignment, detection backends, pose, masks, tracking and smoothing."""
