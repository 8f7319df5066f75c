"""Experiments over a testbed: ``harness`` (settings sampled by the main job and scored, cached by setting
and seed) and ``report`` (tables, figures and the flags every experiment takes)."""
