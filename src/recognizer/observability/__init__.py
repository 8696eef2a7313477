"""Prometheus metrics and logging set-up."""
