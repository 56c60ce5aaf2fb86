"""Netfilter rules: parse iptables and nftables dumps, recognise who wrote them, trace packets, diff.

The wing's parts, each one concept:
- `load` reads a dump of any shape (`load_dumps`, `read_dump_file`) and the `--save` snapshot;
- `model` (iptables) and `nft_json` (nftables) hold the parsed rules; `iptables_save`, `nft_json` and
  `nft_text` parse and print them; `normalize` gives iptables' spellings one form;
- `backends` decides which iptables backend and nftables dumps of a pod hold its rules;
- `recognize` and `report` name the writer (Istio, kube-proxy, ...) and summarise the rules;
- `diff` compares two snapshots; `trace` walks a packet through the rules as the kernel does.
"""
from kubectl_whose.analysis.netfilter.load import load_dumps, read_dump_file, save_snapshot

__all__ = ["load_dumps", "read_dump_file", "save_snapshot"]
