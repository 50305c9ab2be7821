"""Dataflow graphs, the operator interface, and in-process execution."""
