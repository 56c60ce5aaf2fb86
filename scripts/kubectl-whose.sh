#!/bin/sh
# kubectl-whose launcher shipped in the krew archive: runs the bundled package (lib/) with the
# python3 found on PATH. krew links this file into ~/.krew/bin, so resolve the link first.
self=$0
while [ -L "$self" ]; do
  target=$(readlink "$self")
  case $target in /*) self=$target ;; *) self=$(dirname "$self")/$target ;; esac
done
here=$(cd "$(dirname "$self")" && pwd)
for py in "${KUBECTL_WHOSE_PYTHON:-}" python3 python; do
  [ -n "$py" ] || continue
  command -v "$py" >/dev/null 2>&1 || continue
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null || continue
  # Not `python -m`: that puts the working directory first on sys.path, so a kubectl_whose/ (or a
  # yaml.py, click/ ...) where the user runs kubectl would shadow the bundled code. `-c` adds ""
  # for it instead, which the code below drops (with PYTHONSAFEPATH=1, 3.11+, nothing is added).
  PYTHONPATH="$here/lib${PYTHONPATH:+:$PYTHONPATH}" exec "$py" -c 'import sys
if sys.path[0] == "":
    del sys.path[0]
from kubectl_whose.cli.main import main
main()' "$@"
done
echo "kubectl-whose: error: needs Python 3.9 or newer as python3 on PATH (or set KUBECTL_WHOSE_PYTHON)" >&2
exit 1
