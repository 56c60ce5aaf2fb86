"""What NAT and mark targets do to the packet (shared by the iptables and nftables evaluators).

The kernel reroutes a locally generated packet whose destination NAT changed (ip_route_me_harder), but the
hook's `out` device stays the first route's until the hook ends: `-o`/`oifname` in later tables of OUTPUT still
see it (checked by tests/analysis/netfilter/trace/test_differential.py); the new device shows from POSTROUTING on.

REDIRECT (iptables-extensions(8)): "redirects the packet to the machine itself by changing the
destination IP to the primary address of the incoming interface (locally-generated packets are
mapped to the localhost address, 127.0.0.1 for IPv4 and ::1 for IPv6)". NAT applies once per
connection and direction: a second destination rewrite for the same connection does not happen.
"""
from __future__ import annotations

from typing import Optional

from kubectl_whose.analysis.netfilter.trace.packet import endpoint, is_loopback, parse_nat_to
from kubectl_whose.analysis.netfilter.trace.context import WalkContext


def _first_port(spec: Optional[str]) -> Optional[int]:
    if not spec:
        return None
    return int(str(spec).replace(":", "-").split("-")[0])


def redirect(ctx: WalkContext, hook: str, ports: Optional[str]) -> str:
    p = ctx.packet
    before = endpoint(p.dst, p.dport)
    if hook == "OUTPUT":
        p.dst = "::1" if ":" in p.dst else "127.0.0.1"
        p.reroute_oif = "lo"
    else:
        p.dst = ctx.local_address()
    port = _first_port(ports)
    if port is not None:
        p.dport = port
    p.delivered_to = endpoint(p.dst, p.dport)
    p.verdict_kind = "REDIRECT"
    p.dnat_hooks.append(hook)
    p.nat_log.append((hook, "dst", p.dst, p.dport, p.reroute_oif))
    p.nat.append(f"REDIRECT {before} -> {p.delivered_to}")
    return f"REDIRECT to {p.delivered_to} (original destination {before}, readable with SO_ORIGINAL_DST)"


def dnat(ctx: WalkContext, hook: str, to: Optional[str]) -> str:
    p = ctx.packet
    before = endpoint(p.dst, p.dport)
    ip, port, note = parse_nat_to(to or "")
    if note:
        ctx.assume(f"DNAT {to}: {note}")
    if ip:
        p.dst = ip
    if port is not None:
        p.dport = port
    if hook == "OUTPUT":
        p.reroute_oif = ctx.output_device(p.dst)
        if p.reroute_oif != "lo" and p.src and is_loopback(p.src):
            # ip_route_me_harder refuses a loopback source toward another host (route_localnet is 0 by default):
            # the packet is dropped before POSTROUTING could masquerade it
            p.unroutable = True
            ctx.assume("a packet from a loopback address DNATed to another host is dropped by the kernel's reroute "
                       "(net.ipv4.conf.*.route_localnet=0, the default)")
    p.verdict_kind = "DNAT"
    p.dnat_hooks.append(hook)
    p.nat_log.append((hook, "dst", p.dst, p.dport, p.reroute_oif))
    p.nat.append(f"DNAT {before} -> {endpoint(p.dst, p.dport)}")
    return f"DNAT to {endpoint(p.dst, p.dport)} (was {before})"


def snat(ctx: WalkContext, to: Optional[str]) -> str:
    p = ctx.packet
    ip, port, note = parse_nat_to(to or "")
    if note:
        ctx.assume(f"SNAT {to}: {note}")
    before = endpoint(p.src, p.sport)
    if ip:
        p.src = ip
    if port is not None:
        p.sport = port
    p.snat_done = True
    p.nat_log.append(("POSTROUTING", "src", p.src, p.sport, None))
    p.nat.append(f"SNAT {before} -> {endpoint(p.src, p.sport)}")
    if p.verdict_kind is None:
        p.verdict_kind = "SNAT"
    return f"SNAT source to {endpoint(p.src, p.sport)}"


