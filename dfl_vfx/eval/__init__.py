"""Quality evaluation of a swap: the DFL paper's metrics (SSIM, identity, landmarks, pose) on dfl_vfx outputs."""
