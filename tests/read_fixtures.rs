//! `read` against the h5py-written fixtures: assembled dataset bytes must
//! hash to the sha256 h5py recorded (`testdata/expected/*.json`, written by
//! `testdata/generate.py`: sha256 of numpy's `tobytes()` of the array read
//! back, which for every "raw" dataset of the fixtures is the file's own
//! datatype layout: h5py keeps the file's byte order and compound offsets),
//! variable-length values must equal the canonical JSON values h5py
//! recorded, and damaged copies must move chunks to `failed`.
//!
//! No "raw" dataset needs skipping: bool (enum of i1 0/1), enums, compounds
//! (h5py keeps the file's member offsets, packed or not), nested compounds
//! with a big-endian member, arrays, fixed strings (NUL-padded both in the
//! file and in numpy), opaque, bitfields, float16, complex and big-endian
//! types all hash bit-for-bit. Datasets whose chunk index is not read yet
//! (`coverage.index_complete == false`: the fixed/extensible array indexes
//! of the v110/latest fixtures, still stubs on this branch) are listed as
//! pending and compared automatically once their index lands.

mod common;

use common::{fixtures, testdata};

use h5salvage::follow::Image;
use h5salvage::format::message::data_layout::LayoutClass;
use h5salvage::format::message::datatype::{DatatypeClass, VlenKind};
use h5salvage::format::Sizes;
use h5salvage::inventory::{Dataset, Inventory};
use h5salvage::read::{self, vlen, DatasetData, FailureKind};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn image<'a>(inv: &Inventory, bytes: &'a [u8]) -> Image<'a> {
    let sb = inv.superblock.as_ref().expect("superblock");
    Image::new(
        bytes,
        sb.base_address,
        Sizes::new(sb.size_of_offsets, sb.size_of_lengths).unwrap(),
    )
}

