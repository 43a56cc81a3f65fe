"""The compiled probe's cache (fsaudit/tracing/probecache.py): bcc compiles once
per kernel, source and flags, in a process of its own; whatever is found in the
cache that is not intact, for this key and private is compiled again; an
unusable cache directory only costs the compile. And the tracer never maps LLVM."""

from __future__ import annotations

import os
import stat

import pytest

from conftest import fsaudit
from fsaudit.tracing import probecache
from fsaudit.tracing.tracer import DEFAULT_RINGBUF_PAGES, probe_build

SOURCE, CFLAGS = probe_build(DEFAULT_RINGBUF_PAGES, stacks=False, capture=False)


@pytest.fixture
def compiles(monkeypatch, tmp_path):
    """The cache in tmp_path/cache; the list of the compiler's runs (their cflags)."""
    monkeypatch.setenv("FSAUDIT_CACHE_DIR", str(tmp_path / "cache"))
    runs = []
    real = probecache.run_compiler

    def counted(source, cflags):
        runs.append(cflags)
        return real(source, cflags)

    monkeypatch.setattr(probecache, "run_compiler", counted)
    return runs


def cached_file(tmp_path):
    return tmp_path / "cache" / f"probe-{probecache.cache_key(SOURCE, CFLAGS)}.json"


def test_a_miss_compiles_and_the_next_start_loads_what_it_cached(bpf, compiles, tmp_path):
    first, from_cache = probecache.compiled_probe(SOURCE, CFLAGS)
    assert not from_cache and compiles == [CFLAGS]
    blob = cached_file(tmp_path)
    assert stat.S_IMODE(blob.stat().st_mode) == 0o600 and stat.S_IMODE(blob.parent.stat().st_mode) == 0o700
    second, from_cache = probecache.compiled_probe(SOURCE, CFLAGS)
    assert from_cache and compiles == [CFLAGS]        # the compiler did not run again
    assert second == first
    assert {f["name"] for f in first["functions"]} >= {"raw_tracepoint__sys_enter", "on_fclose"}


def test_other_flags_are_another_probe(bpf, compiles):
    probecache.compiled_probe(SOURCE, CFLAGS)
    _, from_cache = probecache.compiled_probe(SOURCE, CFLAGS + ["-DSTACKS"])
    assert not from_cache and len(compiles) == 2


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "another key's", "writable by others"])
def test_a_cached_probe_that_is_not_intact_or_not_private_is_compiled_again(bpf, compiles, tmp_path, damage):
    probecache.compiled_probe(SOURCE, CFLAGS)
    blob = cached_file(tmp_path)
    data = blob.read_bytes()
    if damage == "flip a byte":
        middle = len(data) // 2
        blob.write_bytes(data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1:])
    elif damage == "truncate":
        blob.write_bytes(data[:len(data) // 2])
    elif damage == "another key's":     # intact, but compiled from other flags
        probecache.compiled_probe(SOURCE, CFLAGS + ["-DSTACKS"])
        other = tmp_path / "cache" / f"probe-{probecache.cache_key(SOURCE, CFLAGS + ['-DSTACKS'])}.json"
        os.replace(other, blob)
    else:
        blob.chmod(0o666)
    before = len(compiles)
    compiled, from_cache = probecache.compiled_probe(SOURCE, CFLAGS)
    assert not from_cache and len(compiles) == before + 1
    assert probecache.parse(blob.read_bytes(), probecache.cache_key(SOURCE, CFLAGS)) == compiled   # replaced


@pytest.mark.parametrize("unusable", ["a symbolic link", "another user's", "under a file"])
def test_an_unusable_cache_directory_still_traces_and_is_not_written(bpf, monkeypatch, tmp_path, unusable):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    if unusable == "a symbolic link":
        cache = tmp_path / "link"
        cache.symlink_to(elsewhere)
    elif unusable == "another user's":
        cache = elsewhere
        os.chown(cache, 65534, 65534)
    else:
        (tmp_path / "file").write_text("")
        cache = tmp_path / "file" / "cache"
    result = fsaudit("run", "--fail-on", "never", "--", "true", cwd=tmp_path,
                     env={**os.environ, "FSAUDIT_CACHE_DIR": str(cache)})
    assert result.returncode == 0, result.stderr
    assert os.listdir(elsewhere) == []
    doctor = fsaudit("doctor", env={**os.environ, "FSAUDIT_CACHE_DIR": str(cache)})
    assert doctor.returncode == 0
    assert f"[warn] probe cache: {cache} is not fsaudit's to write" in doctor.stdout


def test_the_tracer_maps_neither_bcc_nor_llvm_and_a_warm_start_compiles_nothing(bpf, tmp_path):
    """The command's parent is the tracer: its maps are read while it traces."""
    env = {**os.environ, "FSAUDIT_CACHE_DIR": str(tmp_path / "cache")}
    maps = "cat /proc/$PPID/maps"
    cold = fsaudit("run", "--fail-on", "never", "--", "sh", "-c", maps, cwd=tmp_path, env=env)
    assert cold.returncode == 0, cold.stderr
    (blob,) = (tmp_path / "cache").iterdir()
    inode = blob.stat().st_ino
    assert "[ok  ] probe cache: warm" in fsaudit("doctor", env=env).stdout
    warm = fsaudit("run", "--fail-on", "never", "--", "sh", "-c", maps, cwd=tmp_path, env=env)
    assert warm.returncode == 0, warm.stderr
    assert blob.stat().st_ino == inode         # read, not compiled and renamed into place again
    for run in (cold, warm):
        assert "libLLVM" not in run.stdout and "libbcc" not in run.stdout and "libclang" not in run.stdout
        assert "/python" in run.stdout         # it is the tracer's map


def test_bcc_is_needed_only_to_compile(bpf, tmp_path):
    """A bcc that cannot be imported (a package of that name that fails, first on
    PYTHONPATH): a cold cache is one line and exit status 3, nothing runs; a warm
    one traces, as bcc is never imported."""
    broken = tmp_path / "broken" / "bcc"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('libbcc.so.0: cannot open shared object file')\n")
    (broken / "libbcc.py").write_text("")
    cache = tmp_path / "cache"
    env = {**os.environ, "FSAUDIT_CACHE_DIR": str(cache), "PYTHONPATH": str(broken.parent)}
    cold = fsaudit("run", "--", "touch", "ran", cwd=tmp_path, env=env)
    assert cold.returncode == 3
    assert cold.stderr == ("fsaudit: cannot import bcc (libbcc.so.0: cannot open shared object file); "
                           "`fsaudit doctor` says how to install it\n")
    assert not (tmp_path / "ran").exists()
    warmed = fsaudit("run", "--fail-on", "never", "--", "true", cwd=tmp_path, env={**env, "PYTHONPATH": ""})
    assert warmed.returncode == 0, warmed.stderr
    warm = fsaudit("run", "--fail-on", "never", "--", "touch", "ran", cwd=tmp_path, env=env)
    assert warm.returncode == 0, warm.stderr
    assert (tmp_path / "ran").exists()
