//! `salvage` end to end: healthy fixtures round-trip bit for bit (checked
//! with h5py), damaged copies never yield a wrong byte, the input is never
//! modified, the output appears atomically, and a worker killed after
//! flushing gets every flushed group back.

mod common;

use common::{
    bin, check_python, compare, have_h5py, have_python, py_script, python, python_code, testdata,
};

use std::path::{Path, PathBuf};

use h5salvage::salvage::{salvage, salvage_with, Recovery, SalvageError, SalvageReport};
use h5salvage::CarveMode;
use sha2::{Digest, Sha256};

fn sha256(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

/// The healthy fixtures of testdata/ and the type-fidelity ones of
/// testdata/types/ (written by h5py, PyTables and netCDF4-python,
/// `testdata/generate_types.py`).
fn healthy_fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = [testdata(), type_fixtures_dir()]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "h5" || e == "nc"))
        .filter(|p| std::fs::metadata(p).unwrap().len() > 0)
        .collect();
    v.sort();
    assert!(v.len() >= 18);
    v
}

fn type_fixtures_dir() -> PathBuf {
    testdata().join("types")
}

/// The type-fidelity fixtures (testdata/types/).
fn type_fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(type_fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    assert!(v.len() >= 8, "{v:?}");
    v
}

#[test]
fn healthy_fixtures_round_trip_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let check = have_h5py("healthy_fixtures_round_trip_bit_for_bit");
    for input in healthy_fixtures() {
        let name = input.file_name().unwrap().to_string_lossy().to_string();
        let out = dir.path().join(&name);
        let before = sha256(&input);
        let rep = salvage(&input, &out, false).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sha256(&input), before, "{name}: input modified");
        assert_eq!(rep.lost, 0, "{name}: {:?}", rep.objects);
        assert_eq!(rep.attributes_lost, 0, "{name}");
        // Region references are recreated too: nothing is partial.
        for o in &rep.objects {
            assert_eq!(o.result, Recovery::Recovered, "{name}: {o:?}");
        }
        if check {
            check_python(&[
                py_script("compare_h5.py").as_os_str(),
                input.as_os_str(),
                out.as_os_str(),
            ]);
            let (ok, v) = compare(&input, &out, false);
            assert!(ok, "{name}: {v}");
        }
    }
}

/// A netCDF-4 file (dimensions, an unlimited one, coordinate variables,
/// a subgroup, zlib, string variable, attributes of several types) comes
/// back whole: exit 0, and netCDF4-python sees the same dimensions,
/// variables, values and attributes in the same order. The dimension
/// scales' DIMENSION_LIST (vlen of object references) and REFERENCE_LIST
/// (compound of a reference and an index) point at the same objects
/// (checked by compare_h5.py in `healthy_fixtures_round_trip_bit_for_bit`).
#[test]
fn netcdf4_file_round_trips_for_netcdf4_python() {
    let dir = tempfile::tempdir().unwrap();
    let input = type_fixtures_dir().join("netcdf4.nc");
    let out = dir.path().join("netcdf4.nc");
    let rep = salvage(&input, &out, false).unwrap();
    for o in &rep.objects {
        assert_eq!(o.result, Recovery::Recovered, "{o:?}");
    }
    assert_eq!(rep.attributes_lost, 0);
    // The root, a subgroup and 8 variables, every attribute written.
    assert_eq!(rep.objects.len(), 10, "{rep:?}");
    if !have_python(&["netCDF4"], "netcdf4_file_round_trips_for_netcdf4_python") {
        return;
    }
    check_python(&[
        py_script("netcdf_same.py").as_os_str(),
        input.as_os_str(),
        out.as_os_str(),
    ]);
}

/// h5py lists the members and attributes of a `track_order=True` group
/// (and of every netCDF-4 group) in creation order: the salvaged file
/// lists them in the same order (compare_h5.py checks every listing; this
/// test checks that the fixtures really are out of name order, so that
/// the check can fail).
#[test]
fn creation_order_is_kept() {
    if !have_h5py("creation_order_is_kept") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "track_order_earliest.h5",
        "track_order_latest.h5",
        "link_order_earliest.h5",
        "link_order_latest.h5",
        "netcdf4.nc",
    ] {
        let (input, out, _) = salvage_type_fixture(dir.path(), name);
        python_code(
            "import h5py, sys\n\
             def listing(path):\n\
             \x20   out = []\n\
             \x20   with h5py.File(path, 'r') as f:\n\
             \x20       def visit(name, obj):\n\
             \x20           out.append((name, list(getattr(obj, 'keys', list)()), \n\
             \x20                       [k for k in obj.attrs if not k.startswith('h5salvage')]))\n\
             \x20       visit('/', f)\n\
             \x20       f.visititems(visit)\n\
             \x20   return out\n\
             a, b = listing(sys.argv[1]), listing(sys.argv[2])\n\
             assert a == b, (a, b)\n\
             unsorted = [x for x in a if x[1] != sorted(x[1]) or x[2] != sorted(x[2])]\n\
             assert len(unsorted) >= 2, a\n",
            &[input.as_os_str(), out.as_os_str()],
        );
    }
}

