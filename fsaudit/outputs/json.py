"""The JSON report: the document itself, streamed to its output (its Listings, the
findings, a dict at a time as they are read back)."""

from __future__ import annotations

import json

from .report import Listing


def render_json(report: dict, fail_on: str) -> dict:
    return report


def write_json(document: dict, stream) -> None:
    """One top-level key per line and each item of a list on its own line, every
    piece from json's C encoder and streamed: indent= switches to the pure-Python
    encoder, 2.6 s for a report that lists 150 000 files (this: 1.1 s). A Listing is
    written as a list, an item at a time, never whole in memory."""
    stream.write("{")
    for n, (key, value) in enumerate(document.items()):
        stream.write(f"{',' if n else ''}\n  {json.dumps(key)}: ")
        if isinstance(value, (list, Listing)):
            for i, item in enumerate(value):
                stream.write(f"{',' if i else '['}\n    {json.dumps(item)}")
            stream.write("\n  ]" if value else "[]")
        else:
            stream.write(json.dumps(value))
    stream.write("\n}\n")
