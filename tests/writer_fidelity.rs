//! What both writers keep beyond values and types (principle 5), on the
//! fixtures of testdata/generate_fidelity.py (testdata/fidelity/): the
//! character set of link and attribute names, attribute creation-order flags
//! of objects without attributes, the user block, header times (kept by the
//! native writer; never invented by libhdf5, which cannot write given
//! times and says so), and soft-link targets above 64 KiB (a link message
//! cannot hold them: their groups are written as symbol-table groups). Each fixture
//! is salvaged with the default writer and with `H5SALVAGE_WRITER=libhdf5`
//! and compared by tests/py/compare_h5.py, which checks all of these.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{bin, h5dump_reads, have_h5py, have_tool, py_script, python, python_code, testdata};

fn fixture(name: &str) -> PathBuf {
    testdata().join("fidelity").join(name)
}

/// `h5salvage ARGS` with the writer log on (`libhdf5`: that backend
/// forced): stdout (the report) and stderr, after exit 0.
fn h5salvage(args: &[&std::ffi::OsStr], libhdf5: bool) -> String {
    let mut c = Command::new(bin());
    c.args(args).env("H5SALVAGE_WRITER_LOG", "1");
    if libhdf5 {
        c.env("H5SALVAGE_WRITER", "libhdf5");
    } else {
        c.env_remove("H5SALVAGE_WRITER");
    }
    let o = c.output().expect("h5salvage");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "h5salvage {args:?}: {text}");
    text
}

/// `h5salvage salvage INPUT -o OUT` (see [`h5salvage`]).
fn salvage(input: &Path, out: &Path, libhdf5: bool) -> String {
    h5salvage(
        &[
            "salvage".as_ref(),
            input.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ],
        libhdf5,
    )
}

/// compare_h5.py ORIG OUT [--exact-times]: (passed, its output).
fn compare_h5(orig: &Path, out: &Path, exact_times: bool) -> (bool, String) {
    let mut c = python();
    c.arg(py_script("compare_h5.py")).arg(orig).arg(out);
    if exact_times {
        c.arg("--exact-times");
    }
    let o = c.output().expect("python3");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn the_native_writer_keeps_charsets_orders_user_block_and_times() {
    if !have_h5py("writer fidelity") || !have_tool("h5dump", "writer fidelity") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("native_latest.h5");
    let out = dir.path().join("native.h5");
    let log = salvage(&input, &out, false);
    assert!(log.contains("writer: native:"), "{log}");
    let (ok, text) = compare_h5(&input, &out, true);
    assert!(ok, "{text}");
    h5dump_reads(&out);
}

#[test]
fn the_libhdf5_writer_keeps_charsets_orders_and_user_block_and_invents_no_times() {
    if !have_h5py("writer fidelity") || !have_tool("h5dump", "writer fidelity") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, forced) in [
        ("native_latest.h5", true),
        // An object reference: the default writer moves to libhdf5.
        ("libhdf5_latest.h5", false),
        ("libhdf5_latest.h5", true),
    ] {
        let input = fixture(name);
        let out = dir.path().join(format!("{name}.{forced}.h5"));
        let log = salvage(&input, &out, forced);
        assert!(
            forced || log.contains("writer: libhdf5 from"),
            "{name}: {log}"
        );
        // Times are not invented (compare_h5.py's default), and the one
        // object that had some says they were not kept.
        let (ok, text) = compare_h5(&input, &out, false);
        assert!(ok, "{name}: {text}");
        let (exact, _) = compare_h5(&input, &out, true);
        assert!(!exact, "{name}: libhdf5 cannot write given times");
        assert!(
            log.contains("header times of 1 object(s) not kept (the first: /timed)"),
            "{name}: only /timed has times: {log}"
        );
        h5dump_reads(&out);
    }
}

#[test]
fn soft_link_targets_above_64_kib_are_kept_whole() {
    if !have_h5py("writer fidelity") || !have_tool("h5dump", "writer fidelity") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("long_soft_link.h5");
    for forced in [false, true] {
        let out = dir.path().join(format!("long.{forced}.h5"));
        let log = salvage(&input, &out, forced);
        assert!(!log.contains("not recreated"), "{log}");
        // compare_h5.py compares every link's target.
        let (ok, text) = compare_h5(&input, &out, true);
        assert!(ok, "{text}");
        let links = python_code(
            "import sys, h5py\n\
             f = h5py.File(sys.argv[1], 'r')\n\
             for p in ('/long', '/g/long', '/short'):\n\
             \x20   l = f.get(p, getlink=True)\n\
             \x20   print(p, None if l is None else len(l.path))\n",
            &[&out],
        );
        assert_eq!(links, "/long 70000\n/g/long 70002\n/short 2\n", "{links}");
        h5dump_reads(&out);
    }
}

#[test]
fn a_merge_keeps_no_user_block_and_says_so() {
    if !have_h5py("writer fidelity") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("native_latest.h5");
    let out = dir.path().join("merged.h5");
    let text = h5salvage(
        &[
            "merge".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
            input.as_os_str(),
        ],
        false,
    );
    assert!(
        text.contains("its user block (512 bytes before the superblock) is not kept"),
        "{text}"
    );
    // The merged groups keep their names' character sets and order flags.
    let seen = python_code(
        "import sys, h5py\n\
         f = h5py.File(sys.argv[1], 'r')\n\
         print(f.userblock_size, f.id.links.get_info('grüße'.encode()).cset,\n\
         \x20     f['tracked_no_attrs'].id.get_create_plist().get_attr_creation_order())\n",
        &[&out],
    );
    assert_eq!(seen, "0 1 3\n", "{seen}");
}
