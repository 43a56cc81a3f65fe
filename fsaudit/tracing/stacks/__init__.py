"""--stacks: where each traced call was made, as frames of text.

native: the user stack the probe captures, symbolized against each process's
executable mappings (ELF symbols, addr2line, perf maps). cpython: the Python
frames probes/cpython.h reads from CPython 3.11 processes, which replace the
interpreter's own native frames.
"""
