import sys

from kubectl_whose.errors import ExitCode
from tests.helpers.cli import run, run_process


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


def test_closing_the_pipe_early_ends_quietly_with_exit_zero(tmp_path):
    """`kubectl whose analyze big.pcap | head -1`: no BrokenPipeError, no traceback, exit 0."""
    import subprocess

    from tests.helpers import pcapgen

    records = []
    for i in range(400):  # 400 streams: far more output than one pipe buffer read
        records += pcapgen.http_conversation(cport=20000 + i, t0=1_700_000_000 * 10**9 + i * 10**6)
    path = tmp_path / "many.pcap"
    path.write_bytes(pcapgen.pcap(records))
    proc = subprocess.Popen([sys.executable, "-m", "kubectl_whose", "analyze", str(path), "-o", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert "Traceback" not in err and "Error" not in err


def test_an_unexpected_failure_says_how_to_report_it(monkeypatch):
    """The last line of defence: one line, exit 1, no class name when the error has words, where to report."""
    import kubectl_whose.analysis.streams.engine as engine

    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(engine, "analysis_engine", broken)
    r = run("version")
    assert r.code == ExitCode.ERROR
    assert r.stderr == ("kubectl-whose: error: kubectl-whose failed unexpectedly (boom); please report it at "
                        "https://github.com/kubectl-whose/kubectl-whose/issues with the output of the same command "
                        "rerun with --traceback\n")
