"""What a trace shows while it runs: a terminal dashboard, or one progress line on stderr."""

from .dashboard import (CommandOutput, Dashboard, NoTerminal, ProgressLine, View, file_state, format_bytes,
                        open_view, shorten_path)

__all__ = ["CommandOutput", "Dashboard", "NoTerminal", "ProgressLine", "View", "file_state", "format_bytes",
           "open_view", "shorten_path"]
