"""Evaluation: metrics over predictions files, baselines, and the report (DESIGN.md section 4)."""
