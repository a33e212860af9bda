//! Helpers shared by the integration tests: `mod common;` at the top of a
//! test file, then `common::testdata()`, `common::python()`, ...
//!
//! - Paths: [`testdata`], [`py_script`] (tests/py/), [`bin`] (the
//!   h5salvage binary built for the tests), [`fixtures`] (every healthy
//!   fixture with the listing h5py wrote of it in testdata/expected/).
//! - Python (h5py, netCDF4, PyTables, h5netcdf): every child is started by
//!   [`python`] (or [`python_timed`]), which sets the environment the tests
//!   need; [`have_python`] / [`have_h5py`] apply the one policy: under CI
//!   (the `CI` environment variable set) a missing module FAILS the test,
//!   elsewhere the test skips and says so on stderr (`SKIPPED: ...`).
//! - Killed appending writers (testdata/killed_appender.py): [`appender`]
//!   writes, salvages and checks them row by row.
//!
//! Each test binary uses a part of this module.
#![allow(dead_code)]

pub mod appender;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The repository's root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The fixtures directory, testdata/.
pub fn testdata() -> PathBuf {
    root().join("testdata")
}

/// A helper script in tests/py/.
pub fn py_script(name: &str) -> PathBuf {
    root().join("tests/py").join(name)
}

/// The h5salvage binary built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_h5salvage")
}

/// Every healthy fixture with an expected listing (testdata/expected/
/// NAME.json, written by h5py, next to testdata/NAME.h5): (name, path of
/// the .h5, listing), sorted by name.
pub fn fixture_paths() -> Vec<(String, PathBuf, Value)> {
    let mut out = Vec::new();
    let dir = testdata().join("expected");
    for entry in std::fs::read_dir(&dir).expect("testdata/expected") {
        let p = entry.unwrap().path();
        if p.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let stem = p.file_stem().unwrap().to_string_lossy().to_string();
        let h5 = testdata().join(format!("{stem}.h5"));
        let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        out.push((stem, h5, v));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 8, "expected listings missing: {}", out.len());
    out
}

/// [`fixture_paths`] with the fixtures' bytes: (name, bytes, listing).
pub fn fixtures() -> Vec<(String, Vec<u8>, Value)> {
    fixture_paths()
        .into_iter()
        .map(|(name, h5, v)| {
            let bytes = std::fs::read(&h5).unwrap_or_else(|e| panic!("{}: {e}", h5.display()));
            (name, bytes, v)
        })
        .collect()
}

/// A `python3` command with the environment every test child needs. A
/// child that must hold libhdf5's file lock (a live writer another process
/// should see) takes it back out: `.env_remove("HDF5_USE_FILE_LOCKING")`.
pub fn python() -> Command {
    let mut c = Command::new("python3");
    // Tests run in threads: a child inherits HDF5 file descriptors (and
    // their flock) of files other threads are writing.
    c.env("HDF5_USE_FILE_LOCKING", "FALSE");
    c
}

/// [`python`] killed after `seconds` (libhdf5 can loop forever on a
/// damaged file): `timeout SECONDS python3`.
pub fn python_timed(seconds: u32) -> Command {
    let mut c = Command::new("timeout");
    c.arg(seconds.to_string()).arg("python3");
    c.env("HDF5_USE_FILE_LOCKING", "FALSE");
    c
}

/// Runs python3 with `args` (a script or `-c CODE`, then its arguments):
/// (success, stdout followed by stderr).
pub fn run_python<S: AsRef<OsStr>>(args: &[S]) -> (bool, String) {
    let o = python().args(args).output().expect("python3");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// Runs python3 with `args`; panics with its output unless it succeeds;
/// returns its stdout.
pub fn check_python<S: AsRef<OsStr>>(args: &[S]) -> String {
    let o = python().args(args).output().expect("python3");
    assert!(
        o.status.success(),
        "python3 failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `python3 -c CODE ARGS...`; panics with its output unless it
/// succeeds; returns its stdout.
pub fn python_code<S: AsRef<OsStr>>(code: &str, args: &[S]) -> String {
    let mut all: Vec<&OsStr> = vec![OsStr::new("-c"), OsStr::new(code)];
    all.extend(args.iter().map(AsRef::as_ref));
    check_python(&all)
}

/// Whether python3 can import every one of `modules`. The one policy: under
/// CI (the `CI` environment variable set) a missing module fails the test,
/// since a test that skips there passes having tested nothing; elsewhere
/// this says on stderr that `what` is skipped, and the caller returns.
pub fn have_python(modules: &[&str], what: &str) -> bool {
    let import = format!("import {}", modules.join(", "));
    let ok = python()
        .args(["-c", &import])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 with {} is required in CI ({what})",
            modules.join(", ")
        );
        eprintln!("SKIPPED: {what}: python3 cannot `{import}` (install testdata/requirements.txt)");
    }
    ok
}

/// [`have_python`] for h5py and numpy.
pub fn have_h5py(what: &str) -> bool {
    have_python(&["h5py", "numpy"], what)
}

/// Whether a command-line tool runs (`tool --version`), with the same
/// policy as [`have_python`]: missing under CI fails the test.
pub fn have_tool(tool: &str, what: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is required in CI ({what})"
        );
        eprintln!("SKIPPED: {what}: {tool} not found");
    }
    ok
}

