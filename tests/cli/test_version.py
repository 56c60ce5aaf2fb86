"""`kubectl whose version` names the analysis engine `analyze` and `capture` will really use.

The installed archives (native and pure) are run through the real kubectl in test_dist_krew.py;
here the same command runs in-process against this checkout, for the KUBECTL_WHOSE_ENGINE cases.
"""
import pytest
import yaml

from kubectl_whose.analysis.streams.engine import native_engine
from kubectl_whose.errors import ExitCode
from tests.helpers.cli import run

needs_native = pytest.mark.skipif(native_engine() is None, reason="the native engine is not built in this checkout "
                                  "(pip install -e . with a C compiler builds it)")


@needs_native
@pytest.mark.parametrize("setting", [None, "auto", "native", " Native "])
def test_version_reports_the_native_engine_when_it_is_built(setting):
    r = run("version", "-o", "json", env={"KUBECTL_WHOSE_ENGINE": setting})
    assert r.code == 0, r.stderr
    assert (r.json["engine"], r.json["engine_reason"]) == ("native", None)
    assert run("version", env={"KUBECTL_WHOSE_ENGINE": setting}).stdout.splitlines()[1] == "analysis engine: native"


@pytest.mark.parametrize("setting", ["python", "PYTHON"])
def test_forcing_the_python_engine_is_reported_as_the_reason(setting):
    r = run("version", "-o", "json", env={"KUBECTL_WHOSE_ENGINE": setting})
    assert r.code == 0, r.stderr
    assert r.json["engine"] == "python"
    built = "built" if native_engine() else "not built"
    assert r.json["engine_reason"] == f"forced by KUBECTL_WHOSE_ENGINE=python; the native engine is {built}"
    text = run("version", env={"KUBECTL_WHOSE_ENGINE": setting}).stdout
    assert f"analysis engine: python (forced by KUBECTL_WHOSE_ENGINE=python; the native engine is {built})" in text


def test_yaml_and_json_carry_the_same_fields():
    j, y = run("version", "-o", "json"), run("version", "-o", "yaml")
    assert j.code == y.code == 0
    assert yaml.safe_load(y.stdout) == j.json and set(j.json) == {"version", "python", "engine", "engine_reason"}


def test_a_bad_engine_setting_is_a_usage_error_in_one_line():
    r = run("version", env={"KUBECTL_WHOSE_ENGINE": "turbo"})
    assert r.code == ExitCode.USAGE and r.stdout == ""
    assert r.stderr.strip() == "kubectl-whose: error: KUBECTL_WHOSE_ENGINE='turbo': use native, python or auto"
