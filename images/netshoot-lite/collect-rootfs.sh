#!/bin/bash
# Copy the tools, their shared-library closure and the xtables modules into a root tree.
# Only canonical /usr paths are written (Debian 12 is merged-/usr), so the tree lays over any
# base image without replacing its /bin, /lib or /lib64.
set -euo pipefail
dest=$1
tools=(tcpdump xtables-legacy-multi xtables-nft-multi nft ip ss conntrack ethtool
       timeout sleep kill ps cat dash)
mkdir -p "$dest"
copy() {  # copy a file to its canonical path under $dest, keeping the name it was asked by
  local real dir name
  real=$(readlink -f "$1")
  dir=$(readlink -f "$(dirname "$1")")
  name=$(basename "$1")
  mkdir -p "$dest$(dirname "$real")" "$dest$dir"
  cp -a "$real" "$dest$real"
  # the SONAME link (libpcap.so.0.8 -> libpcap.so.1.10.3) or the tool's plain name
  if [ "$dir/$name" != "$real" ]; then ln -sf "$real" "$dest$dir/$name"; fi
}
libs() { ldd "$1" 2>/dev/null | awk '/=> \// {print $3} /^[[:space:]]*\/lib/ {print $1}'; }
xt=$(readlink -f "$(dirname "$(find /usr/lib -name libxt_tcp.so | head -n1)")")
files=()
for t in "${tools[@]}"; do
  path=$(type -P "$t")
  copy "$path"
  files+=("$(readlink -f "$path")")
done
mkdir -p "$dest$xt" && cp -a "$xt"/. "$dest$xt"/
for f in "${files[@]}" "$xt"/*.so; do
  libs "$f" | while read -r lib; do copy "$lib"; done
done
# The names the iptables package's alternatives create: both backends, both families.
for fam in iptables ip6tables; do
  for suffix in "" -save -restore; do
    ln -sf xtables-legacy-multi "$dest/usr/sbin/${fam}-legacy${suffix}"
    ln -sf xtables-nft-multi "$dest/usr/sbin/${fam}-nft${suffix}"
    ln -sf xtables-nft-multi "$dest/usr/sbin/${fam}${suffix}"
  done
done
ln -sf dash "$dest/usr/bin/sh"
mkdir -p "$dest/run/xtables" "$dest/etc"
# protocol and service names used by iptables-save and ss output
for f in /etc/protocols /etc/services; do [ -f "$f" ] && cp -a "$f" "$dest/etc/"; done
exit 0
