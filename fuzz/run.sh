#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), seeding the corpora
# from testdata/. Needs the nightly toolchain and cargo-fuzz:
#   cargo install cargo-fuzz
#   fuzz/run.sh 1800
# A crash leaves its input in fuzz/artifacts/TARGET/; copy it to
# tests/regressions/ so that tests/regressions.rs replays it in every test run.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
targets=(${TARGETS:-superblock object_header message nodes walk carve salvage filters vlen carve_base chunks})
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  if [ -z "$(ls -A "fuzz/corpus/$t")" ]; then
    case "$t" in
      # Structured inputs (layouts in src/fuzzing.rs): real chunks and vlen
      # slots taken from the fixtures by fuzz/seeds.py (needs h5py).
      filters | vlen)
        seeds=$(mktemp -d)
        python3 fuzz/seeds.py "$seeds" >/dev/null
        cp "$seeds/$t"/* "fuzz/corpus/$t/"
        rm -rf "$seeds"
        ;;
      # No claimed ranges, a 64 KiB cap, then a whole file.
      chunks)
        for f in testdata/*.h5 testdata/damaged/*.h5; do
          [ -s "$f" ] || continue
          { printf '\000\377\377'; cat "$f"; } > "fuzz/corpus/$t/$(basename "$f")"
        done
        ;;
    esac
  fi
  if [ -z "$(ls -A "fuzz/corpus/$t")" ]; then
    for f in testdata/*.h5 testdata/damaged/*.h5 testdata/unsupported/mdci_*.h5; do
      [ -s "$f" ] || continue
      case "$t" in
        walk | carve_base) cp "$f" "fuzz/corpus/$t/" ;;
        *) head -c 4096 "$f" > "fuzz/corpus/$t/$(basename "$f").head" ;;
      esac
    done
  fi
  echo "== $t for ${secs}s"
  cargo +nightly fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10
done
