"""Differential test, the kernel as judge: random (seeded, reproducible) rule sets over the matches and targets
`trace` models, loaded with the real iptables-restore (legacy and nft), probed with real connections from
different uids to different destinations; the trace on the real iptables-save dump must predict each end."""
from __future__ import annotations

import os
import random

import pytest

from tests.helpers.netns import NetLab, requires_netns, requires_tools, sweep_stale
from tests.helpers.nflab import PEER_IP, POD_IP, RulesLab, assert_trace_matches_kernel

pytestmark = [requires_netns, requires_tools("iptables-legacy-restore", "iptables-nft-restore", "setpriv",
                                            "conntrack")]

PROBES = [  # (uid or None for a packet from the peer, destination ip, port)
    (1000, PEER_IP, 80), (1337, PEER_IP, 80), (1000, PEER_IP, 81), (1337, POD_IP, 8080), (1000, POD_IP, 8080),
    (1000, "127.0.0.1", 8080), (None, POD_IP, 8080), (None, POD_IP, 15001)]
SEEDS = range(int(os.environ.get("KW_DIFF_SEEDS", "12")))  # more: KW_DIFF_SEEDS=200


def _rule(rnd: random.Random, chain: str, target: str, inbound: bool = False) -> str:
    """-A CHAIN [conditions] TARGET with at most one condition of each kind (iptables refuses repeats)."""
    neg = lambda: rnd.choice(["", "! "])  # noqa: E731
    kinds = {
        "dst": lambda: f"{neg()}-d {rnd.choice([PEER_IP, POD_IP, '127.0.0.1'])}/32",
        "dport": lambda: f"-m tcp {neg()}--dport {rnd.choice([80, 81, 8080, 15001])}",
        "multiport": lambda: f"-m multiport {neg()}--dports {rnd.choice(['80,8080', '81', '80:81', '8080,15001'])}",
        "mark": lambda: f"-m mark {neg()}--mark 0x1/0x1",
        "addrtype": lambda: f"-m addrtype {neg()}--dst-type LOCAL",
        "ct": lambda: f"-m conntrack {neg()}--ctstate {rnd.choice(['NEW', 'ESTABLISHED', 'RELATED,ESTABLISHED'])}",
    }
    if inbound:
        kinds["src"] = lambda: f"{neg()}-s {rnd.choice([PEER_IP, POD_IP])}/32"
        kinds["iif"] = lambda: f"{neg()}-i {rnd.choice(['lo', 'eth0', 'eth+'])}"
    else:
        kinds["oif"] = lambda: f"{neg()}-o {rnd.choice(['lo', 'eth+'])}"
        kinds["owner"] = lambda: f"-m owner {neg()}--uid-owner {rnd.choice([1337, 1000])}"
    chosen = rnd.sample(sorted(kinds), rnd.randint(0, 2))
    tcp = "REDIRECT" in target or "tcp-reset" in target or "dport" in chosen or "multiport" in chosen \
        or rnd.random() < 0.2
    parts = ["-A", chain] + (["-p", "tcp"] if tcp else []) + [kinds[k]() for k in chosen] + [target]
    return " ".join(parts)


