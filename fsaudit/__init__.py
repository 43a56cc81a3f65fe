"""fsaudit: find where a program's data would not survive a crash."""

from importlib import metadata

DISTRIBUTION = "fsaudit-ebpf"
try:
    __version__ = metadata.version(DISTRIBUTION)
except metadata.PackageNotFoundError:     # imported from a checkout that was never installed
    __version__ = "0+unknown"
