#!/usr/bin/env bash
# Builds PKG_VERSION_ARCH.deb from a tree made by assemble-tree.sh: control file (dependencies of
# the native addons from dpkg-shlibdeps), conffiles, maintainer scripts, then dpkg-deb.
# Usage: make-deb.sh PKG ROOT VERSION DEB_ARCH OUT_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pkgdir=$(dirname "$here")
# shellcheck source=package-info.sh
. "$here/package-info.sh"

pkg=$1 root=$2 version=$3 arch=$4 out=$5

# Shared libraries the native addons link (libc6, libstdc++6, libpcap0.8, ...).
shlibs=""
mapfile -d '' addons < <(find "$root/usr/lib/umbra" -type f -name '*.node' -print0)
if [ ${#addons[@]} -gt 0 ]; then
  tmp=$(mktemp -d)
  mkdir "$tmp/debian"
  printf 'Source: umbra\n\nPackage: %s\nArchitecture: any\n' "$pkg" > "$tmp/debian/control"
  # Node's own symbols (napi_*, v8::*) resolve against the node binary, which no library declares.
  shlibs=$(cd "$tmp" && dpkg-shlibdeps -O --ignore-missing-info "${addons[@]/#/-e}" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
  rm -rf "$tmp"
fi
depends=$(deb_depends "$pkg")
[ -n "$shlibs" ] && depends="$shlibs, $depends"
# libpcap0.8 comes from both lists: keep the versioned one.
depends=$(echo "$depends" | tr ',' '\n' | sed 's/^ *//' | awk '{name=$1} !(name in seen){seen[name]=1; print}' | paste -sd, | sed 's/,/, /g')

install -d -m 0755 "$root/DEBIAN"
{
  echo "Package: $pkg"
  echo "Version: $version"
  echo "Architecture: $arch"
  echo "Maintainer: $MAINTAINER"
  echo "Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)"
  echo "Depends: $depends"
  rec=$(deb_recommends "$pkg"); [ -n "$rec" ] && echo "Recommends: $rec"
  echo "Section: $(deb_section "$pkg")"
  echo "Priority: optional"
  echo "Homepage: $HOMEPAGE"
  echo "Description: $(pkg_summary "$pkg")"
  first=1
  while IFS= read -r para; do
    [ $first -eq 1 ] || echo " ."
    first=0
    echo "$para" | fold -s -w 78 | sed 's/ *$//; s/^/ /'
  done < <(pkg_description "$pkg")
} > "$root/DEBIAN/control"

# Every file under /etc is a conffile: dpkg keeps local edits on upgrade and asks (or follows
# --force-conf*) when both sides changed.
(cd "$root" && find etc -type f | sort | sed 's|^|/|') > "$root/DEBIAN/conffiles"

for s in preinst postinst prerm postrm; do
  [ -f "$pkgdir/deb/$pkg/$s" ] && install -m 0755 "$pkgdir/deb/$pkg/$s" "$root/DEBIAN/$s"
done

# md5sums, as dpkg --verify and debsums expect.
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0r md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

mkdir -p "$out"
deb="$out/${pkg}_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
rm -rf "$root/DEBIAN"
echo "$deb"
