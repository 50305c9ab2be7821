"""Observability: Prometheus metrics from the coordinator and every worker, and the web view."""
