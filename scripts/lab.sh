#!/usr/bin/env bash
# The lab (tests/lab/README.md): `scripts/lab.sh up|down|status|restart`.
#   up      bring it up in the background (idempotent: a running lab is reused), print the kubeconfig
#   down    tear everything down: API server, pods' processes, network namespaces
#   status  is it running; pods and IPs
# State dir: $LAB_STATE_DIR (default /tmp/kubectl-whose-lab). Needs root (network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
STATE="${LAB_STATE_DIR:-/tmp/kubectl-whose-lab}"
PY="${PYTHON:-python3}"

running() { [ -f "$STATE/lab.pid" ] && kill -0 "$(cat "$STATE/lab.pid")" 2>/dev/null; }

up() {
  if running && [ -f "$STATE/state.json" ]; then
    echo "lab: already running (pid $(cat "$STATE/lab.pid"))" >&2
  else
    [ "$(id -u)" -eq 0 ] || { echo "lab: needs root for network namespaces (try: sudo $0 up)" >&2; exit 1; }
    rm -f "$STATE/state.json" "$STATE/lab.pid"
    mkdir -p "$STATE"
    "$PY" -m tests.lab sweep >/dev/null
    start=$(date +%s.%N)
    setsid "$PY" -m tests.lab serve --state-dir "$STATE" "$@" >"$STATE/lab.out" 2>&1 < /dev/null &
    for _ in $(seq 1 600); do
      [ -f "$STATE/state.json" ] && break
      if ! kill -0 $! 2>/dev/null; then echo "lab: failed to start:" >&2; tail -20 "$STATE/lab.out" >&2; exit 1; fi
      sleep 0.1
    done
    [ -f "$STATE/state.json" ] || { echo "lab: not up after 60 s (see $STATE/lab.log)" >&2; exit 1; }
    echo "lab: up in $(echo "$(date +%s.%N) - $start" | bc 2>/dev/null || echo '?') s (pid $(cat "$STATE/lab.pid"))" >&2
  fi
  KC="$STATE/kubeconfig"
  cat <<MSG
kubeconfig: $KC
try:
  kubectl --kubeconfig $KC get pods -o wide
  kubectl --kubeconfig $KC debug app-sidecar --image=nicolaka/netshoot:v0.13 --profile=netadmin -- sleep 600
  kubectl --kubeconfig $KC exec app-sidecar -c <debugger> -- tcpdump -i any -c 20 -w - | tshark -r -
  KUBECONFIG=$KC kubectl whose capture app-sidecar --count 20
MSG
}

down() {
  if running; then
    pid=$(cat "$STATE/lab.pid")
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "lab: down" >&2
  else
    echo "lab: not running" >&2
  fi
  rm -f "$STATE/state.json" "$STATE/lab.pid"
  "$PY" -m tests.lab sweep >/dev/null
}

status() {
  if running && [ -f "$STATE/state.json" ]; then
    "$PY" - "$STATE/state.json" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"lab: running (pid {s['pid']}) at {s['server']}\nkubeconfig: {s['kubeconfig']}")
for name, p in sorted(s["pods"].items()):
    print(f"  {name:18} {p['ip']:14} netns {p['netns']}")
PYEOF
  else
    echo "lab: not running"; exit 3
  fi
}

cmd="${1:-up}"; shift || true
case "$cmd" in
  up) up "$@" ;;
  down) down ;;
  status) status ;;
  restart) down; up "$@" ;;
  *) echo "usage: $0 up|down|status|restart" >&2; exit 2 ;;
esac
