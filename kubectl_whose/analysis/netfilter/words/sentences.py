"""The words: a point as a condition ("from uid 1337", "to 127.0.0.53 port 53"), an effect as a verb phrase
("is redirected to 127.0.0.1:15001", "is DNATed at random to 10.180.0.4:80 or 10.180.0.5:80 (50% each)").
Nothing here decides what is true; it only says what the traces found."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from kubectl_whose.analysis.netfilter.words.points import LOCAL, REMOTE, Deviation, Point
from kubectl_whose.analysis.netfilter.words.probes import Baseline, Effect, End

ORDER = {"uid": 0, "gid": 1, "src": 2, "sport": 3, "iif": 4, "dst": 5, "dport": 6, "oif": 7, "mark": 8,
         "ctstate": 9, "set": 10}


def deviation_words(d: Deviation, base: Baseline, with_dst: bool = False) -> str:
    if d.dim in ("uid", "gid"):
        return f"from {d.dim} {d.text}"
    if d.dim == "src":
        return f"from {d.text}"
    if d.dim == "sport":
        return f"from port {d.text}"
    if d.dim == "iif":
        return f"arriving on {d.text}"
    if d.dim == "dst":
        if d.value == LOCAL:
            return own_address(base)
        if d.value == REMOTE:
            return "to other hosts (forwarded)"
        return f"to {d.text}"
    if d.dim == "dport":
        return f"port {d.text}" if with_dst else f"to port {d.text}"
    if d.dim == "oif":
        return f"leaving via {d.text}"
    if d.dim == "mark":
        return f"marked {d.text}"
    if d.dim == "ctstate":
        return "in conntrack state INVALID"
    if d.dim == "set":
        name, _, side = d.text.partition(" ")
        return f"{'from' if side.startswith('src') else 'to'} members of ipset {name}"
    return d.text


def own_address(base: Baseline) -> str:
    return f"to its own address {base.local}" if base.local_known else "to its own address"


def _said(point: Point) -> Point:
    """`-o lo` of an outbound packet is said as its destination: the namespace's own address."""
    lo = [d for d in point if d.dim == "oif" and d.value == "lo"]
    if not lo:
        return point
    rest = point - set(lo)
    return rest if any(d.dim == "dst" for d in rest) else rest | {Deviation("dst", LOCAL, "local")}


def condition_words(point: Point, base: Baseline) -> str:
    devs = sorted(_said(point), key=lambda d: (ORDER.get(d.dim, 99), str(d.value)))
    has_dst = any(d.dim == "dst" for d in devs)
    words = [deviation_words(d, base, with_dst=has_dst) for d in devs]
    uid = next((d for d in devs if d.dim == "uid"), None)
    gid = next((d for d in devs if d.dim == "gid"), None)
    if uid and gid:  # "from uid 1337 and gid 1337"
        words = [f"from uid {uid.text} and gid {gid.text}"] + words[2:]
    return " ".join(words)


def conditions_joined(points: Sequence[Point], base: Baseline) -> str:
    """Several conditions with one effect: single ports, addresses, uids of one kind listed together
    ("to ports 15008, 15090", "from uid or gid 1337"), the rest joined with "or"."""
    singles: Dict[str, List[Deviation]] = {}
    rest: List[str] = []
    for p in (_said(p) for p in points):
        if len(p) == 1:
            (d,) = tuple(p)
            singles.setdefault(d.dim, []).append(d)
        else:
            rest.append(condition_words(p, base))
    parts: List[str] = []
    uid_texts = [d.text for d in singles.pop("uid", [])]
    gid_texts = [d.text for d in singles.pop("gid", [])]
    both = [t for t in uid_texts if t in gid_texts]
    if both:
        parts.append(f"from uid or gid {', '.join(both)}")
    for kind, texts in (("uid", [t for t in uid_texts if t not in both]), ("gid", [t for t in gid_texts
                                                                                   if t not in both])):
        if texts:
            parts.append(f"from {kind} {', '.join(texts)}")
    for dim in sorted(singles, key=lambda k: ORDER.get(k, 99)):
        devs = sorted(singles[dim], key=lambda d: (d.value in (LOCAL, REMOTE), _number(d.value), str(d.value)))
        if dim == "dport" and len(devs) > 1:
            parts.append("to ports " + ", ".join(d.text for d in devs))
        elif dim in ("dst", "src") and len(devs) > 1 and all(d.value not in (LOCAL, REMOTE) for d in devs):
            parts.append(f"{'to' if dim == 'dst' else 'from'} " + ", ".join(d.text for d in devs))
        else:
            parts += [deviation_words(d, base) for d in devs]
    return _or(parts + rest)