/// The dataset reached under `path`, following a second hard link to the
/// first visit.
fn dataset<'i>(inv: &'i Inventory, path: &str) -> Option<&'i Dataset> {
    let o = inv.object(path)?;
    match (&o.dataset, &o.hard_link_of) {
        (Some(d), _) => Some(d),
        (None, Some(first)) => inv.object(first)?.dataset.as_deref(),
        _ => None,
    }
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn datasets(listing: &Value) -> impl Iterator<Item = &Value> {
    listing["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "dataset")
}

#[test]
fn raw_datasets_hash_like_h5py() {
    let mut matched = 0;
    let mut per_file = Vec::new();
    let mut pending = Vec::new();
    let mut undecodable: Vec<String> = Vec::new();
    let mut bad = Vec::new();
    for (name, bytes, listing) in fixtures() {
        let inv = h5salvage::walk::walk(&name, &bytes);
        let img = image(&inv, &bytes);
        per_file.push((name.clone(), matched));
        for o in datasets(&listing).filter(|o| o["sha256_method"] == "raw") {
            let path = o["path"].as_str().unwrap();
            let Some(ds) = dataset(&inv, path) else {
                bad.push(format!("{name}:{path}: not in the inventory"));
                continue;
            };
            if !ds.coverage.index_complete {
                // Fixed/extensible array indexes not read yet (another branch).
                pending.push(format!("{name}:{path}"));
                continue;
            }
            match read::assemble(&img, ds) {
                Ok(data) => {
                    let got = hex(&Sha256::digest(&data));
                    if got == o["sha256"].as_str().unwrap() {
                        matched += 1;
                    } else {
                        bad.push(format!(
                            "{name}:{path}: sha256 differs ({} bytes)",
                            data.len()
                        ));
                    }
                }
                // scaleoffset (filters_earliest.h5) cannot be decoded
                // here: salvage copies it through unverified (lzf is
                // decoded and checked against h5py's sha256 like the rest).
                Err(e) if e.kind == FailureKind::UndecodableFilter => {
                    undecodable.push(format!("{name}:{path}"))
                }
                Err(e) => bad.push(format!("{name}:{path}: {e}")),
            }
        }
    }
    assert_eq!(undecodable, ["filters_earliest:/scaleoffset_int"]);
    eprintln!("running match count at the start of each file: {per_file:?}");
    eprintln!(
        "raw sha256: {matched} matched, {} pending (index incomplete): {pending:?}",
        pending.len()
    );
    assert!(
        bad.is_empty(),
        "{} failures:\n{}",
        bad.len(),
        bad.join("\n")
    );
    assert!(matched > 100, "only {matched} datasets compared");
}

/// Strings of a top-level vlen string dataset, or None for other types.
fn vlen_strings(img: &Image, ds: &Dataset) -> Option<Vec<String>> {
    let DatatypeClass::VariableLength {
        kind: VlenKind::String,
        ..
    } = ds.datatype.class
    else {
        return None;
    };
    let raw = read::assemble(img, ds).unwrap();
    let slots = vlen::resolve_vlen(img, &ds.datatype, &raw).unwrap();
    Some(
        slots
            .into_iter()
            .map(|s| String::from_utf8(s.data).unwrap())
            .collect(),
    )
}

#[test]
fn vlen_values_match_h5py() {
    let mut checked = 0;
    for (name, bytes, listing) in fixtures() {
        let inv = h5salvage::walk::walk(&name, &bytes);
        let img = image(&inv, &bytes);
        for o in datasets(&listing).filter(|o| o["sha256_method"] == "canonical_json") {
            let path = o["path"].as_str().unwrap();
            let ds = dataset(&inv, path).unwrap();
            let value = &o["value"];
            if let Some(strings) = vlen_strings(&img, ds) {
                let want: Vec<String> = match value {
                    Value::String(s) => vec![s.clone()],
                    // Row-major, nested for more than one dimension.
                    Value::Array(a) => a
                        .iter()
                        .flat_map(|v| match v {
                            Value::Array(row) => row.clone(),
                            v => vec![v.clone()],
                        })
                        .map(|v| v.as_str().unwrap().into())
                        .collect(),
                    v => panic!("{name}:{path}: unexpected value {v}"),
                };
                assert_eq!(strings, want, "{name}:{path}");
                checked += 1;
                continue;
            }
            let raw = read::assemble(&img, ds).unwrap();
            match path {
                "/types/vlen_int" | "/vlen_int" => {
                    let slots = vlen::resolve_vlen(&img, &ds.datatype, &raw).unwrap();
                    let got: Vec<Vec<i64>> = slots
                        .iter()
                        .map(|s| {
                            s.data
                                .chunks_exact(4)
                                .map(|c| i64::from(i32::from_le_bytes(c.try_into().unwrap())))
                                .collect()
                        })
                        .collect();
                    let want: Vec<Vec<i64>> = serde_json::from_value(value.clone()).unwrap();
                    assert_eq!(got, want, "{name}:{path}");
                    checked += 1;
                }
                "/types/vlen_float_scalar" => {
                    let slots = vlen::resolve_vlen(&img, &ds.datatype, &raw).unwrap();
                    assert_eq!(slots.len(), 1);
                    let got: Vec<f64> = slots[0]
                        .data
                        .chunks_exact(8)
                        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                        .collect();
                    let want: Vec<f64> = serde_json::from_value(value.clone()).unwrap();
                    assert_eq!(got, want, "{name}:{path}");
                    checked += 1;
                }
                "/types/compound_vlen_string" | "/compound_vlen" => {
                    // Compound {id <i4 at 0, label (or name) vlen str at 4}:
                    // the slots sit at byte 4 of each element.
                    let label = if path == "/compound_vlen" {
                        "name"
                    } else {
                        "label"
                    };
                    let slots = vlen::resolve_vlen(&img, &ds.datatype, &raw).unwrap();
                    let size = ds.datatype.size as usize;
                    let want = value.as_array().unwrap();
                    assert_eq!(slots.len(), want.len(), "{name}:{path}");
                    for (i, (s, w)) in slots.iter().zip(want).enumerate() {
                        assert_eq!(s.offset, i * size + 4);
                        assert_eq!(std::str::from_utf8(&s.data).unwrap(), w[label]);
                        let id =
                            i32::from_le_bytes(raw[i * size..i * size + 4].try_into().unwrap());
                        assert_eq!(i64::from(id), w["id"].as_i64().unwrap());
                    }
                    checked += 1;
                }
                // References (object/region) are not variable-length data.
                _ => assert!(!ds.datatype.is_variable_length(), "{name}:{path} unchecked"),
            }
        }
    }
    eprintln!("vlen values checked: {checked}");
    assert!(checked >= 20, "only {checked} vlen datasets checked");
}

#[test]
fn worker_log_strings() {
    let bytes = std::fs::read(testdata().join("worker_earliest.h5")).unwrap();
    let inv = h5salvage::walk::walk("worker_earliest.h5", &bytes);
    let img = image(&inv, &bytes);
    let ds = dataset(&inv, "/config_0000/log").unwrap();
    assert_eq!(
        vlen_strings(&img, ds).unwrap(),
        ["config 0 start", "evaluated 50 points", "done"]
    );
    let ds = dataset(&inv, "/config_0001/log").unwrap();
    assert_eq!(
        vlen_strings(&img, ds).unwrap(),
        ["config 1 start", "evaluated 51 points", "done ✓"]
    );
}

/// (path, dataset) of every chunked dataset with at least one listed chunk.
fn chunked(inv: &Inventory) -> Vec<(&str, &Dataset)> {
    inv.objects
        .iter()
        .filter_map(|o| Some((o.path.as_str(), o.dataset.as_deref()?)))
        .filter(|(_, d)| !d.chunks.is_empty())
        .collect()
}

/// (verified or copied-through chunks, failed chunks)
fn split<'a>(d: DatasetData<'a>) -> (Vec<read::VerifiedChunk<'a>>, Vec<read::ChunkFailure>) {
    match d {
        DatasetData::Chunked {
            mut chunks,
            unverified,
            failed,
            ..
        } => {
            chunks.extend(unverified);
            (chunks, failed)
        }
        other => panic!("not chunked: {other:?}"),
    }
}

