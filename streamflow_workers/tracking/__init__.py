"""Multi-object tracking: SORT per camera and cross-camera association."""