def random_rules(seed: int) -> str:
    rnd = random.Random(seed)
    chains = ["C1", "C2"]
    nat = {"OUTPUT": [], "PREROUTING": [], "C1": [], "C2": []}
    for chain in nat:
        for _ in range(rnd.randint(1, 4) if chain != "PREROUTING" else rnd.randint(0, 2)):
            later = chains[chains.index(chain) + 1:] if chain in chains else chains
            targets = ["-j RETURN", "-j ACCEPT", "-j REDIRECT --to-ports 15001", "-j REDIRECT --to-ports 15002"]
            if chain != "PREROUTING":  # C1/C2 use owner and -o: only OUTPUT may reach them
                targets += [f"-j {c}" for c in later] + [f"-g {c}" for c in later]
            nat[chain].append(_rule(rnd, chain, rnd.choice(targets), inbound=chain == "PREROUTING"))
    mangle = [_rule(rnd, "OUTPUT", "-j MARK --set-xmark 0x1/0x1") for _ in range(rnd.randint(0, 1))]
    verdicts = ["-j DROP", "-j REJECT", "-j REJECT --reject-with tcp-reset", "-j ACCEPT", "-j RETURN"]
    filt = [_rule(rnd, "OUTPUT", rnd.choice(verdicts)) for _ in range(rnd.randint(0, 2))] + \
        [_rule(rnd, "INPUT", rnd.choice(verdicts), inbound=True) for _ in range(rnd.randint(0, 2))]
    return ("*mangle\n" + "".join(r + "\n" for r in mangle) + "COMMIT\n"
            "*nat\n:C1 - [0:0]\n:C2 - [0:0]\n" + "".join(r + "\n" for c in nat.values() for r in c) + "COMMIT\n"
            "*filter\n" + "".join(r + "\n" for r in filt) + "COMMIT\n")


@pytest.mark.parametrize("backend", ["legacy", "nft"])
def test_random_rule_sets_trace_like_the_kernel(backend, tmp_path):
    sweep_stale("C")
    with NetLab("C") as netlab:
        lab = RulesLab(netlab, backend, str(tmp_path))
        lab.serve(lab.pod, "pod", tcp=[15001, 15002, 8080])
        lab.serve(lab.peer, "peer", tcp=[80, 81])
        for seed in SEEDS:
            rules = random_rules(seed)
            lab.pod.run([f"iptables-{backend}-restore"], input=rules)  # replaces the tables each time
            lab.forget_connections()
            dump = lab.dump()
            for uid, ip, port in PROBES:
                if uid is None:  # from the peer, into the pod
                    [result] = lab.connect(lab.peer, "tcp", ip, port, timeout=0.3)
                    t = lab.trace(dump, "--pod-ip", POD_IP, "--inbound", "--from", PEER_IP, "--to", f"{ip}:{port}")
                else:
                    [result] = lab.connect(lab.pod, "tcp", ip, port, uid=uid, timeout=0.3)
                    t = lab.trace(dump, "--pod-ip", POD_IP, "--to", f"{ip}:{port}", "--uid", str(uid), "--gid",
                                  str(uid))
                try:
                    assert_trace_matches_kernel(t, result)
                except (AssertionError, KeyError) as e:
                    raise AssertionError(f"seed {seed}, uid {uid} -> {ip}:{port}\n{rules}\nkernel: {result}\n"
                                         f"trace: {t['outcomes']}") from e


# ---- the same for native nftables rule sets (nft -f), judged by the same kernel ---------------------------------

def _nft_rule(rnd: random.Random, target: str, inbound: bool = False) -> str:
    ne = lambda: rnd.choice(["", "!= "])  # noqa: E731
    kinds = {
        "dst": lambda: f"ip daddr {ne()}{rnd.choice([PEER_IP, POD_IP, '127.0.0.1'])}",
        "dport": lambda: f"tcp dport {ne()}{rnd.choice([80, 81, 8080, 15001])}",
        "dports": lambda: f"tcp dport {ne()}{{ {rnd.choice(['80, 8080', '81', '80-81', '8080, 15001'])} }}",
        "mark": lambda: f"meta mark & 0x1 {rnd.choice(['==', '!='])} 0x1",
        "ct": lambda: f"ct state {ne()}{rnd.choice(['new', 'established', '{ established, related }'])}",
    }
    if inbound:
        kinds["src"] = lambda: f"ip saddr {ne()}{rnd.choice([PEER_IP, POD_IP])}"
        kinds["iif"] = lambda: f"iifname {ne()}{rnd.choice(['lo', 'eth0', 'eth*'])}"
    else:
        kinds["oif"] = lambda: f"oifname {ne()}{rnd.choice(['lo', 'eth*'])}"
        kinds["owner"] = lambda: f"meta skuid {ne()}{rnd.choice([1337, 1000])}"
    chosen = rnd.sample(sorted(kinds), rnd.randint(0, 2))
    tcp = "redirect" in target or "tcp reset" in target
    parts = (["meta l4proto tcp"] if tcp and not {"dport", "dports"} & set(chosen) else []) + \
        [kinds[k]() for k in chosen] + [target]
    return " ".join(parts)


