#!/usr/bin/env python3
"""Agreement figures: our streams against tshark 4.0, our Zeek states against Zeek's own baselines.

    python3 bench/agreement.py                          # Zeek's traces and baselines, our fixtures
    python3 bench/agreement.py --streams DIR [DIR ...]  # any folders of captures (read only)
    python3 bench/agreement.py -v                       # and every difference, one line each

Streams: every capture under the folders (default: ../shared/external/zeek/traces and
tests/fixtures/captures) goes through `analyze` and through tshark (tests/helpers/tshark_oracle.py);
a stream agrees when every figure of the JSON contract is tshark's. Captures tshark cannot read are
skipped and counted. States: every run of ../shared/external/zeek/index.tsv goes through
tests/helpers/zeek_baselines.py (matching and the documented reasons for a difference are there):
figures for default runs (`zeek -r`, `zeek -C -r`, what we emulate) and bare runs (`zeek -b`) apart.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import zeek_baselines as zb  # noqa: E402
from tests.helpers.tshark_oracle import analyze as tshark_analyze, stream_diff  # noqa: E402

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz", ".ntar", ".pcap.gz", ".pcapng.gz")


def captures_under(folder: Path):
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith(CAPTURE_SUFFIXES))


def streams_figures(folder: Path, engine, verbose: bool) -> dict:
    from kubectl_whose.analysis.streams import analyze_file
    from kubectl_whose.errors import WhoseError

    out = collections.Counter()
    for path in captures_under(folder):
        try:
            truth = tshark_analyze(path)
        except (RuntimeError, ValueError, IndexError):
            out["tshark_unreadable"] += 1
            continue
        out["files"] += 1
        try:
            summary = analyze_file(str(path), engine=engine).to_dict()
        except WhoseError:
            summary = {"streams": [], "packets": 0}
        ours = {(s["proto"], s["index"]): s for s in summary["streams"]}
        keys = set(truth.streams) | set(ours)
        equal = {k for k in truth.streams if k in ours and not stream_diff(ours[k], truth.streams[k])}
        out["streams"] += len(keys)
        out["equal"] += len(equal)
        out["frames_equal_files"] += summary["packets"] == truth.packets
        if verbose and equal != keys:
            for k in sorted(keys - equal):
                why = "only tshark" if k not in ours else "only ours" if k not in truth.streams else \
                    "; ".join(stream_diff(ours[k], truth.streams[k])[:3])
                print(f"  {path.relative_to(folder)} {k[0]}/{k[1]}: {why}")
    return dict(out)


def zeek_figures(engine, verbose: bool) -> dict:
    out = {mode: collections.Counter() for mode in ("default", "bare")}
    reasons = {mode: collections.Counter() for mode in ("default", "bare")}
    for run in zb.runs():
        report = zb.compare_run(run, engine)
        mode = "bare" if run.bare else "default"
        for name, value in zip(("connections", "states_logged", "state_equal", "history_equal", "packets_logged",
                                "packets_equal"), report.counts()):
            out[mode][name] += value
        for pair, reason in zip(report.pairs, report.reasons):
            if reason:
                reasons[mode][reason] += 1
                if verbose:
                    print(f"  {run.test} [{reason}] {pair.describe()}")
    return {mode: dict(out[mode], differences_by_reason=dict(reasons[mode])) for mode in out}


def percent(a: int, b: int) -> str:
    return f"{a}/{b} = {100 * a / b:.1f}%" if b else "0/0"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", nargs="*", type=Path, help="folders of captures to hold to tshark")
    ap.add_argument("--no-zeek", action="store_true", help="skip the Zeek baselines")
    ap.add_argument("--engine", choices=("native", "python"), help="stream engine (default: the best built)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every difference")
    args = ap.parse_args()
    reason = zb.zeek_unavailable_reason()
    folders = args.streams if args.streams is not None else \
        ([] if reason else [zb.ZEEK_DIR / "traces"]) + [ROOT / "tests" / "fixtures" / "captures"]
    result = {"streams": {}, "zeek": None}
    for folder in folders:
        if args.verbose and not args.json:
            print(f"streams under {folder}:")
        result["streams"][str(folder)] = streams_figures(folder, args.engine, args.verbose and not args.json)
    if not args.no_zeek:
        if reason:
            print(f"Zeek baselines skipped: {reason}", file=sys.stderr)
        else:
            result["zeek"] = zeek_figures(args.engine, args.verbose and not args.json)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for folder, f in result["streams"].items():
        print(f"streams equal to tshark 4.0, {os.path.relpath(folder)}: {percent(f.get('equal', 0), f.get('streams', 0))}"
              f" in {f.get('files', 0)} captures (frame counts equal in {f.get('frames_equal_files', 0)}; "
              f"{f.get('tshark_unreadable', 0)} captures tshark cannot read, skipped)")
    for mode, f in (result["zeek"] or {}).items():
        print(f"Zeek baselines, {mode} runs: {f['connections']} TCP/UDP connections; conn_state "
              f"{percent(f['state_equal'], f['states_logged'])}, history {percent(f['history_equal'], f['connections'])}, "
              f"packets per direction {percent(f['packets_equal'], f['packets_logged'])}; differences by reason: "
              f"{f['differences_by_reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
