#!/usr/bin/env bash
# Builds bin/harness from the published River modules pinned in go.mod / go.sum.
# Idempotent; returns at once when bin/harness is newer than every source file.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if ! command -v go >/dev/null 2>&1; then
  echo "missing go: install Go 1.26+" >&2
  exit 3
fi
if [[ -x bin/harness && -z "$(find . -maxdepth 1 \( -name '*.go' -o -name go.mod -o -name go.sum \) -newer bin/harness)" ]]; then
  exit 0
fi
mkdir -p bin
go build -trimpath -buildvcs=false -o bin/harness .
