"""Reading the analysis engine's stream rows: endpoints however they are spelled, times, TCP or not.

The rows are `CaptureSummary.to_dict()["streams"]` (contract in `analysis.streams.summary`); this module only
reads them, so the join works on a live capture's summary, a saved `-o json`, or rows built elsewhere.
"""
from __future__ import annotations

import functools
import ipaddress
from typing import Any, Dict, Iterator, List, Optional, Tuple

Endpoint = Tuple[str, int]


def parse_endpoint(value: Any) -> Optional[Endpoint]:
    """`"10.0.0.2:52446"`, `"[fd00::1]:80"`, `{"ip":..,"port":..}` or `[ip, port]` -> (ip, port)."""
    if value is None:
        return None
    if isinstance(value, str):
        return _parse_endpoint_text(value)
    if isinstance(value, dict):
        ip, port = value.get("ip") or value.get("addr") or value.get("address"), value.get("port")
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        ip, port = value
    else:
        return None
    return _normal(ip, port)


@functools.lru_cache(maxsize=65536)  # a capture repeats each endpoint in several streams
def _parse_endpoint_text(text: str) -> Optional[Endpoint]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return None
    return _normal(host[1:-1] if host.startswith("[") else host, port)


def _normal(ip: Any, port: Any) -> Optional[Endpoint]:
    try:
        return str(ipaddress.ip_address(ip)), int(port)
    except (TypeError, ValueError):
        return None


@functools.lru_cache(maxsize=4096)
def is_loopback(ip: str) -> bool:
    return ipaddress.ip_address(ip).is_loopback


def stream_rows(summary: Any) -> List[Dict[str, Any]]:
    """The `streams` rows of a summary dict, or of a `CaptureSummary` itself (its `streams` property)."""
    if isinstance(summary, dict):
        return summary.get("streams") or []
    return list(getattr(summary, "streams", None) or [])


def iter_stream_rows(summary: Any) -> Iterator[Dict[str, Any]]:
    """The same rows one at a time: a `CaptureSummary` builds each on demand and keeps none, so a
    pass over 100 000 streams costs one row of memory, not 100 000."""
    if hasattr(summary, "iter_streams"):
        return summary.iter_streams()
    return iter(stream_rows(summary))


def is_tcp(s: Dict[str, Any]) -> bool:
    proto = str(s.get("proto") or s.get("protocol") or s.get("transport") or "").lower()
    return proto == "tcp" or (not proto and "client_isn" in s)


def row_start(s: Dict[str, Any]) -> float:
    for key in ("first_abs_ts", "start"):
        if isinstance(s.get(key), (int, float)):
            return float(s[key])
    return 0.0


def row_end(s: Dict[str, Any]) -> Optional[float]:
    d = s.get("duration")
    return row_start(s) + float(d) if isinstance(d, (int, float)) else None
