#!/usr/bin/env bash
# Rebuilds the pictures in docs/ (scan --map, rendered by rsvg-convert):
# a healthy worker file, the same truncated, with its first 2 KiB lost,
# and a default-libver worker killed (SIGKILL) after 2500 configs with its
# file open (its root group's names never reached the disk).
# Needs a built h5salvage (cargo build --release), h5py and rsvg-convert.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${H5SALVAGE:-target/release/h5salvage}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 testdata/killed_worker.py "$tmp/worker_killed.h5" --libver earliest --configs 3000 \
  --kill-self-after 2500 > /dev/null 2>&1 || true
bin=$(realpath "$bin")
draw() {
  # Run from the file's directory: the picture's title names the file only.
  (cd "$(dirname "$1")" && "$bin" scan --map "$tmp/$2.svg" "$(basename "$1")" > /dev/null) || true
  rsvg-convert -b white "$tmp/$2.svg" -o "docs/$2.png"
}
draw testdata/worker_earliest.h5 map_healthy
draw testdata/damaged/worker_truncated.h5 map_truncated
draw testdata/damaged/worker_no_superblock.h5 map_no_superblock
draw "$tmp/worker_killed.h5" map_killed
ls -l docs/*.png