/// Runs tests/py/tables_same.py: every leaf of `orig` as PyTables reads
/// it is in `out` with the same values, those at `partial` marked partial.
fn tables_same(orig: &Path, out: &Path, partial: &[&str]) {
    let mut args = vec![orig.as_os_str(), out.as_os_str()];
    args.extend(partial.iter().map(|p| std::ffi::OsStr::new(*p)));
    let o = python()
        .arg(py_script("tables_same.py"))
        .args(&args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{} vs {}: {}{}",
        orig.display(),
        out.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The objects of a report that were not recovered whole.
fn not_recovered(rep: &SalvageReport) -> Vec<&str> {
    rep.objects
        .iter()
        .filter(|o| o.result != Recovery::Recovered)
        .map(|o| o.path.as_str())
        .collect()
}

/// PyTables' bzip2 (filter 307) chunks are decoded and verified (bzip2's
/// CRCs), the blosc family's (32001) too (see
/// `blosc_chunks_are_decoded_and_verified`); PyTables (which decodes both)
/// reads the same values from the output. A corrupted bzip2 chunk is not
/// written: its dataset is partial, never wrong.
#[test]
fn bzip2_and_blosc_chunks_are_verified() {
    let dir = tempfile::tempdir().unwrap();
    let input = testdata().join("plugins/pytables_bzip2_blosc.h5");
    let out = dir.path().join("out.h5");
    let rep = salvage(&input, &out, false).unwrap();
    assert_eq!(
        (rep.partial, rep.lost, rep.unverified),
        (0, 0, 0),
        "{rep:?}"
    );
    for p in [
        "/bzip2",
        "/bzip2_shuffle",
        "/table_bzip2",
        "/blosc_lz4_shuffle",
        "/blosc_zstd",
        "/blosc_blosclz_shuffle",
    ] {
        let o = rep.objects.iter().find(|o| o.path == p).unwrap();
        assert!(o.notes.is_empty(), "{p}: {rep:?}");
    }
    let tables = have_python(&["tables"], "PyTables cross-check");
    if tables {
        tables_same(&input, &out, &[]);
    }
    // A byte inside the first bzip2 stream (after its 4-byte header).
    let mut bytes = std::fs::read(&input).unwrap();
    let at = bytes.windows(3).position(|w| w == b"BZh").unwrap() + 40;
    bytes[at] ^= 0x55;
    let damaged = dir.path().join("damaged.h5");
    std::fs::write(&damaged, &bytes).unwrap();
    let out2 = dir.path().join("out2.h5");
    let rep = salvage(&damaged, &out2, false).unwrap();
    let partial = not_recovered(&rep);
    assert_eq!(partial.len(), 1, "{rep:?}");
    assert!(partial[0].contains("bzip2"), "{partial:?}");
    let damaged_outcome = rep.objects.iter().find(|o| o.path == partial[0]).unwrap();
    assert_eq!(damaged_outcome.result, Recovery::Partial, "{rep:?}");
    assert!(
        damaged_outcome.reasons.iter().any(|r| r.contains("bzip2")),
        "{damaged_outcome:?}"
    );
    if tables {
        tables_same(&input, &out2, &partial);
    }
}

/// PyTables' blosc (filter 32001) with each codec it ships (blosclz, lz4,
/// lz4hc, zlib, zstd): byte and bit shuffle, split and unsplit blocks,
/// several blocks with a short last one, incompressible data, a Table, an
/// EArray and a VLArray (its heap contents reached through the decoded
/// chunks). Every chunk is decoded to exactly its size: salvage exits
/// clean with nothing unverified, and PyTables reads the same values from
/// the output (which keeps the chunks as stored). Damaged copies: a
/// header's decoded size changed leaves that dataset partial; a byte
/// flipped inside a compressed stream leaves it partial or, where blosc
/// (which has no checksum) cannot tell, holding what PyTables itself reads
/// from the damaged file.
#[test]
fn blosc_chunks_are_decoded_and_verified() {
    let tables = have_python(&["tables", "h5py"], "PyTables cross-check of blosc");
    let dir = tempfile::tempdir().unwrap();
    for codec in ["blosclz", "lz4", "lz4hc", "zlib", "zstd"] {
        let input = testdata().join(format!("plugins/blosc_{codec}.h5"));
        let out = dir.path().join(format!("{codec}.h5"));
        let rep = salvage(&input, &out, false).unwrap();
        assert_eq!(
            (rep.partial, rep.lost, rep.unverified),
            (0, 0, 0),
            "{codec}: {rep:?}"
        );
        assert!(rep.objects.len() >= 10, "{codec}: {rep:?}");
        for o in &rep.objects {
            assert!(
                o.result == Recovery::Recovered && o.notes.is_empty(),
                "{codec}: {o:?}"
            );
        }
        let cli_out = dir.path().join(format!("{codec}_cli.h5"));
        let status = std::process::Command::new(bin())
            .arg("salvage")
            .arg(&input)
            .arg("-o")
            .arg(&cli_out)
            .output()
            .unwrap()
            .status;
        assert_eq!(status.code(), Some(0), "{codec}: h5salvage salvage");
        if !tables {
            continue;
        }
        tables_same(&input, &out, &[]);
        // (address, size) of a dataset's first chunk, from its index.
        let first_chunk = |path: &str| -> (usize, usize) {
            let text = python_code(
                "import h5py, sys\n\
                 with h5py.File(sys.argv[1], 'r', locking=False) as f:\n\
                 \x20   c = f[sys.argv[2]].id.get_chunk_info(0)\n\
                 \x20   print(c.byte_offset, c.size)",
                &[input.as_os_str(), std::ffi::OsStr::new(path)],
            );
            let v: Vec<usize> = text
                .split_whitespace()
                .map(|w| w.parse().unwrap())
                .collect();
            (v[0], v[1])
        };
        let bytes = std::fs::read(&input).unwrap();
        let (shuffled, _) = first_chunk("/ints_shuffle");
        let (blocks, blocks_len) = first_chunk("/blocks");
        for (what, at, expect_partial) in [
            ("decoded size", shuffled + 4, Some("/ints_shuffle")),
            ("stream byte", blocks + blocks_len / 2, None),
        ] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            let damaged = dir.path().join(format!("{codec}_damaged.h5"));
            std::fs::write(&damaged, &bad).unwrap();
            let out2 = dir.path().join(format!("{codec}_out2.h5"));
            let _ = std::fs::remove_file(&out2);
            let rep = salvage(&damaged, &out2, false).unwrap();
            let partial = not_recovered(&rep);
            match expect_partial {
                Some(p) => assert_eq!(partial, [p], "{codec} {what}: {rep:?}"),
                None => assert!(
                    partial.iter().all(|&p| p == "/blocks"),
                    "{codec} {what}: {rep:?}"
                ),
            }
            // The changed header is caught: the rest is the original. A
            // changed stream may go unseen: then the output holds what
            // PyTables reads from the damaged file.
            if expect_partial.is_some() {
                tables_same(&input, &out2, &partial);
            }
            tables_same(&damaged, &out2, &partial);
        }
    }
}

/// blosc's block offsets must tile its buffer: a `/blocks` chunk of the
/// zstd fixture (four blocks, three of them full) whose second offset is
/// set to the first's decodes to exactly its size, with block 0's values
/// in block 1's place. That is caught: `/blocks` is partial, everything
/// else recovered as in the original.
#[test]
fn blosc_block_offsets_must_tile() {
    let dir = tempfile::tempdir().unwrap();
    let input = testdata().join("plugins/blosc_zstd.h5");
    let mut bytes = std::fs::read(&input).unwrap();
    // Its header: format 2, codec format 1, flags 0x91 (zstd, blocks not
    // split, byte shuffle), type size 2, 100000 bytes in blocks of 32768.
    let mut head = vec![2u8, 1, 0x91, 2];
    head.extend(100_000u32.to_le_bytes());
    head.extend(32_768u32.to_le_bytes());
    let at = bytes
        .windows(head.len())
        .position(|w| w == head)
        .expect("a /blocks chunk");
    bytes.copy_within(at + 16..at + 20, at + 20);
    let damaged = dir.path().join("damaged.h5");
    std::fs::write(&damaged, &bytes).unwrap();
    let out = dir.path().join("out.h5");
    let rep = salvage(&damaged, &out, false).unwrap();
    assert_eq!(not_recovered(&rep), ["/blocks"], "{rep:?}");
    let o = rep.objects.iter().find(|o| o.path == "/blocks").unwrap();
    assert_eq!(o.result, Recovery::Partial, "{o:?}");
    assert!(o.reasons.iter().any(|r| r.contains("blosc")), "{o:?}");
    if have_python(&["tables", "h5py"], "PyTables cross-check of blosc") {
        tables_same(&input, &out, &["/blocks"]);
    }
}

/// PyTables' blosc2 (filter 32026: blosc2 frames, not decoded here) is
/// copied through as stored and named in a note, the file still exiting
/// clean; PyTables reads the same values from the output.
#[test]
fn blosc2_chunks_are_copied_through() {
    let dir = tempfile::tempdir().unwrap();
    let input = testdata().join("plugins/blosc2_copied.h5");
    let out = dir.path().join("out.h5");
    let rep = salvage(&input, &out, false).unwrap();
    assert_eq!((rep.partial, rep.lost), (0, 0), "{rep:?}");
    for p in ["/lz4_1d", "/zstd_2d"] {
        let o = rep.objects.iter().find(|o| o.path == p).unwrap();
        assert_eq!(o.result, Recovery::Recovered, "{o:?}");
        assert!(o.notes.join(" ").contains("32026"), "{o:?}");
    }
    if have_python(&["tables", "h5py"], "PyTables cross-check of blosc2") {
        tables_same(&input, &out, &[]);
    }
}

/// Salvages type fixture `name` into `dir`: (input, output, report).
fn salvage_type_fixture(dir: &Path, name: &str) -> (PathBuf, PathBuf, SalvageReport) {
    let input = type_fixtures_dir().join(name);
    let out = dir.join(name);
    let rep = salvage(&input, &out, false).unwrap_or_else(|e| panic!("{name}: {e}"));
    (input, out, rep)
}

/// Messages shared file-wide through the shared-object-header-message
/// table (dataspaces, datatypes, fill values, filter pipelines, attributes
/// stored once in fractal heaps) are read from their heaps: the file scans
/// healthy and comes back whole (compare_h5.py in
/// `healthy_fixtures_round_trip_bit_for_bit` checks values). A damaged
/// table leaves the datasets that need it partial, never wrong.
#[test]
fn shared_messages_are_read_from_their_heaps() {
    let input = type_fixtures_dir().join("sohm_latest.h5");
    let bytes = std::fs::read(&input).unwrap();
    let table = find_once(&bytes, b"SMTB");
    let inv = h5salvage::walk::walk("sohm", &bytes);
    assert_eq!(
        inv.verdict(),
        h5salvage::inventory::Verdict::Healthy,
        "{inv:?}"
    );
    let d1 = inv.objects.iter().find(|o| o.path == "/d1").unwrap();
    assert_eq!(d1.attributes.len(), 1);
    assert!(d1.dataset.as_ref().unwrap().fill_value.is_some());
    let dir = tempfile::tempdir().unwrap();
    let mut damaged = bytes.clone();
    damaged[table + 8] ^= 0xff; // an index's message types: checksum fails
    let path = dir.path().join("damaged.h5");
    std::fs::write(&path, &damaged).unwrap();
    let out = dir.path().join("out.h5");
    let rep = salvage(&path, &out, false).unwrap();
    let get = |p: &str| rep.objects.iter().find(|o| o.path == p).unwrap();
    assert_eq!(get("/plain").result, Recovery::Recovered);
    for p in ["/d1", "/d2"] {
        assert_ne!(get(p).result, Recovery::Recovered, "{:?}", get(p));
    }
    if have_h5py("shared messages compared with h5py") {
        let (ok, v) = compare(&input, &out, false);
        assert!(ok, "{v}");
    }
}

/// Soft, external and second hard links, committed datatypes and datasets
/// holding references are written after the other members of a group; a
/// group tracking creation order still lists every link (dangling soft
/// and external ones included) where the input did, in compact and in
/// dense link storage.
#[test]
fn links_keep_their_creation_order() {
    if !have_h5py("link and type listings") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for name in ["link_order_earliest.h5", "link_order_latest.h5"] {
        let (input, out, rep) = salvage_type_fixture(dir.path(), name);
        // The committed datatype's header times (frozen by the generator):
        // libhdf5, which writes committed datatypes, cannot keep them.
        let notes: Vec<&String> = rep
            .notes
            .iter()
            .filter(|n| {
                !n.starts_with("header times of 1 object(s) not kept (the first: /g/mtype)")
            })
            .collect();
        assert!(notes.is_empty(), "{name}: {notes:?}");
        python_code(
            "import h5py, sys\n\
             def links(path):\n\
             \x20   out = {}\n\
             \x20   with h5py.File(path, 'r') as f:\n\
             \x20       for g in ('/', '/g', '/g/sub', '/dense'):\n\
             \x20           out[g] = [(k, type(f[g].get(k, getlink=True)).__name__) for k in f[g]]\n\
             \x20   return out\n\
             a, b = links(sys.argv[1]), links(sys.argv[2])\n\
             assert a == b, (a, b)\n\
             kinds = {k for v in a.values() for _, k in v}\n\
             assert kinds == {'HardLink', 'SoftLink', 'ExternalLink'}, kinds\n\
             assert [k for k, _ in a['/g']] != sorted(k for k, _ in a['/g']), a\n",
            &[input.as_os_str(), out.as_os_str()],
        );
    }
}

/// Committed (named) datatypes stay committed, and the datasets and
/// attributes that used them refer to them in the output rather than
/// carrying a copy (compare_h5.py checks this for every fixture; this test
/// checks that the fixtures really share types, so that the check can
/// fail).
#[test]
fn committed_datatypes_stay_shared() {
    if !have_h5py("link and type listings") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for name in ["committed_earliest.h5", "committed_latest.h5"] {
        let (input, out, rep) = salvage_type_fixture(dir.path(), name);
        assert_eq!((rep.partial, rep.lost), (0, 0), "{name}");
        python_code(
            "import h5py, sys\n\
             def shared(path):\n\
             \x20   out = []\n\
             \x20   with h5py.File(path, 'r') as f:\n\
             \x20       types = {}\n\
             \x20       def typ(n, o):\n\
             \x20           if isinstance(o, h5py.Datatype):\n\
             \x20               types.setdefault(h5py.h5o.get_info(o.id).addr, n)\n\
             \x20       f.visititems(typ)\n\
             \x20       def src(t):\n\
             \x20           return types.get(h5py.h5o.get_info(t).addr) if t.committed() else None\n\
             \x20       def visit(n, o):\n\
             \x20           if isinstance(o, h5py.Dataset):\n\
             \x20               out.append((n, src(o.id.get_type())))\n\
             \x20           for k in o.attrs:\n\
             \x20               if not k.startswith('h5salvage'):\n\
             \x20                   out.append((n + '@' + k, src(o.attrs.get_id(k).get_type())))\n\
             \x20       visit('', f)\n\
             \x20       f.visititems(visit)\n\
             \x20   return sorted(out)\n\
             a, b = shared(sys.argv[1]), shared(sys.argv[2])\n\
             assert a == b, (a, b)\n\
             assert sum(1 for _, t in a if t) == 7, a\n\
             assert sum(1 for _, t in a if not t) >= 2, a\n",
            &[input.as_os_str(), out.as_os_str()],
        );
    }
}

/// Virtual datasets (h5py's `create_virtual_dataset` and low-level
/// `set_virtual`: "all", block-list, strided and unlimited selections, a
/// source in the same file, a missing source file; mapping blocks of
/// version 1, names shared) come back virtual with the same mappings: h5py
/// reads the same values from the output when the sources lie beside it
/// (testdata/vds/generate_vds.py). A damaged mapping block loses the
/// dataset (its checksum fails): no mapping is guessed.
#[test]
fn virtual_datasets_keep_their_mappings() {
    let dir = tempfile::tempdir().unwrap();
    let vds = testdata().join("vds");
    std::fs::copy(vds.join("source.h5"), dir.path().join("source.h5")).unwrap();
    let check = have_h5py("virtual dataset values");
    for libver in ["earliest", "latest"] {
        let name = format!("vds_{libver}.h5");
        let input = vds.join(&name);
        let out = dir.path().join(&name);
        let rep = salvage(&input, &out, false).unwrap();
        assert_eq!((rep.recovered, rep.partial, rep.lost), (6, 0, 0), "{name}");
        let stack = rep.objects.iter().find(|o| o.path == "/stack").unwrap();
        assert!(
            stack.notes.iter().any(|n| n.contains("3 mapping(s)")),
            "{stack:?}"
        );
        if check {
            let o = python()
                .current_dir(dir.path())
                .arg(py_script("vds_same.py"))
                .arg(&input)
                .arg(&out)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{name}: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        // One byte of /stack's mapping block (a source dataset name; its
        // block is the first one written).
        let mut bytes = std::fs::read(&input).unwrap();
        let needle = b"source.h5\0a\0";
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
            + 10;
        bytes[at] = b'z';
        let damaged = dir.path().join(format!("damaged_{name}"));
        std::fs::write(&damaged, &bytes).unwrap();
        let out = dir.path().join(format!("damaged_out_{name}"));
        let rep = salvage(&damaged, &out, false).unwrap();
        let stack = rep.objects.iter().find(|o| o.path == "/stack").unwrap();
        assert_eq!(stack.result, Recovery::Lost, "{stack:?}");
        assert!(
            stack.reasons.iter().any(|r| r.contains("checksum")),
            "{stack:?}"
        );
        assert_eq!(rep.recovered, 5, "{name}");
    }
}

/// Region references inside variable-length sequences are recreated (h5py
/// writes them but crashes reading them back, so the oracle is h5salvage's
/// own reader run on both files: same target path, same selection, in the
/// same places).
#[test]
fn region_references_inside_sequences_are_recreated() {
    if !have_h5py("region_references_inside_sequences_are_recreated") {
        return;
    }
    use h5salvage::read::region::RegionValue;
    use h5salvage::read::{dataset_data, vlen, DatasetData};
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("vlen_regions.h5");
    python_code(
        "import h5py, numpy as np, sys\n\
         with h5py.File(sys.argv[1], 'w') as f:\n\
         \x20   d = f.create_dataset('src', data=np.arange(40).reshape(4, 10))\n\
         \x20   a = np.empty(3, h5py.vlen_dtype(h5py.regionref_dtype))\n\
         \x20   a[0] = np.array([d.regionref[1:3, 2:5]], dtype=h5py.regionref_dtype)\n\
         \x20   a[1] = np.array([d.regionref[0, ::3], d.regionref[3:, :1]], dtype=h5py.regionref_dtype)\n\
         \x20   a[2] = np.array([], dtype=h5py.regionref_dtype)\n\
         \x20   f.create_dataset('vr', data=a)\n",
        &[input.as_os_str()],
    );
    let out = dir.path().join("out.h5");
    let rep = salvage(&input, &out, false).unwrap();
    for o in &rep.objects {
        assert_eq!(o.result, Recovery::Recovered, "{o:?}");
    }
    let regions = |path: &Path| {
        let bytes = std::fs::read(path).unwrap();
        let inv = h5salvage::walk::walk("f", &bytes);
        let image = inv.image(&bytes);
        let ds = inv
            .objects
            .iter()
            .find(|o| o.path == "/vr")
            .and_then(|o| o.dataset.clone())
            .unwrap();
        let DatasetData::Contiguous { bytes: raw, .. } = dataset_data(&image, &ds) else {
            panic!("/vr is not contiguous")
        };
        let mut got = Vec::new();
        for slot in vlen::resolve_vlen(&image, &ds.datatype, raw).unwrap() {
            for r in &slot.regions {
                let RegionValue::Resolved(v) = &r.value else {
                    panic!("{:?}", r.value)
                };
                let target = inv.objects.iter().find(|o| o.address == v.object).unwrap();
                got.push((
                    slot.offset,
                    r.offset,
                    target.path.clone(),
                    v.selection.selection.clone(),
                ));
            }
        }
        got
    };
    let (a, b) = (regions(&input), regions(&out));
    assert_eq!(a.len(), 3, "{a:?}");
    assert_eq!(a, b);
}

/// Damaged copies of the type-fidelity fixtures (nested variable-length
/// data, reordered compounds, netCDF-4 dimension scales, creation order)
/// never yield a wrong value: what is written equals the original, what
/// is not is marked (damage no reader can detect excused as in
/// `damaged_variants_never_yield_a_wrong_byte`).
#[test]
fn damaged_type_fixtures_never_yield_a_wrong_value() {
    if !have_h5py("damaged_type_fixtures_never_yield_a_wrong_value") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut wrong = Vec::new();
    let mut recovered = 0;
    for orig in type_fixtures() {
        let name = orig.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&orig).unwrap();
        let healthy = h5salvage::walk::walk(&name, &bytes);
        // Every other cut (the machine is shared; the cuts in between
        // add little).
        let skip = ["cut 10%", "cut 20%", "cut 40%", "cut 60%", "cut 80%"];
        for Variant {
            label,
            bytes: damaged,
            changed,
        } in variants(&bytes)
            .into_iter()
            .filter(|v| !skip.contains(&v.label.as_str()))
        {
            let excused = undetectable(&healthy, &bytes, &changed);
            if let Some(v) = salvage_variant(
                dir.path(),
                &orig,
                &damaged,
                &excused,
                false,
                &format!("{name} {label}"),
                &mut wrong,
            ) {
                recovered += v["equal"].as_u64().unwrap_or(0);
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "wrong values written:\n{}",
        wrong.join("\n")
    );
    // Not vacuous: the damaged copies still give many datasets back.
    assert!(recovered >= 100, "{recovered}");
}

/// External storage (spec IV.A.2.h, External Data Files message): the raw
/// data lives in other files, which are not read. The layout's address is
/// undefined, which must not be taken for "never written" (that would write
/// the fill value where the values are 1..=10).
#[test]
fn external_storage_is_reported_not_written_as_fill() {
    let dir = tempfile::tempdir().unwrap();
    for libver in ["earliest", "latest"] {
        let input = testdata().join(format!("unsupported/external_{libver}.h5"));
        let out = dir.path().join(format!("external_{libver}.h5"));
        let rep = salvage(&input, &out, false).unwrap();
        let get = |p: &str| rep.objects.iter().find(|o| o.path == p).unwrap();
        let ext = get("/external");
        assert_eq!(ext.result, Recovery::Lost, "{libver}: {ext:?}");
        assert!(
            ext.reasons.iter().any(|r| r.contains("external")),
            "{libver}: {ext:?}"
        );
        assert_eq!(get("/inside").result, Recovery::Recovered, "{libver}");
    }
}

/// HDF5 2.0's complex class (h5py 3.16's native complex numbers): written
/// as the class where the linked libhdf5 can (2.0 and later: the wheel),
/// else as h5py's `{r, i}` compound of the same base float, whose bytes are
/// the same (the command line's libhdf5 1.10): recovered, with
/// `h5salvage_type_note` on the object (on the owner for an attribute) and
/// a report note. h5py reads both forms as the same complex values.
/// testdata/unsupported/generate_complex.py.
#[test]
fn complex_class_comes_back_native_or_as_r_i_compound() {
    let dir = tempfile::tempdir().unwrap();
    let input = testdata().join("unsupported/complex_hdf5_2.h5");
    let bytes = std::fs::read(&input).unwrap();
    let inv = h5salvage::walk::walk("complex", &bytes);
    assert_eq!(inv.verdict(), h5salvage::inventory::Verdict::Healthy);
    let out = dir.path().join("out.h5");
    let rep = salvage(&input, &out, false).unwrap();
    let native = h5salvage::write::libhdf5_version() >= (2, 0, 0);
    let get = |p: &str| rep.objects.iter().find(|o| o.path == p).unwrap();
    for p in ["/c16", "/c8", "/compound", "/plain"] {
        let o = get(p);
        assert_eq!(o.result, Recovery::Recovered, "{o:?}");
        let noted = o.notes.iter().any(|n| n.contains("{r, i} compound"));
        assert_eq!(noted, !native && p.starts_with("/c") && p != "/compound");
    }
    assert_eq!(rep.attributes_lost, 0);
    let root_noted = get("/")
        .notes
        .iter()
        .any(|n| n.starts_with("attribute \"ca\": HDF5 complex class written as"));
    assert_eq!(root_noted, !native, "{:?}", get("/"));
    assert_eq!((rep.partial, rep.lost), (0, 0));
    if have_h5py("complex class values") {
        // Values and dtypes as h5py reads them from the input; the class
        // (11 complex, 6 compound) and the note as the linked libhdf5 allows.
        python_code(
            "import h5py, sys\n\
             native = sys.argv[3] == '1'\n\
             with h5py.File(sys.argv[1], 'r') as a, h5py.File(sys.argv[2], 'r') as b:\n\
             \x20   assert sorted(a) == sorted(b), (list(a), list(b))\n\
             \x20   for k in a:\n\
             \x20       x, y = a[k][()], b[k][()]\n\
             \x20       assert x.dtype == y.dtype and (x == y).all(), (k, x, y)\n\
             \x20   assert b.attrs['ca'].dtype == a.attrs['ca'].dtype\n\
             \x20   assert (b.attrs['ca'] == a.attrs['ca']).all()\n\
             \x20   cls = b['c16'].id.get_type().get_class()\n\
             \x20   assert cls == (h5py.h5t.COMPLEX if native else h5py.h5t.COMPOUND), cls\n\
             \x20   assert b['c8'].id.get_type().get_member_name(1) == b'i' or native\n\
             \x20   for k in ('c16', 'c8'):\n\
             \x20       note = b[k].attrs.get('h5salvage_type_note')\n\
             \x20       assert (note is None) == native, (k, note)\n\
             \x20       assert native or note.startswith(\"HDF5 complex class written as h5py's {r, i} compound\")\n\
             \x20   assert 'h5salvage_type_note' not in b['compound'].attrs\n\
             \x20   assert native or b.attrs['h5salvage_type_note'].startswith('attribute \"ca\"')\n",
            &[
                input.as_os_str(),
                out.as_os_str(),
                std::ffi::OsStr::new(if native { "1" } else { "0" }),
            ],
        );
    }
}

#[test]
fn existing_output_is_kept_without_force_and_no_temp_file_remains() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.h5");
    std::fs::write(&out, b"precious earlier result").unwrap();
    let input = testdata().join("worker_earliest.h5");
    assert!(matches!(
        salvage(&input, &out, false),
        Err(SalvageError::OutputExists)
    ));
    assert_eq!(std::fs::read(&out).unwrap(), b"precious earlier result");
    salvage(&input, &out, true).unwrap();
    assert_ne!(std::fs::read(&out).unwrap(), b"precious earlier result");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["out.h5"], "temporary files left behind");
}

#[test]
fn nothing_recoverable_writes_no_output() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["empty.h5", "not_hdf5.txt"] {
        let out = dir.path().join("out.h5");
        let r = salvage(&testdata().join(name), &out, false);
        assert!(
            matches!(r, Err(SalvageError::NothingRecoverable(_))),
            "{name}: {r:?}"
        );
        assert!(!out.exists(), "{name}");
    }
    // Without carving, a file whose superblock is gone yields nothing.
    let out = dir.path().join("out.h5");
    let input = testdata().join("damaged/worker_no_superblock.h5");
    let r = salvage_with(&input, &out, false, CarveMode::Never);
    assert!(
        matches!(r, Err(SalvageError::NothingRecoverable(_))),
        "{r:?}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// The first 2 KiB are gone ("file signature not found", and the root's
/// B-tree and name heap with them): carving brings back the configs under
/// /lost+found, each identical to one of the original configs.
#[test]
fn lost_superblock_is_carved() {
    let dir = tempfile::tempdir().unwrap();
    let input = testdata().join("damaged/worker_no_superblock.h5");
    let out = dir.path().join("out.h5");
    let rep = salvage(&input, &out, false).unwrap();
    assert!(rep.carving.is_some());
    assert!(rep.recovered >= 50, "{rep:?}");
    if have_h5py("lost_superblock_is_carved") {
        let (ok, v) = compare(&testdata().join("worker_earliest.h5"), &out, false);
        assert!(ok, "{v}");
        // 10 configs + init in the original; the init group's header lay in
        // the zeroed 2 KiB.
        assert!(v["lost_found_matched"].as_u64().unwrap() >= 9, "{v}");
    }
}

/// A damaged copy: its label, its bytes, and the byte ranges changed in
/// place (empty for truncations).
struct Variant {
    label: String,
    bytes: Vec<u8>,
    changed: Vec<(u64, u64)>,
}

/// Damaged variants made from the healthy files.
fn variants(bytes: &[u8]) -> Vec<Variant> {
    let mut v = Vec::new();
    for tenth in 1..10 {
        let cut = bytes.len() * tenth / 10;
        v.push(Variant {
            label: format!("cut {tenth}0%"),
            bytes: bytes[..cut].to_vec(),
            changed: Vec::new(),
        });
    }
    for page in [1usize, 3, 5, 8] {
        let start = page * 4096;
        if start < bytes.len() {
            let mut b = bytes.to_vec();
            let end = (start + 4096).min(b.len());
            b[start..end].fill(0);
            v.push(Variant {
                label: format!("page {page} zeroed"),
                bytes: b,
                changed: vec![(start as u64, end as u64)],
            });
        }
    }
    let mut rng = 0x9E3779B97F4A7C15u64;
    let mut b = bytes.to_vec();
    let mut changed = Vec::new();
    for _ in 0..20 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let pos = 2048 + (rng % (bytes.len() as u64 - 2048)) as usize;
        b[pos] ^= 0x5a;
        changed.push((pos as u64, pos as u64 + 1));
    }
    v.push(Variant {
        label: "20 bytes flipped".into(),
        bytes: b,
        changed,
    });
    v
}

/// Objects whose damage no reader can detect: bytes changed inside data
/// that no checksum or compression protects (contiguous or unfiltered
/// chunked data, global heap collections holding variable-length values),
/// or inside a version 1 object header (no checksum). Salvage copies such
/// bytes as they are; the test excuses these objects and only these.
/// Returns their object header addresses.
fn undetectable(healthy: &h5salvage::Inventory, bytes: &[u8], changed: &[(u64, u64)]) -> Vec<u64> {
    use h5salvage::format::message::data_layout::LayoutClass;
    let hit = |s: u64, e: u64| changed.iter().any(|&(a, b)| a < e && s < b);
    // Global heap collections ("GCOL", collection size at byte 8).
    let heap_hit = bytes.windows(4).enumerate().any(|(at, w)| {
        let size = bytes
            .get(at + 8..at + 16)
            .map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap()));
        w == b"GCOL" && hit(at as u64, at as u64 + size.max(16))
    });
    let base = healthy.superblock.as_ref().map_or(0, |s| s.base_address);
    let mut out = Vec::new();
    for o in &healthy.objects {
        let v1_header =
            o.header_version == Some(1) && o.header_spans.iter().any(|&(s, e)| hit(s, e));
        let mut raw = false;
        if let Some(ds) = &o.dataset {
            let protected = ds
                .filters
                .as_ref()
                .is_some_and(|p| p.filters.iter().any(|f| f.id == 1 || f.id == 3));
            if let LayoutClass::Contiguous { address, .. } = ds.layout.class {
                if address != u64::MAX {
                    let size = ds.coverage.bytes_expected.unwrap_or(0);
                    raw |= hit(base + address, base + address + size);
                }
            }
            if !protected {
                raw |= ds
                    .chunks
                    .iter()
                    .any(|c| hit(base + c.address, base + c.address + c.size));
            }
        }
        let vlen = o
            .dataset
            .as_ref()
            .is_some_and(|d| d.datatype.is_variable_length())
            || o.attributes.iter().any(|a| {
                a.message
                    .datatype
                    .as_ref()
                    .is_some_and(|t| t.is_variable_length())
            });
        if v1_header || raw || (heap_hit && vlen) {
            out.push(o.address);
        }
    }
    out
}