#[test]
fn healthy_chunks_all_verify() {
    for (name, bytes, _) in fixtures() {
        let inv = h5salvage::walk::walk(&name, &bytes);
        let img = image(&inv, &bytes);
        for (path, ds) in chunked(&inv) {
            let (ok, failed) = split(read::dataset_data(&img, ds));
            assert!(failed.is_empty(), "{name}:{path}: {failed:?}");
            assert_eq!(ok.len(), ds.chunks.len(), "{name}:{path}");
        }
    }
}

#[test]
fn chunks_past_a_cut_fail() {
    let bytes = std::fs::read(testdata().join("rich_earliest.h5")).unwrap();
    let inv = h5salvage::walk::walk("rich_earliest.h5", &bytes);
    let mut cut_seen = 0;
    for (path, ds) in chunked(&inv) {
        // Cut the file in the middle of the dataset's last chunk.
        let last = ds.chunks.iter().max_by_key(|c| c.address).unwrap();
        let cut =
            (inv.superblock.as_ref().unwrap().base_address + last.address + last.size / 2) as usize;
        let img = image(&inv, &bytes[..cut]);
        let (ok, failed) = split(read::dataset_data(&img, ds));
        assert_eq!(ok.len() + failed.len(), ds.chunks.len(), "{path}");
        for c in &ok {
            assert!(
                img.contains(
                    ds.chunks
                        .iter()
                        .find(|r| r.offset == c.offset)
                        .unwrap()
                        .address,
                    c.stored.len() as u64
                ),
                "{path}: verified chunk outside the cut file"
            );
        }
        let f = failed.iter().find(|f| f.offset == last.offset).expect(path);
        assert_eq!(f.kind, FailureKind::OutsideFile, "{path}: {}", f.reason);
        assert!(read::assemble(&img, ds).is_err(), "{path}");
        cut_seen += 1;
    }
    assert!(cut_seen >= 8, "{cut_seen}");

    // Truncated files walked as they are: every chunk the walk marks absent
    // fails, no verified chunk is absent. (worker_truncated.h5 uses an
    // extensible-array index: it lists chunks once that index is read.)
    let worker = std::fs::read(testdata().join("worker_earliest.h5")).unwrap();
    let mut cases = vec![(
        "worker_truncated.h5".to_string(),
        std::fs::read(testdata().join("damaged/worker_truncated.h5")).unwrap(),
    )];
    // Cut inside the last stored chunk of each dataset (the B-tree node may
    // be before it, then the walk lists the chunk as absent).
    let healthy = h5salvage::walk::walk("worker_earliest.h5", &worker);
    let base = healthy.superblock.as_ref().unwrap().base_address;
    for (_, ds) in chunked(&healthy) {
        let last = ds.chunks.iter().max_by_key(|c| c.address).unwrap();
        let cut = (base + last.address + last.size / 2) as usize;
        cases.push((
            format!("worker_earliest cut at {cut}"),
            worker[..cut].to_vec(),
        ));
    }
    let mut absent_total = 0;
    for (name, bytes) in &cases {
        let inv = h5salvage::walk::walk(name, bytes);
        let img = image(&inv, bytes);
        for (path, ds) in chunked(&inv) {
            let (ok, failed) = split(read::dataset_data(&img, ds));
            for c in ds.chunks.iter().filter(|c| !c.present) {
                absent_total += 1;
                assert!(
                    failed.iter().any(|f| f.offset == c.offset),
                    "{name}:{path}: absent chunk {:?} not failed",
                    c.offset
                );
                assert!(ok.iter().all(|v| v.offset != c.offset));
            }
            assert_eq!(ok.len() + failed.len(), ds.chunks.len(), "{name}:{path}");
        }
    }
    eprintln!("truncated files: {absent_total} chunks past the end, all failed");
    // With the v1 B-tree files the index node is written after the chunks
    // it lists, so a cut that loses a chunk loses its index too and the walk
    // lists nothing absent (absent_total is 0 today); worker_truncated.h5
    // lists absent chunks once the extensible-array index is read. The
    // healthy-inventory cuts above cover absent chunks in the meantime.
    let _ = absent_total;
}

