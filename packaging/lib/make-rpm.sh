#!/usr/bin/env bash
# Builds PKG-VERSION-RELEASE.ARCH.rpm with rpmbuild from a tree made by assemble-tree.sh (format
# rpm) and the package's spec template in packaging/rpm/.
# Usage: make-rpm.sh PKG ROOT VERSION RPM_ARCH OUT_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pkgdir=$(dirname "$here")
# shellcheck source=package-info.sh
. "$here/package-info.sh"

pkg=$1 root=$2 version=$3 arch=$4 out=$5
release=${UMBRA_RPM_RELEASE:-1}

# State directories are owned by the package (rpm -e keeps them when they hold data).
install -d -m 0755 "$root/var/lib/umbra/$(pkg_component "$pkg")"

docs="%dir /usr/share/doc/$pkg"
[ -f "$root/usr/share/doc/$pkg/README.md" ] && docs+=$'\n'"%doc /usr/share/doc/$pkg/README.md"
description=$(pkg_description "$pkg" | fold -s -w 78 | sed 's/ *$//' | awk 'NR>1 && prev_end {print ""} {print; prev_end=0} /\.$/ {prev_end=1}')
recommends=$(rpm_recommends "$pkg")

spec=$(cat "$pkgdir/rpm/$pkg.spec.in")
spec=${spec//@VERSION@/$version}
spec=${spec//@RELEASE@/$release}
spec=${spec//@SUMMARY@/$(pkg_summary "$pkg")}
spec=${spec//@HOMEPAGE@/$HOMEPAGE}
spec=${spec//@MAINTAINER@/$MAINTAINER}
spec=${spec//@REQUIRES@/$(rpm_requires "$pkg")}
spec=${spec//@DESCRIPTION@/$description}
spec=${spec//@DOCS@/$docs}
if [ -n "$recommends" ]; then spec=${spec//@RECOMMENDS@/$recommends}; else spec=$(printf '%s\n' "$spec" | grep -v '@RECOMMENDS@'); fi

top=$(mktemp -d)
trap 'rm -rf "$top"' EXIT
mkdir -p "$top"/{SPECS,RPMS,BUILD,BUILDROOT,SRPMS,SOURCES}
printf '%s\n' "$spec" > "$top/SPECS/$pkg.spec"

# No debuginfo split and no distribution post-processing (stripping, byte-compiling,
# buildroot-path checks on third-party files): the tree is shipped as staged.
rpmbuild -bb --quiet \
  --target "$arch" \
  --define "_topdir $top" \
  --define "tree $root" \
  --define "debug_package %{nil}" \
  --define "__os_install_post %{nil}" \
  --define "_build_id_links none" \
  --define "_source_payload w6.xzdio" --define "_binary_payload w6.xzdio" \
  "$top/SPECS/$pkg.spec" >&2

mkdir -p "$out"
rpm=$(find "$top/RPMS" -name '*.rpm' | head -1)
mv "$rpm" "$out/"
echo "$out/$(basename "$rpm")"
