"""`pytest --fsaudit` on store.py (docs/pytest.md): the naive save fails naming FS101
and the file, the durable one passes, and a marker allows the naive save of a cache."""

import pytest

from store import save_durable, save_naive


def test_naive_save(tmp_path):
    save_naive(str(tmp_path / "settings.json"), '{"theme": "dark"}')
    assert (tmp_path / "settings.json").read_text() == '{"theme": "dark"}'


def test_durable_save(tmp_path):
    save_durable(str(tmp_path / "settings.json"), '{"theme": "dark"}')
    assert (tmp_path / "settings.json").read_text() == '{"theme": "dark"}'


@pytest.mark.fsaudit(allow=["FS101", "FS102"])   # a cache: losing it costs a rebuild
def test_naive_save_of_a_cache(tmp_path):
    save_naive(str(tmp_path / "thumbnails.db"), "rebuilt when lost")
