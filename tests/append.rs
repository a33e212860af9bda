//! Killed appending writers (issue 13, index records beyond a stale
//! header): files made at test time by `testdata/killed_appender.py`, which
//! SIGKILLs itself at a known step with nothing closed; the oracle
//! (`tests/py/appender_oracle.py`) finds from the file's bytes alone which
//! rows are on disk and which lie in chunks an on-disk index record names;
//! the salvaged output is checked row by row against the writer's formula
//! with h5py (`tests/py/appender_check.py`).
//!
//! The writers run with a small metadata cache (`--mdc-kib`) and chunk
//! cache (`--chunk-cache-kib`): index nodes and chunks then leave libhdf5's
//! caches as they would in a run a hundred times longer, so a 2 MB file has
//! what a 200 MB one has: a header and index root from the last flush, and
//! newer index blocks and chunks past them.

mod common;

use common::{have_python, python_timed, root, testdata};

use std::path::{Path, PathBuf};

use serde_json::Value;

/// A killed appender's file, its META and the oracle's JSON.
struct Killed {
    path: PathBuf,
    meta: Value,
    meta_path: PathBuf,
    oracle: Value,
    oracle_path: PathBuf,
    _dir: tempfile::TempDir,
}

fn python(script: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    python_timed(600)
        .arg(root().join(script))
        .args(args)
        .output()
        .unwrap()
}

/// Runs killed_appender.py with `args` (it must kill itself), then the
/// oracle on the file.
fn killed(name: &str, args: &[&str]) -> Option<Killed> {
    let modules: &[&str] = if args.contains(&"netcdf4") {
        &["h5py", "numpy", "netCDF4"]
    } else {
        &["h5py", "numpy"]
    };
    if !have_python(modules, &format!("killed appender {name}")) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let mut a: Vec<&std::ffi::OsStr> = vec![path.as_os_str()];
    a.extend(args.iter().map(std::ffi::OsStr::new));
    let gen = python("testdata/killed_appender.py", &a);
    assert!(
        !gen.status.success(),
        "{name}: the writer was meant to kill itself: {}",
        String::from_utf8_lossy(&gen.stderr)
    );
    let meta_path = PathBuf::from(format!("{}.json", path.display()));
    let meta: Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    let out = python("tests/py/appender_oracle.py", &[path.as_os_str()]);
    assert!(
        out.status.success(),
        "{name}: oracle: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let oracle_path = dir.path().join("oracle.json");
    std::fs::write(&oracle_path, &out.stdout).unwrap();
    let oracle = serde_json::from_slice(&out.stdout).unwrap();
    Some(Killed {
        path,
        meta,
        meta_path,
        oracle,
        oracle_path,
        _dir: dir,
    })
}

/// The scan report (walk + carve + records beyond the index) as JSON.
fn scan(path: &Path) -> Value {
    let inv = h5salvage::scan_path_with(path, h5salvage::CarveMode::Auto).unwrap();
    h5salvage::report::json(&inv)
}

fn dataset<'v>(scan: &'v Value, path: &str) -> &'v Value {
    scan["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"] == path)
        .unwrap_or_else(|| panic!("{path} not in the scan"))
}

/// Salvages `input` and checks the output row by row.
fn salvage_and_check(k: &Killed, input: &Path, oracle: &Path) -> Value {
    let out = input.with_extension("salvaged.h5");
    h5salvage::salvage::salvage(input, &out, false).unwrap();
    let check = python(
        "tests/py/appender_check.py",
        &[out.as_os_str(), k.meta_path.as_os_str(), oracle.as_os_str()],
    );
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    serde_json::from_slice(&check.stdout).unwrap()
}

