"""Parse what `nft list ruleset` prints (and `nft -a`'s `# handle N` comments, and the same blocks given to
`nft -f`) into the model `nft -j list ruleset` gives: tables, chains with type/hook/priority/policy, sets and
maps with their elements, rules with their expressions (`nft_listing_expr`).

The text is turned into the very JSON objects libnftables prints and handed to `nft_json.parse_nft_json`, so
both inputs meet in one model; tests/analysis/netfilter/test_nft_listing.py loads every nftables rule set of
the tests with the real `nft -f`, dumps it both ways and asks for equal models. What nft -j leaves out (table
and chain comments) is left out here too.
"""
from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional, Tuple

from kubectl_whose.analysis.netfilter.nft_json import NAMED_PRIORITIES, NftRuleset, parse_nft_json
from kubectl_whose.analysis.netfilter.nft_listing_expr import Tokens, element, rule_exprs
from kubectl_whose.errors import ExitCode, WhoseError

FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|#[^\n]*|\n|[{};]|[^\s{};]+')


def looks_like_nft_listing(text: str) -> bool:
    return bool(re.search(r"^\s*table\s+(ip|ip6|inet|arp|bridge|netdev)\s+\S+\s*\{", text, re.M))


def tokenize(text: str) -> List[str]:
    """Words, quoted strings (kept with their quotes), `{ } ; , =`, newlines, and `# handle N` comments as
    `#handle N` tokens (other comments dropped)."""
    out: List[str] = []
    for tok in _TOKEN.findall(text):
        if tok.startswith("#"):
            m = re.match(r"#\s*handle\s+(\d+)", tok)
            if m:
                out.append(f"#handle {m.group(1)}")
            continue
        if tok.endswith(",") and not tok.startswith('"'):  # `{ 53, 15008 }`; `established,related` stays a word
            out += [tok[:-1], ","] if len(tok) > 1 else [","]
            continue
        out.append(tok)
    return out


def parse_nft_listing(text: str, source: str = "") -> NftRuleset:
    try:
        items = _Listing(tokenize(text)).ruleset()
    except (IndexError, ValueError) as e:
        raise WhoseError(f"{source or 'input'}: not `nft list ruleset` text as nft prints it ({e})",
                         ExitCode.BAD_INPUT) from None
    return parse_nft_json(json.dumps({"nftables": items}), source)


class _Listing(Tokens):
    def ruleset(self) -> List[Dict[str, Any]]:
        items: List[Dict[str, Any]] = []
        while not self.done():
            if self.skip_blank():
                continue
            self.expect("table")
            family = self.next()
            if family not in FAMILIES:
                raise ValueError(f"unknown table family {family!r}")
            name = self.next()
            self.expect("{")
            table: Dict[str, Any] = {"family": family, "name": name}
            table.update(self.handle())
            items.append({"table": table})
            items += self.table_body(family, name)
        return items

    def table_body(self, family: str, table: str) -> List[Dict[str, Any]]:
        sets: List[Dict[str, Any]] = []
        chains: List[Dict[str, Any]] = []
        rules: List[Dict[str, Any]] = []
        while True:
            if self.skip_blank():
                continue
            tok = self.next()
            if tok == "}":
                return sets + chains + rules
            if tok == "comment" or tok == "flags":
                self.until_end()  # table comments and flags are not in nft -j's table object
            elif tok in ("set", "map"):
                sets.append({tok: self.set_body(family, table, tok)})
            elif tok == "chain":
                chain, chain_rules = self.chain_body(family, table)
                chains.append({"chain": chain})
                rules += chain_rules
            else:  # flowtables, counters, quotas, ct helpers: kept out, as in parse_nft_json's findings
                self.skip_block()

    def chain_body(self, family: str, table: str) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
        name = self.next()
        self.expect("{")
        chain: Dict[str, Any] = {"family": family, "table": table, "name": name}
        chain.update(self.handle())
        rules: List[Dict[str, Any]] = []
        while True:
            if self.skip_blank():
                continue
            if self.peek() == "}":
                self.next()
                return chain, rules
            if self.peek() == "type":
                chain.update(self.base_chain())
                continue
            if self.peek() == "policy":
                self.next()
                chain["policy"] = self.next()
                self.accept(";")
                continue
            if self.peek() == "comment" and self.line_is_comment():
                self.next(), self.next()  # a chain's comment: not in nft -j's chain object
                self.accept(";")
                continue
            words = self.statement()
            if words:
                rules.append({"rule": self.rule(family, table, name, words)})

    def base_chain(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        self.expect("type")
        out["type"] = self.next()
        self.expect("hook")
        out["hook"] = self.next()
        if self.peek() == "device":
            self.next()
            out["dev"] = self.next().strip('"')
        self.expect("priority")
        prio = self.next()
        while self.peek() not in (";", "\n", "}"):  # `priority filter + 10`
            op, n = self.next(), int(self.next())
            prio = str((NAMED_PRIORITIES.get(prio, 0) if not prio.lstrip("-").isdigit() else int(prio))
                       + (n if op == "+" else -n))
        out["prio"] = int(prio) if prio.lstrip("-").isdigit() else NAMED_PRIORITIES.get(prio, 0)
        self.accept(";")
        if self.peek() == "policy":
            self.next()
            out["policy"] = self.next()
            self.accept(";")
        out.setdefault("policy", "accept")
        return out

    def rule(self, family: str, table: str, chain: str, words: List[str]) -> Dict[str, Any]:
        handle = None
        if words and words[-1].startswith("#handle "):
            handle = int(words.pop().split()[1])
        comment = None
        if len(words) >= 2 and words[-2] == "comment":
            comment = json.loads(words.pop())
            words.pop()
        body: Dict[str, Any] = {"family": family, "table": table, "chain": chain}
        if handle is not None:
            body["handle"] = handle
        if comment is not None:
            body["comment"] = comment
        body["expr"] = rule_exprs(words, family)
        return body

    def set_body(self, family: str, table: str, kind: str) -> Dict[str, Any]:
        name = self.next()
        self.expect("{")
        out: Dict[str, Any] = {"family": family, "name": name, "table": table}
        out.update(self.handle())
        types: List[str] = []
        value_type: Optional[str] = None
        elems: List[Any] = []
        while True:
            if self.skip_blank() or self.accept(";"):
                continue
            tok = self.next()
            if tok == "}":
                break
            if tok in ("type", "typeof"):
                words = self.until_end()
                if ":" in words:
                    value_type = " ".join(words[words.index(":") + 1:])
                    words = words[:words.index(":")]
                types = [w for w in words if w != "."]
                out["type"] = types[0] if len(types) == 1 else types
                if value_type is not None:
                    out["map"] = value_type
            elif tok == "flags":
                flags = [w for w in self.until_end() if w != ","]
                out["flags"] = flags
            elif tok in ("comment", "policy", "size", "timeout", "gc-interval", "counter", "auto-merge"):
                words = self.until_end()
                if tok == "comment":
                    out["comment"] = json.loads(words[0])
                elif tok == "size":
                    out["size"] = int(words[0])
                elif tok == "policy":
                    out["policy"] = words[0]
            elif tok == "elements":
                self.expect("=")
                elems = self.elements(types, value_type)
        if elems:
            out["elem"] = elems
        return out

    def elements(self, types: List[str], value_type: Optional[str]) -> List[Any]:
        self.expect("{")
        out: List[Any] = []
        words: List[str] = []
        while True:
            tok = self.next()
            if tok in (",", "}"):
                if words:
                    out.append(element(words, types, value_type))
                words = []
                if tok == "}":
                    return out
            elif tok != "\n":
                words.append(tok)
