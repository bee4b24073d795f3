"""Training loop and data pipeline for per-shot face models (see issue: Trainer)."""
