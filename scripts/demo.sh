#!/usr/bin/env bash
# The demo: installs what it needs, brings the lab up (a Kubernetes API server over real network
# namespaces, tests/lab/README.md) and runs kubectl-whose's main jobs against it, on the talk's
# puzzle: an app pod whose sidecar (Istio's rules, a real proxy as uid 1337) splits every
# connection to the echo Service in two. The lab stays up so you can try commands by hand;
# `bash scripts/demo.sh --down` removes it. Needs root (network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
export LAB_STATE_DIR="${LAB_STATE_DIR:-/tmp/kubectl-whose-lab}"

if [ "${1:-}" = "--down" ]; then
  exec bash scripts/lab.sh down
fi
[ "$(id -u)" -eq 0 ] || { echo "demo: needs root for network namespaces (sudo bash $0)" >&2; exit 1; }

bash scripts/bootstrap.sh
bash scripts/lab.sh up >/dev/null
export KUBECONFIG="$LAB_STATE_DIR/kubeconfig"
out="$LAB_STATE_DIR/demo"
mkdir -p "$out"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step kubectl get pods -o wide
step kubectl whose doctor app-sidecar
step kubectl whose capture app-sidecar -i any --duration 3s -w "$out/app-sidecar.pcap"
# the proxy's own upstream leg of the first joined connection: a whole handshake, flag by flag
first=$(kubectl whose analyze "$out/app-sidecar.pcap" -o json 2>/dev/null | python3 -c '
import json, sys
c = [c for c in json.load(sys.stdin)["connections"] if c.get("upstream")]
print(c[0]["upstream"]["stream"] if c else 0)')
step kubectl whose analyze "$out/app-sidecar.pcap" --stream "$first"
step kubectl whose rules app-sidecar
step kubectl whose trace app-sidecar --to 10.96.0.10:80
step kubectl whose trace app-sidecar --to 10.96.0.10:80 --uid 1337
step kubectl whose net app-sidecar
step kubectl whose ps app-sidecar

cat <<MSG

The lab is still up. Try it by hand:
  export KUBECONFIG=$KUBECONFIG
  kubectl get pods -o wide
  kubectl whose capture app-sidecar -i lo --count 40
  kubectl whose trace client --to 10.96.0.10:80        # no rules in a plain pod: kube-proxy's DNAT is on the node
  kubectl whose trace --from-file tests/fixtures/netfilter/kube-proxy-tracepacket-nat.txt \
      --to 172.30.0.44:80 --pod-ip 10.180.0.9            # a node's kube-proxy dump: each endpoint with its probability
  tshark -r $out/app-sidecar.pcap -Y tcp.stream==$first  # the same stream in Wireshark's numbering
Tear it down with: bash scripts/demo.sh --down
MSG
