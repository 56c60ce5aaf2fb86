"""Which of a pod's rule dumps hold its rules: iptables-legacy, iptables-nft, nftables, or several.

Rules written with iptables-legacy are invisible to iptables-nft and the other way round (both run
in the kernel), so both are shown when both have rules. A dump read by an iptables that did not
write it can be wrong without saying so (lost matches, `[unsupported revision]`); such dumps are
flagged untrustworthy.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from kubectl_whose.analysis.netfilter.iptables_save import parse_iptables
from kubectl_whose.analysis.netfilter.model import Finding, IptablesRuleset
from kubectl_whose.analysis.netfilter.nft_json import NftRuleset, parse_nft_json

IPTABLES_TABLES = {"raw", "mangle", "nat", "filter", "security"}


@dataclass(frozen=True)
class Dump:
    """What one save tool printed in the pod."""

    name: str  # e.g. "iptables-nft-save"
    binary: str
    backend: str  # legacy | nft | nftables
    family: str  # ipv4 | ipv6 | any
    stdout: str
    stderr: str = ""
    exit_code: int = 0
    missing: bool = False  # the tool is not in the debug image


def decide_backends(dumps: List[Dump], versions: Dict[str, str]) -> Tuple[List[object], List[Finding]]:
    """Parsed dumps that hold rules (both backends when both do) and findings about the choice.
    `versions`: binary -> what its `--version` printed."""
    findings: List[Finding] = []
    parsed: List[object] = []
    for d in dumps:
        if d.missing:
            findings.append(Finding("info", "tool-missing", f"{d.binary} is not in the debug image; "
                                                            f"{d.backend} {d.family} rules not read"))
            continue
        for line in d.stderr.splitlines():
            if line.strip():
                code = "nft-incompatible" if "incompatible" in line else "tool-stderr"
                findings.append(Finding("warning", code, f"{d.name}: {line.strip()}"))
        if d.exit_code != 0 or not d.stdout.strip():
            continue
        if d.backend == "nftables":
            rs = parse_nft_json(d.stdout, d.name)
        else:
            rs = parse_iptables(d.stdout, d.name, family=d.family)
            rs.backend = d.backend
        _check_reader(rs, versions.get(d.binary), findings, d.name)
        parsed.append(rs)
    _drop_iptables_nft_tables(parsed, findings)
    with_rules = [rs for rs in parsed if _has_rules(rs)]
    backends = {rs.backend for rs in with_rules if isinstance(rs, IptablesRuleset)}
    if {"legacy", "nft"} <= backends:
        findings.append(Finding("warning", "both-backends",
                                "rules exist in both iptables-legacy and iptables-nft; the kernel runs both "
                                "(legacy first at equal priority), and each tool shows only its own"))
    if not with_rules:
        findings.append(Finding("info", "no-rules", "no netfilter rules in this pod's network namespace"))
    return with_rules, findings


def _drop_iptables_nft_tables(parsed: list, findings: List[Finding]) -> None:
    """iptables-nft keeps its rules in nft tables (`ip nat`, `ip filter`, ...) that `nft -j list ruleset` shows
    too, partly as opaque `xt` expressions; when iptables-nft-save read them, show them once, as iptables rules."""
    families = {("ip" if rs.family == "ipv4" else "ip6") for rs in parsed
                if isinstance(rs, IptablesRuleset) and rs.backend == "nft" and rs.rule_count()}
    for rs in parsed:
        if not isinstance(rs, NftRuleset):
            continue
        owned = [t for t in rs.tables if t.family in families and t.name in IPTABLES_TABLES
                 and all(c.isupper() for c in t.chains)]
        if owned:
            rs.tables = [t for t in rs.tables if t not in owned]
            findings.append(Finding("info", "iptables-nft-tables",
                                    "nft tables " + ", ".join(f"{t.family} {t.name}" for t in owned)
                                    + " belong to iptables-nft; shown as iptables rules"))


def _has_rules(rs) -> bool:
    if isinstance(rs, NftRuleset):
        return any(t.chains for t in rs.tables)
    return rs.rule_count() > 0 or any(c.policy not in (None, "ACCEPT") for t in rs.tables.values()
                                      for c in t.chains.values())


def _check_reader(rs, version_line: Optional[str], findings: List[Finding], name: str) -> None:
    """A dump is untrustworthy when the reader says so or when its version differs from the writer's."""
    if isinstance(rs, NftRuleset):
        return
    m = re.search(r"v(\d[\w.]*)", version_line or "")
    reader = m.group(1) if m else None
    if reader and rs.version and reader != rs.version:
        rs.findings.append(Finding("warning", "version-mismatch",
                                   f"{name} reports v{reader} but the dump says v{rs.version}"))
    lossy = [f for f in rs.findings if f.code in ("unsupported-revision", "nft-incompatible")]
    if lossy:
        findings.append(Finding(
            "warning", "untrustworthy-reader",
            f"{name} v{reader or rs.version or '?'} could not read {len(lossy)} rule(s) written by another "
            f"iptables version; shown rules may be incomplete (use a debug image whose iptables matches the "
            f"pod's, --image)"))
