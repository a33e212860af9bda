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

/// `killed_appender.py --writer netcdf4 --filter none --rank 3` with
/// chunks `(16, 30, 40)` (76800 bytes) and a 1 MiB chunk cache (small
/// files whose chunks leave the cache as in a long run), then `extra`
/// (a later option overrides).
fn netcdf4(dir: &Path, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let args = [
        &["--writer", "netcdf4", "--filter", "none", "--rank", "3"][..],
        &["--chunk-rows", "16", "--chunk-cache-kib", "1024"],
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
        &["--flush-every", "200", "--kill-after-steps", "590"],
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
        &["--nc-chunking", "default", "--kill-after-steps", "500"],
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
    let killed = netcdf4(dir.path(), "killed.nc", &["--kill-after-steps", "600"]);
    let template = netcdf4(dir.path(), "template.nc", &["--steps", "20"]);
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
        &["--datasets", "2", "--kill-after-steps", "600"],
    );
    let out = salvage(&killed, "out.h5", &[]);
    let v = check(&killed, &out);
    assert_rows(&v, Expect::LostFound, "netcdf4 unfiltered two variables");
}

/// `scan --json` of `input`.
fn scan(input: &Path) -> Value {
    let o = std::process::Command::new(common::bin())
        .args(["scan", "--json"])
        .arg(input)
        .output()
        .unwrap();
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The dimension `time` is left out on its own recorded attributes only in
/// a file netCDF-C wrote: the same killed file whose root `_NCProperties`
/// no longer names a `netcdf=` version keeps both chunk sizes (the 4-byte
/// dimension could hold any run of bytes), so nothing is cut or placed.
#[test]
fn netcdf4_dimension_left_out_only_for_netcdf_c_files() {
    if !have_netcdf4("netcdf4_dimension_left_out_only_for_netcdf_c_files") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let killed = netcdf4(dir.path(), "killed.nc", &["--kill-after-steps", "300"]);
    let v = scan(&killed);
    assert!(
        v["chunk_search"]["unfiltered_found"].as_u64().unwrap_or(0) > 0,
        "{}",
        v["chunk_search"]
    );
    let mut b = std::fs::read(&killed).unwrap();
    let at = b
        .windows(8)
        .position(|w| w == b"netcdf=4")
        .expect("_NCProperties");
    b[at..at + 7].copy_from_slice(b"netcdX=");
    let other = dir.path().join("other.nc");
    std::fs::write(&other, &b).unwrap();
    let v = scan(&other);
    assert_eq!(v["chunk_search"]["unfiltered_found"], 0, "{v}");
    assert_eq!(v["chunk_search"]["placed"], Value::Array(vec![]), "{v}");
}

/// A `time` coordinate variable (float64, netCDF-C's default 4096-byte
/// chunks) written every step beside the series: two unfiltered chunk
/// sizes, and 75 time chunks are exactly one 307200-byte series chunk (65
/// chunks of 4800 bytes are one of 4800 and 75 of 4096): which dataset a
/// run of bytes belongs to cannot be proven, so nothing is cut or placed
/// (and `scan` says why). No row anywhere at a wrong position.
#[test]
fn netcdf4_unfiltered_time_variable_is_not_guessed() {
    if !have_netcdf4("netcdf4_unfiltered_time_variable_is_not_guessed") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, chunking) in [("explicit.nc", "explicit"), ("default.nc", "default")] {
        let killed = netcdf4(
            dir.path(),
            name,
            &[
                "--time-variable",
                "--nc-chunking",
                chunking,
                "--chunk-rows",
                "64",
                "--kill-after-steps",
                "500",
            ],
        );
        let v = scan(&killed);
        let reason = v["chunk_search"]["unfiltered_stopped"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(reason.contains("several chunk sizes"), "{chunking}: {v}");
        assert_eq!(v["chunk_search"]["placed"], Value::Array(vec![]), "{v}");
        let out = salvage(&killed, &format!("{chunking}_out.h5"), &[]);
        let c = check(&killed, &out);
        let d = &c["datasets"]["series0"];
        assert!(d["on_disk"].as_u64().unwrap_or(0) > 0, "{chunking}: {d}");
        assert_eq!(d["wrong"], 0, "{chunking}: {d}");
        assert_eq!(d["at_path"], 0, "{chunking}: {d}");
    }
}
