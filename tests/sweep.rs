//! The adversarial sweep: healthy files of writers and features the
//! checked-in fixtures lack (testdata/sweep.py: h5py corner cases at both
//! libver bounds, paged / aligned file space with timestamps and
//! continuation blocks, h5netcdf with `invalid_netcdf=True`, netCDF4-python
//! user-defined types, PyTables enums/VLArrays/indexes; the ecosystem's
//! writers: anndata `write_h5ad` (dense, CSR, gzip), a pandas HDFStore
//! (fixed and table formats), xarray `to_netcdf` with both engines, a
//! MATLAB v7.3 file of hdf5storage), made at test time.
//! Each must come out of `salvage` identical as h5py sees it
//! (tests/py/compare_h5.py) and, for the ecosystem's files, as its own
//! library reads it (tests/py/eco_same.py), and damaged copies of each
//! (truncated, or for the ecosystem's files a download cut at 25/50/75/95 %;
//! one zeroed page; one flipped header byte: tests/py/sweep_damage.py) must
//! be scanned and salvaged within a time limit, with a documented exit
//! code, and without a value that is not marked partial or unverified
//! differing from the original (tests/py/compare.py).

mod common;

use common::{bin, check_python, compare, have_python, py_script, python_code, python_timed};

use std::path::{Path, PathBuf};
use std::process::Command;

const WRITERS: &[&str] = &[
    "h5py",
    "numpy",
    "netCDF4",
    "h5netcdf",
    "tables",
    "anndata",
    "pandas",
    "xarray",
    "scipy",
    "hdf5storage",
];

/// The sweep files the ecosystem's libraries wrote (anndata, pandas,
/// xarray, hdf5storage): read back with that library too.
fn ecosystem(name: &str) -> bool {
    [".h5ad", ".mat"].iter().any(|e| name.ends_with(e))
        || name.starts_with("xarray_")
        || name.starts_with("pandas_")
}

/// Writes the sweep files (all of them, or `names`) into `dir`.
fn generate(dir: &Path, names: &[&str]) -> Vec<PathBuf> {
    let mut cmd = python_timed(300);
    cmd.arg(common::testdata().join("sweep.py"))
        .arg(dir)
        .args(names);
    let o = cmd.output().expect("python3");
    assert!(
        o.status.success(),
        "sweep.py: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| ["h5", "nc", "h5ad", "mat"].iter().any(|x| e == *x))
        })
        .collect();
    v.sort();
    v
}

/// The sweep file `name` written into a new directory, and the path
/// `bad` there for a damaged copy of it (`None`: the writers are missing,
/// which fails the test under CI, see `have_python`).
fn one_sweep_file(
    name: &str,
    bad: &str,
    test: &str,
) -> Option<(tempfile::TempDir, PathBuf, PathBuf)> {
    if !have_python(WRITERS, test) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let orig = generate(dir.path(), &[name]).remove(0);
    let bad = dir.path().join(bad);
    Some((dir, orig, bad))
}

/// `h5salvage salvage IN -o OUT` killed after a minute: its exit code.
fn salvage_cli(input: &Path, out: &Path) -> i32 {
    let o = Command::new("timeout")
        .arg("60")
        .arg(bin())
        .args([
            "salvage".as_ref(),
            input.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ])
        .output()
        .unwrap();
    o.status.code().unwrap_or(-1)
}

