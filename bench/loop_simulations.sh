#!/usr/bin/env bash
# The runs behind README "The loop, measured" (issue 9, point 12): simulate_loop on the demo data and on
# digits, each configuration on its own fresh SQLite database (a copy of an empty migrated one), two at a
# time, then the comparison charts. Usage: bench/loop_simulations.sh [SEEDS]  (results: bench/results/loop/)
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-5}
WORK=${LOOP_WORK:-/tmp/loop-simulations}
OUT=bench/results/loop
mkdir -p "$WORK" "$OUT"
export SECRET_KEY=${SECRET_KEY:-x} HTTPS=false
# Migrated every time (a no-op when nothing is new): a stale copy would lack the newest columns.
DATABASE_URL="sqlite:///$WORK/empty.sqlite3" .venv/bin/python manage.py migrate -v0
run() {  # name, seeds, then simulate_loop arguments
  local name=$1 seeds=$2; shift 2
  cp "$WORK/empty.sqlite3" "$WORK/$name.sqlite3"
  DATABASE_URL="sqlite:///$WORK/$name.sqlite3" LOUPE_VAR_DIR="$WORK/var-$name" \
    .venv/bin/python manage.py simulate_loop --dataset loop --seeds "$seeds" --out "$OUT/$name" "$@" \
    > "$WORK/$name.log" 2>&1
}
BC="--source breast_cancer --budget 100 --retrain-every 10"
DIGITS="--source digits --budget 200 --retrain-every 10"
LONG="--source digits --budget 400 --retrain-every 20"
run bc-least-confidence "$SEEDS" $BC --strategy least_confidence &
run bc-random "$SEEDS" $BC --strategy random &
wait
run digits-least-confidence-a0 "$SEEDS" $DIGITS --strategy least_confidence --audit-slice 0 &
run digits-least-confidence-a10 "$SEEDS" $DIGITS --strategy least_confidence --audit-slice 10 &
wait
run digits-least-confidence-a30 "$SEEDS" $DIGITS --strategy least_confidence --audit-slice 30 &
run digits-random "$SEEDS" $DIGITS --strategy random &
wait
run digits400-least-confidence-a0 3 $LONG --strategy least_confidence --audit-slice 0 &
run digits400-random 3 $LONG --strategy random &
wait
chart() { .venv/bin/python bench/loop_curves.py "$@"; }
chart --title "Breast cancer (demo data): least confidence vs random, $SEEDS seeds" --out "$OUT/breast-cancer.svg" \
  "$OUT/bc-least-confidence=least confidence (audit slice 10%)" "$OUT/bc-random=random (audit slice 100%)"
chart --title "Digits: least confidence with audit slices of 0, 10 and 30% vs random, $SEEDS seeds" \
  --out "$OUT/digits.svg" "$OUT/digits-least-confidence-a0=least confidence, audit slice 0%" \
  "$OUT/digits-least-confidence-a10=least confidence, audit slice 10%" \
  "$OUT/digits-least-confidence-a30=least confidence, audit slice 30%" "$OUT/digits-random=random (audit slice 100%)"
chart --title "Digits, 400 answers: least confidence (no slice) vs random, 3 seeds" --out "$OUT/digits-400.svg" \
  "$OUT/digits400-least-confidence-a0=least confidence, audit slice 0%" "$OUT/digits400-random=random (audit slice 100%)"
