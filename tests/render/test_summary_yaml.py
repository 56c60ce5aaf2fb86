"""`-o yaml` written row by row (render.summary_yaml) must be the very text `yaml.safe_dump` writes
for the whole summary; PyYAML is the oracle, on real captures and on the strings and floats that
make PyYAML quote or reformat a scalar."""
from __future__ import annotations

import io
import math

import pytest
import yaml

from kubectl_whose.analysis.streams import analyze_file
from kubectl_whose.render.output import dump_yaml
from kubectl_whose.render.summary_yaml import RowWriter, write_yaml
from tests.helpers import pcapgen as g
from tests.helpers.cli import run

EXTRA = {"connections": [{"client": "[fd00::1]:40000", "proxy": "127.0.0.1:15001", "proof": "SYN seq 1 + 1 = ack 2",
                          "upstream": None}]}


def both(summary, extra=EXTRA):
    out = io.StringIO()
    write_yaml(summary, out, extra=extra)
    return out.getvalue(), dump_yaml({**summary.to_dict(), **extra})


@pytest.mark.parametrize("scenario", ["http_short", "ipv6", "vxlan_4789", "icmp_quote", "udp", "pcapng_multi",
                                      "reuse", "loss"])
def test_real_captures_give_pyyamls_text(scenario, captures):
    path = captures.get(scenario).path
    streamed, whole = both(analyze_file(path))
    assert streamed == whole and "streams:\n- proto: " in streamed
    summary = analyze_file(path, detail_stream=0, detail_proto="udp" if scenario == "udp" else "tcp")
    streamed, whole = both(summary, {})
    assert streamed == whole
    assert ("\n  packets:\n  - frame: " in streamed) == bool(summary.detail["packets"])


LONG = "vxlan 10.0.0.1→10.0.0.2 vni 42 / gre 192.168.100.1→192.168.100.2 / ipip 172.16.0.1→172.16.0.2 x"
ODD_STRINGS = [LONG, LONG.replace(" ", "_"), "yes", "no", "null", "~", "true", "on", "1.5", "0x10", "010", "1_000", "1:20", "12:30:45", "-",
               "[fd00::1]:80", "a: b", "#x", "x #y", "", " lead", "trail ", "a\nb", "→ vxlan 10.0.0.1→10.0.0.2 vni 7",
               "^h", "ShADadfF", "'q'", '"dq"', "%tag", "@at", "`tick", "*star", "&amp", "!bang", "|pipe", ">gt",
               "é", "\u2028", "2001-12-14", "=", "<<", ".inf", "-.5", "+1", "10.0.0.1:80", "999.999.999.999:99999"]
ODD_FLOATS = [0.0, -0.0, 1e-05, 5e-09, 1.5e-05, 0.0001, 123456789.123, 1e16, 1.7e308, math.inf, -math.inf, math.nan]


def test_odd_strings_and_floats_are_written_as_pyyaml_writes_them():
    rows = [{"proto": s, "index": i, "start": f, "flags": {"SYN": 1, "X": f, "Y": s}, "analysis": [s, f],
             "none": None, "empty": [], "nested": {}, "ok": True}
            for i, (s, f) in enumerate(zip(ODD_STRINGS, ODD_FLOATS * 4))]
    rows.append({"yes": 1, "a b": "odd keys: PyYAML writes this row"})
    writer = RowWriter()
    text = "rows:\n" + "".join(writer.item(r) for r in rows)
    reference = yaml.safe_dump({"rows": rows}, sort_keys=False, default_flow_style=False, allow_unicode=True)
    assert text == reference
    nested = "d:\n  rows:\n" + "".join(writer.item(r, depth=1) for r in rows)
    assert nested == yaml.safe_dump({"d": {"rows": rows}}, sort_keys=False, default_flow_style=False,
                                    allow_unicode=True)
    loaded = yaml.safe_load(text)["rows"]
    assert [r["proto"] for r in loaded[:-1]] == ODD_STRINGS


def test_cli_yaml_loads_to_the_json(tmp_path):
    import json

    cap = tmp_path / "two.pcap"
    cap.write_bytes(g.pcap(g.http_conversation() + g.http_conversation(client="fd00::1", server="fd00::2",
                                                                      t0=1_700_000_001 * 10**9)))
    y, j = run("analyze", str(cap), "-o", "yaml"), run("analyze", str(cap), "-o", "json")
    assert y.code == j.code == 0
    assert yaml.safe_load(y.stdout) == json.loads(j.stdout)