/// What every killed appender must satisfy, per dataset: no row at a wrong
/// position, nothing at its path that is not on disk, every row an on-disk
/// index record names at its path, every row flushed and on disk at its
/// path. Returns (rows at path, rows in chunks an index record names,
/// rows on disk) summed over the datasets.
fn assert_rows(name: &str, k: &Killed, got: &Value) -> (u64, u64, u64) {
    let mut sums = (0, 0, 0);
    for (ds, r) in got["datasets"].as_object().unwrap() {
        let n = |f: &str| r[f].as_u64().unwrap();
        assert_eq!(n("wrong"), 0, "{name} {ds}: rows at a wrong position: {r}");
        assert_eq!(n("beyond_disk"), 0, "{name} {ds}: {r}");
        assert_eq!(
            n("indexed_missing"),
            0,
            "{name} {ds}: rows an on-disk index record names are not at the path: {r}"
        );
        assert_eq!(n("proven_missing"), 0, "{name} {ds}: flushed rows: {r}");
        assert_eq!(
            n("indexed"),
            k.oracle["datasets"][ds]["n_indexed"].as_u64().unwrap()
        );
        eprintln!(
            "{name} {ds}: {} of {} rows on disk at their path ({} in chunks an index record names)",
            n("at_path"),
            n("on_disk"),
            n("indexed")
        );
        sums.0 += n("at_path");
        sums.1 += n("indexed");
        sums.2 += n("on_disk");
    }
    sums
}

/// Rows flushed per dataset (the stored extent of a consistent flush).
fn flushed(k: &Killed) -> u64 {
    k.meta["rows_flushed"].as_u64().unwrap()
}

const SMALL_CACHES: [&str; 8] = [
    "--mdc-kib",
    "16",
    "--chunk-cache-kib",
    "64",
    "--flush-every",
    "1000",
    "--kill-after-steps",
    "2950",
];

fn args<'a>(own: &[&'a str], caches: &[&'a str]) -> Vec<&'a str> {
    own.iter().chain(caches).copied().collect()
}

/// Arguments of a writer whose every dimension is unlimited (libver
/// latest: a version-2 B-tree index), 8-row chunks, small caches.
fn v2_args<'a>(own: &[&'a str]) -> Vec<&'a str> {
    let fixed = ["--unlimited", "all", "--chunk-rows", "8"];
    args(own, &[&fixed[..], &SMALL_CACHES[..]].concat())
}

#[test]
fn killed_h5py_earliest_gzip_tree_leaves_beyond_the_root_come_back() {
    let a = args(
        &[
            "--writer", "h5py", "--libver", "earliest", "--filter", "gzip",
        ],
        &[&["--chunk-rows", "8"], &SMALL_CACHES[..]].concat(),
    );
    let Some(k) = killed("earliest_gzip.h5", &a) else {
        return;
    };
    let s = scan(&k.path);
    let d = dataset(&s, "/series0");
    let beyond = d["chunks_beyond_index"].as_u64().unwrap();
    assert!(beyond > 100, "{}", d["problems"]);
    let recs = d["beyond_index_records"].as_array().unwrap();
    assert!(recs
        .iter()
        .all(|r| r["structure"] == "TREE" && r["tie"] == "sibling"));
    // The header is stale: the extent grew, and the dataset says so.
    assert!(d["stored_shape"].is_array(), "{d}");
    assert_eq!(d["status"], "partial");
    let got = salvage_and_check(&k, &k.path, &k.oracle_path);
    let (at_path, indexed, _) = assert_rows("earliest gzip", &k, &got);
    assert!(
        indexed > flushed(&k) + 8 * beyond / 2,
        "records beyond the root hold rows"
    );
    assert!(at_path >= indexed);
    let r = &got["datasets"]["series0"];
    assert_eq!(r["partial"], true, "{r}");
    assert_eq!(r["shape"][0], d["shape"][0]);
}

