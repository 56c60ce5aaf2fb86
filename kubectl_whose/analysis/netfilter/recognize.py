"""Name what wrote the rules (mesh, kube-proxy, CNI) and say in one paragraph what they do.

Recognition keys on chain and table names the writers document (sources in
`research/anchors-netfilter.md`): Istio `ISTIO_*` (istio-iptables, ambient `ISTIO_PRERT`, nft
tables `istio-proxy-*`), Linkerd `PROXY_INIT_*`, kube-proxy `KUBE-SERVICES`/`KUBE-SVC-*` or the nft
table `kube-proxy`, Calico `cali-*`, Cilium `CILIUM_*`, AWS VPC CNI `AWS-SNAT-CHAIN-*`, Antrea
`ANTREA-*`, Docker `DOCKER*`. The summary is derived from the rules themselves (which port the
redirect goes to, which RETURN rules precede it), not from the name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set, Tuple

from kubectl_whose.analysis.netfilter.model import IptablesRuleset, Rule, Table
from kubectl_whose.analysis.netfilter.nft_json import NftRuleset


@dataclass
class Recognition:
    name: str
    evidence: List[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "evidence": self.evidence}


def _chains(rulesets: Sequence) -> Dict[str, Set[str]]:
    out: Dict[str, Set[str]] = {}
    for rs in rulesets:
        if isinstance(rs, IptablesRuleset):
            for t in rs.tables.values():
                out.setdefault(t.name, set()).update(t.chains)
    return out


def recognize(rulesets: Sequence) -> List[Recognition]:
    found: List[Recognition] = []
    chains = _chains(rulesets)
    nat, mangle = chains.get("nat", set()), chains.get("mangle", set())
    every = set().union(*chains.values()) if chains else set()
    every |= {r.target.name for rs in rulesets if isinstance(rs, IptablesRuleset) for t in rs.tables.values()
              for c in t.chains.values() for r in c.rules if r.target}

    def add(name: str, evidence: List[str]) -> None:
        found.append(Recognition(name, evidence))

    if "ISTIO_PRERT" in nat:
        add("Istio ambient (ztunnel in-pod redirection)", ["nat chain ISTIO_PRERT"])
    elif {"ISTIO_OUTPUT", "ISTIO_REDIRECT"} & nat or "ISTIO_INBOUND" in mangle:
        variant = []
        if "ISTIO_OUTPUT_DNS" in every or _redirects_to(rulesets, "15053"):
            variant.append("DNS capture")
        if {"ISTIO_TPROXY", "ISTIO_DIVERT"} & mangle:
            variant.append("TPROXY inbound")
        add("Istio sidecar" + (f" ({', '.join(variant)})" if variant else ""),
            sorted(c for c in every if c.startswith("ISTIO_")))
    if {"PROXY_INIT_OUTPUT", "PROXY_INIT_REDIRECT"} & nat:
        add("Linkerd proxy-init", sorted(c for c in nat if c.startswith("PROXY_INIT")))
    if "KUBE-SERVICES" in nat:
        svcs = [c for c in nat if c.startswith("KUBE-SVC-")]
        seps = [c for c in nat if c.startswith("KUBE-SEP-")]
        add("kube-proxy (iptables mode)", [f"{len(svcs)} KUBE-SVC chains, {len(seps)} KUBE-SEP chains"])
    for prefix, name in (("cali-", "Calico (iptables dataplane)"), ("CILIUM_", "Cilium (iptables feeder chains)"),
                         ("AWS-SNAT-CHAIN", "AWS VPC CNI"), ("AWS-CONNMARK-CHAIN", "AWS VPC CNI"),
                         ("ANTREA-", "Antrea"), ("DOCKER", "Docker")):
        hits = sorted(c for c in every if c.startswith(prefix))
        if hits and not any(r.name == name for r in found):
            add(name, hits[:5] + ([f"... {len(hits) - 5} more"] if len(hits) > 5 else []))
    for rs in rulesets:
        if not isinstance(rs, NftRuleset):
            continue
        for t in rs.tables:
            if t.name == "kube-proxy":
                vm = t.sets.get("service-ips")
                add(f"kube-proxy (nftables mode, {t.family})",
                    [f"table {t.family} kube-proxy", f"{len(vm.elem) if vm else 0} service-ips entries"])
            elif t.name.startswith("istio-proxy"):
                add("Istio sidecar (native nftables)", [f"table {t.family} {t.name}"])
            elif t.name.startswith("istio"):
                add("Istio (nftables)", [f"table {t.family} {t.name}"])
            elif t.name.startswith("cali"):
                add("Calico (nftables dataplane)", [f"table {t.family} {t.name}"])
    return found


def _redirects_to(rulesets: Sequence, port: str) -> bool:
    for rs in rulesets:
        if isinstance(rs, IptablesRuleset):
            for t in rs.tables.values():
                for c in t.chains.values():
                    for r in c.rules:
                        if r.target and r.target.name == "REDIRECT" and r.target.get("--to-ports") \
                                and r.target.get("--to-ports").value == port:
                            return True
    return False


# ---- the summary in words ---------------------------------------------------------------------------------------

def summarize(rulesets: Sequence) -> str:
    sentences: List[str] = []
    for rs in rulesets:
        if not isinstance(rs, IptablesRuleset) or "nat" not in rs.tables:
            continue
        nat = rs.tables["nat"]
        out = _describe(nat, "OUTPUT", outbound=True)
        inn = _describe(nat, "PREROUTING", outbound=False)
        parts = [p for p in (out, inn) if p]
        if parts:
            main = "; ".join(re.sub(r" \[.*\]$", "", p) for p in parts)
            sentences.append(main[0].upper() + main[1:] + ".")
            for p in parts:
                m = re.search(r"\[(\d+) more (\w+) rules? (.*)\]$", p)
                if m:
                    sentences.append(f"{m.group(1)} more {m.group(2)} rule(s) {m.group(3)} apply (see the chains).")
        svc = _kube_services(nat)
        if svc:
            sentences.append(svc)
    for rs in rulesets:
        if isinstance(rs, NftRuleset):
            for t in rs.tables:
                if t.name == "kube-proxy" and t.sets.get("service-ips"):
                    n = len(t.sets["service-ips"].elem)
                    eps = sum(1 for c in t.chains if c.startswith("endpoint-"))
                    sentences.append(f"kube-proxy (nftables) maps {n} service IP:port entries to {eps} endpoints "
                                     f"(numgen picks one at random per connection).")
    tproxy = _tproxy(rulesets)
    if tproxy:
        sentences.append(tproxy)
    drops = _filter_drops(rulesets)
    if drops:
        sentences.append(drops)
    if not sentences:
        total = sum(rs.rule_count() for rs in rulesets)
        sentences.append(f"{total} rules; no redirection or Service NAT recognised." if total else
                         "No netfilter rules: traffic is neither redirected nor filtered here.")
    return " ".join(sentences)


def _reach(table: Table, chain: str, path, jumps: Tuple[Rule, ...], seen: Set[str]):
    """Yield (REDIRECT rule, rules passed before it, jump rules that led to it) for every NAT rule reachable.

    `path` is a linked list of (parent, rules, count) segments, flattened only for a hit: copying the rules
    passed so far at every jump made a 5,000-Service kube-proxy dump quadratic."""
    if chain in seen or chain not in table.chains:
        return
    seen = seen | {chain}
    rules = table.chains[chain].rules
    for i, r in enumerate(rules):
        t = r.target
        if t is None:
            continue
        if t.name == "REDIRECT":
            yield r, _flatten((path, rules, i)), jumps
        elif t.name in table.chains:
            yield from _reach(table, t.name, (path, rules, i), jumps + (r,), seen)


def _flatten(path) -> Tuple[Rule, ...]:
    segments = []
    while path is not None:
        path, rules, count = path
        segments.append(rules[:count])
    return tuple(r for seg in reversed(segments) for r in seg if r.target is not None)


def _unconditional(rule: Rule) -> bool:
    return not [o for o in rule.core if o.name != "-p"] and all(m.module in ("comment", "tcp", "udp") and not [
        o for o in m.options if m.module != "comment"] for m in rule.matches)


def _describe(nat: Table, hook: str, outbound: bool) -> Optional[str]:
    hits = [(r, before, jumps) for r, before, jumps in _reach(nat, hook, None, (), set())
            if r.target.name == "REDIRECT"]
    if not hits:
        return None
    # the catch-all is the REDIRECT reached through unconditional jumps; others are special cases
    # (DNS capture, loopback re-entry of the proxy's own traffic)
    catch_all = [h for h in hits if all(_unconditional(j) for j in h[2]) and _negated_only(h[0]) is not None]
    dns = [h for h, _, _ in hits if h.target.get("--to-ports") and h.target.get("--to-ports").value == "15053"]
    if not catch_all:
        words = f"{'outbound' if outbound else 'inbound'} traffic is redirected only by {len(hits)} conditional " \
                f"rule{'s' if len(hits) > 1 else ''}"
        return words + ("; DNS (port 53) goes to 15053" if dns else "")
    r, before, _ = catch_all[-1]
    proto = (r.get_core("-p").value.upper() if r.get_core("-p") else "all")
    port = r.target.get("--to-ports").value if r.target.get("--to-ports") else "the same port"
    uids, gids, dsts, ports, srcs, oifs, other = [], [], [], [], [], [], 0
    for b in before:
        if b.target is None or b.target.name not in ("RETURN", "ACCEPT"):
            continue
        words = _exception(b)
        if words is None:
            other += 1
            continue
        kind, value = words
        {"uid": uids, "gid": gids, "dst": dsts, "port": ports, "src": srcs, "oif": oifs}[kind].append(value)
    excepts = []
    if uids and uids == gids:
        excepts.append(f"from uid/gid {', '.join(uids)}")
    else:
        if uids:
            excepts.append(f"from uid {', '.join(uids)}")
        if gids:
            excepts.append(f"from gid {', '.join(gids)}")
    if dsts:
        excepts.append(f"to {', '.join(dsts)}")
    if srcs and not outbound:
        excepts.append(f"from {', '.join(srcs)}")
    if ports:
        excepts.append(f"ports {', '.join(ports)}")
    if oifs:
        excepts.append(f"via {', '.join(oifs)}")
    excepts += _negated_only(r) or []
    text = (f"outbound {proto} is redirected to 127.0.0.1:{port}" if outbound
            else f"inbound {proto} to {port}")
    if excepts:
        text += " except " + " and ".join(excepts)
    if dns:
        text += "; DNS (port 53) goes to 15053"
    if other:
        # kept out of the sentence: loopback and mark rules need the chain view to be read correctly
        text += f" [{other} more {'outbound' if outbound else 'inbound'} rule{'s' if other > 1 else ''} " \
                f"with conditions on lo, marks or several matches]"
    return text


def _negated_only(rule: Rule) -> Optional[List[str]]:
    """Words for a redirect rule's negated conditions ("to 127.0.0.1", "marked 0x539/0xfff"); None when it has
    a positive condition (then it is not a catch-all)."""
    words = []
    for o in [o for o in rule.core if o.name != "-p"] + [o for m in rule.matches if m.module != "comment"
                                                         for o in m.options]:
        if not o.negated:
            return None
        if o.name == "-d":
            words.append(f"to {re.sub(r'/32$|/128$', '', o.value)}")
        elif o.name in ("--dport", "--dports"):
            words.append(f"port {o.value}")
        elif o.name == "--mark":
            words.append(f"marked {o.value}")
        elif o.name == "-o":
            words.append(f"via {o.value}")
        else:
            words.append(f"{o.name} {o.value}")
    return words


def _exception(rule: Rule) -> Optional[Tuple[str, str]]:
    conds = [o for o in rule.core if o.name != "-p"] + [o for m in rule.matches if m.module != "comment"
                                                       for o in m.options]
    if len(conds) != 1 or conds[0].negated:
        return None
    o = conds[0]
    if o.name == "--uid-owner":
        return "uid", o.value
    if o.name == "--gid-owner":
        return "gid", o.value
    if o.name == "-d":
        return "dst", re.sub(r"/32$|/128$", "", o.value)
    if o.name == "-s":
        return "src", re.sub(r"/32$|/128$", "", o.value)
    if o.name in ("--dport", "--dports"):
        return "port", o.value.replace(",", ", ")
    if o.name == "-o":
        return "oif", o.value
    return None


def _kube_services(nat: Table) -> Optional[str]:
    svc = nat.chains.get("KUBE-SERVICES")
    if svc is None:
        return None
    n = sum(1 for r in svc.rules if r.target and r.target.name.startswith(("KUBE-SVC-", "KUBE-EXT-", "KUBE-FW-")))
    seps = sum(1 for c in nat.chains if c.startswith("KUBE-SEP-"))
    return f"kube-proxy DNATs {n} Service address{'es' if n != 1 else ''} to {seps} endpoint{'s' if seps != 1 else ''}" \
           f" (chosen at random by -m statistic)."


def _tproxy(rulesets: Sequence) -> Optional[str]:
    for rs in rulesets:
        if isinstance(rs, IptablesRuleset) and "mangle" in rs.tables:
            for c in rs.tables["mangle"].chains.values():
                for r in c.rules:
                    if r.target and r.target.name == "TPROXY" and r.target.get("--on-port"):
                        mark = r.target.get("--tproxy-mark")
                        return (f"Inbound TCP is intercepted with TPROXY to port {r.target.get('--on-port').value}"
                                + (f" (mark {mark.value})" if mark else "") + ".")
    return None


def _filter_drops(rulesets: Sequence) -> Optional[str]:
    drops = 0
    for rs in rulesets:
        if isinstance(rs, IptablesRuleset) and "filter" in rs.tables:
            for c in rs.tables["filter"].chains.values():
                drops += sum(1 for r in c.rules if r.target and r.target.name in ("DROP", "REJECT"))
                drops += 1 if c.policy == "DROP" else 0
    return f"The filter table has {drops} DROP/REJECT rule(s) or policies." if drops else None
