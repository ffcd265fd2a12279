#!/usr/bin/env bash
# Instructions per decision, counted by valgrind (callgrind), for comparing two builds of the gate's
# own code when the machine is too noisy for timings: bench/decision-cpu.ts (the built /auth endpoint
# in-process on the realistic mix, real Redis) run twice, with 1 and with 1 + EXTRA measured rounds
# after its warm-up, and the difference divided by the decisions of the EXTRA rounds, so start-up
# and warm-up cancel out. V8 runs single-threaded so that when code gets optimised does not depend
# on thread scheduling. What still varies between runs of one build (when V8 compiles, collects)
# is spread over the EXTRA rounds: with EXTRA=5, two runs of one build differed by up to 17 %.
# Counts the process's user-space instructions only (no kernel, no waiting).
#   bench/instructions.sh            # this checkout
#   (cd ../other-checkout && bench/instructions.sh)
set -euo pipefail
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
cd "$(dirname "$0")/.."
# decision-cpu.ts drives the built code (dist/): the build is part of what is compared.
npm run build --silent
WAVES=${WAVES:-300}
EXTRA=${EXTRA:-15}
CONC=32
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null node --single-threaded --import tsx bench/decision-cpu.ts --waves "$WAVES" --concurrency "$CONC" --rounds "$1" >"$out/$1.log" 2>&1 || { cat "$out/$1.log" >&2; exit 1; }
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/$1.log"
}
one=$(count 1)
more=$(count $((1 + EXTRA)))
echo "instructions per decision: $(( (more - one) / (EXTRA * WAVES * CONC) ))  (callgrind, rounds $((1 + EXTRA)) minus rounds 1, $WAVES waves of $CONC)"
