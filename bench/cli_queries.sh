#!/bin/bash
# Times the `fordeler` read commands over an audit database of many transfers (default 100,000):
# fills a fresh database with cli/fordeler_bench_fill_audit (a month of traffic on 10 routes, see
# its header), writes a matching configuration, then runs each command REPEAT times and prints
# the median wall time and the peak RSS of the last run as a markdown table.
#
#   bench/cli_queries.sh [BUILD_DIR] [COUNT] [REPEAT]     (defaults: build 100000 5)
#
# Needs /usr/bin/time (package `time`) for the RSS column; without it the column is "-".
set -euo pipefail
build=${1:-build}
count=${2:-100000}
repeat=${3:-5}
fordeler=$build/cli/fordeler
fill=$build/cli/fordeler_bench_fill_audit
[[ -x $fordeler && -x $fill ]] || { echo "build $build first (targets fordeler, fordeler_bench_fill_audit)" >&2; exit 2; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
start=$(date +%s%N)
"$fill" "$dir/audit.db" "$count"
echo "filled $count transfers in $(( ($(date +%s%N) - start) / 1000000 )) ms;" \
     "database $(du -m "$dir/audit.db" | cut -f1) MiB" >&2

{
  echo "[server]"
  echo 'time_zone = "Europe/Copenhagen"'
  echo "[storage]"
  echo "root = \"$dir\""
  echo "[database]"
  echo "path = \"$dir/audit.db\""
  for i in 0 1 2 3 4; do printf '[[account]]\nid = "sender-%d"\n' "$i"; done
  for i in 0 1 2 3; do printf '[[account]]\nid = "recipient-%d"\n' "$i"; done
  for i in 0 1 2 3 4; do
    printf '[[data_area]]\nid = "area-%d"\nname = "Area %d"\n' "$i" "$i"
    printf 'deliver_service = "Area%dAflever_1"\nfetch_service = "Area%dHent_1"\n' "$i" "$i"
  done
  for i in $(seq 0 9); do
    printf '[[route]]\nid = "route-%d"\ndata_area = "area-%d"\nsender = "sender-%d"\n' \
      "$i" $((i % 5)) $((i % 5))
    printf 'authorities = ["*"]\nrecipients = ["recipient-%d", "recipient-%d"]\n' \
      $((i % 4)) $(((i + 1) % 4))
  done
} >"$dir/fordeler.toml"

uuid=$("$fordeler" --config "$dir/fordeler.toml" transfers --limit 1 --state delivered --json |
       grep -o '"uuid":"[^"]*"' | head -1 | cut -d'"' -f4)

# run LABEL ARGS...: REPEAT timed runs (output discarded); prints one table row.
run() {
  local label=$1; shift
  local times=() rss="-" t0 t1 i
  for ((i = 0; i < repeat; i++)); do
    t0=$(date +%s%N)
    "$fordeler" --config "$dir/fordeler.toml" "$@" >/dev/null || [[ $? == 1 ]]
    t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 100000 )))  # tenths of ms
  done
  if [[ -x /usr/bin/time ]]; then
    rss=$( { /usr/bin/time -f '%M' "$fordeler" --config "$dir/fordeler.toml" "$@" >/dev/null; } 2>&1 | tail -1)
    rss="$((rss / 1024)) MiB"
  fi
  local median
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (repeat + 1) / 2 ))p")
  printf '| `%s` | %d.%d | %s |\n' "$label" $((median / 10)) $((median % 10)) "$rss"
}

echo "| command | median ms | peak RSS |"
echo "|---|---:|---:|"
run "status" status
run "status --json" status --json
run "transfers" transfers
run "transfers --route route-3" transfers --route route-3
run "transfers --state rejected --since 24h" transfers --state rejected --since 24h
run "transfers --sender sender-2 --since 7d --limit 0" transfers --sender sender-2 --since 7d --limit 0
run "transfers --data-area area-1 --state delivered" transfers --data-area area-1 --state delivered
run "transfers --limit 0 --json (all $count)" transfers --limit 0 --json
run "show UUID" show "$uuid"
run "accounts" accounts
run "quarantine list" quarantine list
run "audit verify" audit verify