/// `h5salvage scan IN`: its exit code and report.
fn scan_cli(input: &Path) -> (i32, String) {
    let o = Command::new(bin()).arg("scan").arg(input).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn sweep_files_round_trip_exactly() {
    if !have_python(WRITERS, "sweep_files_round_trip_exactly") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = generate(dir.path(), &[]);
    assert_eq!(files.len(), 15, "{files:?}");
    for input in files {
        let name = input.file_name().unwrap().to_string_lossy().to_string();
        let out = dir.path().join(format!("{name}.out"));
        assert_eq!(salvage_cli(&input, &out), 0, "{name}");
        check_python(&[
            py_script("compare_h5.py").as_os_str(),
            input.as_os_str(),
            out.as_os_str(),
        ]);
        let (ok, v) = compare(&input, &out, true);
        assert!(ok, "{name}: {v}");
        if name.ends_with(".nc") {
            check_python(&[
                py_script("netcdf_same.py").as_os_str(),
                input.as_os_str(),
                out.as_os_str(),
            ]);
        }
        if ecosystem(&name) {
            check_python(&[
                py_script("eco_same.py").as_os_str(),
                input.as_os_str(),
                out.as_os_str(),
            ]);
        }
    }
}

#[test]
fn damaged_sweep_files_never_give_a_wrong_value() {
    if !have_python(WRITERS, "damaged_sweep_files_never_give_a_wrong_value") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = generate(dir.path(), &[]);
    // Two files at a time: each run is a python driver starting the binary.
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(files.len().div_ceil(2))
            .map(|part| {
                let work = dir.path().join(format!("work{}", part.len()));
                s.spawn(move || {
                    let mut bad = Vec::new();
                    for input in part {
                        let work = work.join(input.file_name().unwrap());
                        let mut cmd = python_timed(900);
                        cmd.arg(py_script("sweep_damage.py"))
                            .arg(bin())
                            .arg(input)
                            .arg(&work);
                        // The PyTables file (2.5 MB, mostly its column
                        // index) is slow to compare: no zeroed pages.
                        let name = input.file_name().unwrap().to_string_lossy();
                        if input.ends_with("pytables_misc.h5") {
                            cmd.args(["--only", "trunc,flip"]);
                        } else if ecosystem(&name) {
                            // A download cut short, as its users meet it.
                            cmd.args(["--only", "cut,zero,flip"]);
                        }
                        let o = cmd.output().unwrap();
                        if !o.status.success() {
                            bad.push(format!(
                                "{}: {}{}",
                                input.display(),
                                String::from_utf8_lossy(&o.stdout),
                                String::from_utf8_lossy(&o.stderr)
                            ));
                        }
                    }
                    bad
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Salvages `damaged` (a damaged copy of `orig`) and checks with
/// compare.py that no value not marked partial or unverified differs from
/// the original: the exit code and compare.py's summary.
fn salvage_and_compare(orig: &Path, damaged: &Path) -> (i32, serde_json::Value) {
    let out = damaged.with_extension("out.h5");
    let rc = salvage_cli(damaged, &out);
    assert!([0, 1].contains(&rc), "exit {rc}");
    let (ok, v) = compare(orig, &out, false);
    assert!(ok, "{v}");
    (rc, v)
}

/// A v1 object header carries no checksum: a damaged address in its
/// layout message (spec IV.A.2.i) made a contiguous dataset read another
/// dataset's bytes as its own, written as recovered. Raw data that shares
/// bytes with another object's raw data or header is now not trusted
/// (`inventory::check_data_overlaps`): written, marked
/// `h5salvage_unverified`, exit 1.
#[test]
fn a_data_address_pointing_into_another_dataset_is_not_trusted() {
    if !have_python(
        &["h5py", "numpy"],
        "a_data_address_pointing_into_another_dataset",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let orig = dir.path().join("two.h5");
    let bad = dir.path().join("two_bad.h5");
    python_code(
        "import h5py, numpy as np, sys, struct\n\
         with h5py.File(sys.argv[1], 'w', libver='earliest') as f:\n\
         \x20   f.create_dataset('a', data=np.arange(1, 9, dtype='<i4'), track_times=False)\n\
         \x20   f.create_dataset('b', data=np.arange(100, 116, dtype='<i4'), track_times=False)\n\
         with h5py.File(sys.argv[1], 'r') as f:\n\
         \x20   ha = h5py.h5o.get_info(f['a'].id).addr\n\
         \x20   da, db = f['a'].id.get_offset(), f['b'].id.get_offset()\n\
         raw = bytearray(open(sys.argv[1], 'rb').read())\n\
         at = raw.index(b'\\x03\\x01' + struct.pack('<Q', da), ha) + 2\n\
         assert at < ha + 512\n\
         raw[at:at + 8] = struct.pack('<Q', db + 4)\n\
         open(sys.argv[2], 'wb').write(raw)\n",
        &[&orig, &bad],
    );
    let (_, text) = scan_cli(&bad);
    assert!(
        text.contains("shares bytes with the raw data of /b"),
        "{text}"
    );
    let (rc, v) = salvage_and_compare(&orig, &bad);
    assert_eq!(rc, 1, "{v}");
    // /a (read from /b's bytes) and /b, whose bytes /a claims, are both
    // named unverified (which address is wrong cannot be told) and partial.
    assert_eq!(v["partial_ok"], 2, "{v}");
    python_code(
        "import h5py, sys\n\
         f = h5py.File(sys.argv[1], 'r')\n\
         assert all('h5salvage_unverified' in f[n].attrs for n in ('a', 'b'))\n",
        &[bad.with_extension("out.h5")],
    );
}

/// Version 1 B-tree nodes and local heaps carry no checksum either, and a
/// node is allocated for 2K entries (spec III.A.1; K = 32 for chunks, 16
/// for groups): a chunk record's or a contiguous layout's address moved
/// into a node's unused tail, or into a local heap's data segment, read
/// metadata (zeros) as data, written as recovered. Every metadata
/// structure the walk reads, at its allocated size, is known space
/// (`follow::Known`, `inventory::check_data_overlaps`): SharedBytes,
/// written marked `h5salvage_unverified`, exit 1.
#[test]
fn a_data_address_pointing_into_metadata_is_not_trusted() {
    if !have_python(
        &["h5py", "numpy"],
        "a_data_address_pointing_into_metadata_is_not_trusted",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let orig = dir.path().join("meta.h5");
    let bad: Vec<PathBuf> = ["chunk_in_node", "contiguous_in_node", "contiguous_in_heap"]
        .iter()
        .map(|n| dir.path().join(format!("{n}.h5")))
        .collect();
    python_code(
        "import h5py, numpy as np, sys, struct\n\
         src = sys.argv[1]\n\
         with h5py.File(src, 'w', libver='earliest') as f:\n\
         \x20   f.create_dataset('x', data=np.arange(1, 101, dtype='<i4'), chunks=(10,), track_times=False)\n\
         \x20   f.create_dataset('c', data=np.arange(7, 15, dtype='<i4'), track_times=False)\n\
         with h5py.File(src, 'r') as f:\n\
         \x20   a0 = f['x'].id.get_chunk_info(0).byte_offset\n\
         \x20   dc = f['c'].id.get_offset()\n\
         \x20   hc = h5py.h5o.get_info(f['c'].id).addr\n\
         orig = open(src, 'rb').read()\n\
         def put(out, old, at, new):\n\
         \x20   raw = bytearray(orig)\n\
         \x20   assert raw[at:at + 8] == struct.pack('<Q', old)\n\
         \x20   raw[at:at + 8] = struct.pack('<Q', new)\n\
         \x20   open(out, 'wb').write(raw)\n\
         node = orig.index(b'TREE\\x01')\n\
         put(sys.argv[2], a0, orig.index(struct.pack('<Q', a0), node), node + 1024)\n\
         layout = orig.index(b'\\x03\\x01' + struct.pack('<Q', dc), hc) + 2\n\
         put(sys.argv[3], dc, layout, orig.index(b'TREE\\x00') + 300)\n\
         heap = orig.index(b'HEAP')\n\
         (segment,) = struct.unpack('<Q', orig[heap + 24:heap + 32])\n\
         put(sys.argv[4], dc, layout, segment + 8)\n",
        &[&orig, &bad[0], &bad[1], &bad[2]],
    );
    for (b, what, name) in [
        (&bad[0], "v1 B-tree node", "x"),
        (&bad[1], "v1 B-tree node", "c"),
        (&bad[2], "HEAP data segment", "c"),
    ] {
        let (rc, text) = scan_cli(b);
        assert_eq!(rc, 1, "{}: {text}", b.display());
        assert!(
            text.contains(&format!("shares bytes with the {what} the walk read")),
            "{}: {text}",
            b.display()
        );
        let (rc, v) = salvage_and_compare(&orig, b);
        assert_eq!(rc, 1, "{}: {v}", b.display());
        // Marked partial and unverified: the data is not claimed.
        let marked = v["partial_ok"].as_u64().unwrap() + v["unverified"].as_u64().unwrap();
        assert_eq!(marked, 1, "{}: {v}", b.display());
        python_code(
            "import h5py, sys\n\
             f = h5py.File(sys.argv[1], 'r')\n\
             assert 'h5salvage_unverified' in f[sys.argv[2]].attrs, dict(f[sys.argv[2]].attrs)\n\
             other = {'x': 'c', 'c': 'x'}[sys.argv[2]]\n\
             assert 'h5salvage_unverified' not in f[other].attrs\n",
            &[b.with_extension("out.h5").as_os_str(), name.as_ref()],
        );
    }
    // The healthy original: no overlap, exit 0.
    let out = dir.path().join("meta.out.h5");
    assert_eq!(salvage_cli(&orig, &out), 0);
}

/// A v1 object header whose chunk size was damaged upwards (spec IV.A.1.a:
/// "Object Header Size") read on into the following bytes, which framed as
/// messages of another object (attributes of a neighbour, a continuation
/// to its block): those attributes were written onto the dataset. With a
/// chunk that fails to frame, messages past the declared count are not
/// used (`follow::object_header::read_all_messages`).
#[test]
fn a_v1_header_size_too_large_takes_no_neighbour_messages() {
    let Some((_dir, orig, bad)) = one_sweep_file(
        "corners_earliest",
        "corners_bad.h5",
        "a_v1_header_size_too_large_takes_no_neighbour_messages",
    ) else {
        return;
    };
    python_code(
        "import h5py, sys\n\
         with h5py.File(sys.argv[1], 'r') as f:\n\
         \x20   at = h5py.h5o.get_info(f['/strings/ascii_spacepad'].id).addr + 8\n\
         raw = bytearray(open(sys.argv[1], 'rb').read())\n\
         raw[at] ^= 0xFF\n\
         open(sys.argv[2], 'wb').write(raw)\n",
        &[&orig, &bad],
    );
    salvage_and_compare(&orig, &bad);
}

/// A v1 object header has no checksum: a damaged deflate level in its
/// filter pipeline message (spec IV.A.2.l; libhdf5 refuses any level
/// other than one value 0-9 on every read) was copied into the output,
/// whose chunks then could not be read. The level plays no part in
/// decoding: written as 9, with a note, and the values read back whole.
/// The damage is recorded (`FilterPipeline::faults`): scan says damaged,
/// salvage exits 1.
#[test]
fn a_damaged_deflate_level_leaves_the_output_readable() {
    if !have_python(
        &["h5py", "numpy"],
        "a_damaged_deflate_level_leaves_the_output_readable",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let orig = dir.path().join("gz.h5");
    let bad = dir.path().join("gz_bad.h5");
    python_code(
        "import h5py, numpy as np, sys\n\
         with h5py.File(sys.argv[1], 'w', libver='earliest') as f:\n\
         \x20   f.create_dataset('x', data=np.arange(4000.0).reshape(40, 100), chunks=(8, 100), compression='gzip', compression_opts=4)\n\
         raw = bytearray(open(sys.argv[1], 'rb').read())\n\
         at = raw.index(b'deflate\\x00\\x04\\x00\\x00\\x00') + 8\n\
         raw[at + 1] = 0xFF\n\
         open(sys.argv[2], 'wb').write(raw)\n",
        &[&orig, &bad],
    );
    // The damage is a typed problem of the message (BadValue), so scan
    // calls the file damaged and salvage exits 1.
    let (rc, text) = scan_cli(&bad);
    assert_eq!(rc, 1, "{text}");
    assert!(
        text.contains("filter pipeline message at 0x") && text.contains("bad deflate level"),
        "{text}"
    );
    // Not `salvage_and_compare`: the original level (4) is not in the
    // damaged file, so the written level differs from it by design.
    let out = bad.with_extension("out.h5");
    let rc = salvage_cli(&bad, &out);
    assert_eq!(rc, 1);
    python_code(
        "import h5py, numpy as np, sys\n\
         with h5py.File(sys.argv[1], 'r') as f:\n\
         \x20   assert (f['x'][...] == np.arange(4000.0).reshape(40, 100)).all()\n\
         \x20   assert f['x'].compression_opts == 9, f['x'].compression_opts\n",
        &[&out],
    );
}

/// A zeroed last page of a file whose size is no multiple of 4 KiB (the
/// damaged sweep's `zero` variant on xarray's netCDF-4 file): the page
/// wiped a chunk index node there (the file is damaged) and the tail of an
/// unfiltered dataset's chunks, which have no checksum. Only whole pages
/// counted as zeroed ranges, so those chunks' zeros were written as
/// recovered values; the trailing partial page counts too
/// (`inventory::zeroed_ranges`): written marked `h5salvage_unverified`.
#[test]
fn a_zeroed_partial_last_page_leaves_its_data_unverified() {
    let Some((_dir, orig, bad)) = one_sweep_file(
        "xarray_netcdf4",
        "xarray_last_page.nc",
        "a_zeroed_partial_last_page_leaves_its_data_unverified",
    ) else {
        return;
    };
    let mut raw = std::fs::read(&orig).unwrap();
    let n = raw.len();
    assert_ne!(n % 4096, 0, "the file must end in a partial page");
    raw[n / 4096 * 4096..].fill(0);
    std::fs::write(&bad, &raw).unwrap();
    let (rc, v) = salvage_and_compare(&orig, &bad);
    assert_eq!(rc, 1, "{v}");
    assert!(v["unverified"].as_u64().unwrap() >= 1, "{v}");
}

/// A symbol-table group whose local heap data segment reads as zeros (an
/// anndata `write_h5ad` killed while libhdf5 flushed its metadata at
/// close: the root's SNOD reached the disk, its heap's names did not)
/// gives every member the name "" (illegal: HDF5 never writes an empty
/// link name). The first was written as `%EMPTY`, every later one dropped
/// as a duplicate name with its object never visited: obs, var, layers
/// lost although their headers were on disk. Each is kept (`%EMPTY`,
/// `%EMPTY~2`, ...; `walk::group::insert_unique`), recorded, with its data.
#[test]
fn members_whose_names_read_empty_are_all_kept() {
    if !have_python(&["h5py", "numpy"], "members_whose_names_read_empty") {
        return;
    }
    let (_dir, orig, bad) = damaged_copy(
        "names",
        "import h5py, numpy as np, sys, struct\n\
         with h5py.File(sys.argv[1], 'w', libver='earliest') as f:\n\
         \x20   for i, n in enumerate(('alpha', 'beta', 'gamma')):\n\
         \x20       f.create_dataset(n, data=np.arange(10) + 100 * i, track_times=False)\n\
         \x20   f.create_group('delta').create_dataset('x', data=[7, 8])\n\
         raw = bytearray(open(sys.argv[1], 'rb').read())\n\
         heap = raw.index(b'HEAP')\n\
         size, _, seg = struct.unpack('<QQQ', raw[heap + 8:heap + 32])\n\
         assert b'alpha' in raw[seg:seg + size]\n\
         raw[seg:seg + size] = bytes(size)\n\
         open(sys.argv[2], 'wb').write(raw)\n",
    );
    let (rc, v) = salvage_and_compare(&orig, &bad);
    assert_eq!(rc, 1, "{v}");
    // Every member's data is in the output, under an escaped name.
    check_output(
        &bad,
        "import h5py, numpy as np, sys\n\
         f = h5py.File(sys.argv[1], 'r')\n\
         names = sorted(n for n in f if n.startswith('%EMPTY'))\n\
         assert names == ['%EMPTY', '%EMPTY~2', '%EMPTY~3', '%EMPTY~4'], list(f)\n\
         got = sorted(tuple(f[n][...]) for n in names if isinstance(f[n], h5py.Dataset))\n\
         assert got == [tuple(np.arange(10) + 100 * i) for i in range(3)], got\n\
         assert any(isinstance(f[n], h5py.Group) and 'x' in f[n] for n in names)\n",
    );
}

/// A chunk no index lists in a file its writer closed is another object's
/// (its header lost), not an append: anndata's layers/counts/indptr lost
/// its header to a zeroed page, and its one chunk, of the same size and
/// filters as raw/X/indptr's, was placed by allocation order as rows
/// 301..602 of raw/X/indptr (the extent grown, marked inferred). The
/// stored extent of a closed file is final: such chunks go to /lost+found
/// (`StrayReason::BeyondClosedExtent`, `carve::chunks::place_group`).
#[test]
fn a_closed_files_extent_is_not_grown_by_another_objects_chunk() {
    if !have_python(&["h5py", "numpy"], "a_closed_files_extent_is_not_grown") {
        return;
    }
    let (_dir, orig, bad) = damaged_copy(
        "two_gz",
        "import h5py, numpy as np, sys\n\
         with h5py.File(sys.argv[1], 'w', libver='earliest') as f:\n\
         \x20   for i, n in enumerate(('a', 'b')):\n\
         \x20       f.create_dataset(n, data=np.arange(300, dtype='<i4') * (i + 1), chunks=(300,), maxshape=(None,), compression='gzip', track_times=False)\n\
         with h5py.File(sys.argv[1], 'r') as f:\n\
         \x20   hb = h5py.h5o.get_info(f['b'].id).addr\n\
         \x20   assert f['a'].id.get_chunk_info(0).byte_offset < f['b'].id.get_chunk_info(0).byte_offset\n\
         raw = bytearray(open(sys.argv[1], 'rb').read())\n\
         raw[hb:hb + 16] = bytes(16)\n\
         open(sys.argv[2], 'wb').write(raw)\n",
    );
    let (rc, v) = salvage_and_compare(&orig, &bad);
    assert_eq!(rc, 1, "{v}");
    check_output(
        &bad,
        "import h5py, sys\n\
         f = h5py.File(sys.argv[1], 'r')\n\
         assert f['a'].shape == (300,), f['a'].shape\n\
         assert 'h5salvage_status' not in f['a'].attrs, dict(f['a'].attrs)\n\
         assert len(f['lost+found']) == 1, list(f['lost+found'])\n",
    );
}

/// A dataset header whose dataspace and layout messages were lost (a
/// zeroed page cut anndata's var/highly_variable header after its datatype,
/// fill value and filter pipeline messages) was called a committed
/// datatype (a datatype and no dataspace) and written as one at the
/// dataset's path. A fill value or filter pipeline message is a dataset's
/// only (spec IV.A.2.f/l): the object is not a datatype
/// (`walk::object::HeaderContents::kind`), nothing is written as one.
#[test]
fn a_dataset_without_its_layout_is_not_made_a_datatype() {
    if !have_python(&["h5py", "numpy"], "a_dataset_without_its_layout") {
        return;
    }
    let (_dir, orig, bad) = damaged_copy(
        "flags",
        "import h5py, numpy as np, sys, struct\n\
         with h5py.File(sys.argv[1], 'w', libver='earliest') as f:\n\
         \x20   f.create_dataset('flags', data=np.arange(120) % 3 == 0, chunks=(120,), compression='gzip', track_times=False)\n\
         \x20   f.create_dataset('other', data=np.arange(5), track_times=False)\n\
         with h5py.File(sys.argv[1], 'r') as f:\n\
         \x20   a = h5py.h5o.get_info(f['flags'].id).addr\n\
         raw = bytearray(open(sys.argv[1], 'rb').read())\n\
         n, size = struct.unpack('<H4xI', raw[a + 2:a + 12])\n\
         p, zeroed = a + 16, []\n\
         while p < a + 16 + size:\n\
         \x20   t, s = struct.unpack('<HH', raw[p:p + 4])\n\
         \x20   if t in (1, 8):\n\
         \x20       raw[p + 8:p + 8 + s] = bytes(s)\n\
         \x20       zeroed.append(t)\n\
         \x20   p += 8 + s\n\
         assert sorted(zeroed) == [1, 8], zeroed\n\
         open(sys.argv[2], 'wb').write(raw)\n",
    );
    let (rc, v) = salvage_and_compare(&orig, &bad);
    assert_eq!(rc, 1, "{v}");
    check_output(
        &bad,
        "import h5py, sys\n\
         f = h5py.File(sys.argv[1], 'r')\n\
         assert not isinstance(f.get('flags'), h5py.Datatype), f.get('flags')\n\
         assert (f['other'][...] == range(5)).all()\n",
    );
}

/// A file `NAME.h5` and a damaged copy `NAME_bad.h5` in a new directory,
/// written by python `code` (given both paths): (directory, original,
/// damaged copy).
fn damaged_copy(name: &str, code: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let orig = dir.path().join(format!("{name}.h5"));
    let bad = dir.path().join(format!("{name}_bad.h5"));
    python_code(code, &[&orig, &bad]);
    (dir, orig, bad)
}

/// Runs python `code` on the salvaged output of `bad` (its argument).
fn check_output(bad: &Path, code: &str) {
    python_code(code, &[bad.with_extension("out.h5")]);
}

/// An attribute message cut by an all-zero page (a v1 header has no
/// checksum): its name and type before the page, its value in it. The
/// value read as zeros was written as the attribute's (a PyTables index
/// group's VERSION "2.1" came out ""). A value in an all-zero page range of
/// a damaged file is not trusted, as raw data there is not
/// (`salvage::write_attributes`): the attribute is lost, and said so.
#[test]
fn an_attribute_value_in_a_zeroed_page_is_not_written() {
    if !have_python(&["h5py", "numpy"], "an_attribute_value_in_a_zeroed_page") {
        return;
    }
    // The layout is searched: a filler attribute grows until VERSION's
    // value starts a page whose previous page holds its name.
    let (_dir, orig, bad) = damaged_copy(
        "attr_page",
        "import h5py, numpy as np, sys\n\
         def make(path, n):\n\
         \x20   with h5py.File(path, 'w', libver='earliest') as f:\n\
         \x20       g = f.create_group('g')\n\
         \x20       g.attrs['filler'] = np.zeros(n, 'u1')\n\
         \x20       g.attrs['VERSION'] = np.bytes_(b'2.1zq')\n\
         \x20       g.attrs['after'] = np.arange(3)\n\
         \x20       f.create_dataset('d', data=np.arange(3000), track_times=False)\n\
         for n in range(1, 9000, 8):\n\
         \x20   make(sys.argv[1], n)\n\
         \x20   raw = bytearray(open(sys.argv[1], 'rb').read())\n\
         \x20   v = raw.index(b'2.1zq')\n\
         \x20   if v % 4096 < 8 and raw.index(b'VERSION') < v - v % 4096:\n\
         \x20       raw[v - v % 4096:v - v % 4096 + 4096] = bytes(4096)\n\
         \x20       open(sys.argv[2], 'wb').write(raw)\n\
         \x20       break\n\
         else:\n\
         \x20   raise SystemExit('no layout found')\n",
    );
    let (rc, v) = salvage_and_compare(&orig, &bad);
    assert_eq!(rc, 1, "{v}");
    check_output(
        &bad,
        "import h5py, sys\n\
         f = h5py.File(sys.argv[1], 'r')\n\
         assert 'VERSION' not in f['g'].attrs, dict(f['g'].attrs)\n\
         assert (f['g'].attrs['filler'] == 0).all()\n\
         assert 'attribute \"VERSION\" lost' in f['g'].attrs['h5salvage_missing'], dict(f['g'].attrs)\n",
    );
}

/// The rule above is for v1 headers only: a v2 header's checksum proves
/// its attribute values, and a dense attribute's value lies in a heap
/// block (its offset is no file position). Attributes whose values are
/// legitimately whole pages of zeros, in a file damaged elsewhere (cut in
/// its last dataset), are written with their values: a compact one in a
/// v2 header (dropped before this was restricted) and dense ones.
#[test]
fn zero_attribute_values_proven_by_a_checksum_are_written() {
    if !have_python(&["h5py", "numpy"], "zero_attribute_values_proven") {
        return;
    }
    let (_dir, orig, bad) = damaged_copy(
        "attr_zero_v2",
        "import h5py, numpy as np, sys\n\
         with h5py.File(sys.argv[1], 'w', libver='latest') as f:\n\
         \x20   g = f.create_group('g')\n\
         \x20   g.attrs['zeros'] = np.zeros(3 * 4096, 'u1')\n\
         \x20   h = f.create_group('h')\n\
         \x20   for i in range(12):\n\
         \x20       h.attrs['a%02d' % i] = np.zeros(4096 + 8 * i, 'u1')\n\
         \x20   f.create_dataset('d', data=np.arange(200000), track_times=False)\n\
         raw = open(sys.argv[1], 'rb').read()\n\
         open(sys.argv[2], 'wb').write(raw[:len(raw) - 400000])\n",
    );
    let (rc, v) = salvage_and_compare(&orig, &bad);
    assert_eq!(rc, 1, "{v}");
    check_output(
        &bad,
        "import h5py, sys\n\
         f = h5py.File(sys.argv[1], 'r')\n\
         z = f['g'].attrs['zeros']\n\
         assert z.shape == (3 * 4096,) and (z == 0).all(), z.shape\n\
         for i in range(12):\n\
         \x20   a = f['h'].attrs['a%02d' % i]\n\
         \x20   assert a.shape == (4096 + 8 * i,) and (a == 0).all(), (i, a.shape)\n\
         assert 'h5salvage_missing' not in f['g'].attrs, dict(f['g'].attrs)\n",
    );
}
