"""The profiler: measure operator variants on worker types and write a planning problem."""
