"""Measuring this machine: `hpdirs bench` (throughput, FLOPs, MFU, render and explorer speed)
and one learning step's peak memory, each in a fresh process."""
