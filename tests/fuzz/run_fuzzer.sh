#!/bin/bash
# Replays a fuzz target's seed corpus, then fuzzes it for a bounded time in a scratch copy of the
# corpus (the committed seeds are never modified). Fails on any crash, leak or sanitizer report;
# the input that failed is left in the scratch directory and named in the output.
# Usage: run_fuzzer.sh FUZZER CORPUS_DIR SECONDS
set -euo pipefail
fuzzer=$1 corpus=$2 seconds=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export TMPDIR=$scratch
mkdir "$scratch/corpus" "$scratch/artifacts"
echo "replaying $(ls "$corpus" | wc -l) seeds of $corpus"
"$fuzzer" -runs=0 "$corpus"
echo "fuzzing for ${seconds}s"
cp "$corpus"/* "$scratch/corpus/"
"$fuzzer" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$scratch/artifacts/" "$scratch/corpus" 2>&1 | tail -5
if ls "$scratch/artifacts"/* >/dev/null 2>&1; then
  echo "fuzzer found a failing input:"; ls -l "$scratch/artifacts"; exit 1
fi
