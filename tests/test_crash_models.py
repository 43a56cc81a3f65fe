"""The persistence models on small hand-written call sequences: what each rule
lets a crash lose, and what it may not (docs/crash.md)."""

from __future__ import annotations

import pytest

from fsaudit.crash.models import build, drop, state_at
from fsaudit.crash.recording import Op, Recording


def recording(tmp_path, *calls, initial=None):
    copy = tmp_path / f"initial{len(list(tmp_path.iterdir()))}"
    copy.mkdir()
    for name, content in (initial or {}).items():
        (copy / name).write_bytes(content)
    ops = [Op(index=i, t=float(i), syscall=c[0], kind=c[0], **c[1]) for i, c in enumerate(calls)]
    return Recording("/s", str(copy), ops)


def states(rec, model):
    """Every state the model allows after the last call, as {path: content}."""
    tl = build(rec)
    point = len(rec.ops) - 1
    issued = tl.issued(point)
    required = tl.required(point, model)
    free = [u for u in issued if u not in required]
    out = []
    for mask in range(1 << len(free)):
        lost = {u for i, u in enumerate(free) if mask >> i & 1}
        out.append(state_at(tl, point, drop(tl, point, model, lost, required)).files)
    return out


SAVE = [("create", {"path": "/s/f.tmp"}), ("write", {"path": "/s/f.tmp", "data": b"new", "length": 3}),
        ("rename", {"path": "/s/f.tmp", "path2": "/s/f"})]


@pytest.mark.parametrize("model", ["posix", "ext4-ordered"])
def test_unsynced_data_and_entries_may_be_lost(tmp_path, model):
    found = states(recording(tmp_path, *SAVE, initial={"f": b"old"}), model)
    assert {"f": b"old"} in found                       # the rename lost
    assert {"f": b"new"} in found                       # everything there


def test_posix_may_rename_a_file_whose_data_is_lost(tmp_path):
    assert {"f": b""} in states(recording(tmp_path, *SAVE, initial={"f": b"old"}), "posix")


def test_ext4_ordered_writes_data_out_before_a_rename_commits(tmp_path):
    found = states(recording(tmp_path, *SAVE, initial={"f": b"old"}), "ext4-ordered")
    assert {"f": b""} not in found and {"f.tmp": b"", "f": b"old"} in found


@pytest.mark.parametrize("model", ["posix", "ext4-ordered"])
def test_fsync_of_a_file_keeps_its_data_not_its_name(tmp_path, model):
    rec = recording(tmp_path, *SAVE[:2], ("fsync", {"path": "/s/f.tmp"}))
    found = states(rec, model)
    assert all(s.get("f.tmp", b"new") == b"new" for s in found)   # never empty when the name is there
    assert {} in found                                            # the creation itself may be lost


@pytest.mark.parametrize("model", ["posix", "ext4-ordered"])
def test_fsync_of_the_directory_keeps_its_entries(tmp_path, model):
    rec = recording(tmp_path, *SAVE, ("fsync", {"path": "/s"}), initial={"f": b"old"})
    found = states(rec, model)
    assert all("f.tmp" not in s and "f" in s for s in found)      # the rename is durable
    assert {"f": b"old"} not in found


@pytest.mark.parametrize("model", ["posix", "ext4-ordered"])
def test_sync_keeps_everything(tmp_path, model):
    assert states(recording(tmp_path, *SAVE, ("sync", {})), model) == [{"f": b"new"}]


@pytest.mark.parametrize("model", ["posix", "ext4-ordered"])
def test_an_o_sync_write_is_durable_when_it_returns(tmp_path, model):
    rec = recording(tmp_path, ("write", {"path": "/s/f", "data": b"abc", "length": 3, "synchronous": True}),
                    initial={"f": b""})
    assert states(rec, model) == [{"f": b"abc"}]


def test_a_write_tears_at_sectors(tmp_path):
    data = b"a" * 4096 + b"b" * 10
    rec = recording(tmp_path, ("write", {"path": "/s/f", "data": data, "length": len(data)}), initial={"f": b""})
    assert {"f": b"a" * 4096} in states(rec, "posix")


def test_posix_loses_directory_entries_in_any_order_ext4_in_order(tmp_path):
    calls = [("create", {"path": "/s/a"}), ("create", {"path": "/s/b"})]
    assert {"b": b""} in states(recording(tmp_path, *calls), "posix")
    assert {"b": b""} not in states(recording(tmp_path, *calls), "ext4-ordered")
    assert {"a": b""} in states(recording(tmp_path, *calls), "ext4-ordered")


def test_an_entry_in_a_lost_directory_cannot_appear(tmp_path):
    calls = [("mkdir", {"path": "/s/d"}), ("create", {"path": "/s/d/f"}), ("fsync", {"path": "/s/d"})]
    found = states(recording(tmp_path, *calls), "posix")
    assert {} in found and {"d": None, "d/f": b""} in found
    assert all(set(s) != {"d/f"} for s in found)


def test_ext4_ordered_commits_the_directory_before_its_synced_entry(tmp_path):
    calls = [("mkdir", {"path": "/s/d"}), ("create", {"path": "/s/d/f"}), ("fsync", {"path": "/s/d"})]
    assert states(recording(tmp_path, *calls), "ext4-ordered") == [{"d": None, "d/f": b""}]


@pytest.mark.parametrize("model", ["posix", "ext4-ordered"])
def test_an_unlink_may_be_lost(tmp_path, model):
    rec = recording(tmp_path, ("unlink", {"path": "/s/j"}), initial={"j": b"journal"})
    assert states(rec, model) == [{}, {"j": b"journal"}] or sorted(map(str, states(rec, model))) == \
        sorted(map(str, [{}, {"j": b"journal"}]))
