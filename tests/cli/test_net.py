"""`kubectl whose net --from-file DIR` end to end through the CLI: outputs saved from a real namespace, every
output form, and each user error with its one line and exit code."""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from kubectl_whose.collect.netinfo import RECIPES
from kubectl_whose.errors import ExitCode
from tests.helpers.cli import run
from tests.helpers.netns import NetLab, requires_netns, requires_tools, sweep_stale

PY = "/usr/bin/python3"
LISTEN = ("import socket,threading; s=socket.socket(); s.bind(('0.0.0.0',15001)); s.listen(); "
          "print('ready', flush=True); threading.Event().wait()")


@pytest.fixture(scope="module")
def saved():
    """A directory in the --from-file layout, each file the real tool's stdout in a namespace set up here."""
    sweep_stale("F")
    tmp = Path(tempfile.mkdtemp(prefix="kwF-netcli-"))
    with NetLab("F") as lab:
        pod, node = lab.ns("cpod"), lab.ns("cnode")
        lab.link(pod, "eth0", "10.76.0.2/24", node, "vethpod", "10.76.0.1/24")
        pod.run(["ip", "route", "add", "default", "via", "10.76.0.1"])
        proxy = pod.popen(["setpriv", "--reuid=1337", "--regid=1337", "--clear-groups", PY, "-c", LISTEN],
                          stdout=subprocess.PIPE, text=True)
        assert proxy.stdout.readline().startswith("ready")
        for recipe in RECIPES.values():
            (tmp / recipe.file).write_text(pod.run(list(recipe.argv)).stdout)
        node_side = json.loads(node.run(["ip", "-j", "link", "show", "vethpod"]).stdout)[0]["ifindex"]
    yield {"dir": tmp, "peer": node_side}
    shutil.rmtree(tmp, ignore_errors=True)


def partial(saved, *files, extra=None) -> Path:
    d = Path(tempfile.mkdtemp(prefix="kwF-netcli-part-"))
    for f in files:
        shutil.copy(saved["dir"] / f, d / f)
    for name, text in (extra or {}).items():
        (d / name).write_text(text)
    return d


@requires_netns
@requires_tools("ip", "ss", "setpriv")
class TestFromFile:
    def test_table(self, saved):
        r = run("net", "--from-file", str(saved["dir"]))
        assert r.code == 0, r.stderr
        assert f"eth0@if{saved['peer']}" in r.stdout
        assert f"the veth peer is interface index {saved['peer']} in another network namespace" in r.stdout
        assert "10.76.0.2/24" in r.stdout and "10.76.0.1" in r.stdout  # address, default gateway
        line = next(line for line in r.stdout.splitlines() if "*:15001" in line)
        assert "LISTEN" in line and "1337" in line and "istio-proxy [istio]" in line
        # in a pipe nothing is wrapped: the peer note is one line (tests/cli/test_terminal.py checks a terminal)
        assert any(line.startswith(f"  eth0@if{saved['peer']}: the veth peer") and line.endswith("names it")
                   for line in r.stdout.splitlines())

    def test_json_and_yaml_agree(self, saved):
        j = run("net", "--from-file", str(saved["dir"]), "-o", "json")
        y = run("net", "--from-file", str(saved["dir"]), "-o", "yaml")
        assert j.code == y.code == 0
        assert j.json == yaml.safe_load(y.stdout)
        eth0 = next(i for i in j.json["interfaces"] if i["name"] == "eth0")
        assert (eth0["peer_index"], eth0["kind"], eth0["display_name"]) == (saved["peer"], "veth",
                                                                               f"eth0@if{saved['peer']}")
        sock = next(s for s in j.json["sockets"] if s["local"] == "*:15001")
        assert (sock["uid"], sock["owner"]["kind"], sock["owner"]["mesh"]) == (1337, "proxy", "istio")
        assert j.json["missing"] == []

    def test_wide_adds_local_table_and_processes(self, saved):
        narrow = run("net", "--from-file", str(saved["dir"])).stdout
        wide = run("net", "--from-file", str(saved["dir"]), "-o", "wide").stdout
        assert "local " not in narrow and "local " in wide
        assert "python3/" in wide and "INODE" in wide

    def test_missing_files_are_named_not_fatal(self, saved):
        d = partial(saved, "ss.txt")
        r = run("net", "--from-file", str(d))
        assert r.code == 0, r.stderr
        assert f"not collected: link.json is not in {d}" in r.stdout and "*:15001" in r.stdout
        shutil.rmtree(d)

    def test_no_processes_visible_says_why(self, saved):
        # what a debug container sees of another uid's sockets: the uid, no users:(...) column
        text = "\n".join(line.split(" users:")[0] + " " + line.split("))", 1)[1] if "users:" in line else line
                         for line in (saved["dir"] / "ss.txt").read_text().splitlines())
        d = partial(saved, "addr.json", extra={"ss.txt": text})
        plain = run("net", "--from-file", str(d)).stdout
        # offline nothing says what the debug container could see: both ways to name them are given
        assert ("  the sockets of uid 1337 show no process: ss names one only when the process is in the debug "
                "container's process namespace (-c CONTAINER, or a pod with shareProcessNamespace) and, for another "
                "uid, with CAP_SYS_PTRACE (--ptrace); owners are named by uid meanwhile") in plain.splitlines()
        assert "istio-proxy [istio]" in plain  # named by uid all the same
        shutil.rmtree(d)

    @pytest.mark.parametrize("name,text,needle", [
        ("link.json", "{oops", "link.json: not the JSON `ip -j` prints"),
        ("route.json", '{"dst": "x"}', "route.json: expected a JSON list of objects"),
        ("ss.txt", "tcp LISTEN zero 0 1.2.3.4:80 *:*\n", "ss.txt line 1: Recv-Q/Send-Q 'zero'/'0' are not numbers"),
        ("ss.txt", "tcp LISTEN 0 0 1.2.3.4:http *:*\n", "ss.txt line 1: bad address (no port in '1.2.3.4:http')"),
        ("ss.txt", "garbage\n", "ss.txt line 1: not the `ss -H -tuanpe` format"),
    ], ids=["link-json", "route-not-list", "ss-queue", "ss-port-name", "ss-garbage"])
    def test_corrupt_file_is_bad_input(self, saved, name, text, needle):
        d = partial(saved, "addr.json", extra={name: text})
        r = run("net", "--from-file", str(d))
        assert r.code == ExitCode.BAD_INPUT and r.stdout == ""
        assert r.stderr.startswith("kubectl-whose: error: ") and needle in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
        shutil.rmtree(d)