#[test]
fn flipped_bytes_in_filtered_chunks_fail() {
    let bytes = std::fs::read(testdata().join("rich_earliest.h5")).unwrap();
    let inv = h5salvage::walk::walk("rich_earliest.h5", &bytes);
    let base = inv.superblock.as_ref().unwrap().base_address;
    for path in [
        "/datasets/chunked_gzip",
        "/datasets/chunked_gzip_shuffle_fletcher32",
        "/datasets/partial_2d_gzip",
        "/datasets/single_chunk_gzip",
    ] {
        let ds = dataset(&inv, path).unwrap();
        let target = &ds.chunks[0];
        // Every byte of the first chunk, one flip at a time (deflate's
        // Adler-32 or fletcher32 catches each; the header bytes fail the
        // zlib header check).
        for i in 0..target.size {
            let mut copy = bytes.clone();
            copy[(base + target.address + i) as usize] ^= 0x01;
            let img = image(&inv, &copy);
            let (ok, failed) = split(read::dataset_data(&img, ds));
            assert!(
                failed.len() == 1 && failed[0].offset == target.offset,
                "{path}: flip at byte {i} of the chunk not detected"
            );
            assert_eq!(ok.len(), ds.chunks.len() - 1);
        }
    }
    // Unfiltered chunks: nothing in the format can detect a flipped byte.
    let ds = dataset(&inv, "/datasets/chunked").unwrap();
    let mut copy = bytes.clone();
    copy[(base + ds.chunks[0].address + 3) as usize] ^= 0x01;
    let img = image(&inv, &copy);
    let (ok, failed) = split(read::dataset_data(&img, ds));
    assert!(failed.is_empty() && ok.len() == ds.chunks.len());
}

#[test]
fn fletcher32_matches_a_real_h5py_chunk() {
    // First chunk of /datasets/chunked_gzip_shuffle_fletcher32 in
    // rich_earliest.h5 (h5py: offset (0,0), 138 bytes at 34878, checksum
    // bytes 02 35 d0 60 = 0x60d03502 little-endian).
    let bytes = std::fs::read(testdata().join("rich_earliest.h5")).unwrap();
    let chunk = &bytes[34878..34878 + 138];
    assert_eq!(chunk[134..], [0x02, 0x35, 0xd0, 0x60]);
    assert_eq!(
        read::filters::fletcher32(&chunk[..134]),
        0x60d0_3502,
        "big-endian word pairing, as libhdf5"
    );
    let inv = h5salvage::walk::walk("rich_earliest.h5", &bytes);
    let ds = dataset(&inv, "/datasets/chunked_gzip_shuffle_fletcher32").unwrap();
    let decoded = read::decode_chunk(chunk, ds.filters.as_ref(), 0, 8, 8 * 8 * 8).unwrap();
    // Row 0 of the data: (arange(600).reshape(30,20) * 1000003) % 65521.
    let first: Vec<i64> = decoded[..64]
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let want: Vec<i64> = (0..8).map(|j| (j * 1_000_003) % 65521).collect();
    assert_eq!(first, want);
}

