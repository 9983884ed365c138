#!/usr/bin/env bash
# The runs behind README "The loop, measured" (issue 9, point 12): five simulate_loop configurations,
# each on its own fresh SQLite database (a copy of an empty migrated one), two at a time, then the
# comparison charts. Usage: bench/loop_simulations.sh [SEEDS]   (results in bench/results/loop/)
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-5}
WORK=${LOOP_WORK:-/tmp/loop-simulations}
OUT=bench/results/loop
mkdir -p "$WORK" "$OUT"
export SECRET_KEY=${SECRET_KEY:-x} HTTPS=false
# Migrated every time (a no-op when nothing is new): a stale copy would lack the newest columns.
DATABASE_URL="sqlite:///$WORK/empty.sqlite3" .venv/bin/python manage.py migrate -v0
run() {  # name, then simulate_loop arguments
  local name=$1; shift
  cp "$WORK/empty.sqlite3" "$WORK/$name.sqlite3"
  DATABASE_URL="sqlite:///$WORK/$name.sqlite3" LOUPE_VAR_DIR="$WORK/var-$name" \
    .venv/bin/python manage.py simulate_loop --dataset loop --seeds "$SEEDS" --out "$OUT/$name" "$@" \
    > "$WORK/$name.log" 2>&1
}
run bc-least-confidence --source breast_cancer --strategy least_confidence --budget 100 --retrain-every 10 &
run bc-random --source breast_cancer --strategy random --budget 100 --retrain-every 10 &
wait
run digits-least-confidence-a0 --source digits --strategy least_confidence --audit-slice 0 --budget 200 --retrain-every 10 &
run digits-least-confidence-a10 --source digits --strategy least_confidence --audit-slice 10 --budget 200 --retrain-every 10 &
wait
run digits-random --source digits --strategy random --budget 200 --retrain-every 10
.venv/bin/python bench/loop_curves.py --title "Breast cancer (demo data): least confidence vs random" \
  --out "$OUT/breast-cancer.svg" "$OUT/bc-least-confidence=least confidence (audit slice 10%)" "$OUT/bc-random=random (audit slice 100%)"
.venv/bin/python bench/loop_curves.py --title "Digits: least confidence with and without the audit slice vs random" \
  --out "$OUT/digits.svg" "$OUT/digits-least-confidence-a0=least confidence, audit slice 0%" \
  "$OUT/digits-least-confidence-a10=least confidence, audit slice 10%" "$OUT/digits-random=random (audit slice 100%)"
