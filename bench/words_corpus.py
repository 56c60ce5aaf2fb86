#!/usr/bin/env python3
"""The summary in words on the corpus of writers' rule sets (tests/analysis/netfilter/words/corpus.py), before
and after: each rule set is loaded with the real tool in a throw-away namespace and dumped back; this tree's
summary is computed and every probe behind it sent as real connections (tests/helpers/claims_lab.py), and the
other tree's (`--before`, e.g. `git archive main | tar -x -C /tmp/main-src`) `rules -o json` summary is printed
beside it, for judging.

    sudo python3 bench/words_corpus.py --before /tmp/main-src            # a table per rule set
    sudo python3 bench/words_corpus.py --before /tmp/main-src --json > words.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from kubectl_whose.analysis.netfilter import read_dump_file  # noqa: E402
from kubectl_whose.analysis.netfilter.words import summarize  # noqa: E402
from tests.analysis.netfilter.words.corpus import CORPUS  # noqa: E402
from tests.analysis.netfilter.words.test_kernel import said  # noqa: E402
from tests.helpers.claims_lab import POD_IP, ClaimsLab  # noqa: E402
from tests.helpers.netns import NetLab, sweep_stale  # noqa: E402


def before(tree: str, dump: str) -> str:
    out = subprocess.run([sys.executable, "-m", "kubectl_whose", "rules", "--from-file", dump, "-o", "json"],
                         cwd=tree, env=dict(os.environ, PYTHONPATH=tree), capture_output=True, text=True)
    return json.loads(out.stdout)["summary"] if out.returncode == 0 else f"(error: {out.stderr.strip()})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", metavar="TREE", required=True)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces for the real iptables and nft)")
    rows = []
    for entry in CORPUS:
        tool = entry.tools[0]
        sweep_stale("W")
        with NetLab("W") as netlab:
            lab = ClaimsLab(netlab, tempfile.mkdtemp(prefix="kwW-words-"), entry.devices)
            lab.load(entry.text, tool)
            dump = lab.dump(tool)
            words = summarize(read_dump_file(dump), (POD_IP,), lab.routes)
            problems = lab.check([p for c in words.claims for p in c.probes])
            rows.append({"rule_set": entry.name, "tool": tool, "before": before(os.path.abspath(args.before), dump),
                         "after": words.text, "claims": len(words.claims), "probes": words.probes,
                         "kernel_disagrees": problems,
                         "main_effects_missing": [e for e in entry.expect if not said(e, words.text)]})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        print(f"== {r['rule_set']} ({r['tool']})")
        print(f"   before: {r['before']}")
        print(f"   after:  {r['after']}")
        print(f"   {r['claims']} claims, {r['probes']} probes; kernel disagreements: {len(r['kernel_disagrees'])}; "
              f"main effects missing: {r['main_effects_missing'] or 'none'}")
    print(f"\n{len(rows)} rule sets; after: {sum(1 for r in rows if not r['kernel_disagrees'])} with every claim "
          f"confirmed by the kernel, {sum(1 for r in rows if not r['main_effects_missing'])} with every main effect")


if __name__ == "__main__":
    main()
