"""Shared pytest configuration: the lab fixture (`lab`, see tests/lab/README.md), the recorded captures, and
the `lab` marker that separates the tiers.

A test is marked `lab` when it needs root, network namespaces or the lab: it asks for the `lab` or
`captures` fixture (which build namespaces and record real traffic), or carries `requires_netns`,
`requires_lab` or the older `root` marker. `pytest -m "not lab"` is the offline tier (no root, about a
minute); CI runs everything.
"""
import pytest

pytest_plugins = ["tests.lab.fixture", "tests.helpers.conftest_captures"]

LAB_FIXTURES = {"lab", "captures", "oracle"}


def pytest_collection_modifyitems(items):
    from tests.helpers.netns import requires_netns
    from tests.lab.fixture import requires_lab

    lab_skips = (requires_netns.mark, requires_lab.mark)
    for item in items:
        if (LAB_FIXTURES & set(item.fixturenames) or item.get_closest_marker("root")
                or any(m in lab_skips for m in item.iter_markers("skipif"))):
            item.add_marker(pytest.mark.lab)