def _number(value) -> int:
    return value if isinstance(value, int) else 0


def _or(parts: List[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _percent(share: float) -> str:
    value = share * 100
    return f"{value:.0f}%" if abs(value - round(value)) < 0.05 else f"{value:.1f}%"


def _end_words(e: End, base: Baseline) -> str:
    if e.kind == "drop":
        return "dropped" + (" (not tracked by conntrack)" if e.untracked else "")
    if e.kind == "reject":
        return {"refused": "refused (REJECT)", "reset": "reset (REJECT with tcp-reset)",
                "unreachable": "rejected with an ICMP unreachable",
                "timeout": "rejected, but the rejection is dropped too, so the sender times out"}.get(
            e.sees, f"rejected ({e.sees})")
    words = {"pass": "unchanged", "redirect": f"redirected to {e.to}", "dnat": f"DNATed to {e.to}",
             "tproxy": f"handed by TPROXY to the socket on port {e.to} (destination kept, mark {e.mark})"}[e.kind]
    if e.source:
        how = "masqueraded" if e.source_by == "MASQUERADE" else "SNATed"
        words = f"{how} to {e.source}" if e.kind == "pass" else f"{words} and {how} to {e.source}"
    if e.sees != "delivered":
        words += {"timeout": ", but the sender times out (the answer does not get back)",
                  "refused": ", but the connection is refused later", "reset": ", but the connection is reset",
                  "unreachable": ", but an ICMP unreachable comes back"}.get(e.sees, f" ({e.sees})")
    if e.untracked:
        words += " (not tracked by conntrack)"
    return words


def effect_words(effect: Effect, base: Baseline) -> str:
    """"redirected to 127.0.0.1:15001", "DNATed at random to A (33%), B (33%) or C (33%)"."""
    if len(effect) == 1:
        return _end_words(effect[0], base)
    dnats = [e for e in effect if e.kind == "dnat" and e.sees == "delivered" and not e.untracked]
    if len(dnats) == len(effect) and len({(e.source, e.source_by) for e in effect}) == 1:
        shares = {e.share for e in effect}
        if len(shares) == 1:
            words = f"DNATed at random to {_or([e.to for e in effect])} ({_percent(effect[0].share)} each)"
        else:
            words = "DNATed at random to " + _or([f"{e.to} ({_percent(e.share)})" for e in effect])
        if effect[0].source:
            words += f" and {'masqueraded' if effect[0].source_by == 'MASQUERADE' else 'SNATed'} to " \
                     f"{effect[0].source}"
        return words
    return _or([f"{_end_words(e, base)} ({_percent(e.share)})" for e in effect])


def statement(directions: Sequence[str], protos: Sequence[str], cond: str, effect: str,
              exceptions: Sequence[Tuple[str, str]]) -> str:
    """"Outbound TCP and UDP to 127.0.0.53 port 53 are redirected to 127.0.0.1:15053, except ..."."""
    who = " and ".join(d.capitalize() if i == 0 else d for i, d in enumerate(directions))
    plural = len(protos) > 1 or len(directions) > 1
    subject = f"{who} {' and '.join(p.upper() for p in protos)}" + (f" {cond}" if cond else "")
    verb = ("pass" if plural else "passes") + " unchanged" if effect == "unchanged" else \
        f"{'are' if plural else 'is'} {effect}"
    text = f"{subject} {verb}"
    if exceptions:
        text += ", except " + "; ".join(f"{c} ({e})" for c, e in exceptions)
    return text + "."
