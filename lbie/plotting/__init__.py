"""Plotting: every figure and table of the book, one module per topic."""
