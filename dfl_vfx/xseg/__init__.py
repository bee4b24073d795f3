"""XSeg segmentation: per-shot face masks (labels, mattes, network, training, apply)."""
