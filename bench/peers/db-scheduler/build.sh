#!/usr/bin/env bash
# Builds target/harness.jar (one runnable jar) from Maven Central artifacts; a no-op when the jar
# is newer than pom.xml and every source file.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
  echo "missing java/mvn: install them with apt-get install -y openjdk-17-jdk-headless maven" >&2
  exit 3
fi

jar=target/harness.jar
if [[ -f $jar ]] && [[ -z $(find pom.xml src -newer "$jar" -print -quit) ]]; then
  exit 0
fi

# Maven 3.8 prints stray ANSI resets even with -q -B: show its output only when it fails.
if ! out=$(mvn -q -B package -DskipTests 2>&1); then
  printf '%s\n' "$out" >&2
  exit 1
fi
[[ -f $jar ]] || { echo "build produced no $jar" >&2; exit 1; }
