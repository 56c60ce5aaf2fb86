"""What `capture` was asked to do, by flag: the options every capture runner reads (`collect.capture`,
`collect.multi_capture`, `collect.bundle`)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from kubectl_whose.cluster.debug_choice import DebugFlags, NodeFlags


@dataclass
class CaptureOptions:
    pod: str
    interface: Optional[str]  # None: any in the pod; with --node, the pod's host-side interface
    bpf: Optional[str]
    duration: Optional[float]
    count: Optional[int]
    snaplen: Optional[int]
    write: Optional[str]
    stream: Optional[int]
    proto: str
    output: str
    owners: bool  # name owners and the redirect rule of joined connections
    debug: DebugFlags
    node_flags: NodeFlags
    ttl: float = 0.0  # the debug container's lifetime, from --ttl and --duration (complete())

    def complete(self) -> "CaptureOptions":
        if self.interface is None and (not self.node or self.node_flags.enter):
            self.interface = "any"
        self.ttl = self.debug.ttl
        if self.duration and self.duration + 15 > self.ttl:
            self.ttl = self.duration + 60  # a capture must fit in the container's lifetime
        return self

    def problem(self) -> Optional[str]:
        """What is wrong with these flags together (the cli's usage error), or None."""
        if self.write == "-" and self.output in ("json", "yaml"):
            return "-w - sends the pcap to stdout; it cannot be combined with -o json/yaml"
        if self.debug.ttl < 60:
            return "--ttl must be at least 60s (the debug container idles that long)"
        if self.node and self.debug.container:
            return ("-c shares a container's processes with the debug container in the pod; --node works from "
                    "the node, where it has no meaning: drop one of them")
        return None

    def problem_many(self, bundle: Optional[str]) -> Optional[str]:
        """What these flags cannot do with several pods or a bundle, or None."""
        if self.write == "-":
            return ("-w - writes one pod's pcap to stdout; with several pods or --bundle use -w FILE.pcapng or "
                    "-w DIR/")
        if bundle and self.write and (self.write.endswith("/") or os.path.isdir(self.write)):
            return "--bundle holds one merged capture: use -w FILE.pcapng with it, or no -w"
        if self.stream is not None:
            return ("--stream N names one stream of one pod; capture with -w FILE.pcapng, then "
                    "`kubectl whose analyze FILE --stream N`")
        return None

    @property
    def node(self) -> bool:
        return self.node_flags.node

    @property
    def node_namespace(self) -> Optional[str]:
        return self.node_flags.namespace

    @property
    def detail_proto(self) -> str:
        return "udp" if self.proto == "udp" else "tcp"
