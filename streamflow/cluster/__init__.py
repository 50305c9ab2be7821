"""Processes of a run: the worker daemon, the coordinator, and the control protocol between them."""
