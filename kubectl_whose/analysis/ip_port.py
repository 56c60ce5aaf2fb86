"""`IP:PORT`, `[IPv6]:PORT` or `IP` as users type them (trace's --to/--from, --local-ip): parsed once, with the
sentence that says what to type instead."""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: Optional[int]

    def __str__(self) -> str:
        if self.port is None:
            return self.ip
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


def parse_ip_port(text: str, port_required: bool = False) -> Endpoint:
    """ValueError with the message to show when `text` is not IP[:PORT]."""
    text = text.strip()
    ip, port = text, None
    m = re.match(r"^\[([0-9a-fA-F:.]+)\](?::(\d+))?$", text)
    if m:
        ip, port = m.group(1), m.group(2)
    elif text.count(":") == 1:
        ip, port = text.split(":")
    try:
        ip = str(ipaddress.ip_address(ip))
    except ValueError:
        raise ValueError(f"{text!r} is not IP[:PORT] (examples: 10.96.0.10:53, [fd00::1]:80)") from None
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{text!r}: port must be 1-65535")
        return Endpoint(ip, int(port))
    if port_required:
        raise ValueError(f"{text!r} has no port; use IP:PORT (example: 10.96.0.10:53)")
    return Endpoint(ip, None)
