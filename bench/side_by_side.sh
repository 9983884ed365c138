#!/usr/bin/env bash
# Loupe and Label Studio side by side (bench/side_by_side.py does the work; see its docstring).
# Usage: bench/side_by_side.sh [N] [LOOP_SECONDS] [extra args for side_by_side.py...]
#   N            items imported into each app (default 100000)
#   LOOP_SECONDS seconds per review loop (default 30); concurrency 1 and 16 (--concurrency to change)
# Label Studio goes into its own virtualenv outside the repo (LS_ROOT, default /work/.label-studio);
# results JSON and server logs go under $LS_ROOT/side_by_side (outside the repo).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}; LOOP=${2:-30}; shift 2 || shift $#
LS_ROOT=${LS_ROOT:-/work/.label-studio}
exec .venv/bin/python bench/side_by_side.py --n "$N" --loop-seconds "$LOOP" --concurrency 1,16 \
  --ls-root "$LS_ROOT" --workdir "$LS_ROOT/side_by_side" "$@"
