import sys

from kubectl_whose.errors import ExitCode
from tests.cli import run, run_process


def test_version_prints_version_and_exits_zero():
    r = run("version")
    assert r.code == 0 and r.stdout.startswith("kubectl-whose ")


def test_unknown_subcommand_is_a_usage_error_not_a_traceback():
    r = run("frobnicate")
    assert r.code == ExitCode.USAGE
    assert "No such command" in r.stderr and "Traceback" not in r.stderr


def test_help_does_not_import_the_kubernetes_client():
    code = ("import sys\nfrom kubectl_whose.cli.main import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'kubernetes' not in sys.modules, 'kubernetes imported by --help'\n")
    import subprocess
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_console_help_lists_examples():
    r = run_process(["--help"])
    assert r.returncode == 0
    assert b"Examples:" in r.stdout
