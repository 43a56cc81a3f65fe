"""pytest --fsaudit: fail the tests whose file I/O would not survive a crash (docs/pytest.md).

The plugin itself is pytest_fsaudit.plugin, loaded through the `pytest11` entry point."""
