#!/usr/bin/env bash
# The Python package's checks, run by .ci/run: build the wheel with maturin
# (HDF5 compiled from source and linked statically; the cargo target
# directory target/wheel is kept between runs, so only the first build
# compiles HDF5; it lives outside the checkout, in ~/.cache, so that a CI run
# in a fresh clone on the same machine does not compile HDF5 again: override
# with H5SALVAGE_WHEEL_TARGET), install it into a fresh virtual environment with the
# test dependencies, and run python/tests with pytest.
#
# Needs network access to PyPI (maturin, cmake >= 3.26, pytest, h5py, numpy).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/py-ci
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "maturin>=1.5,<2" "cmake>=3.26" pytest h5py numpy

rm -rf target/wheels
start=$(date +%s)
wheel_target=${H5SALVAGE_WHEEL_TARGET:-$HOME/.cache/h5salvage/wheel-target}
mkdir -p "$wheel_target"
PATH="$PWD/$venv/bin:$PATH" CARGO_TARGET_DIR="$wheel_target" \
  nice -n 10 "$venv/bin/maturin" build --release --quiet --out target/wheels
echo "wheel: built in $(( $(date +%s) - start )) s: $(ls target/wheels)"
"$venv/bin/pip" install -q target/wheels/h5salvage-*.whl

# Run from outside the source tree so that `import h5salvage` is the
# installed wheel, not python/h5salvage (which lacks the native module).
cd python/tests
PATH="$OLDPWD/$venv/bin:$PATH" CI="${CI:-1}" "$OLDPWD/$venv/bin/python" -m pytest -q -p no:cacheprovider . 2>&1 | tee ../../target/pytest.log
tail -n 1 ../../target/pytest.log | grep -q " passed" && ! tail -n 1 ../../target/pytest.log | grep -Eq "failed|error"
