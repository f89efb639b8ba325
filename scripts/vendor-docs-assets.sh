#!/usr/bin/env bash
# Vendor the API documentation pages' assets (Swagger UI for /docs, ReDoc for /redoc) into the package, so
# that the app serves them itself and the pages work without internet access. Pinned versions from the npm
# registry, each tarball checked against its sha256 before anything is copied; rerun after changing a pin
# (and its checksum) and commit the result.
set -euo pipefail

SWAGGER_UI_VERSION=5.35.0
SWAGGER_UI_SHA256=1b8e891893404ea4c3558b6a87e2a3e494e7eedba41168c2ece5800a391a6ea6
REDOC_VERSION=2.5.4
REDOC_SHA256=44922df4d0eb45c1b066c09ec251e6bd9bd7ded16bc69e87613337b9d911a56e

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/src/ragapi/api/docs_assets"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fetch() {  # package version sha256: the checked tarball, unpacked into $work/<package>
  local package=$1 version=$2 sha=$3 tarball
  tarball="$(cd "$work" && npm pack --silent "$package@$version")"
  echo "$sha  $work/$tarball" | sha256sum --check --quiet
  mkdir -p "$work/$package"
  tar -xzf "$work/$tarball" -C "$work/$package" --strip-components=1
}

fetch swagger-ui-dist "$SWAGGER_UI_VERSION" "$SWAGGER_UI_SHA256"
fetch redoc "$REDOC_VERSION" "$REDOC_SHA256"

rm -rf "$dest/swagger-ui" "$dest/redoc"
mkdir -p "$dest/swagger-ui" "$dest/redoc"
for file in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css favicon-32x32.png LICENSE NOTICE; do
  cp "$work/swagger-ui-dist/$file" "$dest/swagger-ui/"
done
for file in bundles/redoc.standalone.js bundles/redoc.standalone.js.LICENSE.txt LICENSE; do
  cp "$work/redoc/$file" "$dest/redoc/"
done
# ReDoc's sidebar shows Redocly's logo from their CDN, with no option to turn it off: an empty image
# instead, so that the page asks nothing of another host.
logo='https://cdn.redoc.ly/redoc/logo-mini.svg'
grep -q "$logo" "$dest/redoc/redoc.standalone.js"
sed -i "s|$logo|data:image/svg+xml,%3Csvg xmlns=%27http://www.w3.org/2000/svg%27/%3E|" "$dest/redoc/redoc.standalone.js"
# The app and the tests read the versions from here.
printf 'swagger-ui-dist %s\nredoc %s\n' "$SWAGGER_UI_VERSION" "$REDOC_VERSION" >"$dest/VERSIONS"
echo "vendored swagger-ui-dist $SWAGGER_UI_VERSION and redoc $REDOC_VERSION into ${dest#"$root"/}"
