#!/usr/bin/env bash
# Trims a production node_modules to what runs on the target: native addons for this platform
# only (glibc), no build intermediates, sources or type declarations, and plain file modes.
# Usage: prune-node-modules.sh NODE_MODULES_DIR [NODE_ARCH]   (NODE_ARCH defaults to this node's)
set -euo pipefail

nm=$1
arch=${2:-$(node -p process.arch)}
keep="linux-$arch"

# Prebuilt addons for other systems (Windows, macOS, Android, other CPUs) are dead weight and
# would make the package claim code for the wrong architecture.
find "$nm" -type d -name prebuilds -prune -print0 | while IFS= read -r -d '' pre; do
  for d in "$pre"/*/; do
    [ "$(basename "$d")" = "$keep" ] || rm -rf "$d"
  done
done
# The packages target glibc distributions; musl variants are never loaded there.
find "$nm" -type f -name '*musl*.node' -delete

# node-gyp build trees: keep only the linked addons (build/Release/*.node). The rest holds
# object files, Makefiles and the build machine's paths.
find "$nm" -type d -name build -prune -print0 | while IFS= read -r -d '' b; do
  [ -f "$(dirname "$b")/binding.gyp" ] || continue
  find "$b" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
  [ -d "$b/Release" ] && find "$b/Release" -mindepth 1 -maxdepth 1 ! -name '*.node' -exec rm -rf {} +
done
# Sources of compiled addons (the binaries are already built) and type-only packages.
find "$nm" -type f -name binding.gyp -print0 | while IFS= read -r -d '' g; do
  dir=$(dirname "$g")
  find "$dir" -path "$dir/node_modules" -prune -o -type f \
    \( -name '*.c' -o -name '*.cc' -o -name '*.cpp' -o -name '*.h' -o -name '*.hpp' -o -name '*.gyp' -o -name '*.gypi' \) -print0 \
    | xargs -0r rm -f
  rm -rf "$dir/deps"
done
find "$nm" -type d \( -name '@types' -o -name '.husky' -o -name '.github' \) -prune -exec rm -rf {} +
# Publishing and VCS leftovers.
find "$nm" -type f \( -name .npmignore -o -name .gitignore -o -name .gitattributes -o -name .gitmodules -o -name .travis.yml -o -name appveyor.yml \) -delete
rm -rf "$nm/.bin" "$nm/.package-lock.json"
find "$nm" -type d -empty -delete

# Nothing under node_modules is executed directly (node loads it), so no file needs an exec bit.
find "$nm" -type d -exec chmod 0755 {} +
find "$nm" -type f -exec chmod 0644 {} +
