"""Appearance embedders for re-identification: `embed(frame, boxes) -> (K, dim)` L2-normalised."""
