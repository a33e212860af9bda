//! Chunks no index lists (issue 13, item 2): killed appending writers made
//! at test time by testdata/killed_appender.py (SIGKILL at a known step),
//! salvaged with the `h5salvage` binary, and checked row by row against the
//! writer's formula (tests/py/appender_check.py) and against an oracle
//! computed from the killed file's bytes alone (tests/py/appender_oracle.py:
//! which rows are physically on disk).
//!
//! Every case asserts: no row at a wrong position, no row at its path that
//! is not on disk, every row whose position an on-disk index proves at its
//! path, and at least 95% of the rows on disk recovered (at their path where
//! the case allows placement, else under /lost+found).

mod common;

use common::appender::{
    assert_inferred, assert_rows, assert_unverified, check, killed_and_template, python, salvage,
    scan_json, write, Expect,
};
use common::{bin, have_h5py, have_python, py_script, python_timed, testdata};

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The issue's first case: an h5py appender (10 rows per step to a
/// `(None, 50)` float64 dataset, chunks `(64, 50)`) killed after 30000 rows
/// without `flush()`: no header, no index, no heap on disk, only chunks.
/// Without a template they come back under /lost+found (inflated bytes);
/// with a healthy file of the same script as `--template`, at their path.
fn no_metadata(libver: &str, filter: &str, rank: &str, shape: &[&str]) {
    if !have_h5py("no_metadata") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let args = [
        &[
            "--writer", "h5py", "--libver", libver, "--filter", filter, "--rank", rank,
        ],
        shape,
    ]
    .concat();
    let (killed, template) = killed_and_template(dir.path(), &args, "3000");
    let what = format!("h5py {libver} {filter} rank {rank}");
    let out = salvage(
        &killed,
        "with_template.h5",
        &["--template", template.to_str().unwrap()],
    );
    let v = check(&killed, &out);
    assert_rows(&v, Expect::AtPath, &format!("{what} --template"));
    assert_inferred(&v, &what);
    // Without a template: every chunk is under /lost+found, as inflated
    // bytes (found by value unless a shuffle filter scrambled them).
    let out = salvage(&killed, "no_template.h5", &[]);
    let v = check(&killed, &out);
    assert!(v["lost_found_datasets"].as_u64().unwrap_or(0) >= 1, "{v}");
    if filter.starts_with("shuffle") {
        for (_, d) in v["datasets"].as_object().unwrap() {
            assert_eq!(d["at_path"], 0, "{d}");
            assert_eq!(d["wrong"], 0, "{d}");
        }
    } else {
        assert_rows(&v, Expect::LostFound, &format!("{what} no template"));
    }
    // --no-infer: with the template, nothing is placed by order.
    let out = salvage(
        &killed,
        "no_infer.h5",
        &["--template", template.to_str().unwrap(), "--no-infer"],
    );
    let v = check(&killed, &out);
    assert_rows(&v, Expect::LostFound, &format!("{what} --no-infer"));
}

#[test]
fn h5py_appender_without_metadata_earliest_gzip() {
    no_metadata("earliest", "gzip", "2", &[]);
}

#[test]
fn h5py_appender_without_metadata_latest_shuffle_gzip_fletcher32() {
    no_metadata("latest", "shuffle-gzip-fletcher32", "2", &[]);
}

#[test]
fn h5py_appender_without_metadata_1d() {
    // 500 rows of 4096-row chunks per step: more than a chunk cache (8 MiB).
    no_metadata(
        "latest",
        "gzip",
        "1",
        &["--chunk-rows", "4096", "--rows-per-step", "500"],
    );
}

