#!/usr/bin/env bash
# Builds the Umbra packages from a clean checkout, in one command:
#   packaging/build.sh
# -> out/umbra-agent_<version>_<arch>.deb, out/umbra-coordinator_<version>_<arch>.deb,
#    out/umbra-agent-<version>-1.<arch>.rpm, out/umbra-coordinator-<version>-1.<arch>.rpm
#
# Steps: copy the source into out/build (the checkout's own node_modules and dist are never
# touched), npm ci + npm run build there, a production node_modules with `npm ci --omit=dev` in a
# separate tree, pruned to this platform's native addons; then one tree per package, dpkg-deb,
# rpmbuild, and lintian on each .deb (errors fail the build).
#
# Native addons (cap, classic-level, netlink, msgpackr-extract, the project's own) are built for
# the machine running this script, so the packages are for its architecture: run it on an arm64
# host for arm64 packages. There is no cross build.
#
# Environment:
#   UMBRA_VERSION=X.Y.Z    package version (default: "version" in package.json)
#   UMBRA_OUT=DIR          output folder (default: out/ in the checkout)
#   UMBRA_REUSE_STAGE=1    reuse the program staged by a previous run (repackaging only)
#   UMBRA_SOURCE=HEAD      build the last commit instead of the working tree
#   UMBRA_FORMATS="deb rpm"  formats to build
#   UMBRA_LINT=0           skip lintian
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
out=${UMBRA_OUT:-$src/out}
formats=${UMBRA_FORMATS:-deb rpm}
version=${UMBRA_VERSION:-$(node -p "require('$src/package.json').version")}
packages=(umbra-agent umbra-coordinator)

case "$(uname -m)" in
  x86_64) deb_arch=amd64 rpm_arch=x86_64 ;;
  aarch64) deb_arch=arm64 rpm_arch=aarch64 ;;
  *) echo "build: unsupported machine $(uname -m)" >&2; exit 2 ;;
esac
if ! [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+([~+.][0-9A-Za-z.~+]+)?$ ]]; then
  echo "build: version '$version' is not usable for both dpkg and rpm (X.Y.Z, optionally ~pre or +build)" >&2
  exit 2
fi

need() { command -v "$1" >/dev/null || { echo "build: $1 is missing (apt-get install $2)" >&2; exit 2; }; }
need node nodejs; need npm npm
for f in $formats; do
  case "$f" in
    deb) need dpkg-deb dpkg; need dpkg-shlibdeps dpkg-dev ;;
    rpm) need rpmbuild rpm ;;
    *) echo "build: unknown format $f" >&2; exit 2 ;;
  esac
done

# Package dates follow the last commit, so rebuilding the same commit gives the same metadata.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$src" log -1 --format=%ct 2>/dev/null || date +%s)}

stage=$out/stage/program
if [ "${UMBRA_REUSE_STAGE:-0}" = 1 ] && [ -d "$stage/dist" ]; then
  echo "build: reusing $stage" >&2
else
  "$here/lib/stage.sh" "$src" "$stage" "$out/build"
fi

echo "build: packaging $version for $deb_arch" >&2
built=()
for pkg in "${packages[@]}"; do
  for f in $formats; do
    tree=$out/tree/$f/$pkg
    "$here/lib/assemble-tree.sh" "$pkg" "$stage" "$tree" "$f" "$version"
    if [ "$f" = deb ]; then
      file=$("$here/lib/make-deb.sh" "$pkg" "$tree" "$version" "$deb_arch" "$out")
    else
      file=$("$here/lib/make-rpm.sh" "$pkg" "$tree" "$version" "$rpm_arch" "$out")
    fi
    rm -rf "$tree"
    built+=("$file")
  done
done

if [ "${UMBRA_LINT:-1}" = 1 ] && [[ " $formats " == *" deb "* ]]; then
  if command -v lintian >/dev/null; then
    debs=()
    for file in "${built[@]}"; do [[ $file == *.deb ]] && debs+=("$file"); done
    echo "build: lintian ${debs[*]##*/}" >&2
    # Errors fail the build; warnings are printed for the record. One run: start-up dominates.
    if ! lintian --fail-on error "${debs[@]}" >&2; then
      echo "build: lintian found errors" >&2
      exit 1
    fi
  else
    echo "build: lintian not installed; skipping the package check" >&2
  fi
fi

printf '%s\n' "${built[@]}"