/// Datasets recovered (equal to the original, or partial with what they hold
/// equal, at their path or under /lost+found) per damaged variant. A change here is a change in what salvage
/// recovers: update the table on purpose, never to make the test pass.
const RECOVERY_TABLE: &[(&str, &str, u64)] = &[
    ("worker_earliest.h5", "cut 10%", 1),
    ("worker_earliest.h5", "cut 20%", 6),
    ("worker_earliest.h5", "cut 30%", 11),
    ("worker_earliest.h5", "cut 40%", 17),
    ("worker_earliest.h5", "cut 50%", 23),
    ("worker_earliest.h5", "cut 60%", 28),
    ("worker_earliest.h5", "cut 70%", 33),
    ("worker_earliest.h5", "cut 80%", 40),
    ("worker_earliest.h5", "cut 90%", 45),
    ("worker_earliest.h5", "page 1 zeroed", 45),
    ("worker_earliest.h5", "page 3 zeroed", 43),
    ("worker_earliest.h5", "page 5 zeroed", 44),
    ("worker_earliest.h5", "page 8 zeroed", 45),
    ("worker_earliest.h5", "20 bytes flipped", 44),
    ("worker_latest.h5", "cut 10%", 2),
    ("worker_latest.h5", "cut 20%", 2),
    ("worker_latest.h5", "cut 30%", 7),
    ("worker_latest.h5", "cut 40%", 16),
    ("worker_latest.h5", "cut 50%", 22),
    ("worker_latest.h5", "cut 60%", 27),
    ("worker_latest.h5", "cut 70%", 32),
    ("worker_latest.h5", "cut 80%", 41),
    ("worker_latest.h5", "cut 90%", 46),
    ("worker_latest.h5", "page 1 zeroed", 43),
    ("worker_latest.h5", "page 3 zeroed", 40),
    ("worker_latest.h5", "page 5 zeroed", 41),
    ("worker_latest.h5", "page 8 zeroed", 43),
    ("worker_latest.h5", "20 bytes flipped", 46),
    ("rich_earliest.h5", "cut 10%", 0),
    ("rich_earliest.h5", "cut 20%", 0),
    ("rich_earliest.h5", "cut 30%", 0),
    ("rich_earliest.h5", "cut 40%", 0),
    ("rich_earliest.h5", "cut 50%", 1),
    ("rich_earliest.h5", "cut 60%", 1),
    ("rich_earliest.h5", "cut 70%", 17),
    ("rich_earliest.h5", "cut 80%", 56),
    ("rich_earliest.h5", "cut 90%", 58),
    ("rich_earliest.h5", "page 1 zeroed", 60),
    ("rich_earliest.h5", "page 3 zeroed", 59),
    ("rich_earliest.h5", "page 5 zeroed", 77),
    ("rich_earliest.h5", "page 8 zeroed", 77),
    ("rich_earliest.h5", "20 bytes flipped", 75),
    ("rich_latest.h5", "cut 10%", 0),
    ("rich_latest.h5", "cut 20%", 0),
    ("rich_latest.h5", "cut 30%", 0),
    ("rich_latest.h5", "cut 40%", 0),
    ("rich_latest.h5", "cut 50%", 1),
    ("rich_latest.h5", "cut 60%", 1),
    ("rich_latest.h5", "cut 70%", 3),
    ("rich_latest.h5", "cut 80%", 8),
    ("rich_latest.h5", "cut 90%", 23),
    ("rich_latest.h5", "page 1 zeroed", 72),
    ("rich_latest.h5", "page 3 zeroed", 78),
    ("rich_latest.h5", "page 5 zeroed", 74),
    ("rich_latest.h5", "page 8 zeroed", 17),
    ("rich_latest.h5", "20 bytes flipped", 71),
];

