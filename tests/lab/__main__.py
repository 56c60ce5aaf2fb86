"""`python -m tests.lab serve --state-dir DIR [--topology FILE] [--no-tls] [--port N]` (used by scripts/lab.sh
and the pytest fixture); `python -m tests.lab sweep` removes what killed labs left behind."""
import argparse
from pathlib import Path

from .network import sweep_stale
from .server import DEFAULT_TOPOLOGY, serve


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.lab")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="bring the lab up and serve until SIGTERM")
    s.add_argument("--state-dir", type=Path, required=True)
    s.add_argument("--topology", type=Path, default=DEFAULT_TOPOLOGY)
    s.add_argument("--no-tls", action="store_true")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--exit-with-parent", type=int, default=0, metavar="PID",
                   help="tear down when this parent process ends (the pytest fixture passes its PID)")
    sub.add_parser("sweep", help="remove namespaces and processes of labs that were killed")
    args = ap.parse_args()
    if args.cmd == "serve":
        serve(args.state_dir, args.topology, tls=not args.no_tls, port=args.port, parent=args.exit_with_parent)
    else:
        for name in sweep_stale():
            print(f"removed {name}")


if __name__ == "__main__":
    main()
