"""File names a traced program chooses cannot forge the summary, break the
JUnit XML or make SARIF invalid UTF-8; the JSON report and the event log keep
their exact bytes. tests/programs/names.c renames files whose names carry a
colour sequence, a newline with a forged finding after it, a bell, and bytes
that are not UTF-8."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
import xml.sax

import jsonschema
import pytest

from conftest import ROOT, fsaudit

NAMES = [b"\x1b[31mred", b"line\n  FS999 forged-finding: not from fsaudit", b"bell\x07", b"\xff\xfe"]
ESCAPED = ["\\e[31mred", "line\\n  FS999 forged-finding: not from fsaudit", "bell\\x07", "\\xff\\xfe"]
# Anything a terminal acts on: C0 controls but the newline, DEL, C1 controls; and
# surrogates, which is how a raw byte that is not UTF-8 arrives here (surrogateescape).
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@pytest.fixture
def traced(trace, build, tmp_path):
    return trace([str(build("names"))], "--sarif", str(tmp_path / "r.sarif"), "--junit", str(tmp_path / "r.xml"))


def assert_escaped(text: str) -> None:
    assert not RAW.search(text), RAW.findall(text)
    assert not any(line.startswith("  FS999") for line in text.splitlines())
    for name in ESCAPED:
        assert name in text


def test_the_summary_prints_hostile_names_escaped(traced, tmp_path):
    assert traced.returncode == 0, traced.stderr
    assert {f["rule"] for f in traced.report["findings"]} >= {"FS101"}
    assert_escaped(traced.stdout + traced.stderr)
    # and so does `fsaudit report` of the log
    replayed = fsaudit("report", str(traced.events_path), "--fail-on", "never")
    assert replayed.returncode == 0, replayed.stderr
    assert_escaped(replayed.stdout + replayed.stderr)


def test_junit_is_well_formed_xml_whatever_the_names(traced, tmp_path):
    raw = (tmp_path / "r.xml").read_bytes()
    text = raw.decode("utf-8")
    assert not NOT_XML_CHAR.search(text)
    xml.sax.parseString(raw, xml.sax.ContentHandler())     # expat: rejects even &#1;
    # the four renames are one group, one testcase: its text names each file
    [case] = [case for case in ET.fromstring(raw).iter("testcase") if case.get("classname").startswith("FS101")]
    for name in ESCAPED:
        assert f"{tmp_path}/{name}.tmp" in "".join(case.itertext())


def test_sarif_is_valid_utf8_with_uris_of_the_raw_bytes(traced, tmp_path):
    raw = (tmp_path / "r.sarif").read_bytes()
    sarif = json.loads(raw.decode("utf-8"))
    schema = json.loads((ROOT / "tests" / "schemas" / "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(sarif)
    json.dumps(sarif, ensure_ascii=False).encode("utf-8", "strict")      # no lone surrogate anywhere
    results = sarif["runs"][0]["results"]
    # every file is a related location, relative to the source root (the directory it ran in)
    artifacts = [location["physicalLocation"]["artifactLocation"]
                 for r in results for location in r["relatedLocations"]]
    assert {artifact.get("uriBaseId") for artifact in artifacts} == {"%SRCROOT%"}
    uris = {artifact["uri"] for artifact in artifacts}
    for encoded in ("%1B%5B31mred", "line%0A%20%20FS999%20forged-finding%3A%20not%20from%20fsaudit", "bell%07",
                    "%FF%FE"):
        assert f"{encoded}.tmp" in uris
    assert_escaped("\n".join([r["message"]["text"] for r in results]
                              + [f["message"] for r in results for f in r["properties"]["findings"]]))


def test_the_json_report_and_the_event_log_keep_the_exact_bytes(traced, tmp_path):
    directory = os.fsencode(tmp_path)
    wanted = {directory + b"/" + name for name in NAMES}
    renamed = {os.fsencode(e["path2"]) for e in traced.of("rename")}
    assert renamed == wanted
    published = {os.fsencode(f["target_path"]) for f in traced.report["findings"] if f["rule"] == "FS101"}
    assert published == wanted
    assert set(os.listdir(directory)) >= set(NAMES)      # the program did make them