#[test]
fn layouts_map_to_the_right_variant() {
    let bytes = std::fs::read(testdata().join("rich_earliest.h5")).unwrap();
    let inv = h5salvage::walk::walk("rich_earliest.h5", &bytes);
    let img = image(&inv, &bytes);
    let get = |p: &str| read::dataset_data(&img, dataset(&inv, p).unwrap());
    assert!(matches!(
        get("/datasets/fillvalue_contiguous_unwritten"),
        DatasetData::NotAllocated
    ));
    assert!(matches!(
        get("/datasets/empty_chunked"),
        DatasetData::NotAllocated
    ));
    match get("/datasets/compact") {
        DatasetData::Contiguous { bytes, expected } => {
            assert_eq!(bytes.len() as u64, expected)
        }
        other => panic!("{other:?}"),
    }
    // The unwritten contiguous dataset assembles to its fill value.
    let ds = dataset(&inv, "/datasets/fillvalue_contiguous_unwritten").unwrap();
    let data = read::assemble(&img, ds).unwrap();
    assert_eq!(data.len(), 80);
    assert!(data
        .chunks_exact(4)
        .all(|c| f32::from_le_bytes(c.try_into().unwrap()) == -999.5));
    // A contiguous dataset cut in the middle: a prefix, and assemble refuses.
    let ds = dataset(&inv, "/datasets/contiguous").unwrap();
    let LayoutClass::Contiguous { address, .. } = ds.layout.class else {
        panic!("not contiguous")
    };
    let cut = (inv.superblock.as_ref().unwrap().base_address + address + 10) as usize;
    let img = image(&inv, &bytes[..cut]);
    match read::dataset_data(&img, ds) {
        DatasetData::Contiguous { bytes, expected } => {
            assert_eq!(bytes.len(), 10);
            assert!(expected > 10);
        }
        other => panic!("{other:?}"),
    }
    assert!(read::assemble(&img, ds).is_err());
}

/// blosc (filter 32001) chunks decoded here give the bytes PyTables (which
/// links c-blosc) reads: every array and table of the blosc fixtures (each
/// codec PyTables ships, byte and bit shuffle, several blocks, memcpyed
/// buffers), hashed like `raw_datasets_hash_like_h5py`. VLArrays hold heap
/// references; their rows are compared in tests/salvage.rs.
#[test]
fn blosc_datasets_hash_like_pytables() {
    if !common::have_python(&["tables"], "blosc against PyTables") {
        return;
    }
    let code = "import hashlib, json, sys, tables\n\
                out = {}\n\
                with tables.open_file(sys.argv[1]) as h:\n\
                \x20   for leaf in h.walk_nodes('/', 'Leaf'):\n\
                \x20       if not isinstance(leaf, tables.VLArray):\n\
                \x20           out[leaf._v_pathname] = hashlib.sha256(leaf.read().tobytes()).hexdigest()\n\
                print(json.dumps(out))";
    let mut compared = 0;
    for name in [
        "blosc_blosclz",
        "blosc_lz4",
        "blosc_lz4hc",
        "blosc_zlib",
        "blosc_zstd",
        "pytables_bzip2_blosc",
    ] {
        let path = testdata().join(format!("plugins/{name}.h5"));
        let want: Value =
            serde_json::from_str(&common::python_code(code, &[path.as_os_str()])).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let inv = h5salvage::walk::walk(name, &bytes);
        let img = image(&inv, &bytes);
        for (p, sha) in want.as_object().unwrap() {
            let ds = dataset(&inv, p).unwrap_or_else(|| panic!("{name}:{p}"));
            let data = read::assemble(&img, ds).unwrap_or_else(|e| panic!("{name}:{p}: {e}"));
            assert_eq!(
                hex(&Sha256::digest(&data)),
                sha.as_str().unwrap(),
                "{name}:{p}"
            );
            compared += 1;
        }
    }
    assert!(compared >= 45, "{compared}");
}
