"""fsaudit: find where a program's data would not survive a crash."""

__version__ = "0.1.0"