#[test]
fn killed_h5py_latest_gzip_data_blocks_beyond_the_index_come_back() {
    let a = args(
        &["--writer", "h5py", "--libver", "latest", "--filter", "gzip"],
        &[&["--chunk-rows", "8"], &SMALL_CACHES[..]].concat(),
    );
    let Some(k) = killed("latest_gzip.h5", &a) else {
        return;
    };
    let s = scan(&k.path);
    let d = dataset(&s, "/series0");
    assert!(d["chunks_beyond_index"].as_u64().unwrap() > 100, "{d}");
    assert!(d["beyond_index_records"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["structure"] == "EADB" && r["tie"] == "owner"));
    assert_eq!(d["stored_shape"][0], flushed(&k));
    let got = salvage_and_check(&k, &k.path, &k.oracle_path);
    let (at_path, indexed, _) = assert_rows("latest gzip", &k, &got);
    assert!(indexed > flushed(&k) + 1000, "{got}");
    assert!(at_path >= indexed);
}

/// libver latest with every dimension unlimited: a version-2 B-tree
/// indexes the chunks (records of type 11). The root the header names is
/// stale (its record count too: its checksum fails at the header's count),
/// newer leaves are on disk: they are carved (record count from their own
/// checksum) and tied by child pointers from the stored root or, for leaves
/// no pointer reaches, as the only dataset they fit.
#[test]
fn killed_h5py_latest_two_unlimited_dims_v2_btree_nodes_come_back() {
    let a = v2_args(&["--writer", "h5py", "--libver", "latest", "--filter", "gzip"]);
    let Some(k) = killed("latest_v2btree.h5", &a) else {
        return;
    };
    assert!(k.oracle["index_records"].as_u64().unwrap() > 1000);
    let s = scan(&k.path);
    let d = dataset(&s, "/series0");
    let beyond = d["chunks_beyond_index"].as_u64().unwrap();
    assert!(beyond > 1000, "{d}");
    let recs = d["beyond_index_records"].as_array().unwrap();
    assert!(recs.iter().all(
        |r| ["BTLF", "BTIN"].contains(&r["structure"].as_str().unwrap())
            && ["child", "unique", "shared_chunk"].contains(&r["tie"].as_str().unwrap())
    ));
    assert!(recs.iter().any(|r| r["tie"] == "child"), "{d}");
    assert_eq!(d["status"], "partial");
    let got = salvage_and_check(&k, &k.path, &k.oracle_path);
    let (at_path, indexed, on_disk) = assert_rows("latest v2 B-tree", &k, &got);
    assert!(indexed >= 8 * beyond, "{got}");
    assert_eq!(at_path, on_disk, "{got}");
}

/// An h5py SWMR writer (libver latest), every dimension unlimited,
/// shuffle + gzip + Fletcher-32, killed between flushes: its v2 B-tree
/// leaves written after the last flush come back, each row at its place.
#[test]
fn killed_swmr_v2_btree_shuffle_gzip_fletcher32_comes_back_whole() {
    let a = v2_args(&[
        "--writer",
        "h5py-swmr",
        "--filter",
        "shuffle-gzip-fletcher32",
    ]);
    let Some(k) = killed("swmr_v2btree.h5", &a) else {
        return;
    };
    let s = scan(&k.path);
    let d = dataset(&s, "/series0");
    assert!(d["chunks_beyond_index"].as_u64().unwrap() > 500, "{d}");
    assert_eq!(d["stored_shape"][0], flushed(&k));
    let got = salvage_and_check(&k, &k.path, &k.oracle_path);
    let (at_path, indexed, on_disk) = assert_rows("swmr v2 B-tree", &k, &got);
    assert!(indexed > flushed(&k) + 4000, "{got}");
    assert_eq!(at_path, on_disk, "{got}");
}

