"""Headers dpkt has no class for, one protocol per module in dpkt's style (`__hdr__` as data, `unpack`
leaving the payload in `data`): what `analysis.pcap.link` and `analysis.pcap.general` dispatch to where
dpkt cannot help. Each module names the tshark 4.0 dissector it follows."""
