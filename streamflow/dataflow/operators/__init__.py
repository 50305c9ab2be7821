"""Relational operators (one concept per module) and the one-function-per-operator API."""
