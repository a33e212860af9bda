//! The `h5salvage` binary: exit codes, human and JSON reports.

mod common;

use common::{bin, have_h5py, python_code, root, testdata};

use std::process::Command;

fn h5salvage(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .current_dir(root())
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
    assert!(testdata().is_dir());
}

#[test]
fn salvage_failures_are_one_line_and_leave_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    // Input gone.
    let (code, out, err) = h5salvage(&[
        "salvage",
        "testdata/vanished.h5",
        "-o",
        &format!("{d}/a.h5"),
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("vanished.h5"), "{err}");
    // Output directory missing.
    let (code, _, err) = h5salvage(&[
        "salvage",
        "testdata/worker_earliest.h5",
        "-o",
        &format!("{d}/no/such/dir/out.h5"),
    ]);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    // Nothing recoverable.
    let (code, _, err) = h5salvage(&["salvage", "testdata/empty.h5", "-o", &format!("{d}/b.h5")]);
    assert_eq!(code, 3);
    assert!(err.contains("nothing recoverable"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "outputs left behind"
    );
    // Healthy: exit 0 and an output h5py can open (checked in tests/salvage.rs).
    let (code, out, _) = h5salvage(&[
        "salvage",
        "testdata/worker_earliest.h5",
        "-o",
        &format!("{d}/c.h5"),
    ]);
    assert_eq!(code, 0, "{out}");
    // Damaged: exit 1, and the JSON account names every object.
    let (code, out, _) = h5salvage(&[
        "salvage",
        "--json",
        "testdata/damaged/worker_truncated.h5",
        "-o",
        &format!("{d}/d.h5"),
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["objects"].as_array().unwrap().len() > 20);
    assert!(v["partial"].as_u64().unwrap() + v["lost"].as_u64().unwrap() > 0);
}

/// Disk full while writing: one line, exit 2, no output and no temporary
/// file left on the full file system. Needs a small tmpfs (root); skipped
/// where mounting is not allowed.
#[test]
fn disk_full_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("tiny");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mnt)
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        eprintln!("cannot mount a tmpfs here: disk-full test skipped");
        return;
    }
    let out = mnt.join("out.h5");
    let r = h5salvage(&[
        "salvage",
        "testdata/many_members_earliest.h5",
        "-o",
        &out.display().to_string(),
    ]);
    let left = std::fs::read_dir(&mnt).unwrap().count();
    let _ = Command::new("umount").arg(&mnt).status();
    assert_eq!(r.0, 2, "{r:?}");
    assert_eq!(r.2.lines().count(), 1, "{}", r.2);
    assert_eq!(left, 0, "files left on the full file system");
}

/// An output directory the user may not write to: one line naming the
/// system's reason, exit 2, nothing created. As root (which may write
/// anywhere) the binary runs as `nobody` through setpriv; skipped if that
/// is not possible.
#[test]
fn permission_denied_is_one_line() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = locked.join("out.h5");
    let input = testdata().join("worker_earliest.h5").display().to_string();
    let args = ["salvage", &input, "-o", &out.display().to_string()];
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin());
        c
    } else {
        Command::new(bin())
    };
    let Ok(o) = cmd.args(args).output() else {
        eprintln!("setpriv not available: permission test skipped");
        return;
    };
    let err = String::from_utf8_lossy(&o.stderr);
    if root && err.contains("setpriv") {
        eprintln!("setpriv failed ({err}): permission test skipped");
        return;
    }
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert_eq!(std::fs::read_dir(&locked).unwrap().count(), 0);
}

/// `--max-chunk-mib` caps decoding: a 2 MiB gzip chunk is refused (and
/// reported) under a 1 MiB cap and recovered under the default.
#[test]
fn max_chunk_mib_caps_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big_chunk.h5");
    if !have_h5py("max_chunk_mib_caps_decoding") {
        return;
    }
    python_code(
        "import h5py,numpy,sys\nf=h5py.File(sys.argv[1],'w')\n\
         f.create_dataset('d',data=numpy.arange(1<<19,dtype='<i4'),chunks=(1<<19,),compression='gzip')\n",
        &[&input],
    );
    let input = input.display().to_string();
    let capped = dir.path().join("capped.h5").display().to_string();
    let (code, out, err) = h5salvage(&[
        "--max-chunk-mib",
        "1",
        "salvage",
        &input,
        "-o",
        &capped,
        "--json",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("exceeds the 1048576-byte limit"), "{out}");
    let whole = dir.path().join("whole.h5").display().to_string();
    let (code, out, err) = h5salvage(&["salvage", &input, "-o", &whole]);
    assert_eq!(code, 0, "{out}{err}");
}

/// A file whose superblock is gone, every object of which comes back
/// (carved, under `/lost+found`): `scan` says damaged, and `salvage` exits
/// 1 too, since the superblock itself was lost (`superblock_lost` in the
/// JSON account); the same file whole exits 0.
#[test]
fn salvage_without_superblock_exits_partial_though_every_object_came_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(testdata().join("worker_earliest.h5")).unwrap();
    assert_eq!(
        &bytes[..9],
        b"\x89HDF\r\n\x1a\n\x00",
        "superblock version 0"
    );
    // Spec II.A, version 0: 24 bytes, four addresses, the root's symbol
    // table entry (a length, an address, 24 bytes).
    let (o, l) = (usize::from(bytes[13]), usize::from(bytes[14]));
    bytes[..24 + 4 * o + l + o + 24].fill(0);
    let input = dir.path().join("no_superblock.h5");
    std::fs::write(&input, &bytes).unwrap();
    let input = input.to_str().unwrap();
    assert_eq!(h5salvage(&["scan", input]).0, 1);
    let out = dir.path().join("out.h5");
    let (code, text, err) = h5salvage(&["salvage", input, "-o", out.to_str().unwrap(), "--json"]);
    let rep: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{err}"));
    let counts = ["partial", "lost", "unverified", "attributes_lost"].map(|k| rep[k].as_u64());
    assert_eq!(counts, [Some(0); 4], "{rep}");
    assert!(rep["recovered"].as_u64().unwrap() > 50, "{rep}");
    assert_eq!(rep["superblock_lost"], true);
    assert_eq!(code, 1, "{err}");
    let (code, text, _) = h5salvage(&["salvage", input, "-o", out.to_str().unwrap(), "--force"]);
    assert_eq!(code, 1);
    assert!(text.contains("superblock lost"), "{text}");
    let whole = dir.path().join("whole.h5");
    let (code, _, err) = h5salvage(&[
        "salvage",
        "testdata/worker_earliest.h5",
        "-o",
        whole.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
}
