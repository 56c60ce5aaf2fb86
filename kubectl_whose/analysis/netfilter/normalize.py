"""The spellings `iptables-save` prints, applied to restore input so both forms of a rule compare equal.

Checked against the real tools: tests/analysis/netfilter/test_parse.py restores our dump with iptables-restore
(legacy and nft) and compares what iptables-save prints back, rule by rule.
"""
from __future__ import annotations

import functools
import ipaddress
from typing import List, Optional

from kubectl_whose.analysis.netfilter.model import Option

OPTION_ALIASES = {  # iptables-extensions(8) long forms -> what iptables-save prints
    "--destination-port": "--dport", "--source-port": "--sport",
    "--destination-ports": "--dports", "--source-ports": "--sports",
    "--to-port": "--to-ports", "--to": "--to-destination",
}
PROTOCOL_NUMBERS = {"6": "tcp", "17": "udp", "1": "icmp", "58": "ipv6-icmp", "132": "sctp"}


def option(name: str, values: List[str], negate: bool, target: Optional[str]) -> Option:
    vals = tuple(values)
    if name == "--comment":
        vals = (" ".join(values),)
    elif name == "--probability" and vals:
        vals = (f"{float(vals[0]):.11f}",)
    elif name == "--mark" and vals and target is None:
        vals = (_hex_mask(vals[0]),)
    return Option(name, vals, negate)


def target_options(target: str, opts: List[Option]) -> List[Option]:
    """Spell target options the way iptables-save prints them (checked against the real iptables-save in
    tests/analysis/netfilter/test_parse.py): MARK's --set-mark/--or-mark/--xor-mark/--and-mark as --set-xmark v/m,
    CONNMARK's masks made explicit, TPROXY's options in order with defaults."""
    if target == "CONNMARK":
        return _connmark_options(opts)
    if target == "TPROXY":
        return _tproxy_options(opts)
    if target != "MARK":
        return opts
    out = []
    for o in opts:
        if o.name in ("--set-mark", "--or-mark", "--xor-mark", "--and-mark") and o.values:
            value, _, mask = o.values[0].partition("/")
            v = int(value, 0)
            if o.name == "--set-mark":
                m = int(mask, 0) if mask else 0xFFFFFFFF
                out.append(Option("--set-xmark", (f"{v:#x}/{m:#x}",)))
            elif o.name == "--or-mark":
                out.append(Option("--set-xmark", (f"{v:#x}/{v:#x}",)))
            elif o.name == "--xor-mark":
                out.append(Option("--set-xmark", (f"{v:#x}/0x0",)))
            else:
                out.append(Option("--set-xmark", (f"0x0/{(~v) & 0xFFFFFFFF:#x}",)))
        else:
            out.append(o)
    return out


def _connmark_options(opts: List[Option]) -> List[Option]:
    names = {o.name: o for o in opts}
    if "--save-mark" in names or "--restore-mark" in names:
        verb = "--save-mark" if "--save-mark" in names else "--restore-mark"
        mask = names["--mask"].value if "--mask" in names else None
        nf = names["--nfmask"].value if "--nfmask" in names else (mask or "0xffffffff")
        ct = names["--ctmask"].value if "--ctmask" in names else (mask or "0xffffffff")
        return [Option(verb), Option("--nfmask", (_hex_mask(nf),)), Option("--ctmask", (_hex_mask(ct),))]
    if "--set-mark" in names and "--set-xmark" not in names:
        value, _, mask = names["--set-mark"].value.partition("/")
        m = int(mask, 0) if mask else 0xFFFFFFFF
        return [Option("--set-xmark", (f"{int(value, 0):#x}/{m:#x}",))]
    return opts


def _tproxy_options(opts: List[Option]) -> List[Option]:
    names = {o.name: o for o in opts}
    if set(names) - {"--on-port", "--on-ip", "--tproxy-mark"}:
        return opts
    out = [Option("--on-port", names["--on-port"].values)] if "--on-port" in names else []
    out.append(Option("--on-ip", names["--on-ip"].values if "--on-ip" in names else ("0.0.0.0",)))
    mark = names["--tproxy-mark"].value if "--tproxy-mark" in names else "0x0/0x0"
    value, _, mask = mark.partition("/")
    out.append(Option("--tproxy-mark", (f"{int(value, 0):#x}/{int(mask, 0) if mask else 0xFFFFFFFF:#x}",)))
    return out


def _hex_mask(text: str) -> str:
    value, _, mask = text.partition("/")
    try:
        out = f"{int(value, 0):#x}"
        return f"{out}/{int(mask, 0):#x}" if mask else out
    except ValueError:
        return text


def core_value(name: str, value: str) -> str:
    if name in ("-s", "-d"):
        return ",".join(_cidr(v) for v in value.split(","))
    if name == "-p":
        return PROTOCOL_NUMBERS.get(value, value.lower())
    return value


@functools.lru_cache(maxsize=65536)
def _cidr(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        try:  # dotted masks: 10.0.0.0/255.0.0.0
            return str(ipaddress.ip_network(text.replace(" ", ""), strict=False))
        except ValueError:
            return text
