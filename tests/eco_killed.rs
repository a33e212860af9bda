//! The ecosystem's writers killed with SIGKILL part-way
//! (testdata/killed_eco.py): anndata `write_h5ad` with a big X (dense
//! contiguous, or gzip-chunked) killed once the file passed a size, and a
//! pandas HDFStore `append` loop killed after an append or at a size. The
//! rule is the sweep's: no value that is not marked partial or unverified
//! may differ from what the writer wrote, and what physically reached the
//! disk comes out (the rows the killed file holds; chunks without any
//! metadata left in /lost+found, each one a real chunk of the writer's).

mod common;

use common::{bin, compare, have_python, py_script, python_code, python_timed, testdata};

use std::path::Path;
use std::process::Command;

const MODULES: &[&str] = &["h5py", "numpy", "anndata", "pandas", "tables", "scipy"];

/// `killed_eco.py ARGS` (the writer, killed or whole): its stdout.
fn killed_eco(args: &[&str]) -> String {
    let o = python_timed(600)
        .arg(testdata().join("killed_eco.py"))
        .args(args)
        .output()
        .expect("python3");
    use std::os::unix::process::ExitStatusExt;
    // --kill-after kills the writer itself (signal 9 passed on by timeout).
    let killed = o.status.signal() == Some(9) || o.status.code() == Some(137);
    assert!(
        o.status.success() || (args.contains(&"--kill-after") && killed),
        "killed_eco.py {args:?}: {:?} {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `h5salvage salvage IN -o OUT` killed after five minutes: the exit code
/// (a documented one: 0, 1 or 3).
fn salvage(input: &Path, out: &Path) -> i32 {
    let o = Command::new("timeout")
        .arg("300")
        .arg(bin())
        .arg("salvage")
        .arg(input)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    let rc = o.status.code().unwrap_or(-1);
    assert!(
        [0, 1, 3].contains(&rc),
        "{}: exit {rc}: {}",
        input.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    rc
}

/// A pandas HDFStore append loop (PyTables tables, zlib, a data column)
/// killed right after an append and killed at a file size mid-loop: every
/// row the killed file holds (as PyTables itself reads it there) comes out,
/// pandas reads the salvaged store, and the rows equal the writer's.
#[test]
fn a_killed_pandas_append_loop_keeps_every_row_on_disk() {
    if !have_python(
        MODULES,
        "a_killed_pandas_append_loop_keeps_every_row_on_disk",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Killed right after the 13th append: the same as a run of 13 appends.
    let k = d.join("killed13.h5");
    let lines = killed_eco(&[
        "pandas",
        k.to_str().unwrap(),
        "--appends",
        "40",
        "--kill-after",
        "13",
    ]);
    assert!(lines.contains("\"append\": 13"), "{lines}");
    let whole = d.join("whole13.h5");
    killed_eco(&["pandas", whole.to_str().unwrap(), "--appends", "13"]);
    let out = d.join("killed13.out.h5");
    assert_eq!(salvage(&k, &out), 0);
    let (ok, v) = compare(&whole, &out, true);
    assert!(ok, "{v}");
    common::check_python(&[
        py_script("eco_same.py").as_os_str(),
        whole.as_os_str(),
        out.as_os_str(),
    ]);
    // Killed at a size, unflushed: wherever the kill fell.
    for bytes in ["40000", "90000", "140000"] {
        let k = d.join(format!("killed_at_{bytes}.h5"));
        killed_eco(&[
            "pandas",
            k.to_str().unwrap(),
            "--appends",
            "40",
            "--no-flush",
            "--kill-at-bytes",
            bytes,
        ]);
        let out = k.with_extension("out.h5");
        assert!([0, 1].contains(&salvage(&k, &out)), "{bytes}");
        python_code(
            "import sys, pandas as pd\n\
             sys.path.insert(0, sys.argv[3])\n\
             import killed_eco as ke\n\
             killed, out = sys.argv[1], sys.argv[2]\n\
             for key, n, seed in (('log', 500, 1), ('stats', 100, 2)):\n\
             \x20   try:\n\
             \x20       on_disk = len(pd.read_hdf(killed, key))\n\
             \x20   except Exception:\n\
             \x20       on_disk = 0\n\
             \x20   got = pd.read_hdf(out, key)\n\
             \x20   assert len(got) >= on_disk, (key, len(got), on_disk)\n\
             \x20   parts = -(-len(got) // n)\n\
             \x20   want = pd.concat([ke.pandas_rows(p, n, seed) for p in range(parts)]).iloc[:len(got)]\n\
             \x20   pd.testing.assert_frame_equal(got, want, check_exact=True)\n\
             \x20   print(key, len(got), on_disk)\n",
            &[k.as_os_str(), out.as_os_str(), testdata().as_os_str()],
        );
    }
}

/// anndata `write_h5ad` killed while writing a 32 MB X: libhdf5 keeps the
/// metadata in its cache until the file is closed, so the killed file
/// holds a superblock and X's raw bytes. Dense (contiguous): nothing can
/// be said of those bytes (no type, no shape): exit 3, no output, nothing
/// invented. gzip-chunked: the chunks are found by their deflate framing
/// and kept in /lost+found, each row one whole chunk of the writer's X
/// (checked against the same run written whole), exit 1.
#[test]
fn a_killed_write_h5ad_invents_nothing() {
    if !have_python(MODULES, "a_killed_write_h5ad_invents_nothing") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dense = d.join("dense.h5ad");
    let v = killed_eco(&[
        "anndata",
        dense.to_str().unwrap(),
        "--kill-at-bytes",
        "20000000",
    ]);
    assert!(v.contains("\"killed\": true"), "{v}");
    let out = d.join("dense.out.h5");
    assert_eq!(salvage(&dense, &out), 3);
    assert!(!out.exists());

    let gz = d.join("gz.h5ad");
    let whole = d.join("gz_whole.h5ad");
    let v = killed_eco(&[
        "anndata",
        gz.to_str().unwrap(),
        "--gzip",
        "--kill-at-bytes",
        "1500000",
    ]);
    assert!(v.contains("\"killed\": true"), "{v}");
    killed_eco(&["anndata", whole.to_str().unwrap(), "--gzip"]);
    let out = d.join("gz.out.h5");
    assert_eq!(salvage(&gz, &out), 1);
    let (ok, v) = compare(&whole, &out, false);
    assert!(ok, "{v}");
    let found = python_code(
        "import sys, zlib, h5py\n\
         chunks = set()\n\
         def visit(n, o):\n\
         \x20   if isinstance(o, h5py.Dataset) and o.chunks:\n\
         \x20       for i in range(o.id.get_num_chunks()):\n\
         \x20           c = o.id.get_chunk_info(i)\n\
         \x20           chunks.add(zlib.decompress(bytes(o.id.read_direct_chunk(c.chunk_offset)[1])))\n\
         with h5py.File(sys.argv[1], 'r') as w:\n\
         \x20   w.visititems(visit)\n\
         n = 0\n\
         with h5py.File(sys.argv[2], 'r') as f:\n\
         \x20   for name, g in f['lost+found'].items():\n\
         \x20       assert g.attrs['h5salvage_status'] == 'partial', name\n\
         \x20       for r in g[...]:\n\
         \x20           assert r.tobytes() in chunks, name\n\
         \x20           n += 1\n\
         print(n)\n",
        &[whole.as_os_str(), out.as_os_str()],
    );
    // 1.5 MB of a 2.1 MB file: hundreds of chunks reached the disk.
    let n: usize = found.trim().parse().unwrap();
    assert!(n > 100, "{found}");
}
