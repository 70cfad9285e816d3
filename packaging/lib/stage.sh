#!/usr/bin/env bash
# Builds the program once, from a clean copy of the source, into the tree that both packages ship:
# $STAGE/ = package.json, dist/ (program only), proto/, build/Release/*.node, production node_modules/.
# Usage: stage.sh SRC_DIR STAGE_DIR WORK_DIR   (never touches SRC_DIR's node_modules or dist)
set -euo pipefail

src=$(cd "$1" && pwd)
stage=$2
work=$3
# What to build: "worktree" = tracked and untracked-but-not-ignored files as they are on disk
# (what `npm run build` in the checkout sees); "HEAD" = the last commit only.
source_mode=${UMBRA_SOURCE:-worktree}
npm_flags=(--no-audit --no-fund --prefer-offline --loglevel=error)

log() { echo "stage: $*" >&2; }

rm -rf "$work" "$stage"
mkdir -p "$work/src" "$stage"

log "copying source ($source_mode) from $src"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  if [ "$source_mode" = HEAD ]; then
    git -C "$src" archive --format=tar HEAD | tar -x -C "$work/src"
  else
    (cd "$src" && git ls-files -z --cached --others --exclude-standard -- . ':!:out' ':!:packaging' \
      | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
      | tar --null -T - -cf -) | tar -x -C "$work/src"
  fi
else
  # A source tarball, not a git checkout: copy everything but build products.
  tar -C "$src" --exclude=./node_modules --exclude=./dist --exclude=./build --exclude=./out -cf - . | tar -x -C "$work/src"
fi

# Install with the lock file when it is consistent; otherwise say so loudly and fall back to an
# install that still honours every version the lock file pins.
install_deps() {
  local dir=$1; shift
  if ! (cd "$dir" && npm ci "${npm_flags[@]}" "$@"); then
    log "WARNING: npm ci refused package-lock.json in $dir (out of sync with package.json);"
    log "WARNING: falling back to npm install, which keeps the versions the lock file pins"
    (cd "$dir" && npm install "${npm_flags[@]}" "$@")
  fi
}

log "installing build dependencies and compiling (npm ci, npm run build)"
install_deps "$work/src"
(cd "$work/src" && npm run build --silent)

log "installing production dependencies in a separate tree (npm ci --omit=dev)"
mkdir -p "$work/prod"
cp "$work/src/package.json" "$work/prod/"
[ -f "$work/src/package-lock.json" ] && cp "$work/src/package-lock.json" "$work/prod/"
# binding.gyp stays behind: the project's own addon is already built in $work/src/build/Release.
install_deps "$work/prod" --omit=dev

log "assembling $stage"
cp "$work/src/package.json" "$stage/"
mkdir -p "$stage/dist"
for d in "$work/src/dist"/*/; do
  name=$(basename "$d")
  case "$name" in test|bench) continue ;; esac   # not part of the installed program
  cp -a "$d" "$stage/dist/$name"
done
[ -d "$work/src/proto" ] && cp -a "$work/src/proto" "$stage/proto"
if compgen -G "$work/src/build/Release/*.node" >/dev/null; then
  mkdir -p "$stage/build/Release"
  cp "$work/src/build/Release/"*.node "$stage/build/Release/"
fi
cp -a "$work/prod/node_modules" "$stage/node_modules"
# Shipped as documentation, beside (not inside) the program tree.
rm -f "$(dirname "$stage")/README.md"
[ -f "$work/src/README.md" ] && cp "$work/src/README.md" "$(dirname "$stage")/README.md"

"$(dirname "$0")/prune-node-modules.sh" "$stage/node_modules"
# Addons ship without symbol tables, as distribution packages do (debug symbols are not kept).
find "$stage" -type f -name '*.node' -exec strip --strip-unneeded {} +
chmod -R u=rwX,go=rX "$stage"
log "done: $(du -sh "$stage" | cut -f1)"