#[test]
fn damaged_variants_never_yield_a_wrong_byte() {
    if !have_h5py("damaged_variants_never_yield_a_wrong_byte") {
        return;
    }
    let (wrong, table) = salvage_damaged_variants(&[
        "worker_earliest.h5",
        "worker_latest.h5",
        "rich_earliest.h5",
        "rich_latest.h5",
    ]);
    assert!(
        wrong.is_empty(),
        "wrong bytes written:\n{}",
        wrong.join("\n")
    );
    let printed: Vec<String> = table
        .iter()
        .map(|(n, l, c)| format!("    ({n:?}, {l:?}, {c}),"))
        .collect();
    eprintln!("recovery table:\n{}", printed.join("\n"));
    if !RECOVERY_TABLE.is_empty() {
        let got: Vec<(&str, &str, u64)> = table
            .iter()
            .map(|(n, l, c)| (n.as_str(), l.as_str(), *c))
            .collect();
        assert_eq!(
            got,
            RECOVERY_TABLE,
            "recovery changed; new table:\n{}",
            printed.join("\n")
        );
    }
}

/// The same damage on the fixtures of other writers (lzf, Fletcher-32
/// before deflate, chunks beyond the extent, huge attributes, fill values
/// with variable-length data): no wrong
/// byte. LZF and huge objects carry no checksum: a flipped byte inside
/// them is as undetectable as in unfiltered data and excused the same way.
#[test]
fn ecosystem_damaged_variants_never_yield_a_wrong_byte() {
    if !have_h5py("ecosystem_damaged_variants_never_yield_a_wrong_byte") {
        return;
    }
    let (wrong, table) = salvage_damaged_variants(&[
        "lzf_earliest.h5",
        "lzf_latest.h5",
        "pytables_zlib_fletcher.h5",
        "repack_fletcher_first.h5",
        "beyond_extent_earliest.h5",
        "beyond_extent_latest.h5",
        "huge_attrs_latest.h5",
        "vlen_fill_earliest.h5",
    ]);
    assert!(
        wrong.is_empty(),
        "wrong bytes written:\n{}",
        wrong.join("\n")
    );
    // Something comes back from most variants (not only from cut 90%).
    let some = table.iter().filter(|(_, _, c)| *c > 0).count();
    assert!(some * 2 > table.len(), "{table:?}");
}