def random_nft_rules(seed: int) -> str:
    rnd = random.Random(seed)
    verdicts = ["drop", "reject", "reject with tcp reset", "accept", "return"]
    nat_targets = ["return", "accept", "redirect to :15001", "redirect to :15002"]
    body = {
        "mangle-out": ("type route hook output priority -150 ;",
                       [_nft_rule(rnd, "meta mark set meta mark | 0x1") for _ in range(rnd.randint(0, 1))]),
        "nat-out": ("type nat hook output priority -100 ;",
                    [_nft_rule(rnd, rnd.choice(nat_targets + ["jump c1", "goto c1", "jump c2", "goto c2"]))
                     for _ in range(rnd.randint(1, 4))]),
        "nat-pre": ("type nat hook prerouting priority -100 ;",
                    [_nft_rule(rnd, rnd.choice(nat_targets), inbound=True) for _ in range(rnd.randint(0, 2))]),
        "c1": ("", [_nft_rule(rnd, rnd.choice(nat_targets + ["jump c2", "goto c2"])) for _ in range(rnd.randint(1, 3))]),
        "c2": ("", [_nft_rule(rnd, rnd.choice(nat_targets)) for _ in range(rnd.randint(1, 3))]),
        "filter-out": ("type filter hook output priority 0 ;",
                       [_nft_rule(rnd, rnd.choice(verdicts)) for _ in range(rnd.randint(0, 2))]),
        "filter-in": ("type filter hook input priority 0 ;",
                      [_nft_rule(rnd, rnd.choice(verdicts), inbound=True) for _ in range(rnd.randint(0, 2))]),
    }
    chains = "".join(f"  chain {name} {{\n" + (f"    {head}\n" if head else "") + "".join(f"    {r}\n" for r in rules)
                     + "  }\n" for name, (head, rules) in body.items())
    return f"table ip t\ndelete table ip t\ntable ip t {{\n{chains}}}\n"


@requires_tools("nft")
def test_random_nft_rule_sets_trace_like_the_kernel(tmp_path):
    sweep_stale("C")
    with NetLab("C") as netlab:
        lab = RulesLab(netlab, "nftables", str(tmp_path))
        lab.serve(lab.pod, "pod", tcp=[15001, 15002, 8080])
        lab.serve(lab.peer, "peer", tcp=[80, 81])
        for seed in SEEDS:
            rules = random_nft_rules(seed)
            lab.load(rules)
            lab.forget_connections()
            dump = lab.dump()
            for uid, ip, port in PROBES:
                if uid is None:
                    [result] = lab.connect(lab.peer, "tcp", ip, port, timeout=0.3)
                    t = lab.trace(dump, "--pod-ip", POD_IP, "--inbound", "--from", PEER_IP, "--to", f"{ip}:{port}")
                else:
                    [result] = lab.connect(lab.pod, "tcp", ip, port, uid=uid, timeout=0.3)
                    t = lab.trace(dump, "--pod-ip", POD_IP, "--to", f"{ip}:{port}", "--uid", str(uid), "--gid",
                                  str(uid))
                try:
                    assert_trace_matches_kernel(t, result)
                except (AssertionError, KeyError) as e:
                    raise AssertionError(f"seed {seed}, uid {uid} -> {ip}:{port}\n{rules}\nkernel: {result}\n"
                                         f"trace: {t['outcomes']}") from e
