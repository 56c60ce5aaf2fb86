"""Capture files: bytes of pcap/pcapng (gzipped or not) in, records and frame events out."""
