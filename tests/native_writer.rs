//! The native writer backend (src/write/native/): which inputs take it, and
//! that its outputs are exact (compare_h5.py), readable by Debian's
//! libhdf5 1.10 (h5dump) and h5py, modifiable by both, and healthy to our
//! own scan. `H5SALVAGE_WRITER_LOG` makes the binary say which backend
//! wrote each input.

mod common;

use std::path::Path;
use std::process::Command;

use common::{
    bin, check_python, h5dump_reads, have_h5py, have_tool, py_script, python_code, scan_healthy,
    testdata, worker,
};

/// Runs `h5salvage ARGS` with the writer log on (and `env` set); returns
/// stderr, panicking unless it exits with one of `ok`.
fn run(args: &[&Path], env: &[(&str, &str)], ok: &[i32]) -> String {
    let mut c = Command::new(bin());
    c.args(args).env("H5SALVAGE_WRITER_LOG", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("h5salvage");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        o.status.code().is_some_and(|c| ok.contains(&c)),
        "{args:?}: {:?}\n{}{err}",
        o.status,
        String::from_utf8_lossy(&o.stdout)
    );
    err
}

fn compare_h5(orig: &Path, out: &Path, skip: &[&str]) {
    let script = py_script("compare_h5.py");
    let mut args: Vec<&std::ffi::OsStr> =
        vec![script.as_os_str(), orig.as_os_str(), out.as_os_str()];
    for s in skip {
        args.push("--skip".as_ref());
        args.push(s.as_ref());
    }
    check_python(&args);
}

/// h5py (HDF5 2.0) opens a copy of `out` read-write, adds a group with an
/// attribute, a dataset, a chunked dataset and attributes to an existing
/// object (past the compact maximum), deletes a link, and reads it all
/// back; libhdf5 1.10 (h5copy) then adds a group to the root.
fn modifiable(out: &Path, existing: &str, dir: &Path) {
    let copy = dir.join("modified.h5");
    std::fs::copy(out, &copy).unwrap();
    let code = r#"
import sys, h5py, numpy as np
p, existing = sys.argv[1], sys.argv[2]
with h5py.File(p, "a") as f:
    n = len(f)
    g = f.create_group("added_by_h5py")
    g.attrs["x"] = 1
    g.create_dataset("d", data=np.arange(10))
    g.create_dataset("c", data=np.arange(100.0), chunks=(7,), compression="gzip")
    for i in range(12):
        f[existing].attrs["added_%d" % i] = i
    f[existing].attrs["added_text"] = "hello"
with h5py.File(p, "r") as f:
    assert len(f) == n + 1, (len(f), n)
    assert list(f["added_by_h5py/d"][:]) == list(range(10))
    assert list(f["added_by_h5py/c"][:]) == list(np.arange(100.0))
    a = f[existing].attrs
    assert a["added_11"] == 11 and a["added_text"] == "hello"
    f.visititems(lambda name, o: o[()] if isinstance(o, h5py.Dataset) else None)
print("ok")
"#;
    let got = python_code(code, &[copy.as_os_str(), existing.as_ref()]);
    assert!(got.contains("ok"), "{got}");
    if have_tool("h5copy", "native outputs modified by libhdf5 1.10") {
        let o = Command::new("h5copy")
            .arg("-i")
            .arg(out)
            .arg("-o")
            .arg(&copy)
            .args(["-s", existing, "-d", "/added_by_h5copy"])
            .output()
            .expect("h5copy");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        h5dump_reads(&copy);
        scan_healthy(&copy);
    }
}

