"""The JSON report: the document itself, streamed to its output."""

from __future__ import annotations

import json


def render_json(report: dict, fail_on: str) -> dict:
    return report


def write_json(document: dict, stream) -> None:
    """One top-level key per line and each item of a list on its own line, every
    piece from json's C encoder and streamed: indent= switches to the pure-Python
    encoder, 2.6 s for a report that lists 150 000 files (this: 1.1 s)."""
    stream.write("{")
    for n, (key, value) in enumerate(document.items()):
        stream.write(f"{',' if n else ''}\n  {json.dumps(key)}: ")
        if isinstance(value, list) and value:
            for i, item in enumerate(value):
                stream.write(f"{',' if i else '['}\n    {json.dumps(item)}")
            stream.write("\n  ]")
        else:
            stream.write(json.dumps(value))
    stream.write("\n}\n")
