"""Raw kernel records to resolved events: fds to absolute paths and kinds.

Keeps, per process, the fd table (dup aliases, fork copies, CLOEXEC at exec,
close_range), the cwd and the file mappings.

- dispatch: Resolver, one record at a time, each syscall by its decoder,
  found by number in a table built once.
- fdtable: Fd, Process, and ProcessTable, the lookups every decoder shares.
"""

from .dispatch import Resolver
from .fdtable import Fd, Process, kind_of_link

__all__ = ["Fd", "Process", "Resolver", "kind_of_link"]