/// Two unfiltered datasets with every dimension unlimited, appended side
/// by side: their v2 B-tree nodes have one shape and name no owner. Nodes
/// reached from a stored root or sharing a chunk with an index are tied;
/// the others fit both datasets, and are tied to the one whose proven
/// positions they do not contradict (unfiltered chunks never move).
/// A record a split moved into a parent that never reached the disk
/// proves nothing: such rows (flushed once) may be missing, never wrong.
#[test]
fn killed_h5py_latest_v2_btree_two_unfiltered_datasets_no_row_at_a_wrong_place() {
    let a = v2_args(&[
        "--writer",
        "h5py",
        "--libver",
        "latest",
        "--filter",
        "none",
        "--datasets",
        "2",
    ]);
    let Some(k) = killed("latest_v2btree_two.h5", &a) else {
        return;
    };
    let got = salvage_and_check(&k, &k.path, &k.oracle_path);
    for (ds, r) in got["datasets"].as_object().unwrap() {
        let n = |f: &str| r[f].as_u64().unwrap();
        assert_eq!(n("wrong"), 0, "{ds}: {r}");
        assert_eq!(n("beyond_disk"), 0, "{ds}: {r}");
        assert_eq!(n("indexed_missing"), 0, "{ds}: {r}");
        assert!(n("at_path") * 100 >= n("on_disk") * 95, "{ds}: {r}");
        eprintln!(
            "v2 B-tree two datasets {ds}: {} of {} rows on disk at their path",
            n("at_path"),
            n("on_disk")
        );
    }
}

#[test]
fn killed_h5py_latest_unfiltered_two_datasets_each_get_their_own_blocks() {
    let a = args(
        &[
            "--writer",
            "h5py",
            "--libver",
            "latest",
            "--filter",
            "none",
            "--datasets",
            "2",
            "--chunk-rows",
            "8",
        ],
        &[
            "--mdc-kib",
            "4",
            "--chunk-cache-kib",
            "64",
            "--flush-every",
            "1000",
            "--kill-after-steps",
            "2950",
        ],
    );
    let Some(k) = killed("latest_two.h5", &a) else {
        return;
    };
    let s = scan(&k.path);
    let beyond: u64 = ["/series0", "/series1"]
        .iter()
        .map(|p| dataset(&s, p)["chunks_beyond_index"].as_u64().unwrap())
        .sum();
    assert!(beyond > 0);
    let got = salvage_and_check(&k, &k.path, &k.oracle_path);
    let (at_path, indexed, on_disk) = assert_rows("latest two", &k, &got);
    assert!(at_path >= indexed && indexed > 2 * flushed(&k));
    assert!(at_path * 100 >= on_disk * 95, "{got}");
}

#[test]
fn killed_h5py_latest_rank1_fletcher32_grows_its_extent() {
    let a = [
        "--writer",
        "h5py",
        "--libver",
        "latest",
        "--rank",
        "1",
        "--filter",
        "shuffle-gzip-fletcher32",
        "--chunk-rows",
        "16",
        "--rows-per-step",
        "4",
        "--mdc-kib",
        "4",
        "--chunk-cache-kib",
        "4",
        "--flush-every",
        "1000",
        "--kill-after-steps",
        "2950",
    ];
    let Some(k) = killed("latest_rank1.h5", &a) else {
        return;
    };
    let s = scan(&k.path);
    let d = dataset(&s, "/series0");
    assert_eq!(d["stored_shape"], serde_json::json!([flushed(&k)]), "{d}");
    assert!(d["shape"][0].as_u64().unwrap() > flushed(&k));
    let got = salvage_and_check(&k, &k.path, &k.oracle_path);
    let (at_path, indexed, _) = assert_rows("latest rank 1", &k, &got);
    assert!(at_path >= indexed && indexed > flushed(&k));
}

