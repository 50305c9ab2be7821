"""Accuracy metrics against ground truth."""