/// Byte ranges of the huge fractal-heap objects of a file, from the
/// records (address, length, ID) of its type-1 v2 B-tree leaves.
fn huge_object_ranges(bytes: &[u8]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for leaf in btree_v2_nodes(bytes, b"BTLF", 1) {
        let mut r = leaf + 6;
        while let Some(rec) = bytes.get(r..r + 24) {
            let addr = u64::from_le_bytes(rec[..8].try_into().unwrap());
            let len = u64::from_le_bytes(rec[8..16].try_into().unwrap());
            let id = u64::from_le_bytes(rec[16..24].try_into().unwrap());
            if id == 0 || addr.checked_add(len).is_none_or(|e| e > bytes.len() as u64) {
                break;
            }
            out.push((addr, addr + len));
            r += 24;
        }
    }
    out
}

/// Salvages one damaged copy (`damaged`) of `orig` and compares the output
/// with `orig`: the wrong values no reader could detect are excused (objects
/// at `excused` addresses; huge attributes when `huge_hit`), the others are
/// pushed onto `wrong` under `what`. Returns compare_h5.py's counts, or
/// None when nothing was recoverable.
fn salvage_variant(
    dir: &Path,
    orig: &Path,
    damaged: &[u8],
    excused: &[u64],
    huge_hit: bool,
    what: &str,
    wrong: &mut Vec<String>,
) -> Option<serde_json::Value> {
    // Where each object of the salvaged file came from (carved ones live
    // under /lost+found with new paths).
    let found = h5salvage::scan_bytes(what, damaged, CarveMode::Auto);
    let address_of = |path: &str| {
        found
            .objects
            .iter()
            .find(|o| o.path == path)
            .map(|o| o.address)
    };
    let input = dir.join("damaged.h5");
    let out = dir.join("out.h5");
    let _ = std::fs::remove_file(&out);
    std::fs::write(&input, damaged).unwrap();
    match salvage(&input, &out, false) {
        Ok(_) => {
            let (_, v) = compare(orig, &out, false);
            for w in v["wrong"].as_array().into_iter().flatten() {
                let w = w.as_str().unwrap_or_default();
                let path = w.split(' ').next().unwrap_or_default();
                let huge_attr = huge_hit && w.contains(" attribute huge");
                if !huge_attr && !address_of(path).is_some_and(|a| excused.contains(&a)) {
                    wrong.push(format!("{what}: {w}"));
                }
            }
            Some(v)
        }
        Err(SalvageError::NothingRecoverable(_)) => None,
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Salvages every damaged variant of each fixture and compares it with
/// the original: returns the wrong values no reader could excuse and the
/// recovery table (datasets recovered per variant).
fn salvage_damaged_variants(names: &[&str]) -> (Vec<String>, Vec<(String, String, u64)>) {
    let dir = tempfile::tempdir().unwrap();
    let mut table = Vec::new();
    let mut wrong = Vec::new();
    for &name in names {
        let orig = testdata().join(name);
        let bytes = std::fs::read(&orig).unwrap();
        let healthy = h5salvage::walk::walk(name, &bytes);
        let huge = huge_object_ranges(&bytes);
        for Variant {
            label,
            bytes: damaged,
            changed,
        } in variants(&bytes)
        {
            let excused = undetectable(&healthy, &bytes, &changed);
            let huge_hit = huge
                .iter()
                .any(|&(s, e)| changed.iter().any(|&(a, b)| a < e && s < b));
            let recovered = salvage_variant(
                dir.path(),
                &orig,
                &damaged,
                &excused,
                huge_hit,
                &format!("{name} {label}"),
                &mut wrong,
            )
            .map_or(0, |v| {
                ["equal", "partial_ok", "lost_found_datasets"]
                    .iter()
                    .map(|k| v[k].as_u64().unwrap_or(0))
                    .sum::<u64>()
            });
            table.push((name.to_string(), label, recovered));
        }
    }
    (wrong, table)
}

/// A worker that flushes after every 25 configs is killed with SIGKILL:
/// every flushed config comes back, identical to what the worker wrote.
#[test]
fn killed_worker_keeps_every_flushed_config() {
    if !have_h5py("killed_worker_keeps_every_flushed_config") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = testdata().join("killed_worker.py");
    for libver in ["earliest", "latest"] {
        let killed = dir.path().join(format!("killed_{libver}.h5"));
        let report = dir.path().join(format!("killed_{libver}.json"));
        let status = python()
            .arg(&script)
            .arg(&killed)
            .args([
                "--libver",
                libver,
                "--configs",
                "200",
                "--flush-every",
                "25",
            ])
            .args(["--kill-self-after", "180", "--report"])
            .arg(&report)
            .status()
            .unwrap();
        assert!(!status.success(), "the worker should have been killed");
        // The same configs written by a worker that was not killed: the
        // reference for the bytes (configs are seeded by their index).
        let reference = dir.path().join(format!("reference_{libver}.h5"));
        let st = python()
            .arg(&script)
            .arg(&reference)
            .args(["--libver", libver, "--configs", "180"])
            .status()
            .unwrap();
        assert!(st.success());
        let out = dir.path().join(format!("salvaged_{libver}.h5"));
        let rep = salvage(&killed, &out, false).unwrap();
        let (ok, v) = compare(&reference, &out, false);
        assert!(ok, "{libver}: {v}");
        // Flushed: the first 175 configs (7 flushes of 25).
        let names = python()
            .args([
                "-c",
                "import h5py,sys; print('\\n'.join(h5py.File(sys.argv[1],'r').keys()))",
            ])
            .arg(&out)
            .output()
            .unwrap();
        let names = String::from_utf8_lossy(&names.stdout);
        for i in 0..175 {
            let want = format!("config_{i:04}");
            assert!(
                names.lines().any(|l| l == want),
                "{libver}: {want} missing; report {:?}",
                rep.objects
                    .iter()
                    .filter(|o| o.result != Recovery::Recovered)
                    .collect::<Vec<_>>()
            );
        }
    }
}

/// Chunks behind filters this crate cannot decode (scaleoffset) are
/// copied through as stored, named in `h5salvage_unverified`, and read back
/// by h5py equal to the original; lzf chunks are decoded and verified (no
/// note).
#[test]
fn undecodable_filters_are_copied_through_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let input = testdata().join("filters_earliest.h5");
    let out = dir.path().join("out.h5");
    let rep = salvage(&input, &out, false).unwrap();
    let notes = |p: &str| {
        rep.objects
            .iter()
            .find(|o| o.path == p)
            .map(|o| o.notes.join(" "))
            .unwrap_or_default()
    };
    assert!(notes("/lzf").is_empty(), "{rep:?}");
    assert!(notes("/scaleoffset_int").contains("scaleoffset (id 6)"));
    assert!(notes("/gzip_reference").is_empty());
    assert_eq!((rep.partial, rep.lost), (0, 0));
    if have_h5py("undecodable_filters_are_copied_through_and_named") {
        let (ok, v) = compare(&input, &out, true);
        assert!(ok, "{v}");
        assert_eq!(v["equal"], 3);
    }
}

/// A v3 superblock that still says "open for write" (libhdf5 and h5py
/// refuse the file): salvaged in full, the input's flag left as it is.
#[test]
fn open_for_write_file_is_salvaged_without_touching_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = testdata().join("damaged/worker_open_for_write.h5");
    let before = sha256(&input);
    let out = dir.path().join("out.h5");
    let rep = salvage(&input, &out, false).unwrap();
    assert_eq!(sha256(&input), before, "input modified");
    assert_eq!(std::fs::read(&input).unwrap()[11] & 1, 1, "flag still set");
    assert_eq!((rep.partial, rep.lost), (0, 0), "{rep:?}");
    if have_h5py("open_for_write_file_is_salvaged_without_touching_it") {
        let (ok, v) = compare(&testdata().join("worker_latest.h5"), &out, true);
        assert!(ok, "{v}");
    }
}

