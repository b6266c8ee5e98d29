#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time and prints one summary line per target.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 30 s each, all targets)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a C++ compiler (g++ or clang++,
# for libFuzzer). cargo-fuzz needs nightly features: a `nightly` rustup toolchain is used when
# installed, else stable with RUSTC_BOOTSTRAP=1. Seeds come from fuzz/corpus/<target> (read
# only); what the fuzzer finds goes to fuzz/target/corpus/<target>, crashes to
# fuzz/artifacts/<target>/. Exits 1 if any target crashed or hung, 2 if it could not start.
set -uo pipefail
cd "$(dirname "$0")"

secs="${1:-30}"
[ "$#" -gt 0 ] && shift
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(link sse multiplex socket server)
fi
case "$secs" in
  '' | *[!0-9]*) echo "usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2 ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 2
fi
toolchain=()
if rustup run nightly rustc --version >/dev/null 2>&1; then
  toolchain=(+nightly)
else
  # Stable rustc with its nightly features unlocked: enough for -Zsanitizer and sancov.
  export RUSTC_BOOTSTRAP=1
fi
echo "fuzz/run.sh: $(rustc "${toolchain[@]}" --version), ${secs}s per target" >&2

# Built once, then each binary is run directly: `cargo fuzz run` would rebuild before every
# target, and the runs should all test the same code. FUZZ_NO_BUILD=1 reuses the last build.
bin_dir="target/$(rustc "${toolchain[@]}" -vV | sed -n 's/^host: //p')/release"
if [ -z "${FUZZ_NO_BUILD:-}" ]; then
  if ! cargo "${toolchain[@]}" fuzz build >build.log 2>&1; then
    cat build.log >&2
    echo "fuzz/run.sh: the fuzz targets did not build" >&2
    exit 2
  fi
  rm -f build.log
fi

failed=0
summary=()
for target in "${targets[@]}"; do
  work="target/corpus/$target"
  mkdir -p "$work" "artifacts/$target"
  args=(-max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1
    -artifact_prefix="artifacts/$target/")
  [ -f "dict/$target.dict" ] && args+=(-dict="dict/$target.dict")
  # The server starts detached threads (webhook workers) that may still be exiting when
  # LeakSanitizer looks after an input, and it reports their thread records as leaks. Memory
  # that really grows is still caught by -rss_limit_mb.
  [ "$target" = server ] && args+=(-detect_leaks=0)
  log="target/$target.log"
  if [ ! -x "$bin_dir/$target" ]; then
    echo "fuzz/run.sh: no fuzz target $target in fuzz/$bin_dir" >&2
    exit 2
  fi
  "$bin_dir/$target" "${args[@]}" "$work" "corpus/$target" >"$log" 2>&1
  status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  corpus=$(find "$work" -type f | wc -l)
  if [ "$status" -eq 0 ]; then
    result=ok
  else
    result="FAILED (exit $status; log fuzz/$log; artifacts fuzz/artifacts/$target/)"
    failed=1
    grep -E '^(SUMMARY|==[0-9]+==ERROR)|panicked at' "$log" | head -3 >&2
  fi
  summary+=("$(printf '%-10s %s  %ss  execs %s (%s/s)  cov %s  ft %s  corpus %s' \
    "$target" "$result" "$secs" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$corpus")")
  echo "${summary[-1]}"
done
exit "$failed"
