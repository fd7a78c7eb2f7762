"""Benchmarks: one script per figure, each printing the figure and its setup."""
