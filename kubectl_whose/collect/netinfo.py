"""What `net` runs in the debug container: one argv list per view, and the file each is saved as.

Recipes only; parsing lives in `analysis.pod.netinfo` / `analysis.pod.sockets`. The file names are the
`--from-file DIR` contract: a directory holding these files goes through the same parser as a
live run, so `for name, r in RECIPES.items(): open(r.file, "w").write(run(r.argv))` on a node
(or in any debug shell) produces an offline input.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple


@dataclass(frozen=True)
class Recipe:
    name: str
    argv: Tuple[str, ...]
    file: str  # the file name under --from-file DIR
    required: bool  # a live run fails when a required recipe fails; others only warn

    @property
    def binary(self) -> str:
        return self.argv[0]


# `ip -d` adds linkinfo.info_kind (veth, bridge, vxlan...). `table all` lists every routing table of
# both families (policy routing for TPROXY uses table 133); `ip rule` is per family, hence two runs.
# ss: -H no header, -t/-u TCP and UDP, -a listening and connected, -n numeric, -p processes (only
# those the debug container may see: with -c it shares that container's process namespace), -e uid,
# inode and socket cookie. Everything stays on one line per socket without -i/-m, so no -O: older
# ss builds lack it.
RECIPES: Dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("link", ("ip", "-d", "-j", "link", "show"), "link.json", True),
        Recipe("addr", ("ip", "-j", "addr", "show"), "addr.json", True),
        Recipe("route", ("ip", "-j", "route", "show", "table", "all"), "route.json", False),
        Recipe("rule", ("ip", "-j", "-4", "rule", "show"), "rule.json", False),
        Recipe("rule6", ("ip", "-j", "-6", "rule", "show"), "rule6.json", False),
        Recipe("neigh", ("ip", "-j", "neigh", "show"), "neigh.json", False),
        Recipe("sockets", ("ss", "-H", "-t", "-u", "-a", "-n", "-p", "-e"), "ss.txt", False),
    )
}


def recipe_argvs() -> List[List[str]]:
    return [list(r.argv) for r in RECIPES.values()]
