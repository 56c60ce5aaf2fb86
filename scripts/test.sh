#!/usr/bin/env bash
# The whole test suite, set-up included: `bash scripts/test.sh` (extra args go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# Two workers, whole files each (module fixtures and the lab stay per worker; every lab and namespace has its
# own prefix): the suite is half I/O wait, and CI runs on 2 cores. KUBECTL_WHOSE_TEST_WORKERS=0 runs it serially.
# Tests that assert wall-clock bounds (marked `timing`) run afterwards on their own, not beside another worker.
workers="${KUBECTL_WHOSE_TEST_WORKERS:-2}"
if [ "$workers" = "0" ] || [ $# -gt 0 ]; then
  [ "$workers" = "0" ] && exec python3 -m pytest -q -p no:cacheprovider "$@"
  exec python3 -m pytest -q -p no:cacheprovider -n "$workers" --dist loadfile "$@"
fi
rc=0
python3 -m pytest -q -p no:cacheprovider -n "$workers" --dist loadfile -m "not timing" || rc=$?
python3 -m pytest -q -p no:cacheprovider -m timing || rc=$((rc ? rc : $?))
exit "$rc"
