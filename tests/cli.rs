//! The `h5salvage` binary: exit codes, human and JSON reports.

use std::path::Path;
use std::process::Command;

fn h5salvage(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_h5salvage"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run h5salvage");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exit_codes_tell_healthy_damaged_nothing_and_errors() {
    assert_eq!(h5salvage(&["scan", "testdata/worker_earliest.h5"]).0, 0);
    assert_eq!(
        h5salvage(&["scan", "testdata/damaged/worker_truncated.h5"]).0,
        1
    );
    assert_eq!(
        h5salvage(&["scan", "testdata/damaged/worker_open_for_write.h5"]).0,
        1
    );
    assert_eq!(h5salvage(&["scan", "testdata/empty.h5"]).0, 3);
    assert_eq!(h5salvage(&["scan", "testdata/not_hdf5.txt"]).0, 3);
    // The worst file decides.
    assert_eq!(
        h5salvage(&["scan", "testdata/worker_earliest.h5", "testdata/empty.h5"]).0,
        3
    );
    let (code, _, err) = h5salvage(&["scan", "testdata/no_such_file.h5"]);
    assert_eq!(code, 2);
    assert!(err.contains("no_such_file.h5"), "{err}");
    assert_eq!(h5salvage(&["scan"]).0, 2, "usage error");
    assert_eq!(h5salvage(&["frobnicate"]).0, 2, "usage error");
}

#[test]
fn human_report_names_truncation_and_structures() {
    let (_, out, _) = h5salvage(&["scan", "testdata/damaged/worker_truncated.h5"]);
    assert!(out.contains("TRUNCATED"), "{out}");
    assert!(
        out.contains("truncated file: eof 42820 < stored_eof 71368"),
        "{out}"
    );
    assert!(out.contains("verdict: DAMAGED"), "{out}");
    let (_, out, _) = h5salvage(&["scan", "testdata/damaged/worker_no_superblock.h5"]);
    assert!(out.contains("file signature not found"), "{out}");
    let (_, out, _) = h5salvage(&["scan", "testdata/damaged/worker_open_for_write.h5"]);
    assert!(out.contains("open for write"), "{out}");
}

#[test]
fn json_report_has_the_documented_fields() {
    let (code, out, _) = h5salvage(&["scan", "--json", "testdata/damaged/worker_truncated.h5"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "damaged");
    assert_eq!(v["size"], 42820);
    let sb = &v["superblock"];
    for k in [
        "offset",
        "version",
        "size_of_offsets",
        "size_of_lengths",
        "eof_address",
        "root_address",
        "status_flags",
    ] {
        assert!(!sb[k].is_null(), "superblock.{k}");
    }
    assert_eq!(sb["eof_address"], 71368);
    let objects = v["objects"].as_array().unwrap();
    assert!(!objects.is_empty());
    for o in objects {
        for k in ["path", "kind", "address", "status", "problems"] {
            assert!(o.get(k).is_some(), "{k} missing in {o}");
        }
        if o["kind"] == "dataset" {
            for k in ["shape", "dtype", "layout", "chunks_total", "chunks_present"] {
                assert!(o.get(k).is_some(), "{k} missing in {o}");
            }
        }
    }
    assert!(v["summary"]["datasets"].as_u64().unwrap() > 0);
    // Several files: an array.
    let (_, out, _) = h5salvage(&[
        "scan",
        "--json",
        "testdata/empty.h5",
        "testdata/not_hdf5.txt",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["verdict"], "empty");
    assert_eq!(v[0]["superblock"], serde_json::Value::Null);
    assert_eq!(v[1]["verdict"], "not_hdf5");
    assert!(Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .is_dir());
}
