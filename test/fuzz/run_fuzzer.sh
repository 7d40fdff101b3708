#!/usr/bin/env bash
# Fuzzes one target from its checked-in corpus for a while; what it finds new goes to a scratch
# corpus, a failing input to SCRATCH/crash-* (copy it into the corpus once fixed).
#   run_fuzzer.sh BINARY CORPUS SCRATCH SECONDS
# -timeout=30: a loaded machine can stall one run for seconds (the slowest input replays in 0.1 s).
set -euo pipefail
binary=$1 corpus=$2 scratch=$3 seconds=$4
mkdir -p "$scratch"
exec "$binary" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$scratch/" "$scratch" "$corpus"
