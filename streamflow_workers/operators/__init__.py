"""ML and video operators for the dataflow: trace sources, detect, embed, track, cross-camera join."""
