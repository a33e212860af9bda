//! Unfiltered netCDF-4 appenders (issue 13): netCDF4-python's default
//! `createVariable` (and xarray's `to_netcdf`) writes no compression. A
//! writer appending to `(time, 30, 40)` float32 along the unlimited `time`
//! dimension, killed with SIGKILL (testdata/killed_appender.py --writer
//! netcdf4 --filter none), salvaged with the binary and checked row by row
//! against the writer's formula and the oracle of the killed file's bytes
//! (tests/common/appender.rs).
//!
//! A netCDF-4 file always holds several chunked unfiltered datasets: the
//! variable, and the dimension `time`, a "dimension without a variable"
//! (4-byte chunks netCDF-C never writes). Every case asserts no row at a
//! wrong position and, where placement is possible, at least 95% of the
//! rows on disk at their path.

mod common;

use common::appender::{assert_rows, assert_unverified, check, salvage, write, Expect};
use common::have_python;

use std::path::Path;

use serde_json::Value;

/// netCDF4-python and h5py (the checker) are needed.
fn have_netcdf4(what: &str) -> bool {
    have_python(&["h5py", "numpy", "netCDF4"], what)
}

/// `killed_appender.py --writer netcdf4 --filter none --rank 3` with `extra`.
fn netcdf4(dir: &Path, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let args = [
        &["--writer", "netcdf4", "--filter", "none", "--rank", "3"][..],
        extra,
    ]
    .concat();
    write(dir, name, &args)
}

/// Salvages `killed` (with `flags`), checks every row: placed at the path.
fn at_path(killed: &Path, flags: &[&str], what: &str) -> Value {
    let out = salvage(killed, "out.h5", flags);
    let v = check(killed, &out);
    assert_rows(&v, Expect::AtPath, what);
    assert_unverified(&v, what);
    v
}

/// Explicit chunks `(16, 30, 40)`, a 1 MiB chunk cache, `sync()` every 200
/// steps, killed 190 steps after the last one: the stale header (its index
/// proves the synced rows) is the template; the chunks evicted after the
/// sync follow in allocation order. The dimension `time` (4-byte chunks,
/// never written) takes no part.
#[test]
fn netcdf4_unfiltered_killed_between_syncs() {
    if !have_netcdf4("netcdf4_unfiltered_killed_between_syncs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let killed = netcdf4(
        dir.path(),
        "killed.nc",
        &[
            "--chunk-rows",
            "16",
            "--chunk-cache-kib",
            "1024",
            "--flush-every",
            "200",
            "--kill-after-steps",
            "590",
        ],
    );
    let v = at_path(&killed, &[], "netcdf4 unfiltered synced");
    let shape = v["datasets"]["series0"]["shape"][0].as_u64().unwrap_or(0);
    assert!(shape > 4000, "nothing beyond the sync placed: {v}");
}

/// netCDF-C's default chunking (`(1, 30, 40)`: 4800-byte chunks), never
/// synced after the definitions: its own header (0 records) is the template.
#[test]
fn netcdf4_unfiltered_default_chunking() {
    if !have_netcdf4("netcdf4_unfiltered_default_chunking") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let killed = netcdf4(
        dir.path(),
        "killed.nc",
        &[
            "--nc-chunking",
            "default",
            "--chunk-cache-kib",
            "1024",
            "--kill-after-steps",
            "500",
        ],
    );
    at_path(&killed, &[], "netcdf4 unfiltered default chunking");
}

/// Never synced, salvaged with `--template` (a healthy file of the same
/// script): the input's own header still describes `series0` (netCDF-C
/// writes the definitions at `enddef`), the template's dimension `time`
/// takes no part either.
#[test]
fn netcdf4_unfiltered_never_synced_with_template() {
    if !have_netcdf4("netcdf4_unfiltered_never_synced_with_template") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let args = ["--chunk-rows", "16", "--chunk-cache-kib", "1024"];
    let killed = netcdf4(
        dir.path(),
        "killed.nc",
        &[&args[..], &["--kill-after-steps", "600"]].concat(),
    );
    let template = netcdf4(
        dir.path(),
        "template.nc",
        &[&args[..], &["--steps", "20"]].concat(),
    );
    at_path(
        &killed,
        &["--template", template.to_str().unwrap()],
        "netcdf4 unfiltered --template",
    );
}

/// Two variables of the same chunk size appending side by side: which
/// chunk is whose cannot be told, everything goes to /lost+found, nothing
/// is placed.
#[test]
fn netcdf4_unfiltered_two_variables_are_never_guessed() {
    if !have_netcdf4("netcdf4_unfiltered_two_variables_are_never_guessed") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let killed = netcdf4(
        dir.path(),
        "killed.nc",
        &[
            "--datasets",
            "2",
            "--chunk-rows",
            "16",
            "--chunk-cache-kib",
            "1024",
            "--kill-after-steps",
            "600",
        ],
    );
    let out = salvage(&killed, "out.h5", &[]);
    let v = check(&killed, &out);
    assert_rows(&v, Expect::LostFound, "netcdf4 unfiltered two variables");
}
