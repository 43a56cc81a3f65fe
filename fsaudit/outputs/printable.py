"""Untrusted strings (paths, process names, argv) made safe to print.

A traced program chooses its file names and argv: a name carrying ESC
sequences or newlines must not move the cursor, recolour the terminal or
forge a line of the report. Control characters become visible escapes;
bytes that were not UTF-8 (kept by os.fsdecode as lone surrogates) become
\\xNN, so the text is valid UTF-8 and still says which byte it was.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls, and surrogates: those surrogateescape makes, and
# any other a hand-edited event log can carry (no encoder writes a lone one).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e"}


def _escape(match: re.Match) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:          # an undecodable byte, as os.fsdecode keeps it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """text with every control character and undecodable byte escaped."""
    return _UNPRINTABLE.sub(_escape, text)