def masquerade(ctx: WalkContext) -> str:
    p = ctx.packet
    before = p.src
    routed_src = ctx.source_address(p.oif, "ipv6" if ":" in p.dst else "ipv4")
    if p.oif == "lo":
        p.src = ctx.loopback_masquerade_source()
    elif routed_src:
        p.src = routed_src
    elif ctx.query.pod_ips:
        p.src = ctx.query.pod_ips[0]
    else:
        ctx.assume("MASQUERADE: the address of the output interface is not known (pass --pod-ip)")
    p.snat_done = True
    p.nat_log.append(("POSTROUTING", "src", p.src, p.sport, None))
    p.nat.append(f"MASQUERADE {before} -> {p.src or 'address of ' + (p.oif or 'the output interface')}")
    if p.verdict_kind is None:
        p.verdict_kind = "MASQUERADE"
    return f"MASQUERADE: source becomes the address of {p.oif or 'the output interface'}"


def tproxy(ctx: WalkContext, port: Optional[str], on_ip: Optional[str], mark: Optional[str]) -> str:
    p = ctx.packet
    if mark:
        v, _, m = mark.partition("/")
        mask = int(m, 0) if m else 0xFFFFFFFF
        p.mark = (p.mark & ~mask & 0xFFFFFFFF) ^ int(v, 0)
    ctx.assume("TPROXY: policy routing is taken to deliver marked packets locally (as Istio's "
               "`ip rule fwmark 1337 lookup 133` does)")
    # --on-ip 0.0.0.0 (what iptables-save prints when none was given) means "the packet's own destination"
    dest_ip = on_ip if on_ip and on_ip not in ("0.0.0.0", "::") else p.dst
    dest_port = _first_port(port) if port else p.dport
    p.delivered_to = endpoint(dest_ip, dest_port)
    p.verdict_kind = "TPROXY"
    p.nat.append(f"TPROXY {endpoint(p.dst, p.dport)} -> socket {p.delivered_to} (destination unchanged)")
    return f"TPROXY to the socket on {p.delivered_to}, mark {p.mark:#x}; destination address unchanged"


def set_mark(ctx: WalkContext, target) -> str:
    p = ctx.packet
    for o in target.options:
        v, _, m = o.value.partition("/")
        if o.name == "--set-xmark":
            mask = int(m, 0) if m else 0xFFFFFFFF
            p.mark = (p.mark & ~mask & 0xFFFFFFFF) ^ int(v, 0)
        elif o.name == "--set-mark":
            mask = int(m, 0) if m else 0xFFFFFFFF
            p.mark = (p.mark & ~mask & 0xFFFFFFFF) | int(v, 0)
        elif o.name == "--or-mark":
            p.mark |= int(v, 0)
        elif o.name == "--xor-mark":
            p.mark ^= int(v, 0)
        elif o.name == "--and-mark":
            p.mark &= int(v, 0)
    return f"MARK: mark is now {p.mark:#x}"


def connmark(ctx: WalkContext, target) -> str:
    p = ctx.packet
    get = lambda n, d: int(target.get(n).value, 0) if target.get(n) else d  # noqa: E731
    if target.get("--save-mark"):
        nfmask, ctmask = get("--nfmask", get("--mask", 0xFFFFFFFF)), get("--ctmask", get("--mask", 0xFFFFFFFF))
        p.ctmark = (p.ctmark & ~ctmask & 0xFFFFFFFF) ^ (p.mark & nfmask)
        return f"CONNMARK save: connmark {p.ctmark:#x}"
    if target.get("--restore-mark"):
        nfmask, ctmask = get("--nfmask", get("--mask", 0xFFFFFFFF)), get("--ctmask", get("--mask", 0xFFFFFFFF))
        p.mark = (p.mark & ~nfmask & 0xFFFFFFFF) ^ (p.ctmark & ctmask)
        return f"CONNMARK restore: mark {p.mark:#x}"
    for name in ("--set-xmark", "--set-mark"):
        if target.get(name):
            v, _, m = target.get(name).value.partition("/")
            mask = int(m, 0) if m else 0xFFFFFFFF
            p.ctmark = (p.ctmark & ~mask & 0xFFFFFFFF) ^ int(v, 0)
            return f"CONNMARK: connmark {p.ctmark:#x}"
    ctx.assume("CONNMARK options not modelled: " + " ".join(o.name for o in target.options))
    return "CONNMARK: not modelled, continues"
