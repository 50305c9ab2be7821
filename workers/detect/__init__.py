"""Detectors: every one maps a list of BGR frames to per-frame (K, 6) float32 arrays
x1, y1, x2, y2, score, class_id in original frame pixels (`detect(frames, camera=None)`)."""