/// Finds `needle` exactly once in `hay`.
fn find_once(hay: &[u8], needle: &[u8]) -> usize {
    let hits: Vec<usize> = hay
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1, "pattern found {} times", hits.len());
    hits[0]
}

/// A region reference whose selection reaches outside its target (a point
/// moved past the last row) is written null, named in h5salvage_degraded,
/// and keeps its dataset partial; the other references are still recreated.
#[test]
fn region_reference_outside_its_target_is_written_null() {
    let dir = tempfile::tempdir().unwrap();
    let orig = testdata().join("regionrefs_earliest.h5");
    let mut bytes = std::fs::read(&orig).unwrap();
    // /refs[1]: point selection version 1, rank 2, points (1,2) (11,9) (5,0)
    // in the 12 x 10 /src.
    let words: Vec<u8> = [1u32, 1, 0, 32, 2, 3, 1, 2, 11, 9, 5, 0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    let at = find_once(&bytes, &words) + 8 * 4;
    assert_eq!(bytes[at], 11);
    bytes[at] = 12;
    let input = dir.path().join("outside.h5");
    std::fs::write(&input, &bytes).unwrap();
    let out = dir.path().join("out.h5");
    let rep = salvage(&input, &out, false).unwrap();
    let refs = rep.objects.iter().find(|o| o.path == "/refs").unwrap();
    assert_eq!(refs.result, Recovery::Partial, "{refs:?}");
    assert_eq!(refs.reasons.len(), 1, "{refs:?}");
    assert!(
        refs.reasons[0].contains("region reference at byte 12 written as null")
            && refs.reasons[0].contains("outside the target's extent 12"),
        "{refs:?}"
    );
    for o in rep.objects.iter().filter(|o| o.path != "/refs") {
        assert_eq!(o.result, Recovery::Recovered, "{o:?}");
    }
    if !have_h5py("region_reference_outside_its_target_is_written_null") {
        return;
    }
    // The other references select what they selected; the bad one is null.
    let script = r#"
import sys
sys.path.insert(0, sys.argv[3])
import h5py
from h5regions import region_key
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
ra, rb = a["refs"][()], b["refs"][()]
assert not rb[1], "reference 1 is not null"
for i in (0, 2, 3, 4, 5, 6):
    assert region_key(ra[i], a) == region_key(rb[i], b), i
assert "outside" in b["refs"].attrs["h5salvage_degraded"]
assert b["refs"].attrs["h5salvage_status"] == "partial"
ka = [region_key(r, a) for r in a["refs"].attrs["region_attr"]]
kb = [region_key(r, b) for r in b["refs"].attrs["region_attr"]]
assert ka == kb
"#;
    python_code(
        script,
        &[orig.as_os_str(), out.as_os_str(), py_script("").as_os_str()],
    );
}

/// A temporary file left by a killed salvage of the same output is removed
/// (its process is gone) and said; one of a live process is left alone.
#[test]
fn stale_temp_file_of_a_killed_run_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.h5");
    // No process has this id (above Linux's largest pid_max).
    let stale = dir.path().join(".out.h5.h5salvage-tmp-4294967");
    // Process 1 is alive.
    let live = dir.path().join(".out.h5.h5salvage-tmp-1");
    std::fs::write(&stale, b"half-written").unwrap();
    std::fs::write(&live, b"someone else's").unwrap();
    let rep = salvage(&testdata().join("worker_earliest.h5"), &out, false).unwrap();
    assert!(!stale.exists(), "stale temp file kept");
    assert!(live.exists(), "a live process's temp file removed");
    assert!(
        rep.notes
            .iter()
            .any(|n| n.contains("h5salvage-tmp-4294967")),
        "{:?}",
        rep.notes
    );
}