/// The worker fixtures (both libvers) and bench-like worker files take the
/// native path and come back exact; the output is read by h5dump, scanned
/// healthy, and modified by h5py and libhdf5 1.10.
#[test]
fn worker_files_are_written_natively_and_exactly() {
    if !have_h5py("worker_files_are_written_natively_and_exactly") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = vec![
        testdata().join("worker_earliest.h5"),
        testdata().join("worker_latest.h5"),
        testdata().join("many_members_latest.h5"),
        testdata().join("filters_earliest.h5"),
        testdata().join("resized_latest.h5"),
        testdata().join("pytables_zlib_fletcher.h5"),
    ];
    inputs.push(worker(dir.path(), "earliest", 40, 0));
    inputs.push(worker(dir.path(), "latest", 40, 0));
    let dump = have_tool("h5dump", "native outputs read by libhdf5 1.10");
    // Filters libhdf5 1.10 lacks (lzf, ...) stop h5dump on the input too.
    let dumpable = |p: &Path| {
        Command::new("h5dump")
            .arg(p)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    for (i, input) in inputs.iter().enumerate() {
        let out = dir.path().join(format!("out_{i}.h5"));
        let log = run(&["salvage".as_ref(), input, "-o".as_ref(), &out], &[], &[0]);
        assert!(
            log.contains("writer: native:"),
            "{}: {log}",
            input.display()
        );
        compare_h5(input, &out, &[]);
        scan_healthy(&out);
        if dump && dumpable(input) {
            h5dump_reads(&out);
        }
    }
    modifiable(&dir.path().join("out_6.h5"), "/config_0003", dir.path());
}

/// A merge of bench-like workers is written natively: every input's groups
/// are exact in the output (thousands of compact links in the root are
/// read by libhdf5 1.10 and 2.0 and can be added to).
#[test]
fn merge_of_workers_is_native_and_exact() {
    if !have_h5py("merge_of_workers_is_native_and_exact") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for libver in ["earliest", "latest"] {
        let a = worker(dir.path(), libver, 300, 0);
        let b = worker(dir.path(), libver, 300, 300);
        let out = dir.path().join(format!("merged_{libver}.h5"));
        let log = run(&["merge".as_ref(), &a, &b, "-o".as_ref(), &out], &[], &[0]);
        assert_eq!(log.matches("writer: native:").count(), 2, "{log}");
        assert!(!log.contains("libhdf5 from"), "{log}");
        for input in [&a, &b] {
            compare_h5(input, &out, &["/init"]);
        }
        scan_healthy(&out);
        if have_tool("h5dump", "native merge output read by libhdf5 1.10") {
            h5dump_reads(&out);
        }
        modifiable(&out, "/config_0301", dir.path());
    }
}

/// Inputs outside the subset (references, committed types, chunked
/// variable-length data, variable-length fill values, huge attributes)
/// are written by libhdf5, exactly; in a merge, a native output continues
/// with libhdf5 when such an input arrives, and both inputs are exact.
#[test]
fn other_inputs_move_the_output_to_libhdf5() {
    if !have_h5py("other_inputs_move_the_output_to_libhdf5") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "rich_earliest.h5",
        "chunked_heap_latest.h5",
        "vlen_fill_earliest.h5",
        "huge_attrs_latest.h5",
    ] {
        let input = testdata().join(name);
        let out = dir.path().join(name);
        let log = run(
            &["salvage".as_ref(), &input, "-o".as_ref(), &out],
            &[],
            &[0],
        );
        assert!(log.contains("writer: libhdf5 from"), "{name}: {log}");
        compare_h5(&input, &out, &[]);
    }
    // Merge: a worker (native), then an input with chunked variable-length
    // strings and an object reference (libhdf5 from there on).
    let w = worker(dir.path(), "earliest", 20, 0);
    let other = dir.path().join("x_other.h5");
    let code = r#"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    g = f.create_group("unit")
    g.create_dataset("names", data=np.array(["a", "bc", "def"] * 10, dtype=h5py.string_dtype()), chunks=(4,))
    g.create_dataset("values", data=np.arange(6.0))
    g.attrs["ref"] = g["values"].ref
    g.attrs["ref"]
"#;
    python_code(code, &[other.as_os_str()]);
    let out = dir.path().join("merged.h5");
    let log = run(
        &["merge".as_ref(), &w, &other, "-o".as_ref(), &out],
        &[],
        &[0],
    );
    assert!(log.contains("writer: native:"), "{log}");
    assert!(log.contains("writer: libhdf5 from"), "{log}");
    compare_h5(&w, &out, &["/init"]);
    compare_h5(&other, &out, &[]);
    scan_healthy(&out);
}

/// `H5SALVAGE_WRITER=libhdf5` keeps the libhdf5 backend from the start.
#[test]
fn the_libhdf5_backend_can_be_forced() {
    if !have_h5py("the_libhdf5_backend_can_be_forced") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = testdata().join("worker_latest.h5");
    let out = dir.path().join("out.h5");
    let log = run(
        &["salvage".as_ref(), &input, "-o".as_ref(), &out],
        &[("H5SALVAGE_WRITER", "libhdf5")],
        &[0],
    );
    assert!(!log.contains("writer: native"), "{log}");
    compare_h5(&input, &out, &[]);
}

/// Edge cases (tests/py/native_edge.py): null and scalar dataspaces, an
/// empty chunked dataset, 10,000 chunks (a 3-level chunk index), gzip with
/// shuffle and Fletcher-32, a partly written dataset with a fill value,
/// variable-length strings compact and contiguous, sequences, a compound
/// with a string member and an array member, enum, opaque, bool,
/// big-endian, float16, non-ASCII names, 19 attributes, soft and external
/// links, tracked creation order: written natively (both libvers), exact,
/// read by h5dump, healthy to our scan; then h5py extends a dataset
/// (libhdf5 adds to our chunk index), overwrites chunks, rewrites a
/// variable-length value, adds attributes past the compact maximum and a
/// member to a tracked group, and reads it all back.
#[test]
fn edge_cases_are_exact_and_modifiable() {
    if !have_h5py("edge_cases_are_exact_and_modifiable") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = py_script("native_edge.py");
    for libver in ["earliest", "latest"] {
        let input = dir.path().join(format!("edge_{libver}.h5"));
        check_python(&[
            script.as_os_str(),
            "make".as_ref(),
            input.as_os_str(),
            libver.as_ref(),
        ]);
        let out = dir.path().join(format!("out_{libver}.h5"));
        let log = run(
            &["salvage".as_ref(), &input, "-o".as_ref(), &out],
            &[],
            &[0],
        );
        assert!(log.contains("writer: native:"), "{log}");
        compare_h5(&input, &out, &[]);
        scan_healthy(&out);
        if have_tool("h5dump", "native outputs read by libhdf5 1.10") {
            h5dump_reads(&out);
        }
        let copy = dir.path().join(format!("modified_{libver}.h5"));
        std::fs::copy(&out, &copy).unwrap();
        let got = check_python(&[script.as_os_str(), "modify".as_ref(), copy.as_os_str()]);
        assert!(got.contains("modified ok"), "{got}");
        scan_healthy(&copy);
    }
}
