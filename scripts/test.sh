#!/usr/bin/env bash
# The whole test suite, from a fresh machine: sets up what is missing, then runs every test file.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/scripts/setup.sh"
cd "$root"
echo "test: node $(node --version), $(docker-registry --version 2>&1 | head -1), $(skopeo --version)" >&2
exec node --test --test-concurrency=2 --test-timeout=300000 "src/**/*.test.ts" "test/**/*.test.ts"
