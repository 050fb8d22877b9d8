#!/usr/bin/env bash
# moto (a Python mock of AWS, here used as a DynamoDB server for tests) in a private venv.
#
#   scripts/moto.sh install   creates the venv once, then prints the path of its moto_server
#
# The venv lives in ${PUNCTUAL_CACHE_DIR:-$HOME/.cache/punctual}/moto-venv, outside the work tree,
# so that it survives fresh clones; a second call only checks a stamp file and returns at once.
set -euo pipefail

# Pinned: moto changes its DynamoDB validation between releases, and tests must not drift with it.
MOTO_VERSION=5.2.5

cache_dir=${PUNCTUAL_CACHE_DIR:-$HOME/.cache/punctual}
venv=$cache_dir/moto-venv
server=$venv/bin/moto_server
# The stamp names the version: bumping MOTO_VERSION rebuilds the venv.
stamp=$venv/.punctual-moto-$MOTO_VERSION

usage() {
  echo "usage: $0 install" >&2
  exit 2
}

install() {
  # Fast path: nothing to do when this version is already installed.
  if [ -f "$stamp" ] && [ -x "$server" ]; then
    echo "$server"
    return
  fi
  if ! command -v python3 >/dev/null 2>&1; then
    echo "moto.sh: python3 is missing; install it with: apt-get install -y python3 python3-venv" >&2
    exit 1
  fi
  # Debian's python3 ships venv without ensurepip; `python3 -m venv` then fails half-way.
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "moto.sh: the Python venv module is missing; install it with: apt-get install -y python3-venv" >&2
    exit 1
  fi
  mkdir -p "$cache_dir"
  # Parallel test runs may all call install at once: one builds, the others wait for it.
  exec 9>"$cache_dir/moto-venv.lock"
  flock 9
  if [ ! -f "$stamp" ] || [ ! -x "$server" ]; then
    # Start from scratch: a half-built or older venv is not worth repairing.
    rm -rf "$venv"
    echo "moto.sh: installing moto[server]==$MOTO_VERSION into $venv" >&2
    python3 -m venv "$venv" >&2
    # pip's output goes to stderr: stdout carries only the path, for callers to read.
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
    touch "$stamp"
  fi
  flock -u 9
  echo "$server"
}

[ $# -eq 1 ] || usage
case $1 in
  install) install ;;
  *) usage ;;
esac
