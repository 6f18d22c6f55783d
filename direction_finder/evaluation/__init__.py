"""Comparing direction sets (`hpdirs compare`): its settings and records, the held-out probes,
per-sample measures, the budget, the statistics, and the reports."""