/// A netCDF4-python writer (unlimited `time`, `(time, 30, 40)` float32,
/// zlib + shuffle, chunks `(1, 30, 40)`): its header says 0 records while
/// thousands of chunks are on disk. Its own header is the template.
#[test]
fn netcdf4_appender_with_stale_header() {
    if !have_python(
        &["h5py", "numpy", "netCDF4"],
        "netcdf4_appender_with_stale_header",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let killed = write(
        dir.path(),
        "killed.nc",
        &[
            "--writer",
            "netcdf4",
            "--filter",
            "shuffle-gzip",
            "--rank",
            "3",
            "--kill-after-steps",
            "3000",
        ],
    );
    let out = salvage(&killed, "out.h5", &[]);
    let v = check(&killed, &out);
    assert_rows(&v, Expect::AtPath, "netcdf4");
    assert_inferred(&v, "netcdf4");
}

/// h5py appenders that flushed every 2500 steps, killed between flushes
/// with more than a chunk cache of rows past the flush: the index on disk
/// proves the flushed rows (every one must be at its path), the chunks
/// evicted after the flush follow them in allocation order, and the partly
/// filled chunk of the flush was rewritten in place.
fn flushed(writer: &str, libver: &str, filter: &str) {
    if !have_h5py("flushed") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let killed = write(
        dir.path(),
        "killed.h5",
        &[
            "--writer",
            writer,
            "--libver",
            libver,
            "--filter",
            filter,
            "--flush-every",
            "2500",
            "--kill-after-steps",
            "4999",
        ],
    );
    let out = salvage(&killed, "out.h5", &[]);
    let v = check(&killed, &out);
    let what = format!("{writer} {libver} {filter} flushed");
    assert_rows(&v, Expect::AtPath, &what);
    assert_inferred(&v, &what);
    for (_, d) in v["datasets"].as_object().unwrap() {
        let shape = d["shape"][0].as_u64().unwrap_or(0);
        assert!(
            shape > 25_000,
            "{what}: nothing beyond the flush placed: {d}"
        );
    }
}

#[test]
fn h5py_appender_killed_between_flushes_gzip() {
    flushed("h5py", "earliest", "gzip");
}

#[test]
fn h5py_appender_killed_between_flushes_shuffle_gzip_fletcher32() {
    flushed("h5py", "latest", "shuffle-gzip-fletcher32");
}

#[test]
fn h5py_swmr_appender_killed_between_flushes() {
    flushed("h5py-swmr", "latest", "gzip");
}

/// Two datasets appending side by side with the same chunk shape and type:
/// which chunk belongs to which cannot be told from the bytes, so with the
/// template every chunk goes to /lost+found with the template's type, and
/// none is guessed into a dataset.
#[test]
fn two_datasets_side_by_side_are_never_guessed() {
    if !have_h5py("two_datasets_side_by_side_are_never_guessed") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = side_by_side(dir.path(), "gzip");
    // The stack has the template's element type and chunk shape.
    let (status, text) = python(&py_script("listing.py"), &[out.to_str().unwrap()]);
    assert!(status.success());
    assert!(
        text.lines().any(|l| l.contains("/lost+found/chunks_at_")
            && l.contains("dataset float64 (")
            && l.contains(", 64, 50)")),
        "no stack of (n, 64, 50) float64 chunks: {text}"
    );
}

/// `merge` of a worker killed before anything but raw data reached the
/// disk (testdata/killed_worker.py, 300 configs, default libver), next to
/// two healthy siblings with the same structure: the siblings' datasets
/// are its templates, so its gzip `trace` chunks come back under
/// `/lost+found/<stem>/` with their element type and chunk shape (which
/// config each belongs to cannot be told: 60 datasets share the signature).
/// Every chunk on disk (every complete zlib stream inflating to one chunk,
/// found by Python's zlib) comes back, each equal to a chunk the worker
/// wrote.
#[test]
fn merge_uses_healthy_siblings_as_templates() {
    if !have_h5py("merge_uses_healthy_siblings_as_templates") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    std::fs::create_dir(&runs).unwrap();
    let worker = testdata().join("killed_worker.py");
    for k in 0..2 {
        let out = runs.join(format!("worker_{k}.h5"));
        let prefix = format!("w{k}_");
        let (status, _) = python(
            &worker,
            &[
                out.to_str().unwrap(),
                "--libver",
                "earliest",
                "--configs",
                "30",
                "--prefix",
                &prefix,
            ],
        );
        assert!(status.success());
    }
    let killed = runs.join("worker_2.h5");
    let (status, _) = python(
        &worker,
        &[
            killed.to_str().unwrap(),
            "--libver",
            "earliest",
            "--configs",
            "3000",
            "--kill-self-after",
            "300",
            "--prefix",
            "w2_",
        ],
    );
    assert!(!status.success(), "the worker did not kill itself");
    let merged = dir.path().join("merged.h5");
    let o = Command::new(bin())
        .args(["merge", "-o"])
        .arg(&merged)
        .arg(&runs)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{table}");
    let script = r#"
import sys, zlib, h5py, numpy as np
merged, killed = sys.argv[1:3]
expected = {}
for i in range(300):
    rng = np.random.default_rng(1000 + i)
    rng.random(); rng.standard_normal(32)
    t = np.cumsum(rng.standard_normal(200)).astype("<f4")
    for k in range(4):
        expected[t[k * 50:(k + 1) * 50].tobytes()] = (i, k)
raw = open(killed, "rb").read()
on_disk, pos = set(), 0
while True:
    pos = raw.find(b"\x78", pos)
    if pos < 0:
        break
    d = zlib.decompressobj()
    try:
        out = d.decompress(raw[pos:pos + 4096], 201)
    except zlib.error:
        out = b""
    if d.eof and len(out) == 200 and out in expected:
        on_disk.add(out)
        pos += 4096 - len(d.unused_data)
    else:
        pos += 1
f = h5py.File(merged, "r")
g = f["lost+found/worker_2"]
stacks = [g[k] for k in g]
assert len(stacks) == 1, list(g)
s = stacks[0]
assert s.dtype == np.dtype("<f4") and s.shape[1:] == (50,), (s.dtype, s.shape)
assert s.attrs["h5salvage_status"] == "partial"
assert len(s.attrs["h5salvage_file_offsets"]) == s.shape[0]
rows = [r.tobytes() for r in s[()]]
wrong = [i for i, r in enumerate(rows) if r not in expected]
assert not wrong, "rows equal to no chunk the worker wrote: %s" % wrong[:10]
got = set(rows)
assert on_disk and on_disk <= got, (len(on_disk), len(got & on_disk))
assert "w0_config_0000" in f and "w1_config_0029" in f
print(len(on_disk), len(got))
"#;
    let o = Command::new("timeout")
        .args(["600", "python3", "-c", script])
        .arg(&merged)
        .arg(&killed)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}\n{table}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    eprintln!(
        "on disk / recovered: {}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// An h5py gzip appender flushed once and killed, whose root group and
/// `series0` headers (version 1, at the addresses `scan` reports) and
/// second chunk were then destroyed, salvaged with `--template` of a
/// healthy file: nothing in the input proves the dataset absent when the
/// superblock was written, so how many chunks precede the found ones is
/// unknown. Placing them from chunk 0 put every row after the destroyed
/// chunk one chunk early; they must go to /lost+found instead.
#[test]
fn foreign_template_needs_proof_the_dataset_was_absent() {
    if !have_h5py("foreign_template_needs_proof_the_dataset_was_absent") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--writer", "h5py", "--libver", "earliest", "--filter", "gzip",
    ];
    let flush = ["--flush-every", "2500"];
    let (killed, template) = killed_and_template(dir.path(), &[&args[..], &flush].concat(), "4999");
    let scan = scan_json(&killed, &[]);
    let (status, text) = python(
        &py_script("appender_oracle.py"),
        &[killed.to_str().unwrap()],
    );
    assert!(status.success(), "oracle failed");
    let oracle: Value = serde_json::from_str(&text).unwrap();
    let mut bytes = std::fs::read(&killed).unwrap();
    for path in ["/", "/series0"] {
        let o = scan["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["path"] == path)
            .unwrap_or_else(|| panic!("{path} not in {scan}"));
        let at = usize::try_from(o["address"].as_u64().unwrap()).unwrap();
        // Version 1 object header: 16-byte prefix, header size at byte 8.
        let size = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        bytes[at..at + 16 + size as usize].fill(0);
    }
    let c = &oracle["chunks"][1];
    let at = usize::try_from(c["offset"].as_u64().unwrap()).unwrap();
    let len = usize::try_from(c["stored"].as_u64().unwrap()).unwrap();
    bytes[at..at + len].fill(0);
    // Not `assert_rows`: the oracle still reads the index B-tree the
    // destroyed header pointed to, which nothing on disk links any more.
    let d = damaged_not_placed(dir.path(), &killed, &template, bytes);
    let n = |k: &str| d[k].as_u64().unwrap_or(0);
    assert!(
        n("lost_found") * 100 >= n("on_disk") * 95,
        "rows on disk not under /lost+found: {d}"
    );
}

/// `bytes`, a damaged copy of `killed` (its writer's metadata copied too),
/// salvaged with `template`: `series0` has rows on disk, none at its path,
/// none at a wrong position or not on disk. Returns its check.
fn damaged_not_placed(dir: &Path, killed: &Path, template: &Path, bytes: Vec<u8>) -> Value {
    let damaged = dir.join("damaged.h5");
    std::fs::write(&damaged, bytes).unwrap();
    std::fs::copy(
        PathBuf::from(format!("{}.json", killed.display())),
        PathBuf::from(format!("{}.json", damaged.display())),
    )
    .unwrap();
    let out = salvage(
        &damaged,
        "out.h5",
        &["--template", template.to_str().unwrap()],
    );
    let v = check(&damaged, &out);
    let d = v["datasets"]["series0"].clone();
    let n = |k: &str| d[k].as_u64().unwrap_or(0);
    assert!(n("on_disk") > 0, "the oracle found no row on disk: {d}");
    assert_eq!(n("wrong"), 0, "rows at a wrong position: {d}");
    assert_eq!(n("beyond_disk"), 0, "rows not on disk: {d}");
    assert_eq!(n("at_path"), 0, "placed without proof: {d}");
    d
}

/// A PyTables table appended to (records `(row, x[50])`, gzip) and killed
/// with nothing but chunks on disk: with a healthy table of the same
/// script as `--template`, every record on disk comes back at its row.
#[test]
fn pytables_table_append_with_template() {
    if !have_python(
        &["h5py", "numpy", "tables"],
        "pytables_table_append_with_template",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let args = ["--writer", "pytables", "--filter", "gzip", "--rank", "2"];
    let (killed, template) = killed_and_template(dir.path(), &args, "10000");
    let out = salvage(
        &killed,
        "out.h5",
        &["--template", template.to_str().unwrap()],
    );
    let v = check(&killed, &out);
    assert_rows(&v, Expect::AtPath, "pytables");
    assert_inferred(&v, "pytables");
}

/// Unfiltered appenders (h5py's default `create_dataset(..., maxshape=
/// (None, ...), chunks=...)`, no compression) killed with nothing but
/// chunks and never-written metadata past the stored end of file: with a
/// healthy file of the same script as `--template`, the chunks are cut
/// from the allocation chain and placed at their path (unverified);
/// without a template nothing describes them and nothing is guessed; with
/// `--no-infer` they are a stack under /lost+found.
fn unfiltered_no_metadata(libver: &str, extra: &[&str], steps: &str) {
    if !have_h5py("unfiltered_no_metadata") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let args = [
        &["--writer", "h5py", "--libver", libver, "--filter", "none"][..],
        extra,
    ]
    .concat();
    let (killed, template) = killed_and_template(dir.path(), &args, steps);
    let what = format!("h5py {libver} unfiltered {extra:?}");
    let t = ["--template", template.to_str().unwrap()];
    let out = salvage(&killed, "with_template.h5", &t);
    let v = check(&killed, &out);
    assert_rows(&v, Expect::AtPath, &format!("{what} --template"));
    assert_unverified(&v, &what);
    // Without a template nothing says what the bytes are: nothing
    // recoverable (exit 3, no output), nothing guessed.
    let o = Command::new(bin())
        .arg("salvage")
        .arg(&killed)
        .arg("-o")
        .arg(dir.path().join("no_template.h5"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{what} no template: {o:?}");
    let out = salvage(&killed, "no_infer.h5", &[t[0], t[1], "--no-infer"]);
    let v = check(&killed, &out);
    assert_rows(&v, Expect::LostFound, &format!("{what} --no-infer"));
    if libver == "earliest" {
        // The same bytes with a version-0 superblock whose stored end of
        // file covers them all (as a closed file's does): the unclaimed
        // space could be freed chunks, it is not searched.
        let mut b = std::fs::read(&killed).unwrap();
        let len = b.len() as u64;
        b[0x28..0x30].copy_from_slice(&len.to_le_bytes());
        let closed = dir.path().join("closed.h5");
        std::fs::write(&closed, &b).unwrap();
        let v = scan_json(&closed, &[t[0], t[1]]);
        assert_eq!(
            v["chunk_search"]["unfiltered_found"], 0,
            "{what} closed: {v}"
        );
        assert_eq!(
            v["chunk_search"]["placed"],
            Value::Array(vec![]),
            "{what} closed"
        );
    }
}

#[test]
fn unfiltered_appender_without_metadata_earliest() {
    // Chunks (64, 50) f8 (25600 bytes) between never-written B-tree nodes.
    unfiltered_no_metadata("earliest", &[], "3000");
}

#[test]
fn unfiltered_appender_without_metadata_latest_1d_small_chunks() {
    // 800-byte chunks (not a multiple of the 2048-byte aggregator blocks
    // they interleave with), a 64 KiB chunk cache.
    unfiltered_no_metadata(
        "latest",
        &[
            "--rank",
            "1",
            "--chunk-rows",
            "100",
            "--chunk-cache-kib",
            "64",
        ],
        "20000",
    );
}

/// 7 x 13 int32 chunks (364 bytes), smaller than every metadata hole. An
/// h5py libver-earliest writer's first chunk lies 1968 bytes after the
/// stored end of file (2048, the end of the first metadata block: the tail
/// of the chunk index's 2616-byte B-tree root node, allocated at 1400 and
/// straddling it; no metadata size the hole model knows): a zero run longer than
/// a chunk and of no known size could hide all-zero chunks (the writer's
/// first rows of zeros), so the chain is cut but not placed: every row in
/// /lost+found, none at a wrong position, and `scan` says why. (With
/// chunks longer than 1968 bytes, as in the cases above, no zero chunk
/// fits in that run and the chunks are placed.)
#[test]
fn unfiltered_appender_without_metadata_odd_chunks_i4() {
    if !have_h5py("unfiltered_appender_without_metadata_odd_chunks_i4") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--writer",
        "h5py",
        "--libver",
        "earliest",
        "--filter",
        "none",
        "--dtype",
        "i4",
        "--chunk-rows",
        "7",
        "--cols",
        "13",
        "--chunk-cache-kib",
        "64",
    ];
    let (killed, template) = killed_and_template(dir.path(), &args, "5000");
    let t = ["--template", template.to_str().unwrap()];
    let out = salvage(&killed, "out.h5", &t);
    let v = check(&killed, &out);
    assert_rows(
        &v,
        Expect::LostFound,
        "h5py earliest unfiltered 364-byte chunks",
    );
    assert_start_unproven(&killed, &template);
}

/// An unfiltered appender that flushed every 1000 steps and was killed
/// between flushes: its own stale header is the template, the flushed
/// index proves the first rows, the chunks past the stored end of file
/// follow them in allocation order.
#[test]
fn unfiltered_appender_killed_between_flushes() {
    if !have_h5py("unfiltered_appender_killed_between_flushes") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let killed = write(
        dir.path(),
        "killed.h5",
        &[
            "--writer",
            "h5py",
            "--filter",
            "none",
            "--flush-every",
            "1000",
            "--chunk-cache-kib",
            "64",
            "--kill-after-steps",
            "2950",
        ],
    );
    let out = salvage(&killed, "out.h5", &[]);
    let v = check(&killed, &out);
    assert_rows(&v, Expect::AtPath, "unfiltered flushed");
    assert_unverified(&v, "unfiltered flushed");
    let shape = v["datasets"]["series0"]["shape"][0].as_u64().unwrap_or(0);
    assert!(shape > 20_000, "nothing beyond the flush placed: {v}");
    // The partly filled last indexed chunk may still have been dirty when
    // later chunks were written: its rows past the stored extent are named
    // unproven (and only then).
    let meta: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}.json", killed.display())).unwrap(),
    )
    .unwrap();
    let (flushed, rows) = (
        meta["rows_flushed"].as_u64().unwrap(),
        meta["chunk_rows"].as_u64().unwrap(),
    );
    let inferred = v["datasets"]["series0"]["inferred"].as_str().unwrap_or("");
    eprintln!("unfiltered flushed: {flushed} rows flushed, chunks of {rows} rows");
    let named = format!(
        "rows {flushed}..{} along dimension 0",
        flushed.div_ceil(rows) * rows
    );
    assert_eq!(
        inferred.contains(&named) && inferred.contains("unproven"),
        flushed % rows != 0,
        "{named}: {inferred}"
    );
}

/// Two unfiltered datasets appending side by side with the same chunk
/// size: the chain is cut, but which chunk is whose cannot be told: one
/// stack under /lost+found with the template's type, nothing placed.
#[test]
fn unfiltered_two_datasets_are_never_guessed() {
    if !have_h5py("unfiltered_two_datasets_are_never_guessed") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    side_by_side(dir.path(), "none");
}

/// Two h5py datasets with `filter` appending side by side, killed, salvaged
/// with a template: every row on disk is in /lost+found, none at a path.
/// Returns the output.
fn side_by_side(dir: &Path, filter: &str) -> PathBuf {
    let args = ["--writer", "h5py", "--filter", filter, "--datasets", "2"];
    let (killed, template) = killed_and_template(dir, &args, "3000");
    let out = salvage(
        &killed,
        "out.h5",
        &["--template", template.to_str().unwrap()],
    );
    let v = check(&killed, &out);
    assert_rows(&v, Expect::LostFound, &format!("two datasets, {filter}"));
    out
}

/// Closed files are never searched for unfiltered chunks: a healthy
/// unfiltered appender gets nothing extra; the freed chunks of a deleted
/// dataset (bytes of exactly a live dataset's chunk size, no index lists
/// them) are not put into the live one, neither when the file is healthy
/// nor when it is damaged (carving and the chunk search run: they lie
/// inside the stored end of file). Bytes appended after the stored end of
/// file that do not tile as chunks and metadata are not placed either.
#[test]
fn unfiltered_space_of_closed_files_is_not_searched() {
    if !have_h5py("unfiltered_space_of_closed_files_is_not_searched") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scan = |input: &Path| scan_json(input, &[]);
    let healthy = write(
        dir.path(),
        "healthy.h5",
        &["--writer", "h5py", "--filter", "none", "--steps", "3000"],
    );
    let v = scan(&healthy);
    assert_eq!(v["verdict"], "healthy", "{v}");
    assert!(v["chunk_search"].is_null(), "{v}");
    let freed = dir.path().join("freed.h5");
    let script = r#"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "w")
for name in ("x", "live"):
    d = f.create_dataset(name, shape=(0, 50), maxshape=(None, 50), chunks=(64, 50), dtype="<f8")
    d.resize((640, 50))
    d[...] = np.arange(640 * 50, dtype="<f8").reshape(640, 50) + (1e6 if name == "x" else 1)
    f.flush()
del f["x"]
f.close()
"#;
    let o = python_timed(300)
        .args(["-c", script])
        .arg(&freed)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&freed).unwrap();
    // Damaged: the root group's symbol table node and the deleted
    // dataset's chunk B-tree (the first chunk node, type 1) destroyed, so
    // that its freed chunks are bytes no index lists.
    let damaged = dir.path().join("damaged.h5");
    let mut b = bytes.clone();
    let snod = b.windows(4).position(|w| w == b"SNOD").expect("SNOD");
    let tree = b
        .windows(5)
        .position(|w| w == b"TREE\x01")
        .expect("chunk TREE");
    for at in [snod, tree] {
        b[at..at + 4].copy_from_slice(b"XXXX");
    }
    std::fs::write(&damaged, &b).unwrap();
    let v = scan(&damaged);
    assert!(!v["chunk_search"].is_null(), "the search did not run: {v}");
    assert_eq!(v["chunk_search"]["unfiltered_found"], 0, "{v}");
    assert_eq!(v["chunk_search"]["placed"], Value::Array(vec![]), "{v}");
    // Appended bytes: not a whole number of chunks.
    let appended = dir.path().join("appended.h5");
    let mut b = bytes.clone();
    b.extend((0..64 * 50 + 13).flat_map(|i| (f64::from(i) + 7.5).to_le_bytes()));
    std::fs::write(&appended, &b).unwrap();
    let v = scan(&appended);
    assert!(!v["chunk_search"].is_null(), "the search did not run: {v}");
    assert_eq!(v["chunk_search"]["placed"], Value::Array(vec![]), "{v}");
    for (input, lost_found) in [(&freed, "no"), (&appended, "any")] {
        let out = salvage(input, &format!("{lost_found}_out.h5"), &[]);
        let script = r#"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
assert sys.argv[2] == "any" or "lost+found" not in f, list(f)
assert "x" not in f
d = f["live"]
assert d.shape == (640, 50), d.shape
assert (d[()] == np.arange(640 * 50).reshape(640, 50) + 1).all()
assert "h5salvage_inferred" not in d.attrs
"#;
        let o = python_timed(300)
            .args(["-c", script])
            .arg(&out)
            .arg(lost_found)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{}: {}",
            input.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// PyTables table appends with PyTables' default filters (complevel 0:
/// unfiltered), records `(row int64, x float64[50])` of 408 bytes, chunks
/// of 64 records, killed with nothing but chunks on disk. The zero runs
/// between chunks are never-written 2096-byte version-1 B-tree nodes (rank
/// 1), which also read as a 2048-byte aggregator block after a chunk ending
/// in 48 zero bytes (less than a record): two readings each, followed as
/// branches; only the true one reaches the stored end of file, so with a
/// healthy table as `--template` every record on disk is at its row.
#[test]
fn pytables_unfiltered_table_append_with_template() {
    if !have_python(
        &["h5py", "numpy", "tables"],
        "pytables_unfiltered_table_append_with_template",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (killed, template) = pytables_unfiltered(dir.path());
    let t = ["--template", template.to_str().unwrap()];
    let out = salvage(&killed, "out.h5", &t);
    let v = check(&killed, &out);
    assert_rows(&v, Expect::AtPath, "pytables unfiltered");
    assert_unverified(&v, "pytables unfiltered");
    let out = salvage(&killed, "no_infer.h5", &[t[0], t[1], "--no-infer"]);
    let v = check(&killed, &out);
    assert_rows(&v, Expect::LostFound, "pytables unfiltered --no-infer");
}

/// The same table flushed every 5000 steps and killed 4950 steps after a
/// flush (more than PyTables' 16 MiB chunk cache of records past it): its
/// own stale header is the template, the flushed B-tree proves the first
/// 50000 records, the chunks past the stored end of file follow them.
#[test]
fn pytables_unfiltered_table_killed_between_flushes() {
    if !have_python(
        &["h5py", "numpy", "tables"],
        "pytables_unfiltered_table_killed_between_flushes",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let killed = write(
        dir.path(),
        "killed.h5",
        &[
            "--writer",
            "pytables",
            "--filter",
            "none",
            "--flush-every",
            "5000",
            "--kill-after-steps",
            "9950",
        ],
    );
    let out = salvage(&killed, "out.h5", &[]);
    let v = check(&killed, &out);
    assert_rows(&v, Expect::AtPath, "pytables unfiltered flushed");
    assert_unverified(&v, "pytables unfiltered flushed");
    let shape = v["datasets"]["series0"]["shape"][0].as_u64().unwrap_or(0);
    assert!(shape > 60_000, "nothing beyond the flush placed: {v}");
}

/// The never-flushed PyTables table with the first 48 bytes of its first
/// chunk destroyed (zeroed): the zero run before the first chunk still
/// reads exactly as the 2096-byte B-tree node, but now a branch shifted by
/// 48 bytes (a 2048 hole read at a later zero run) also reaches the stored
/// end of file, by 2144 zero bytes (no metadata size: it may still be true,
/// as an h5py writer's first gap of 1968 bytes is). Two readings reach
/// it: nothing is placed, the chunks walked before the first ambiguous run
/// are in /lost+found, none at a wrong position.
#[test]
fn pytables_unfiltered_two_readings_are_never_guessed() {
    if !have_python(
        &["h5py", "numpy", "tables"],
        "pytables_unfiltered_two_readings_are_never_guessed",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (killed, template) = pytables_unfiltered(dir.path());
    let mut bytes = std::fs::read(&killed).unwrap();
    // Version 0 superblock: the end of file address at 0x28.
    let r0 = usize::try_from(u64::from_le_bytes(bytes[0x28..0x30].try_into().unwrap())).unwrap();
    // Record 0: row 0 (int64), then x[0] = 2^40 (the writer's formula).
    let mut first = 0i64.to_le_bytes().to_vec();
    first.extend(2f64.powi(40).to_le_bytes());
    let f = r0
        + bytes[r0..]
            .windows(16)
            .position(|w| w == first.as_slice())
            .expect("record 0");
    assert_eq!(f - r0, 2096, "the first gap is not one B-tree node");
    bytes[f..f + 48].fill(0);
    let d = damaged_not_placed(dir.path(), &killed, &template, bytes);
    eprintln!("pytables two readings: {d}");
    assert!(
        d["lost_found"].as_u64().unwrap_or(0) > 0,
        "nothing in /lost+found: {d}"
    );
}

/// The never-flushed unfiltered PyTables table of the cases above, killed
/// after 10000 steps, and a healthy one of 20 steps.
fn pytables_unfiltered(dir: &Path) -> (PathBuf, PathBuf) {
    let args = ["--writer", "pytables", "--filter", "none", "--rank", "2"];
    killed_and_template(dir, &args, "10000")
}

/// Two unfiltered PyTables tables appending side by side (same record type
/// and chunk shape): each node run has two readings, the only path to the
/// stored end of file reaches it by a zero run of no metadata size (their
/// first chunk lies 4840 bytes after it), so the chunks are cut but never
/// placed; which table each belongs to cannot be told either: every record
/// on disk is in /lost+found, none at a path.
#[test]
fn pytables_unfiltered_two_tables_are_never_guessed() {
    if !have_python(
        &["h5py", "numpy", "tables"],
        "pytables_unfiltered_two_tables_are_never_guessed",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--writer",
        "pytables",
        "--filter",
        "none",
        "--datasets",
        "2",
    ];
    let (killed, template) = killed_and_template(dir.path(), &args, "10000");
    let out = salvage(
        &killed,
        "out.h5",
        &["--template", template.to_str().unwrap()],
    );
    let v = check(&killed, &out);
    assert_rows(&v, Expect::LostFound, "two pytables tables, unfiltered");
}

/// `scan --json` of `input` with `template` says the unfiltered chain was
/// cut but not placed because of the zero run at the stored end of file
/// (typed reason `StartUnproven`).
fn assert_start_unproven(input: &Path, template: &Path) {
    let v = scan_json(input, &["--template", template.to_str().unwrap()]);
    let cs = &v["chunk_search"];
    let stopped = cs["unfiltered_stopped"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        stopped.contains("to the first chunk") && stopped.contains("cut, not placed"),
        "scan does not say why: {cs}"
    );
    let stray = cs["stray"].as_array().cloned().unwrap_or_default();
    assert!(
        !stray.is_empty()
            && stray.iter().all(|st| st["reason"]
                .as_str()
                .is_some_and(|r| r.contains("zero bytes from the stored end of file"))),
        "stray reason: {cs}"
    );
}

/// The issue's unfiltered appender (h5py libver earliest, chunks (64, 50)
/// float64, 25600 bytes) whose first chunk is all zero, as a simulation's
/// first rows often are (here: zeroed). Its zeros join the 1968 bytes
/// before it into one run from the stored end of file that is longer than
/// a chunk and of no metadata size: all-zero chunks may lie there, and
/// taking none would put every later row one chunk early (the bug: 9024 of
/// 9024 rows wrong). The chunks are cut, none placed, the rows on disk in
/// /lost+found, none at a wrong position; `scan` says why.
#[test]
fn unfiltered_first_chunk_all_zero_is_never_placed() {
    if !have_h5py("unfiltered_first_chunk_all_zero_is_never_placed") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--writer", "h5py", "--libver", "earliest", "--filter", "none",
    ];
    let (killed, template) = killed_and_template(dir.path(), &args, "3000");
    let mut bytes = std::fs::read(&killed).unwrap();
    // Version 0 superblock: the end of file address at 0x28.
    let r0 = usize::try_from(u64::from_le_bytes(bytes[0x28..0x30].try_into().unwrap())).unwrap();
    // Row 0's first two elements (the writer's formula, f8:
    // ((ds + 1) * 2^24 + row) * 2^16 + col): the start of chunk 0.
    let mut first = 2f64.powi(40).to_le_bytes().to_vec();
    first.extend((2f64.powi(40) + 1.0).to_le_bytes());
    let f = r0
        + bytes[r0..]
            .windows(16)
            .position(|w| w == first.as_slice())
            .expect("row 0");
    assert_eq!(f - r0, 1968, "chunk 0 is not where h5py earliest puts it");
    let chunk = 64 * 50 * 8;
    bytes[f..f + chunk].fill(0);
    let d = damaged_not_placed(dir.path(), &killed, &template, bytes);
    let n = |k: &str| d[k].as_u64().unwrap_or(0);
    assert!(
        n("lost_found") * 100 >= n("on_disk") * 95,
        "rows on disk not in /lost+found: {d}"
    );
    assert_start_unproven(&dir.path().join("damaged.h5"), &template);
}
