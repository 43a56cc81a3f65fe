"""Raw kernel records to resolved events: fds to absolute paths and kinds.

dispatch: Resolver, one record at a time, by its syscall number.
"""

from .dispatch import Fd, Process, Resolver, kind_of_link

__all__ = ["Fd", "Process", "Resolver", "kind_of_link"]