#[test]
fn killed_h5py_earliest_unfiltered_two_datasets() {
    let a = args(
        &[
            "--writer",
            "h5py",
            "--libver",
            "earliest",
            "--filter",
            "none",
            "--datasets",
            "2",
            "--chunk-rows",
            "8",
        ],
        &[
            "--mdc-kib",
            "4",
            "--chunk-cache-kib",
            "64",
            "--flush-every",
            "1000",
            "--kill-after-steps",
            "2950",
        ],
    );
    let Some(k) = killed("earliest_two.h5", &a) else {
        return;
    };
    let got = salvage_and_check(&k, &k.path, &k.oracle_path);
    let (at_path, indexed, on_disk) = assert_rows("earliest two", &k, &got);
    assert!(at_path >= indexed && indexed > 2 * flushed(&k));
    assert!(at_path * 100 >= on_disk * 95, "{got}");
}

/// Breaks the sibling chain of a killed earliest writer by erasing the
/// signature of the first leaf past the index root: the leaves right of it
/// no pointer reaches. With one dataset they fit only it and come back
/// (tie "unique"); with two datasets of the same shape they fit both and
/// must not be placed at either.
#[test]
fn broken_sibling_chain_unique_fit_comes_back_two_fits_go_nowhere() {
    for datasets in ["1", "2"] {
        let a = args(
            &[
                "--writer",
                "h5py",
                "--libver",
                "earliest",
                "--filter",
                "gzip",
                "--chunk-rows",
                "8",
                "--datasets",
                datasets,
            ],
            // Two datasets need more room to keep their roots in the cache.
            &[&["--mdc-kib", "32"], &SMALL_CACHES[2..]].concat(),
        );
        let Some(k) = killed(&format!("chain_{datasets}.h5"), &a) else {
            return;
        };
        let s = scan(&k.path);
        let d = dataset(&s, "/series0");
        let recs = d["beyond_index_records"].as_array().unwrap();
        assert!(recs.len() >= 3, "{datasets}: {d}");
        let cut = recs[0]["offset"].as_u64().unwrap() as usize;
        let mut bytes = std::fs::read(&k.path).unwrap();
        assert_eq!(&bytes[cut..cut + 4], b"TREE");
        bytes[cut..cut + 4].copy_from_slice(b"XXXX");
        let broken = k.path.with_extension("broken.h5");
        std::fs::write(&broken, &bytes).unwrap();
        let s2 = scan(&broken);
        let d2 = dataset(&s2, "/series0");
        let ties: Vec<&str> = d2["beyond_index_records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["tie"].as_str().unwrap())
            .collect();
        // The oracle of the broken file: the erased leaf's records are gone.
        let out = python(
            "tests/py/appender_oracle.py",
            &[broken.as_os_str(), k.meta_path.as_os_str()],
        );
        let oracle_path = broken.with_extension("oracle.json");
        std::fs::write(&oracle_path, &out.stdout).unwrap();
        let got = salvage_and_check(&k, &broken, &oracle_path);
        for (ds, r) in got["datasets"].as_object().unwrap() {
            assert_eq!(r["wrong"], 0, "{datasets} {ds}: {r}");
            assert_eq!(r["beyond_disk"], 0, "{datasets} {ds}: {r}");
            assert_eq!(r["proven_missing"], 0, "{datasets} {ds}: {r}");
        }
        let r = &got["datasets"]["series0"];
        let missing = r["indexed_missing"].as_u64().unwrap();
        if datasets == "1" {
            assert!(ties.contains(&"unique"), "{ties:?}");
            // Only the erased leaf's chunks are gone: rows the oracle still
            // sees an index record for all come back.
            assert_eq!(missing, 0, "{r}");
        } else {
            assert!(!ties.contains(&"unique"), "{ties:?}");
            assert!(missing > 0, "the loose leaves were placed: {r}");
            let problems = s2["problems"].to_string();
            assert!(problems.contains("fit several datasets"), "{problems}");
        }
    }
}

#[test]
fn killed_swmr_and_pytables_writers_no_row_at_a_wrong_place() {
    let swmr = [
        "--writer",
        "h5py-swmr",
        "--filter",
        "gzip",
        "--flush-every",
        "100",
        "--kill-after-steps",
        "1550",
    ];
    let tables = [
        "--writer",
        "pytables",
        "--filter",
        "shuffle-gzip-fletcher32",
        "--cols",
        "5",
        "--flush-every",
        "500",
        "--kill-after-steps",
        "6250",
    ];
    for (name, a, modules) in [
        ("swmr.h5", &swmr[..], "h5py"),
        ("tables.h5", &tables[..], "tables"),
    ] {
        if !have_python(&[modules], name) {
            return;
        }
        let Some(k) = killed(name, a) else {
            return;
        };
        let got = salvage_and_check(&k, &k.path, &k.oracle_path);
        let (at_path, _, on_disk) = assert_rows(name, &k, &got);
        // Flushed at the last multiple of --flush-every: those rows at least.
        assert!(at_path >= flushed(&k), "{name}: {got}");
        assert!(on_disk >= at_path, "{name}: {got}");
    }
}

#[test]
fn killed_netcdf4_writer_no_row_at_a_wrong_place() {
    let a = [
        "--writer",
        "netcdf4",
        "--rank",
        "3",
        "--filter",
        "shuffle-gzip",
        "--chunk-rows",
        "1",
        "--rows-per-step",
        "1",
        "--kill-after-steps",
        "1500",
    ];
    let Some(k) = killed("killed.nc", &a) else {
        return;
    };
    let d = k.oracle["datasets"]["series0"].clone();
    assert!(d["n_rows"].as_u64().unwrap() > 0, "chunks on disk: {d}");
    let got = salvage_and_check(&k, &k.path, &k.oracle_path);
    assert_rows("netcdf4", &k, &got);
}

/// Index records beyond the root in hostile bytes: sibling pointers to
/// itself and in cycles, garbage after the signatures, a file cut inside a
/// node. Runs the search on the walk's inventory of each variant: no panic,
/// no hang, and every record added names a chunk of its dataset.
#[test]
fn hostile_index_records_never_panic_or_hang() {
    use h5salvage::carve::chunk_records::extend;
    for name in [
        "rich_earliest.h5",
        "rich_latest.h5",
        "chunked_heap_earliest.h5",
        "worker_earliest.h5",
        "resized_latest.h5",
        "beyond_extent_latest.h5",
    ] {
        let healthy = std::fs::read(testdata().join(name)).unwrap();
        let hits: Vec<usize> = [b"TREE", b"EADB", b"EASB", b"EAIB", b"BTLF", b"BTIN"]
            .iter()
            .flat_map(|sig| {
                healthy
                    .windows(4)
                    .enumerate()
                    .filter(move |(_, w)| w == sig)
                    .map(|(i, _)| i)
            })
            .collect();
        assert!(!hits.is_empty(), "{name}");
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for &o in &hits {
            let mut variants: Vec<Vec<u8>> = Vec::new();
            // Left and right siblings at the node itself, and at the node
            // before it (a two-node cycle).
            for target in [o as u64, hits[0] as u64] {
                let mut b = healthy.clone();
                if o + 24 <= b.len() {
                    b[o + 8..o + 16].copy_from_slice(&target.to_le_bytes());
                    b[o + 16..o + 24].copy_from_slice(&target.to_le_bytes());
                }
                variants.push(b);
            }
            // Garbage after the signature.
            let mut b = healthy.clone();
            for x in b.iter_mut().skip(o + 4).take(200) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *x = seed as u8;
            }
            variants.push(b);
            // Cut inside the node.
            variants.push(healthy[..(o + 10).min(healthy.len())].to_vec());
            for b in variants {
                let mut inv = h5salvage::walk::walk(name, &b);
                extend(&b, &mut inv);
                for obj in &inv.objects {
                    let Some(ds) = &obj.dataset else { continue };
                    for r in &ds.beyond_index.records {
                        assert!(
                            ds.chunks.iter().any(|c| c.offset == r.offset),
                            "{name}: a record without its chunk"
                        );
                    }
                }
            }
        }
    }
}
