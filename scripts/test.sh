#!/usr/bin/env bash
# The whole test suite, set-up included: `bash scripts/test.sh` (extra args go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec python3 -m pytest -q -p no:cacheprovider "$@"
