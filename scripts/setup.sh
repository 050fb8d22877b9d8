#!/usr/bin/env bash
# Prepares a fresh machine: Node.js 24 LTS (from the npm registry, when the machine's Node is
# older than 22.18: Node 20 is past its end of life and our dependencies need 22+), PgBouncer
# (Debian's package, for the tests that run the PostgreSQL store behind it), then the project's
# dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(node -p 'process.versions.node' 2>/dev/null || echo 0.0.0)
major=${version%%.*}
minor=$(echo "$version" | cut -d. -f2)
if [ "$major" -lt 22 ] || { [ "$major" -eq 22 ] && [ "$minor" -lt 18 ]; }; then
  echo "setup: Node $version is too old; installing Node 24 into /usr/local"
  npm i -g --prefix /usr/local node@24 >/dev/null
  hash -r
fi
echo "setup: node $(node --version), npm $(npm --version)"

if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing pgbouncer (Debian package)"
    # The package would start a system-wide pgbouncer: policy-rc.d (exit 101) keeps it stopped.
    policy=/usr/sbin/policy-rc.d
    added_policy=false
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=true
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
    if [ "$added_policy" = true ]; then rm -f "$policy"; fi
  else
    echo "setup: pgbouncer is missing (apt-get install -y pgbouncer); its tests will be skipped outside CI"
  fi
fi
npm ci --no-audit --no-fund
