"""`-o json` is written as it is encoded (render/output.py write_json): the bytes are dump_json's exactly."""
from __future__ import annotations

import io

from kubectl_whose.render.output import dump_json, write_json


def test_streamed_json_is_dump_json_byte_for_byte():
    # more pieces than one block of the stream (16,384), nested, with the types the reports hold
    data = {"summary": "Outbound TCP is redirected to 127.0.0.1:15001.", "claims": [],
            "rulesets": [{"backend": "nft", "tables": [{"name": f"t{t}", "chains": [
                {"name": f"KUBE-SEP-{c}", "policy": None, "rules": [
                    {"text": f"-A KUBE-SEP-{c} -p tcp -j DNAT --to-destination 10.0.{r}.1:80 \u2192 \"q\"",
                     "counters": {"packets": r, "bytes": r * 60}, "goto": False, "ratio": r / 7}
                    for r in range(12)]} for c in range(300)]} for t in range(3)]}],
            "notes": [], "empty": {}}
    out = io.StringIO()
    write_json(data, out)
    assert out.getvalue() == dump_json(data)
    out = io.StringIO()
    write_json([], out)
    assert out.getvalue() == dump_json([]) == "[]\n"
