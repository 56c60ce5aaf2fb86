import subprocess

from tests.helpers.netns import NetLab, requires_netns


@requires_netns
def test_two_namespaces_talk_over_veth_and_leave_nothing_behind():
    with NetLab("t") as lab:
        a, b = lab.ns("a"), lab.ns("b")
        lab.link(a, "eth0", "10.250.0.1/24", b, "eth0", "10.250.0.2/24")
        out = a.run(["ping", "-c", "1", "-W", "2", "10.250.0.2"], check=False)
        assert out.returncode == 0, out.stdout + out.stderr
        names = [ns.name for ns in lab.namespaces.values()]
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(n in listed for n in names)
