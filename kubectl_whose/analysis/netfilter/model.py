"""The iptables rule model: tables, chains, rules, matches and targets as plain dataclasses.

Fields follow the order `iptables-save` prints them (core options `-s -d -i -o -p -f`, then each
`-m module` with its options, then `-j/-g TARGET` with its options), so rendering a rule back to
text (`rule_text`, `dump_iptables`: what `rules --save` writes and `iptables-restore`
reads back to the same model) is a walk over the fields. Matches and targets are generic (module name plus
options): a module this tool does not model is kept verbatim and stays visible, it is never
dropped. Counters are kept but `Rule.key()` ignores them, which is what `diff.py` compares.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

# Built-in chains per table, in the order the kernel creates (and iptables-save prints) them.
BUILTIN_CHAINS: Dict[str, Tuple[str, ...]] = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}

# Targets iptables itself implements (everything else in `-j X` is a user chain or an unknown extension).
TERMINAL_TARGETS = {"ACCEPT", "DROP", "REJECT", "RETURN", "REDIRECT", "DNAT", "SNAT", "MASQUERADE", "TPROXY",
                    "NETMAP"}
NON_TERMINAL_TARGETS = {"MARK", "CONNMARK", "LOG", "NFLOG", "CT", "NOTRACK", "TRACE", "CLASSIFY", "TCPMSS",
                        "CHECKSUM", "DSCP", "TOS", "TTL", "HL", "AUDIT", "NFQUEUE", "SECMARK", "CONNSECMARK"}


@dataclass(frozen=True)
class Option:
    """One `--name value...` (or `! --name value`) of a match, a target or the rule core (`-s`, `-p`)."""

    name: str
    values: Tuple[str, ...] = ()
    negated: bool = False

    @property
    def value(self) -> str:
        return " ".join(self.values)


@dataclass(frozen=True)
class Match:
    """`-m module --opt v ...`; `module` is e.g. tcp, owner, multiport, statistic, or an unknown name."""

    module: str
    options: Tuple[Option, ...] = ()

    def get(self, name: str) -> Optional[Option]:
        return next((o for o in self.options if o.name == name), None)


@dataclass(frozen=True)
class Target:
    """`-j NAME opts` (or `-g NAME` when goto). NAME is a built-in target, an extension or a chain."""

    name: str
    options: Tuple[Option, ...] = ()
    goto: bool = False

    def get(self, name: str) -> Optional[Option]:
        return next((o for o in self.options if o.name == name), None)


@dataclass(frozen=True)
class Rule:
    chain: str
    core: Tuple[Option, ...] = ()  # -s -d -i -o -p -f, canonical order
    matches: Tuple[Match, ...] = ()
    target: Optional[Target] = None
    counters: Optional[Tuple[int, int]] = None  # [packets:bytes] when the dump had them
    unsupported: Optional[str] = None  # e.g. "[unsupported revision]": the reader lost this rule's parameters
    line: int = field(default=0, compare=False)  # source line, for messages; not part of the model

    def get_core(self, name: str) -> Optional[Option]:
        return next((o for o in self.core if o.name == name), None)

    def match(self, module: str) -> Optional[Match]:
        return next((m for m in self.matches if m.module == module), None)

    def key(self) -> str:
        """The rule's text without counters: what a diff compares."""
        return rule_text(self, counters=False)

    @property
    def comment(self) -> Optional[str]:
        texts = [o.value for m in self.matches if m.module == "comment" for o in m.options if o.name == "--comment"]
        return "; ".join(texts) if texts else None


@dataclass
class Chain:
    name: str
    policy: Optional[str] = None  # ACCEPT/DROP for built-in chains, None ("-") for user chains
    counters: Tuple[int, int] = (0, 0)
    rules: List[Rule] = field(default_factory=list)

    @property
    def builtin(self) -> bool:
        return self.policy is not None


@dataclass
class Table:
    name: str
    chains: Dict[str, Chain] = field(default_factory=dict)

    def chain(self, name: str) -> Chain:
        """The chain, created on first use (restore input may use a built-in chain without declaring it)."""
        if name not in self.chains:
            builtin = name in BUILTIN_CHAINS.get(self.name, ())
            self.chains[name] = Chain(name, "ACCEPT" if builtin else None)
        return self.chains[name]


