"""The words of one `nft list` rule (or set element) as the JSON expressions `nft -j` prints for it.

A value's JSON form depends on what it is compared with: `tcp dport 80` is the number 80, `ip daddr
10.0.0.0/8` a prefix object, `meta mark 0x00000539` the number 1337, `ct state established,related` a list
under the `in` operator; set elements take their form from the set's declared type. Statements nft prints in a
short form get the fields nft -j shows for them (`reject` in an ip table is `icmp port-unreachable`).
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

VERDICTS = ("accept", "drop", "return", "continue")
OPS = {"==": "==", "!=": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">=", "eq": "==", "ne": "!=", "lt": "<",
       "gt": ">", "le": "<=", "ge": ">="}
PAYLOADS = ("ip", "ip6", "tcp", "udp", "th", "sctp", "icmp", "icmpv6", "ether", "vlan", "arp", "udplite", "dccp")
BARE_META = ("iifname", "oifname", "iif", "oif", "mark", "skuid", "skgid", "nfproto", "l4proto", "iiftype",
             "oiftype", "priority", "cgroup")
BINOPS = {"&": "&", "|": "|", "^": "^", "and": "&", "or": "|", "xor": "^"}
FLAG_KEYS = {("ct", "state"), ("ct", "status"), ("tcp", "flags")}
REJECT_DEFAULT = {"ip": ("icmp", "port-unreachable"), "ip6": ("icmpv6", "port-unreachable")}
SET_TYPES = {"ipv4_addr": "addr", "ipv6_addr": "addr", "inet_service": "int", "inet_proto": "str",
             "mark": "int", "ifname": "str", "integer": "int", "ct_state": "str", "ether_addr": "str"}


class Tokens:
    """A cursor over `nft_listing.tokenize` output."""

    def __init__(self, tokens: List[str]):
        self.t, self.i = tokens, 0

    def done(self) -> bool:
        return self.i >= len(self.t)

    def peek(self) -> Optional[str]:
        return self.t[self.i] if self.i < len(self.t) else None

    def next(self) -> str:
        tok = self.t[self.i]
        self.i += 1
        return tok

    def expect(self, word: str) -> None:
        tok = self.next()
        if tok != word:
            raise ValueError(f"expected {word!r}, found {tok!r}")

    def accept(self, word: str) -> bool:
        if self.peek() == word:
            self.i += 1
            return True
        return False

    def skip_blank(self) -> bool:
        if self.peek() == "\n":
            self.i += 1
            return True
        return False

    def handle(self) -> Dict[str, int]:
        tok = self.peek()
        if tok and tok.startswith("#handle "):
            self.i += 1
            return {"handle": int(tok.split()[1])}
        return {}

    def until_end(self) -> List[str]:
        """Words up to the end of a declaration (`;`, a newline or the block's `}`)."""
        words: List[str] = []
        while self.peek() not in (";", "\n", "}", None):
            words.append(self.next())
        self.accept(";")
        return words

    def rest_of_line(self) -> None:
        while self.peek() not in ("\n", None):
            self.next()

    def line_is_comment(self) -> bool:
        """`comment "..."` alone on a chain's line is the chain's comment, not a rule."""
        j = self.i + 2
        return j >= len(self.t) or self.t[j] in ("\n", ";", "}")

    def skip_block(self) -> None:
        depth = 0
        while not self.done():
            tok = self.next()
            if tok == "{":
                depth += 1
            elif tok == "}":
                depth -= 1
                if depth <= 0:
                    return

    def statement(self) -> List[str]:
        """One rule's words: to a newline or `;` outside braces; a trailing `#handle N` included."""
        words: List[str] = []
        depth = 0
        while not self.done():
            tok = self.peek()
            if depth == 0 and tok in ("\n", ";"):
                self.next()
                break
            if depth == 0 and tok == "}":
                break
            self.next()
            depth += tok == "{"
            depth -= tok == "}"
            if tok != "\n":
                words.append(tok)
        return words


def _typed(word: str, kind: str) -> Any:
    if word.startswith("@"):
        return word
    if word.startswith('"'):
        return json.loads(word)
    if kind == "addr":
        if "/" in word:
            addr, length = word.split("/")
            return {"prefix": {"addr": addr, "len": int(length)}}
        if "-" in word:
            lo, hi = word.split("-", 1)
            return {"range": [lo, hi]}
        return word
    if kind == "int":
        if "-" in word[1:]:
            lo, hi = word.split("-", 1)
            return {"range": [_typed(lo, "int"), _typed(hi, "int")]}
        try:
            return int(word, 0)
        except ValueError:
            return word
    if kind == "flags":
        return word.split(",") if "," in word else word
    return word


def _kind(left: Any) -> str:
    if not isinstance(left, dict):
        return "str"
    key, body = next(iter(left.items()))
    if key == "payload":
        field = body["field"]
        if field in ("saddr", "daddr"):
            return "addr"
        if field in ("protocol", "nexthdr"):
            return "str"
        if (body["protocol"], field) in FLAG_KEYS:
            return "flags"
        return "int"
    if key == "meta":
        return "str" if body["key"] in ("iifname", "oifname", "l4proto", "nfproto", "protocol", "iiftype",
                                        "oiftype") else "int"
    if key == "ct":
        if body["key"] in ("state", "status"):
            return "flags"
        return "addr" if body["key"] in ("saddr", "daddr") else "int"
    if key in ("&", "|", "^", "numgen", "jhash"):
        return "int"
    return "str"


class _Rule:
    def __init__(self, words: List[str], family: str):
        self.w, self.i, self.family = words, 0, family

    def peek(self, ahead: int = 0) -> Optional[str]:
        return self.w[self.i + ahead] if self.i + ahead < len(self.w) else None

    def next(self) -> str:
        tok = self.w[self.i]
        self.i += 1
        return tok

    def exprs(self) -> List[Any]:
        out: List[Any] = []
        while self.i < len(self.w):
            out.append(self.statement())
        return out

    def statement(self) -> Any:
        tok = self.next()
        if tok in VERDICTS or tok == "notrack":
            return {tok: None}
        if tok in ("jump", "goto"):
            return {tok: {"target": self.next()}}
        if tok == "counter":
            counts = {}
            while self.peek() in ("packets", "bytes"):
                key = self.next()
                counts[key] = int(self.next())
            return {"counter": counts or None}
        if tok in ("redirect", "masquerade", "dnat", "snat", "tproxy"):
            return self.nat(tok)
        if tok == "reject":
            return self.reject()
        if tok == "log":
            return self.log()
        if tok == "limit":
            return self.limit()
        self.i -= 1
        left = self.concat()
        if self.peek() == "set":
            self.next()
            return {"mangle": {"key": left, "value": self.value_expr(_kind(left))}}
        if self.peek() == "vmap":
            self.next()
            return {"vmap": {"key": left, "data": self.data(left, verdict=True)}}
        if _kind(left) == "flags" and self.peek(1) == "/":  # `tcp flags syn / fin,syn,rst,ack`
            value = _typed(self.next(), "flags")
            self.next()
            return {"match": {"op": "==", "left": {"&": [left, self.next().split(",")]}, "right": value}}
        op = OPS.get(self.peek() or "")
        if op:
            self.next()
        else:
            op = "in" if _kind(left) == "flags" else "=="
        return {"match": {"op": op, "left": left, "right": self.data(left)}}

    def concat(self) -> Any:
        parts = [self.binop()]
        while self.peek() == ".":
            self.next()
            parts.append(self.binop())
        return parts[0] if len(parts) == 1 else {"concat": parts}

    def binop(self) -> Any:
        left = self.primary()
        while self.peek() in BINOPS:
            op = BINOPS[self.next()]
            left = {op: [left, self.operand(_kind(left))]}
        return left

    def operand(self, kind: str) -> Any:
        word = self.peek()
        if word in ("meta", "ct") or word in BARE_META or word in PAYLOADS:
            return self.primary()
        return _typed(self.next(), "int" if kind == "int" else kind)

    def value_expr(self, kind: str) -> Any:
        word = self.peek()
        if word in ("meta", "ct", "numgen", "jhash") or word in BARE_META or word in PAYLOADS:
            return self.binop()
        return _typed(self.next(), kind)

    def primary(self) -> Any:
        tok = self.next()
        if tok in PAYLOADS:
            return {"payload": {"protocol": tok, "field": self.next()}}
        if tok == "meta":
            return {"meta": {"key": self.next()}}
        if tok in BARE_META:
            return {"meta": {"key": tok}}
        if tok == "ct":
            key = self.next()
            if key in ("original", "reply"):
                name = self.next()
                if name in ("ip", "ip6"):  # `ct original ip saddr`
                    name = f"{name} {self.next()}"
                return {"ct": {"key": name, "dir": key}}
            return {"ct": {"key": key}}
        if tok == "fib":
            flags = [self.next()]
            while self.peek() == ".":
                self.next()
                flags.append(self.next())
            return {"fib": {"result": self.next(), "flags": flags}}
        if tok == "numgen":
            mode = self.next()
            self.expect_word("mod")
            body = {"mode": mode, "mod": int(self.next()), "offset": 0}
            if self.peek() == "offset":
                self.next()
                body["offset"] = int(self.next())
            return {"numgen": body}
        if tok == "jhash":
            expr = self.concat_until(("mod",))
            self.expect_word("mod")
            body: Dict[str, Any] = {"mod": int(self.next())}
            for key in ("seed", "offset"):
                if self.peek() == key:
                    self.next()
                    body[key] = int(self.next(), 0)
            body["expr"] = expr
            return {"jhash": body}
        raise ValueError(f"unknown expression {tok!r}")

    def concat_until(self, stops) -> Any:
        parts = [self.primary()]
        while self.peek() == "." and self.peek(1) not in stops:
            self.next()
            parts.append(self.primary())
        return parts[0] if len(parts) == 1 else {"concat": parts}

    def expect_word(self, word: str) -> None:
        tok = self.next()
        if tok != word:
            raise ValueError(f"expected {word!r}, found {tok!r}")

    def data(self, left: Any, verdict: bool = False) -> Any:
        """A comparison's right side, a named set, or an anonymous set / verdict map literal."""
        types = _left_types(left)
        if self.peek() == "{":
            self.next()
            elems, words = [], []
            while True:
                tok = self.next()
                if tok in (",", "}"):
                    if words:
                        elems.append(element(words, types, "verdict" if verdict else None))
                    words = []
                    if tok == "}":
                        break
                else:
                    words.append(tok)
            return {"set": elems}
        if isinstance(left, dict) and "concat" in left and self.peek() != "@" and not (self.peek() or "").startswith(
                "@"):
            return element(self.take_concat(), types, None)
        return _typed(self.next(), _kind(left))

    def take_concat(self) -> List[str]:
        words = [self.next()]
        while self.peek() == ".":
            words += [self.next(), self.next()]
        return words

    def nat(self, kind: str) -> Any:
        body: Dict[str, Any] = {}
        if self.peek() in ("ip", "ip6") and kind in ("dnat", "snat", "tproxy"):
            body["family"] = self.next()
        flags: List[str] = []
        self.nat_flags(flags)
        if self.peek() == "to":
            self.next()
            if self.peek() in PAYLOADS + ("numgen", "jhash", "meta", "ct") and self.peek(1) not in (None,) and \
                    not (self.peek() or "").startswith((":", "[")):
                key = self.concat()  # `dnat to ip daddr map @backends`, `dnat to numgen inc mod 2 map { ... }`
                self.expect_word("map")
                body["addr"] = {"map": {"key": key, "data": self.map_data()}}
            else:
                addr, port = _split_endpoint(self.next())
                if addr:
                    body["addr"] = _typed(addr, "addr")
                if port:
                    body["port"] = _typed(port, "int")
        self.nat_flags(flags)
        if flags:
            body["flags"] = flags[0] if len(flags) == 1 else flags
        return {kind: body or None}

    def nat_flags(self, flags: List[str]) -> None:
        while self.peek() and set(self.peek().split(",")) <= {"random", "fully-random", "persistent"}:
            flags += self.next().split(",")

    def map_data(self) -> Any:
        if self.peek() != "{":
            return self.next()
        self.next()
        elems, words = [], []
        while True:
            tok = self.next()
            if tok in (",", "}"):
                if words:
                    elems.append(element(words, ["integer"], "ipv4_addr"))
                words = []
                if tok == "}":
                    return {"set": elems}
            else:
                words.append(tok)

    def reject(self) -> Any:
        if self.peek() == "with":
            self.next()
            kind = self.next()
            if kind == "tcp":
                self.next()  # reset
                return {"reject": {"type": "tcp reset"}}
            if self.peek() == "type":
                self.next()
            return {"reject": {"type": kind, "expr": self.next()}}
        kind, expr = REJECT_DEFAULT.get(self.family, ("icmpx", "port-unreachable"))
        return {"reject": {"type": kind, "expr": expr}}

    def log(self) -> Any:
        body: Dict[str, Any] = {}
        while self.peek() in ("prefix", "level", "group", "snaplen", "queue-threshold", "flags"):
            key = self.next()
            value = self.next()
            body[key] = json.loads(value) if value.startswith('"') else (int(value) if value.isdigit() else value)
        return {"log": body or None}

    def limit(self) -> Any:
        self.expect_word("rate")
        body: Dict[str, Any] = {}
        if self.peek() == "over":
            self.next()
            body["inv"] = True
        rate, _, per = self.next().partition("/")
        body["rate"], body["per"], body["burst"] = int(rate), per, 5  # nft leaves its default burst unprinted
        if self.peek() == "burst":
            self.next()
            body["burst"] = int(self.next())
            self.next()  # packets
        return {"limit": body}


def _split_endpoint(text: str):
    if text.startswith(":"):
        return None, text[1:]
    if text.startswith("["):
        addr, _, rest = text[1:].partition("]")
        return addr, rest[1:] if rest.startswith(":") else None
    if text.count(":") == 1:
        return tuple(text.split(":"))
    return text, None


def _left_types(left: Any) -> List[str]:
    parts = left["concat"] if isinstance(left, dict) and "concat" in left else [left]
    return [{"addr": "ipv4_addr", "int": "integer", "str": "ifname", "flags": "ct_state"}[_kind(p)] for p in parts]


def element(words: List[str], types: List[str], value_type: Optional[str]) -> Any:
    """One set or map element: `172.30.0.46 . tcp . 80 comment "ns6/svc6:p80" : goto reject-chain`."""
    value = None
    if ":" in words:
        at = words.index(":")
        words, value = words[:at], words[at + 1:]
    comment = None
    if "comment" in words:
        at = words.index("comment")
        comment = json.loads(words[at + 1])
        words = words[:at]
    parts = [w for w in words if w != "."]
    kinds = [SET_TYPES.get(t, "str") for t in types] or ["str"]
    typed = [_typed(w, kinds[min(n, len(kinds) - 1)]) for n, w in enumerate(parts)]
    key: Any = typed[0] if len(typed) == 1 else {"concat": typed}
    if comment is not None:
        key = {"elem": {"val": key, "comment": comment}}
    if value is None:
        return key
    if value_type == "verdict" or value[0] in VERDICTS + ("jump", "goto"):
        data = {value[0]: {"target": value[1]}} if value[0] in ("jump", "goto") else {value[0]: None}
    else:
        data = _typed(value[0], SET_TYPES.get(value_type or "", "str"))
    return [key, data]


def rule_exprs(words: List[str], family: str) -> List[Any]:
    return _Rule(words, family).exprs()
