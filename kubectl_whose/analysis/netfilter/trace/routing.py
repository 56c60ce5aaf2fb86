"""The kernel's routing decision for a traced packet: delivered locally (INPUT) or forwarded (FORWARD, then
POSTROUTING through the output device), from the node's or pod's own `ip -j addr`, `ip -j route show table
all` and `ip -j rule` (parsed by `analysis.pod.netinfo`), or from `--local-ip`/`--route`.

What the kernel does (fib_lookup, net/ipv4/fib_rules.c and fib_trie.c): policy rules in priority order
(default: 0 `lookup local`, 32766 `lookup main`, 32767 `lookup default`); a rule matches on from/to,
fwmark/mask, iif, oif (and `not`); its table is searched by longest prefix, then lowest metric; a `throw`
route goes on to the next rule; `local` and `broadcast` routes deliver to this host; `blackhole` drops,
`unreachable` and `prohibit` answer with ICMP errors; no route at all answers "network unreachable".
Not modelled: routing by TOS, uid ranges (`uidrange`), sport/dport rules, suppress_prefixlength and
multipath weights (the first next hop is taken); each is named when a rule or route uses it.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

TABLE_NAMES = {"255": "local", "254": "main", "253": "default"}
DEFAULT_RULES = ((0, "local"), (32766, "main"), (32767, "default"))


@dataclass(frozen=True)
class RouteDecision:
    kind: str  # local | unicast | blackhole | unreachable | prohibit | no-route
    dev: Optional[str] = None
    gateway: Optional[str] = None
    table: str = "main"
    text: str = ""  # how the kernel decided, for the trace's step note

    @property
    def delivered_here(self) -> bool:
        return self.kind == "local"


def _net(text: Optional[str]):
    if not text or text in ("all", "default"):
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


@dataclass
class Routing:
    """Addresses by interface, routes and policy rules of one network namespace."""

    addresses: List[Tuple[str, str, int]] = field(default_factory=list)  # (ifname, ip, prefixlen)
    routes: list = field(default_factory=list)  # analysis.pod.netinfo.Route
    rules: list = field(default_factory=list)  # analysis.pod.netinfo.Rule
    notes: List[str] = field(default_factory=list)

    @classmethod
    def from_netinfo(cls, info) -> "Routing":
        """From an `analysis.pod.netinfo.NetInfo` (live recipes, `net --from-file`, or `trace --from-file`)."""
        addrs = [(i.name, a.local, a.prefixlen) for i in info.interfaces for a in i.addresses]
        return cls(addrs, list(info.routes), list(info.rules))

    @classmethod
    def from_flags(cls, local_ips: Sequence[str], routes: Sequence[str]) -> "Routing":
        """`--local-ip IP` and `--route "DST [via GW] dev DEV"` (ip-route syntax, repeatable)."""
        from kubectl_whose.analysis.pod.netinfo import Route

        # the kernel's local table holds a route for each of the host's addresses and for loopback
        parsed = [Route(dst=ip, table="local", type="local", dev="lo" if ip.startswith("127.") or ip == "::1" else
                        None, family="inet6" if ":" in ip else "inet") for ip in ("127.0.0.0/8", "::1", *local_ips)]
        for text in routes:
            words = text.split()
            dst, rest = words[0], dict(zip(words[1::2], words[2::2]))
            parsed.append(Route(dst=dst, gateway=rest.get("via"), dev=rest.get("dev"),
                                family="inet6" if ":" in dst or ":" in rest.get("via", "") else "inet"))
        return cls([("?", ip, 128 if ":" in ip else 32) for ip in local_ips], parsed, [])

    def local_addresses(self) -> List[str]:
        return [ip for _, ip, _ in self.addresses]

    def is_local(self, ip: str) -> bool:
        if ip in self.local_addresses():
            return True
        return self.lookup(ip).kind == "local"

    def primary_address(self, ifname: Optional[str], family: str) -> Optional[str]:
        """What REDIRECT rewrites to in PREROUTING: the first address of the input interface."""
        for name, ip, _ in self.addresses:
            if name == ifname and (":" in ip) == (family == "ipv6"):
                return ip
        return None

    def lookup(self, dst: str, src: Optional[str] = None, mark: int = 0, iif: Optional[str] = None,
               oif: Optional[str] = None) -> RouteDecision:
        family = "inet6" if ":" in dst else "inet"
        rules = sorted((r for r in self.rules if r.family == family), key=lambda r: r.priority)
        plan = [(r.priority, r) for r in rules] or [(p, t) for p, t in DEFAULT_RULES]
        for priority, rule in plan:
            table = rule if isinstance(rule, str) else rule.table
            if not isinstance(rule, str):
                if not self._rule_matches(rule, dst, src, mark, iif, oif):
                    continue
                if rule.action in ("unreachable", "prohibit", "blackhole"):
                    return RouteDecision(rule.action, table=str(priority), text=f"policy rule {priority}: "
                                                                                f"{rule.text}")
                if not table:
                    continue
            found = self._in_table(TABLE_NAMES.get(str(table), str(table)), dst, family, oif)
            if found is None or found.type == "throw":
                continue
            name = TABLE_NAMES.get(str(table), str(table))
            rule_text = "" if name == "main" and priority == 32766 else f" (rule {priority}: lookup {name})"
            if found.type in ("local", "broadcast", "anycast"):
                dev = f" dev {found.dev}" if found.dev else ""
                return RouteDecision("local", found.dev, None, name, f"route {found.type} {found.dst}{dev} "
                                                                      f"table {name}{rule_text}")
            if found.type in ("blackhole", "unreachable", "prohibit"):
                return RouteDecision(found.type, None, None, name, f"route {found.type} {found.dst} table "
                                                                   f"{name}{rule_text}")
            via = f" via {found.gateway}" if found.gateway else ""
            return RouteDecision("unicast", found.dev, found.gateway, name,
                                 f"route {found.dst}{via} dev {found.dev} table {name}{rule_text}")
        return RouteDecision("no-route", text=f"no route to {dst}")

    @staticmethod
    def _rule_matches(rule, dst: str, src: Optional[str], mark: int, iif: Optional[str], oif: Optional[str]) -> bool:
        ok = True
        src_net, dst_net = _net(rule.src), _net(rule.dst)
        if src_net is not None:
            ok = ok and src is not None and ipaddress.ip_address(src) in src_net
        if dst_net is not None:
            ok = ok and ipaddress.ip_address(dst) in dst_net
        if rule.fwmark:
            value, _, mask = rule.fwmark.partition("/")
            m = int(mask, 0) if mask else 0xFFFFFFFF
            ok = ok and (mark & m) == (int(value, 0) & m)
        if rule.iif:
            ok = ok and iif == rule.iif
        if rule.oif:
            ok = ok and oif == rule.oif
        return not ok if rule.invert else ok

    def _in_table(self, table: str, dst: str, family: str, oif: Optional[str]):
        ip = ipaddress.ip_address(dst)
        best, best_key = None, None
        for r in self.routes:
            if TABLE_NAMES.get(r.table, r.table) != table or r.family != family:
                continue
            net = ipaddress.ip_network("::/0" if family == "inet6" else "0.0.0.0/0") if r.dst == "default" \
                else _net(r.dst)
            if net is None or ip not in net or (oif and r.dev and r.dev != oif):
                continue
            key = (net.prefixlen, -(r.metric or 0))
            if best_key is None or key > best_key:
                best, best_key = r, key
        return best


def ip_dump_kind(text: str) -> Optional[str]:
    """"addr", "route" or "rule" for an `ip -j ...` dump, None for anything else (a rule dump)."""
    import json

    stripped = text.lstrip()
    if not stripped.startswith("["):
        return None
    try:
        items = json.loads(stripped)
    except ValueError:
        return None
    first = next((i for i in items if isinstance(i, dict)), None) if isinstance(items, list) else None
    if first is None:
        return None
    if "addr_info" in first:
        return "addr"
    if "priority" in first:
        return "rule"
    if "dst" in first or "type" in first:
        return "route"
    return None


def _has_ipv6_selector(text: str) -> bool:
    import json

    return any(":" in str(r.get(k, "")) for r in json.loads(text) if isinstance(r, dict) for k in ("src", "dst"))


def routing_from_files(paths: Sequence[str]) -> Tuple[List[str], Optional["Routing"]]:
    """`trace --from-file`: split `ip -j addr`/`ip -j route`/`ip -j rule` dumps from the rule dumps; the
    routing they describe (None when there are none)."""
    from kubectl_whose.analysis import bundle_file
    from kubectl_whose.analysis.pod.netinfo import build_netinfo
    from kubectl_whose.errors import ExitCode, WhoseError

    rules, outputs, texts = [], {}, []
    for path in paths:
        if path == "-":
            rules.append(path)
        elif bundle_file.is_bundle(path):  # its rules, and its pod's routing from the saved `net` outputs
            rules.append(path)
            texts.extend((name.startswith("rule6"), text) for name, text in bundle_file.net_files(path).items())
        else:
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    texts.append((False, f.read()))
            except OSError as e:
                raise WhoseError(f"--from-file {path}: {e.strerror or e}", ExitCode.BAD_INPUT) from None
            if ip_dump_kind(texts[-1][1]) is None:
                rules.append(path)
    for six, text in texts:
        kind = ip_dump_kind(text)
        if kind is None:
            continue
        if kind == "rule":
            # `ip -j rule` names no family: an IPv6 prefix in a selector says it, else the second dump is -6's
            six = six or _has_ipv6_selector(text) or "rule" in outputs
            outputs["rule6" if six else "rule"] = text
        else:
            outputs[kind] = text
    if not outputs:
        return rules, None
    return rules, Routing.from_netinfo(build_netinfo(outputs))
