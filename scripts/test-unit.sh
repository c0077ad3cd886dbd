#!/usr/bin/env bash
# The fast tests, for the edit-and-test loop: the co-located tests of src/ and the test files that start no
# peer (no distribution, skopeo, curl, openssl, wrk, containerd, redis or s3rver): pure code, pullsafe in
# process against servers the test starts itself, the storage contract on the filesystem and in memory.
# Under a minute on two cores. `npm test` (scripts/test.sh) runs every test, these included.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/scripts/setup.sh" runtime
cd "$root"
shopt -s globstar
files=()
for file in src/**/*.test.ts; do
  # The OCI layout's tests copy from distribution and read the result with skopeo.
  [ "$file" = src/copy/layout.test.ts ] || files+=("$file")
done
files+=(
  test/architecture.test.ts
  test/doctor-cli.test.ts
  test/doctor-codebuild.test.ts
  test/doctor-scenarios.test.ts
  test/doctor-sdk.test.ts
  test/explain-cli.test.ts
  test/fake-upstream.test.ts
  test/registry-api.test.ts
  test/scan.test.ts
  test/store-fs.test.ts
  test/store-memory.test.ts
)
exec node --test --test-concurrency=2 --test-timeout=300000 "$@" "${files[@]}"
