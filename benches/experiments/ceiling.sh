#!/usr/bin/env bash
# How fast lrwatch could follow a 1 KB event firehose if parts of its work were left out: the
# measurement behind BENCHMARKS.md's "Where the rest of the time goes" (part 8 of issue #15).
#
# ceiling.patch (an experiment, never merged) adds CEILING=MODE to the event-stream reader:
#   discard  read through ureq into the pooled buffers, nothing else
#   parse    also parse the events and make them into updates, then drop them there
#   inline   also write each one's --json line to stdout from the reader's thread (no hand-over
#            to the printer thread, no printer; the time field fixed)
# and exits when the stream ends. The patch was made against commit 43adc0f: where it no longer
# applies, run the script from a checkout of that commit. Each round runs, in turn: curl -N, lrwatch as built from
# this tree (target/release/lrwatch, the real thing), and the three modes; all to /dev/null.
#
#   bash benches/experiments/ceiling.sh [ROUNDS]      # default 5; builds into target/ceiling
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
root=$PWD
cargo build --release --locked --bin lrwatch --example firehose
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; git -C "$root" worktree remove --force "$work/tree" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add -q --detach "$work/tree" HEAD
git -C "$work/tree" apply "$root/benches/experiments/ceiling.patch"
(cd "$work/tree" && CARGO_TARGET_DIR="$root/target/ceiling" cargo build --release --locked --bin lrwatch)
patched=$root/target/ceiling/release/lrwatch

target/release/examples/firehose 1000 >"$work/url" &
server=$!
for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.05; done
url=$(head -1 "$work/url")
bytes=$(curl -s -N -o /dev/null -w '%{size_download}' "$url")

seconds() { # command... -> wall seconds of one run
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}
declare -A runs
for r in $(seq "$rounds"); do
  runs[curl]+=" $(seconds curl -s -N -o /dev/null "$url")"
  runs[lrwatch]+=" $(seconds target/release/lrwatch --json -q "$url")"
  for mode in discard parse inline; do
    runs[$mode]+=" $(CEILING=$mode seconds "$patched" --json -q "$url")"
  done
  echo "round $r of $rounds done" >&2
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
curl_median=$(echo "${runs[curl]}" | median)
printf '%s bytes a run, %s rounds, median wall time; rate; share of curl -N'"'"'s rate\n' "$bytes" "$rounds"
for name in curl lrwatch discard parse inline; do
  m=$(echo "${runs[$name]}" | median)
  printf '%-8s %6.3f s  %7.1f MB/s  %3.0f%%   (runs:%s)\n' "$name" "$m" \
    "$(echo "$bytes / $m / 1000000" | bc -l)" "$(echo "100 * $curl_median / $m" | bc -l)" "${runs[$name]}"
done
