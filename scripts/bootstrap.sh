#!/usr/bin/env bash
# Install everything kubectl-whose's tests, lab and demo need on a fresh Debian machine
# (Python 3.9+ with pip already present). Idempotent: fast when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(tshark tcpdump iproute2 iptables nftables iputils-ping iputils-arping curl util-linux libcap2-bin tmux
              conntrack ipset ethtool procps nginx-light apache2-utils socat time gcc libc6-dev)
# The native analysis engine (kubectl_whose/analysis/streams/native/_engine.c) compiles against the headers of the
# python3 that runs the tests: Debian's own python3 needs python3-dev for them, a pyenv build has them.
python3 -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || APT_PACKAGES+=(python3-dev)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "bootstrap: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  # tshark asks whether non-root users may capture; answer no without a prompt.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v "as the 'root' user" || true
