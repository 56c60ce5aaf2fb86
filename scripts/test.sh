#!/usr/bin/env bash
# The whole test suite, set-up included: `bash scripts/test.sh` (extra args go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# Two workers, whole files each (module fixtures and the lab stay per worker; every lab and namespace has its
# own prefix): the suite is half I/O wait, and CI runs on 2 cores. KUBECTL_WHOSE_TEST_WORKERS=0 runs it serially.
workers="${KUBECTL_WHOSE_TEST_WORKERS:-2}"
if [ "$workers" = "0" ]; then
  exec python3 -m pytest -q -p no:cacheprovider "$@"
fi
exec python3 -m pytest -q -p no:cacheprovider -n "$workers" --dist loadfile "$@"
