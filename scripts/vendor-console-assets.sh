#!/usr/bin/env bash
# Fetch the console's third-party browser assets from the npm registry at pinned versions, check them
# against the checksums below, and write them under src/ragapi/api/console/static/vendor/ (committed: the
# app serves them itself, so `make run` needs neither Node nor a CDN). Run it only to change a version:
# update VERSION and both checksums, run it, review the diff, commit.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=src/ragapi/api/console/static/vendor

# name  version  sha256 of the registry tarball  file in the tarball  sha256 of that file
ASSETS=(
  "htmx.org 2.0.11 165a2655073e9e6e55e307a7c74e8ebcdb76afb7701f9c16cfd106a13add408e dist/htmx.min.js d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
)
REGISTRY=${NPM_REGISTRY:-https://registry.npmjs.org}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$DEST"
for line in "${ASSETS[@]}"; do
  read -r name version tarball_sha file file_sha <<<"$line"
  tarball="$work/$name-$version.tgz"
  curl -fsSL "$REGISTRY/$name/-/$name-$version.tgz" -o "$tarball"
  echo "$tarball_sha  $tarball" | sha256sum --check --quiet
  tar -xzf "$tarball" -C "$work" "package/$file" package/LICENSE
  echo "$file_sha  $work/package/$file" | sha256sum --check --quiet
  base=$(basename "$file" .min.js)
  cp "$work/package/$file" "$DEST/$base-$version.min.js"
  cp "$work/package/LICENSE" "$DEST/$base-$version.LICENSE"
  rm -rf "$work/package"
  echo "$name $version -> $DEST/$base-$version.min.js"
done