def test_needs_pod_or_dir():
    r = run("net")
    assert r.code == ExitCode.USAGE and "give a POD, or --from-file DIR" in r.stderr


def test_pod_and_dir_exclusive(tmp_path):
    r = run("net", "mypod", "--from-file", str(tmp_path))
    assert r.code == ExitCode.USAGE and "give a POD or --from-file DIR, not both" in r.stderr


def test_save_needs_live(tmp_path):
    r = run("net", "--from-file", str(tmp_path), "--save", str(tmp_path / "x"))
    assert r.code == ExitCode.USAGE and "--save writes a live run's outputs" in r.stderr


def test_no_such_dir(tmp_path):
    r = run("net", "--from-file", str(tmp_path / "nope"))
    assert (r.code, r.stderr) == (ExitCode.NOT_FOUND,
                                  f"kubectl-whose: error: --from-file {tmp_path / 'nope'}: no such directory\n")


def test_file_instead_of_dir(tmp_path):
    f = tmp_path / "ss.txt"
    f.write_text("")
    r = run("net", "--from-file", str(f))
    assert r.code == ExitCode.BAD_INPUT and "is a file; give the directory holding link.json" in r.stderr


def test_empty_dir(tmp_path):
    r = run("net", "--from-file", str(tmp_path))
    assert r.code == ExitCode.BAD_INPUT and "holds none of the files net reads" in r.stderr


def test_help_names_every_file():
    r = run("net", "--help")
    assert r.code == 0
    for recipe in RECIPES.values():
        assert f"{recipe.file}" in r.stdout and " ".join(recipe.argv) in r.stdout


class NamespaceSession:
    """The `session.run` seam of `collect.netinfo.run`, answered by running the real tools in a namespace here
    (what the debug container does in a pod). `rewrite` changes an argv first; a binary listed in `absent`
    answers the way a container runtime does for a missing executable (exit 127 and its words)."""

    image = "test-image:1"

    def __init__(self, ns, rewrite=None, absent=()):
        self.ns, self.rewrite, self.absent = ns, rewrite, absent

    def run(self, argv, timeout=30):
        from kubectl_whose.cluster.exec_api import ExecResult

        if argv[0] in self.absent:
            return ExecResult(b"", b"", 127, error=f'OCI runtime exec failed: exec: "{argv[0]}": '
                                                   f'executable file not found in $PATH: unknown')
        argv = self.rewrite(argv) if self.rewrite else argv
        r = self.ns.run(argv, check=False, text=False)
        return ExecResult(r.stdout, r.stderr, r.returncode)


@requires_netns
def test_run_recipes_partial_and_failing_tools():
    from kubectl_whose.collect.netinfo import run as run_recipes
    from kubectl_whose.errors import WhoseError

    with NetLab("F") as lab:
        ns = lab.ns("rr")
        got = run_recipes(NamespaceSession(ns, absent=("ss",)))
        assert got.outputs["sockets"] is None and got.outputs["link"]
        assert got.missing == ["ss is not in the debug image test-image:1 (sockets); pass --image with one that has it"]
        with pytest.raises(WhoseError) as e:
            run_recipes(NamespaceSession(ns, absent=("ip",)))
        assert e.value.code == ExitCode.TOOL_MISSING and "the debug image test-image:1 has no ip" in e.value.message
        # an `ip` without JSON output (busybox's applet, iproute2 before 4.13) rejects -j: here the real ip
        # is handed an option it does not know instead, and says so the way it would
        with pytest.raises(WhoseError) as e:
            run_recipes(NamespaceSession(ns, rewrite=lambda a: [x if x != "-j" else "-Q" for x in a]))
        assert e.value.code == ExitCode.TOOL_MISSING
        assert e.value.message.startswith("`ip -d -j link show` failed in the debug image test-image:1 (Option")
        assert e.value.message.endswith("it needs iproute2's ip with JSON output (-j): pass --image with one")


@requires_netns
def test_offline_never_loads_the_kubernetes_client(saved):
    import sys

    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "kubectl_whose", "net", "--from-file",
                        str(saved["dir"]), "-o", "json"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)["interfaces"]
    imported = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if "|" in line}
    assert "kubectl_whose.analysis.pod.netinfo" in imported and "kubernetes" not in imported
