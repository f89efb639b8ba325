#!/usr/bin/env bash
# Install the servers the test suite starts for itself (Debian packages: redis-server, rabbitmq-server, prometheus,
# nginx) and the browser its browser tests drive (chromium, through Playwright, which downloads none). Idempotent;
# needs root or sudo.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
[ -x /usr/sbin/nginx ] || need+=(nginx)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # the tests start their own instances on free ports; the packaged service is not needed
  $SUDO systemctl disable --now redis-server rabbitmq-server prometheus nginx >/dev/null 2>&1 || true
  $SUDO /usr/sbin/nginx -s quit >/dev/null 2>&1 || true
fi
# The OpenID Connect provider of the single sign-on tests (tests/oidc: node-oidc-provider on Node 20+), from its
# lock file; the tests also install it on first use.
oidc="$(cd "$(dirname "$0")/.." && pwd)/tests/oidc"
if command -v npm >/dev/null 2>&1 && [ ! -d "$oidc/node_modules/oidc-provider" ]; then
  (cd "$oidc" && npm ci --no-audit --no-fund --silent)
fi