/// Absolute offsets of the level-0 chunk B-tree nodes (v1, type 1) in `b`.
fn chunk_leaves(b: &[u8]) -> Vec<usize> {
    b.windows(6)
        .enumerate()
        .filter(|(_, w)| &w[..4] == b"TREE" && w[4] == 1 && w[5] == 0)
        .map(|(i, _)| i)
        .collect()
}

/// Two v1 B-tree leaves of one dataset: the first key of one is damaged
/// into the offset the other leaf starts with (each leaf still increases,
/// v1 nodes carry no checksum). The index now lists chunk [0] twice with
/// different bytes and no longer lists the chunk whose key was damaged:
/// which entry holds [0] cannot be told, and the lost offset would read as
/// the fill value. The dataset must not be reported recovered.
#[test]
fn duplicate_chunk_offsets_are_not_recovered() {
    if !have_h5py("duplicate_chunk_offsets_are_not_recovered") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let healthy = dir.path().join("healthy.h5");
    python_code(
        "import h5py, numpy as np, sys\n\
             with h5py.File(sys.argv[1], 'w', libver='earliest') as f:\n\
             \x20   f.create_dataset('d', data=np.arange(200, dtype='<i4') + 1000, chunks=(2,))\n",
        &[healthy.as_os_str()],
    );
    let mut bytes = std::fs::read(&healthy).unwrap();
    // Key 0 of a rank-1 chunk leaf: after the 24-byte node prefix, the
    // 4-byte size and 4-byte filter mask come the offsets.
    let first =
        |b: &[u8], leaf: usize| u64::from_le_bytes(b[leaf + 32..leaf + 40].try_into().unwrap());
    let leaves = chunk_leaves(&bytes);
    assert!(leaves.len() >= 2, "{leaves:?}");
    let low = *leaves.iter().min_by_key(|&&l| first(&bytes, l)).unwrap();
    let high = *leaves.iter().max_by_key(|&&l| first(&bytes, l)).unwrap();
    let lowest = first(&bytes, low);
    bytes[high + 32..high + 40].copy_from_slice(&lowest.to_le_bytes());
    let input = dir.path().join("damaged.h5");
    std::fs::write(&input, &bytes).unwrap();
    let out = dir.path().join("out.h5");
    let rep = salvage(&input, &out, false).unwrap();
    let d = rep.objects.iter().find(|o| o.path == "/d").unwrap();
    assert_eq!(d.result, Recovery::Partial, "{d:?}");
    assert!(
        d.reasons.iter().any(|r| r.contains("listed 2 times")),
        "{d:?}"
    );
    // Nothing written for the ambiguous offset; everything else intact.
    let check = python()
        .arg("-c")
        .arg(
            "import h5py, numpy as np, sys\n\
             f = h5py.File(sys.argv[1], 'r')\n\
             d = f['d'][:]\n\
             assert 'h5salvage_missing' in f['d'].attrs\n\
             want = np.arange(200, dtype='<i4') + 1000\n\
             assert (d[:2] == 0).all(), d[:2]\n\
             bad = [i for i in range(2, 200) if d[i] != want[i] and d[i] != 0]\n\
             assert not bad, bad\n",
        )
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// Member names that are not UTF-8 (h5py writes any bytes): `b"\xff"` and
/// `b"\xfe"` both read as U+FFFD, so two members got one path. Found by
/// review: salvage merged two groups' members into one group and lost one
/// dataset ("cannot recreate"), while scan said healthy. A name that is
/// clean but equal to another member's escaped name ("%FF") collides too.
#[test]
fn members_whose_names_read_alike_keep_their_own_paths() {
    if !have_h5py("members_whose_names_read_alike_keep_their_own_paths") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("names.h5");
    python_code(
        "import h5py, numpy as np, sys\n\
             with h5py.File(sys.argv[1], 'w', libver='earliest') as f:\n\
             \x20   f.create_dataset(b'\\xff', data=np.arange(4))\n\
             \x20   f.create_dataset(b'\\xfe', data=np.arange(10, 16))\n\
             \x20   f.create_dataset('%FF', data=np.arange(20, 23))\n\
             \x20   f.create_group(b'g\\xff')['a'] = 1\n\
             \x20   f.create_group(b'g\\xfe')['b'] = 2\n",
        &[input.as_os_str()],
    );
    let bytes = std::fs::read(&input).unwrap();
    let inv = h5salvage::walk::walk("names.h5", &bytes);
    let mut paths: Vec<&str> = inv.objects.iter().map(|o| o.path.as_str()).collect();
    paths.sort_unstable();
    let n = paths.len();
    paths.dedup();
    assert_eq!(paths.len(), n, "two members share a path: {paths:?}");
    assert_eq!(n, 8, "{paths:?}");
    let out = dir.path().join("out.h5");
    let rep = salvage(&input, &out, false).unwrap();
    assert_eq!(rep.lost, 0, "{:#?}", rep.objects);
    // Every group holds exactly one member; the datasets keep their values.
    let check = python()
        .arg("-c")
        .arg(
            "import h5py, sys\n\
             f = h5py.File(sys.argv[1], 'r')\n\
             groups = [f[k] for k in f if isinstance(f[k], h5py.Group)]\n\
             assert sorted(len(g) for g in groups) == [1, 1], [list(g) for g in groups]\n\
             sums = sorted(int(f[k][()].sum()) for k in f if isinstance(f[k], h5py.Dataset))\n\
             assert sums == [6, 63, 75], sums\n",
        )
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// Offsets of `sig` followed by version 0 and `btree_type` (v2 B-tree nodes).
fn btree_v2_nodes(bytes: &[u8], sig: &[u8; 4], btree_type: u8) -> Vec<usize> {
    (0..bytes.len().saturating_sub(6))
        .filter(|&i| &bytes[i..i + 4] == sig && bytes[i + 4] == 0 && bytes[i + 5] == btree_type)
        .collect()
}

/// Attributes above 64 KiB in a libver-latest file are "huge" fractal-heap
/// objects, placed by a v2 B-tree of type 1 (the healthy file round-trips
/// in `healthy_fixtures_round_trip_bit_for_bit`). A damaged leaf of that
/// tree (its checksum fails) loses exactly the huge attribute it places:
/// named in the report and `h5salvage_missing`, never written with other
/// bytes; the object's other attributes come back.
#[test]
fn huge_attributes_are_read_and_lost_whole_when_their_tree_is_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let orig = testdata().join("huge_attrs_latest.h5");
    let bytes = std::fs::read(&orig).unwrap();
    let inv = h5salvage::scan_path(&orig).unwrap();
    for path in ["/g", "/d"] {
        let o = inv.object(path).unwrap();
        assert_eq!(o.status, h5salvage::inventory::Status::Intact, "{path}");
        assert!(
            o.attributes.iter().any(|a| a.message.value.len() > 65536),
            "{path}: no huge attribute read"
        );
    }
    let leaves = btree_v2_nodes(&bytes, b"BTLF", 1);
    assert_eq!(leaves.len(), 2, "one huge-object tree per object");
    let check = have_h5py("huge_attributes_are_read_and_lost_whole_when_their_tree_is_damaged");
    for (n, &leaf) in leaves.iter().enumerate() {
        let mut bad = bytes.clone();
        bad[leaf + 7] ^= 0x10; // inside the first record: its address
        let input = dir.path().join(format!("bad{n}.h5"));
        std::fs::write(&input, &bad).unwrap();
        let out = dir.path().join(format!("out{n}.h5"));
        let rep = salvage(&input, &out, false).unwrap();
        let partial: Vec<&str> = rep
            .objects
            .iter()
            .filter(|o| o.result == Recovery::Partial)
            .map(|o| o.path.as_str())
            .collect();
        assert_eq!(partial.len(), 1, "{rep:?}");
        let o = rep
            .objects
            .iter()
            .find(|o| o.result == Recovery::Partial)
            .unwrap();
        assert!(
            o.reasons.iter().any(|r| r.contains("huge object ID")),
            "{o:?}"
        );
        if check {
            let (ok, v) = compare(&orig, &out, false);
            assert!(ok, "{v}");
            // The other attributes of the damaged object are there.
            python_code(
                "import sys, h5py\n\
                 f = h5py.File(sys.argv[1], 'r')\n\
                 o = f[sys.argv[2]]\n\
                 assert o.attrs['h5salvage_status'] == 'partial'\n\
                 assert 'huge' in o.attrs['h5salvage_missing'], o.attrs['h5salvage_missing']\n\
                 assert not any(k.startswith('huge') for k in o.attrs), list(o.attrs)\n\
                 assert len([k for k in o.attrs if not k.startswith('h5salvage')]) >= 1\n",
                &[out.as_os_str(), std::ffi::OsStr::new(partial[0])],
            );
        }
    }
}

/// A link name above 64 KiB in a dense (libver latest) group is a huge
/// fractal-heap object too: read through the same B-tree, the group comes
/// back whole (made at test time: h5py).
#[test]
fn huge_link_name_in_a_dense_group_round_trips() {
    if !have_h5py("huge_link_name_in_a_dense_group_round_trips") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("huge_link.h5");
    python_code(
        "import sys, h5py, numpy as np\n\
         f = h5py.File(sys.argv[1], 'w', libver='latest')\n\
         g = f.create_group('g')\n\
         for i in range(10): g['m%d' % i] = np.arange(i, dtype='<i4')\n\
         g['n' * 70000] = np.arange(3)\n\
         f.close()\n",
        &[input.as_os_str()],
    );
    let inv = h5salvage::scan_path(&input).unwrap();
    assert_eq!(inv.verdict(), h5salvage::inventory::Verdict::Healthy);
    assert!(inv.objects.iter().any(|o| o.path.len() > 70000));
    let out = dir.path().join("out.h5");
    let rep = salvage(&input, &out, false).unwrap();
    assert_eq!((rep.recovered, rep.partial, rep.lost), (13, 0, 0));
    let (ok, v) = compare(&input, &out, true);
    assert!(ok, "{v}");
    assert_eq!(v["equal"], 11);
}
