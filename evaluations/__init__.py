"""Command-line evaluation tools: ``evaluator`` (IS, FID, sFID, precision, recall) and ``robustness``."""
