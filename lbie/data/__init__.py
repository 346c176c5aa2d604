"""Data: the generated data sets of the book and readers for the real ones."""
