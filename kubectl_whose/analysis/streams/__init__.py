"""The stream engine: frame events in, per-stream figures (tshark's numbering, Zeek's states) out."""
