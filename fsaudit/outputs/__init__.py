"""Outputs: the report document and what renders it (text, JSON, SARIF, JUnit), the files they go to, and the live view."""
