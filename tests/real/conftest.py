"""Fixtures for the real-program suite: each case is traced once per session.

The programs come from Debian (scripts/setup-test-tools.sh installs them with
`make test-tools`); a missing one fails its cases with the command that installs it, it
is never skipped. Without the tracer the cases skip, as everywhere, except
under FSAUDIT_REQUIRE_BPF=1 (CI), where they fail.
"""

from __future__ import annotations

import shutil

import pytest
from .realcase import Case, Traced, missing, new_workdir, run_case


@pytest.fixture(scope="session")
def traced(bpf, tmp_path_factory):
    """traced(case) -> Traced: the case's command run under `fsaudit run`, once per session."""
    done: dict[str, Traced | Exception] = {}   # a case that could not run fails its tests without rerunning
    outside: list = []
    base = tmp_path_factory.mktemp("real")

    def get(case: Case) -> Traced:
        absent = missing(case)
        if absent:
            pytest.fail(f"{case.name} needs {', '.join(absent)}, which is not installed: "
                        f"`make test-tools` (scripts/setup-test-tools.sh) installs it", pytrace=False)
        if case.name not in done:
            work = new_workdir(case, base)
            if case.owner:
                outside.append(work)
            try:
                done[case.name] = run_case(case, work)
            except Exception as error:
                done[case.name] = error
        result = done[case.name]
        if isinstance(result, Exception):
            raise result
        return result

    yield get
    for work in outside:
        shutil.rmtree(work, ignore_errors=True)
