#!/usr/bin/env bash
# Prepares a fresh machine: Node.js 24 LTS (from the npm registry, when the machine's Node is
# older than 22.18: Node 20 is past its end of life and our dependencies need 22+), then the
# project's dependencies. Safe to run again.
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
npm ci --no-audit --no-fund