@dataclass(frozen=True)
class Finding:
    """Something the reader should know about the dump: a warning printed by iptables, a lossy rule, ..."""

    severity: str  # "warning" | "info"
    code: str  # stable identifier, e.g. "legacy-tables-present", "unsupported-revision"
    message: str
    line: int = 0

    def to_dict(self) -> dict:
        return {"severity": self.severity, "code": self.code, "message": self.message, "line": self.line}


@dataclass
class IptablesRuleset:
    """One iptables dump (one family, one backend when known)."""

    tables: Dict[str, Table] = field(default_factory=dict)
    family: str = "ipv4"
    backend: Optional[str] = None  # "legacy" | "nft" | None (unknown)
    version: Optional[str] = None  # e.g. "1.8.11", from "# Generated by iptables-save v1.8.11 (nf_tables)"
    findings: List[Finding] = field(default_factory=list)
    source: str = ""  # where the dump came from (a file name, a recipe name)

    def table(self, name: str) -> Table:
        if name not in self.tables:
            self.tables[name] = Table(name)
            for c in BUILTIN_CHAINS.get(name, ()):
                self.tables[name].chain(c)
        return self.tables[name]

    def rule_count(self) -> int:
        return sum(len(c.rules) for t in self.tables.values() for c in t.chains.values())

    def same_rules(self, other: "IptablesRuleset") -> bool:
        """Model equality: tables, chains, policies, counters and rules (not findings or source)."""
        return _tables_tuple(self) == _tables_tuple(other)


def _tables_tuple(rs: IptablesRuleset):
    return tuple((t.name, tuple((c.name, c.policy, c.counters, tuple(c.rules)) for c in t.chains.values()))
                 for t in rs.tables.values())


# --- back to iptables-save text ----------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z0-9_./:,=+@%^-]+$")


def quote(value: str) -> str:
    if value and _PLAIN.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Options iptables prints with xtables_save_string (libxtables): quoted unless only [A-Za-z0-9_-]
_SAVED_AS_STRING = {"--comment", "--log-prefix", "--nflog-prefix"}
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _option_text(o: Option) -> str:
    if o.name in _SAVED_AS_STRING:
        values = [v if _BARE.match(v) else '"' + re.sub(r'(["\\\'])', r"\\\1", v) + '"' for v in o.values]
    else:
        values = [quote(v) for v in o.values]
    parts = (["!"] if o.negated else []) + [o.name] + values
    return " ".join(parts)


def rule_text(rule: Rule, counters: bool = True, with_chain: bool = True) -> str:
    parts = []
    if counters and rule.counters is not None:
        parts.append(f"[{rule.counters[0]}:{rule.counters[1]}]")
    if with_chain:
        parts += ["-A", rule.chain]
    parts += [_option_text(o) for o in rule.core]
    for m in rule.matches:
        parts += ["-m", m.module] + [_option_text(o) for o in m.options]
    if rule.target is not None:
        parts += ["-g" if rule.target.goto else "-j", rule.target.name]
        parts += [_option_text(o) for o in rule.target.options]
    if rule.unsupported:
        parts.append(rule.unsupported)
    return " ".join(parts)


def dump_iptables(rs: IptablesRuleset) -> str:
    tool = "ip6tables-save" if rs.family == "ipv6" else "iptables-save"
    lines = []
    if rs.version:
        suffix = " (nf_tables)" if rs.backend == "nft" else ""
        lines.append(f"# Generated by {tool} v{rs.version}{suffix}")
    for f in rs.findings:
        if f.code == "legacy-tables-present":
            lines.append(f"# Warning: {f.message}")
    for table in rs.tables.values():
        lines.append(f"*{table.name}")
        for c in table.chains.values():
            lines.append(f":{c.name} {c.policy or '-'} [{c.counters[0]}:{c.counters[1]}]")
        for c in table.chains.values():
            lines.extend(rule_text(r) for r in c.rules)
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"
