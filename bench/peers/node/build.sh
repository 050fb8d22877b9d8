#!/usr/bin/env bash
# Installs this harness's pinned dependencies (package-lock.json) unless node_modules already
# matches the lockfile. There is no build step: node runs harness.ts directly.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# npm records what it installed in node_modules/.package-lock.json; an older copy than the
# lockfile (or none) means node_modules is missing or stale.
installed=node_modules/.package-lock.json
if [[ ! -f $installed || package-lock.json -nt $installed || package.json -nt $installed ]]; then
  npm ci --prefix . --no-audit --no-fund >&2
fi
