"""Subcommands; the shared options and error handling live in common."""
