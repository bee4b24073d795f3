"""dfl_vfx: DeepFaceLab-class face replacement for scene-linear VFX pipelines."""

__version__ = "0.1.0"
