"""Tracing: the kernel probe, reading its records, and turning them into events (the pipeline's first half)."""
