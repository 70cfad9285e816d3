#!/usr/bin/env bash
# Lays out one package's files under ROOT from the staged program:
#   /usr/lib/umbra/<component>/   program, proto files, production node_modules
#   /usr/bin/                     launchers
#   <unit dir>/<pkg>.service      /lib/systemd/system (deb) or /usr/lib/systemd/system (rpm)
#   /etc/umbra/*.yaml             default configuration
#   /usr/share/doc/<pkg>/         copyright, changelog (deb), README.md
# Usage: assemble-tree.sh PKG STAGE ROOT deb|rpm VERSION
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pkgdir=$(dirname "$here")
# shellcheck source=package-info.sh
. "$here/package-info.sh"

pkg=$1 stage=$2 root=$3 format=$4 version=$5
component=$(pkg_component "$pkg")
[ -n "$component" ] || { echo "assemble-tree: unknown package $pkg" >&2; exit 2; }

rm -rf "$root"
install -d -m 0755 "$root/usr/lib/umbra" "$root/usr/bin" "$root/etc/umbra" "$root/usr/share/doc/$pkg"
cp -a "$stage" "$root/usr/lib/umbra/$component"

for pair in $(pkg_launchers "$pkg"); do
  name=${pair%%:*} entry=${pair#*:}
  [ -f "$stage/$entry" ] || { echo "assemble-tree: $entry is missing from the build (did npm run build fail?)" >&2; exit 1; }
  flags=$(node "$stage/dist/shared/daemon-node-flags.js" "${name#umbra-}")
  sed -e "s|@NAME@|$name|g" -e "s|@ENTRY@|$entry|g" -e "s|@COMPONENT@|$component|g" -e "s|@NODE_FLAGS@ |${flags:+$flags }|" \
    "$pkgdir/bin/launcher.in" > "$root/usr/bin/$name"
  chmod 0755 "$root/usr/bin/$name"
done

if [ "$format" = rpm ]; then unitdir=usr/lib/systemd/system; else unitdir=lib/systemd/system; fi
install -d -m 0755 "$root/$unitdir"
install -m 0644 "$pkgdir/systemd/$pkg.service" "$root/$unitdir/$pkg.service"

for f in $(pkg_configs "$pkg"); do
  install -m 0644 "$pkgdir/config/$f" "$root/etc/umbra/$f"
done

install -m 0644 "$pkgdir/copyright" "$root/usr/share/doc/$pkg/copyright"
[ -f "$stage/../README.md" ] && install -m 0644 "$stage/../README.md" "$root/usr/share/doc/$pkg/README.md"
if [ "$format" = deb ]; then
  # Debian's changelog for a native package; dated like the build (SOURCE_DATE_EPOCH) so that the
  # same input gives the same package.
  date=$(date -R -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}")
  printf '%s (%s) unstable; urgency=medium\n\n  * Upstream release %s.\n\n -- %s  %s\n' \
    "$pkg" "$version" "$version" "$MAINTAINER" "$date" | gzip -9n > "$root/usr/share/doc/$pkg/changelog.gz"
  chmod 0644 "$root/usr/share/doc/$pkg/changelog.gz"
  if [ -f "$pkgdir/deb/$pkg/lintian-overrides" ]; then
    install -d -m 0755 "$root/usr/share/lintian/overrides"
    install -m 0644 "$pkgdir/deb/$pkg/lintian-overrides" "$root/usr/share/lintian/overrides/$pkg"
  fi
fi

# Plain modes everywhere: directories 0755, files 0644 except the launchers.
find "$root" -type d -exec chmod 0755 {} +
find "$root/usr/lib/umbra" -type f -exec chmod 0644 {} +
