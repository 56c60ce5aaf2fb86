"""Session-wide real captures and their tshark readings, recorded/run once and shared by every test.

Registered from tests/conftest.py (`pytest_plugins`). A test asks for `captures.get("loss")` and gets
a `tests.helpers.captures.Capture`; `oracle("loss")` gives the tshark aggregation for the same file.
"""
from __future__ import annotations

from typing import Callable, Dict

import pytest

from tests.helpers.captures import Capture, Recorder, recording_unavailable_reason
from tests.helpers.netns import sweep_stale
from tests.helpers.tshark_oracle import OracleResult, analyze


@pytest.fixture(scope="session")
def captures(tmp_path_factory) -> Recorder:
    reason = recording_unavailable_reason()
    if reason:
        pytest.skip(reason)
    sweep_stale("B")
    return Recorder(tmp_path_factory.mktemp("captures"))


@pytest.fixture(scope="session")
def oracle(captures: Recorder) -> Callable[[str], OracleResult]:
    cache: Dict[str, OracleResult] = {}

    def get(name: str) -> OracleResult:
        if name not in cache:
            cap: Capture = captures.get(name)
            cache[name] = analyze(cap.path, cap.tshark_args)
        return cache[name]

    return get
