#!/usr/bin/env bash
# Prepares a fresh Debian machine for Umbra's lab, tests and benchmarks: system packages,
# npm dependencies (native addons included) and the TypeScript build. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential python3 pkg-config      # node-gyp toolchain for the native addons
  libpcap-dev                             # cap (DHCP capture, raw frames)
  iproute2 iputils-ping arping socat      # namespaces, probes
  tcpdump tcpreplay                       # fixtures and replayed load
  dnsmasq-base kea-dhcp4-server           # real DHCP servers
  udhcpc isc-dhcp-client                  # real DHCP clients
  keepalived                              # VRRP peer for the ip-switchover benchmark
  libnghttp2-dev libssl-dev               # native ListHosts load generator (coordinator-load)
  qemu-system-x86 linux-image-amd64 busybox-static cpio   # TCG guests
  dpkg-dev fakeroot lintian rpm           # packaging
  openssl ca-certificates
)

if [ "$(id -u)" -eq 0 ]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    # dnsmasq and kea must not run as system services on a lab machine: tests start their own.
    DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    for svc in dnsmasq kea-dhcp4-server keepalived; do
      systemctl disable --now "$svc" >/dev/null 2>&1 || true
    done
  fi
else
  echo "setup: not root; skipping system packages (namespace, QEMU and packaging tests will skip)" >&2
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent
