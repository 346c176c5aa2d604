"""Experiments: train and evaluate each paper experiment, reproduce its table, render the results."""
