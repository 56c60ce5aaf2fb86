"""Shared pytest configuration: the lab fixture (`lab`, see tests/lab/README.md) and the recorded captures."""
pytest_plugins = ["tests.lab.fixture", "tests.conftest_captures"]