/// Runs tests/py/compare.py on a salvaged file `out` of `orig` (killed
/// after ten minutes: libhdf5 can hang): its JSON summary and whether it
/// passed (`strict`: `--strict`, a salvage of a healthy file).
pub fn compare(orig: &Path, out: &Path, strict: bool) -> (bool, Value) {
    let mut cmd = python_timed(600);
    cmd.arg(py_script("compare.py")).arg(orig).arg(out);
    if strict {
        cmd.arg("--strict");
    }
    let o = cmd.output().expect("python3");
    let text = String::from_utf8_lossy(&o.stdout);
    let v = serde_json::from_str(&text).unwrap_or_else(|_| {
        panic!(
            "compare.py {} {}: {text}\n{}",
            orig.display(),
            out.display(),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.success(), v)
}

/// Debian's h5dump (libhdf5 1.10) reads all of `out`, data included
/// (killed after ten minutes: libhdf5 can loop).
pub fn h5dump_reads(out: &Path) {
    let o = Command::new("timeout")
        .arg("600")
        .arg("h5dump")
        .arg(out)
        .output()
        .expect("h5dump");
    assert!(
        o.status.success(),
        "h5dump {}: {}",
        out.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Our own `scan --no-carve` calls `out` healthy.
pub fn scan_healthy(out: &Path) {
    let o = Command::new(bin())
        .args(["scan", "--no-carve"])
        .arg(out)
        .output()
        .expect("scan");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.contains("verdict: HEALTHY"),
        "{}: {text}",
        out.display()
    );
}

/// A healthy worker file as bench/gen_healthy.py writes them, in `dir`
/// (`w_LIBVER_START.h5`): `configs` config groups numbered from `start`.
pub fn worker(dir: &Path, libver: &str, configs: u32, start: u32) -> PathBuf {
    let out = dir.join(format!("w_{libver}_{start}.h5"));
    check_python(&[
        root().join("bench/gen_healthy.py").as_os_str(),
        out.as_os_str(),
        "--libver".as_ref(),
        libver.as_ref(),
        "--configs".as_ref(),
        configs.to_string().as_ref(),
        "--start".as_ref(),
        start.to_string().as_ref(),
    ]);
    out
}

/// A `--json` report of a salvage made comparable between the two writers:
/// without its output path and without the one note only the libhdf5
/// backend gives (it cannot write the input's header times; the native
/// writer keeps them).
pub fn comparable_report(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.remove("output");
        if let Some(Value::Array(notes)) = o.get_mut("notes") {
            notes.retain(|n| {
                !n.as_str()
                    .is_some_and(|n| n.starts_with("header times of "))
            });
        }
    }
}

/// `h5salvage ARGS` under `timeout 300` (damaged inputs: libhdf5 can
/// loop), the writer log on (`H5SALVAGE_WRITER_LOG`); `libhdf5` forces
/// that backend, otherwise the default choice is made.
pub fn h5salvage_with_writer(args: &[&std::ffi::OsStr], libhdf5: bool) -> std::process::Output {
    let mut c = Command::new("timeout");
    c.arg("300").arg(bin()).args(args);
    c.env("H5SALVAGE_WRITER_LOG", "1");
    if libhdf5 {
        c.env("H5SALVAGE_WRITER", "libhdf5");
    } else {
        c.env_remove("H5SALVAGE_WRITER");
    }
    c.output().expect("h5salvage")
}
