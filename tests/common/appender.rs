//! Killed appending writers (issue 13): make them with
//! testdata/killed_appender.py, salvage them with the `h5salvage` binary and
//! check the output row by row against the writer's formula
//! (tests/py/appender_check.py) and the oracle computed from the killed
//! file's bytes alone (tests/py/appender_oracle.py). Used by
//! tests/unindexed_chunks.rs, tests/unindexed_netcdf.rs and tests/appender_matrix.rs.

use super::{bin, py_script, python_timed, testdata};

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Runs a python script with a time limit (libhdf5 can loop on damaged
/// files); returns (exit status success or killed by a signal, stdout).
pub fn python(script: &Path, args: &[&str]) -> (std::process::ExitStatus, String) {
    let o = python_timed(600)
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    (o.status, String::from_utf8_lossy(&o.stdout).into_owned())
}

/// A file written by killed_appender.py into `dir` with `args`.
pub fn write(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut all = vec![out.to_str().unwrap()];
    all.extend_from_slice(args);
    let (status, _) = python(&testdata().join("killed_appender.py"), &all);
    let killed = args.contains(&"--kill-after-steps");
    if killed {
        use std::os::unix::process::ExitStatusExt;
        // `timeout` passes its child's SIGKILL on (or reports 128 + 9);
        // 124 would be the time limit.
        assert!(
            status.signal() == Some(9) || status.code() == Some(137),
            "the writer did not kill itself: {status:?}"
        );
    } else {
        assert!(status.success(), "writer failed: {args:?}");
    }
    out
}

/// The writer killed after `kill_steps` steps (`killed.h5`) and the same
/// writer run to completion for 20 steps (`template.h5`), both with `args`.
pub fn killed_and_template(dir: &Path, args: &[&str], kill_steps: &str) -> (PathBuf, PathBuf) {
    let killed = write(
        dir,
        "killed.h5",
        &[args, &["--kill-after-steps", kill_steps]].concat(),
    );
    let template = write(dir, "template.h5", &[args, &["--steps", "20"]].concat());
    (killed, template)
}

/// `h5salvage scan --json FLAGS... INPUT`: the report.
pub fn scan_json(input: &Path, flags: &[&str]) -> Value {
    let o = Command::new(bin())
        .args(["scan", "--json"])
        .args(flags)
        .arg(input)
        .output()
        .unwrap();
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("scan --json {input:?}: {e}: {o:?}"))
}

/// Salvages `input` with the binary and extra flags; returns the output.
pub fn salvage(input: &Path, out_name: &str, flags: &[&str]) -> PathBuf {
    let out = input.with_file_name(out_name);
    let o = Command::new(bin())
        .arg("salvage")
        .arg(input)
        .arg("-o")
        .arg(&out)
        .args(flags)
        .output()
        .unwrap();
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "salvage failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Oracle of the killed file, then the check of `out` against it.
pub fn check(killed: &Path, out: &Path) -> Value {
    let oracle = killed.with_extension("oracle.json");
    let (status, text) = python(
        &py_script("appender_oracle.py"),
        &[killed.to_str().unwrap()],
    );
    assert!(status.success(), "oracle failed");
    std::fs::write(&oracle, text).unwrap();
    let meta = PathBuf::from(format!("{}.json", killed.display()));
    let (status, text) = python(
        &py_script("appender_check.py"),
        &[
            out.to_str().unwrap(),
            meta.to_str().unwrap(),
            oracle.to_str().unwrap(),
        ],
    );
    assert!(status.success(), "checker failed on {}", out.display());
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Where the recovered rows must be.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Expect {
    /// At the dataset's own path (>= 95% of the rows on disk).
    AtPath,
    /// Under /lost+found only (nothing at the path).
    LostFound,
}

/// The assertions every case shares; returns the check for more.
pub fn assert_rows(v: &Value, expect: Expect, what: &str) {
    assert_rows_with(v, expect, what, false);
}

/// [`assert_rows`]; `unrecorded`: rows flushed once may be missing (a
/// version-2 B-tree node split moved their only record into a parent that
/// never reached the disk: no record on disk proves their position any
/// more), but every row an on-disk index record names must be at its path.
pub fn assert_rows_with(v: &Value, expect: Expect, what: &str, unrecorded: bool) {
    let sets = v["datasets"].as_object().unwrap();
    assert!(!sets.is_empty(), "{what}: no dataset checked: {v}");
    for (name, d) in sets {
        let n = |k: &str| d[k].as_u64().unwrap_or(0);
        let on_disk = n("on_disk");
        assert!(
            on_disk > 0,
            "{what}: {name}: the oracle found no row on disk: {d}"
        );
        assert_eq!(
            n("wrong"),
            0,
            "{what}: {name}: rows at a wrong position: {d}"
        );
        assert_eq!(n("beyond_disk"), 0, "{what}: {name}: rows not on disk: {d}");
        if unrecorded {
            assert_eq!(
                n("indexed_missing"),
                0,
                "{what}: {name}: rows an on-disk index record names are not at the path: {d}"
            );
        } else {
            assert_eq!(
                n("proven_missing"),
                0,
                "{what}: {name}: rows an index proves are not at the path: {d}"
            );
        }
        let (got, label) = match expect {
            Expect::AtPath => (n("at_path"), "at their path"),
            Expect::LostFound => {
                assert_eq!(
                    n("at_path"),
                    0,
                    "{what}: {name}: placed, not ambiguous: {d}"
                );
                (n("lost_found"), "under /lost+found")
            }
        };
        assert!(
            got * 100 >= on_disk * 95,
            "{what}: {name}: {got} of {on_disk} rows on disk recovered {label}: {d}"
        );
        if expect == Expect::AtPath && n("at_path") > 0 {
            assert_eq!(
                d["partial"], true,
                "{what}: {name}: not marked partial: {d}"
            );
        }
        let mut shown = d.clone();
        if let Some(t) = shown["inferred"].as_str() {
            shown["inferred"] = Value::from(t.chars().take(300).collect::<String>());
        }
        eprintln!("{what}: {name}: {shown}");
    }
}

/// Placed rows are listed in `h5salvage_inferred` with the rule.
pub fn assert_inferred(v: &Value, what: &str) {
    for (name, d) in v["datasets"].as_object().unwrap() {
        let text = d["inferred"].as_str().unwrap_or_default();
        assert!(
            text.starts_with("rule: allocation order"),
            "{what}: {name}: h5salvage_inferred missing: {d}"
        );
        assert!(text.contains("<- file offset"), "{what}: {name}: {text}");
    }
}

/// Placed unfiltered rows are listed in `h5salvage_inferred`, which says
/// they are unverified (no framing, no checksum) and how they were cut.
pub fn assert_unverified(v: &Value, what: &str) {
    for (name, d) in v["datasets"].as_object().unwrap() {
        let text = d["inferred"].as_str().unwrap_or_default();
        assert!(
            text.starts_with("rule: UNVERIFIED unfiltered chunks")
                && text.contains("allocation order")
                && text.contains("<- file offset"),
            "{what}: {name}: h5salvage_inferred does not say unverified: {d}"
        );
    }
}
