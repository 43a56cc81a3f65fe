"""Raw kernel records to resolved events: fds to absolute paths and kinds.

Keeps, per process, the fd table (dup aliases, fork copies, CLOEXEC at exec,
close_range), the cwd and the file mappings.

- dispatch: Resolver, one record at a time; the process events itself, each
  syscall by its decoder, found by number in a table built once.
- fdtable: Fd, Process, and ProcessTable, the lookups every decoder shares.
- files, data, namespace, channels: the decoders by family, one mixin class
  each, combined into Resolver. A decoder is `_on_<syscall>(proc, event, ok,
  ret, args, path, path2, out)`: it adds the call's fields to event and
  appends any event it causes first (an inherited fd's) to out.
"""

from .dispatch import Resolver
from .fdtable import Fd, Process, kind_of_link, socket_families, socket_inode

__all__ = ["Fd", "Process", "Resolver", "kind_of_link", "socket_families", "socket_inode"]
