"""Metrics: the scores of every table."""
