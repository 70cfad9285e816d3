# Per-package facts shared by the .deb and .rpm builds (sourced by build.sh; bash).
# umbractl ships with the coordinator only: it administers the cluster (PKI with the CA key,
# inventory through the coordinator's API), which operators do where the coordinator runs; the
# two packages then share no file and can be installed on the same host, or upgraded separately.

MAINTAINER=${UMBRA_MAINTAINER:-Umbra Maintainers <maintainers@umbra-project.org>}
HOMEPAGE=${UMBRA_HOMEPAGE:-https://github.com/umbra-project/umbra}
LICENSE_ID=Apache-2.0

# pkg_component PKG -> folder under /usr/lib/umbra
pkg_component() { case "$1" in umbra-agent) echo agent ;; umbra-coordinator) echo coordinator ;; esac; }

# pkg_launchers PKG -> "command:entry" pairs for /usr/bin
pkg_launchers() {
  case "$1" in
    umbra-agent) echo "umbra-agent:dist/agent/main.js" ;;
    umbra-coordinator) echo "umbra-coordinator:dist/coordinator/main.js umbractl:dist/coordinator/cli/umbractl.js" ;;
  esac
}

pkg_configs() {
  case "$1" in
    umbra-agent) echo "agent.yaml" ;;
    umbra-coordinator) echo "coordinator.yaml umbractl.yaml" ;;
  esac
}

pkg_summary() {
  case "$1" in
    umbra-agent) echo "Umbra host agent: warm VM shadows and millisecond switchovers" ;;
    umbra-coordinator) echo "Umbra coordinator: shadow placement and switchover control plane" ;;
  esac
}

# Extended description, one paragraph per line.
pkg_description() {
  echo "Umbra keeps a warm shadow of a virtual machine on the hosts it is most likely to move to, so that when a host saturates, degrades or needs maintenance the VM switches over in milliseconds and keeps its IP address."
  case "$1" in
    umbra-agent) echo "This package holds the agent that runs on every KVM/QEMU host: it profiles the host and its VMs, shadows their DHCP leases, streams VM memory deltas to peer hosts and applies IP changes at switchover." ;;
    umbra-coordinator) echo "This package holds the coordinator, which forecasts load and failure risk, ranks destination hosts, places shadows and orchestrates switchovers, and umbractl, its command-line client (also used to create the cluster's certificates)." ;;
  esac
}

# Debian relations (shared libraries of the native addons are added by dpkg-shlibdeps).
deb_depends() {
  case "$1" in
    umbra-agent) echo "nodejs (>= 20), libpcap0.8, iproute2" ;;
    # passwd: groupadd/useradd in postinst.
    umbra-coordinator) echo "nodejs (>= 20), libpcap0.8, passwd" ;;
  esac
}
# pciutils: lspci names the host's GPUs (facts, and which GPUs a guest holds through vfio-pci).
deb_recommends() { case "$1" in umbra-agent) echo "qemu-system-x86, pciutils" ;; esac; }
deb_section() { echo admin; }

# RPM relations. Fedora's and RHEL's nodejs carry epoch 1 (NodeSource's a higher one), so the
# version floor names the epoch: without it `nodejs >= 20` would accept 1:18.
rpm_requires() {
  case "$1" in
    umbra-agent) echo "nodejs >= 1:20, libpcap, iproute" ;;
    umbra-coordinator) echo "nodejs >= 1:20, libpcap, shadow-utils" ;;
  esac
}
# RHEL calls the package qemu-kvm, Fedora qemu-system-x86.
rpm_recommends() { case "$1" in umbra-agent) echo "(qemu-kvm or qemu-system-x86), pciutils" ;; esac; }
rpm_group() { echo "System Environment/Daemons"; }
