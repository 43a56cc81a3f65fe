"""FS401 under the real tracer: uprobes on glibc find the bytes still in a
stdio buffer when a process ends by _exit or a fatal signal."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("mode", ["_exit", "sigterm", "sigkill"])
def test_record_left_in_the_stdio_buffer_is_lost(trace, build, mode):
    traced = trace([str(build("buffered")), mode])
    lost = traced.of("stdio_lost")
    assert [(e["path"].rsplit("/", 1)[1], e["bytes"]) for e in lost] == [("orders.log", len("order 42 accepted\n"))]
    assert not [e for e in traced.of("write") if e["path"].endswith("orders.log")]
    fs401 = [f for f in traced.report["findings"] if f["rule"] == "FS401"]
    assert len(fs401) == 1 and fs401[0]["path"].endswith("/orders.log")
    assert "18 bytes" in fs401[0]["message"]


@pytest.mark.parametrize("mode", ["fflush", "fclose", "exit"])
def test_flushed_record_is_not_reported(trace, build, mode):
    traced = trace([str(build("buffered")), mode])
    assert traced.of("stdio_lost") == []
    assert "FS401" not in traced.rules()
    assert [e["bytes"] for e in traced.of("write") if e["path"].endswith("orders.log")] == [18]
