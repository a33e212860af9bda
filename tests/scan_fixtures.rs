//! The walker's inventory of every healthy fixture must match what h5py
//! reported when the fixture was generated (`testdata/expected/*.json`,
//! written by `testdata/generate.py`).

mod common;

use common::{fixture_paths, testdata};

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use h5salvage::format::message::data_layout::LayoutClass;
use h5salvage::format::message::dataspace::DataspaceKind;
use h5salvage::format::message::datatype::DatatypeClass;
use h5salvage::inventory::{Inventory, ObjectKind, Verdict};
use serde_json::Value;

fn scan(path: &Path) -> Inventory {
    h5salvage::scan_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn u64s(v: &Value) -> Option<Vec<u64>> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_u64().unwrap_or(u64::MAX)).collect())
}

/// Compares one fixture; returns a list of differences.
fn compare(inv: &Inventory, exp: &Value) -> Vec<String> {
    // h5py reports chunk addresses as absolute file offsets.
    let base = inv.superblock.as_ref().map_or(0, |s| s.base_address);
    let mut diffs = Vec::new();
    let mut d = |s: String| diffs.push(s);
    let expected: Vec<&Value> = exp["objects"].as_array().unwrap().iter().collect();
    let exp_paths: BTreeSet<&str> = expected
        .iter()
        .map(|o| o["path"].as_str().unwrap())
        .collect();
    let got_paths: BTreeSet<&str> = inv.objects.iter().map(|o| o.path.as_str()).collect();
    for p in exp_paths.difference(&got_paths) {
        d(format!("missing object {p}"));
    }
    for p in got_paths.difference(&exp_paths) {
        d(format!("extra object {p}"));
    }
    for e in &expected {
        let path = e["path"].as_str().unwrap();
        let Some(o) = inv.object(path) else { continue };
        let kind = match o.kind {
            ObjectKind::Group => "group",
            ObjectKind::Dataset => "dataset",
            ObjectKind::Datatype => "datatype",
            ObjectKind::Unknown => "unknown",
        };
        if e["kind"].as_str() != Some(kind) {
            d(format!("{path}: kind {kind}, h5py says {}", e["kind"]));
        }
        if e["object_addr"].as_u64() != Some(o.address) {
            d(format!(
                "{path}: address {}, h5py says {}",
                o.address, e["object_addr"]
            ));
        }
        if !o.problems.is_empty() {
            d(format!("{path}: problems {:?}", o.problems));
        }
        if e.get("hardlink_of").is_some_and(|h| !h.is_null()) {
            if o.hard_link_of.is_none() {
                d(format!("{path}: not recognised as a second hard link"));
            }
            continue;
        }
        if o.hard_link_of.is_some() {
            // The walk may reach the two paths in another order than h5py.
            continue;
        }
        let exp_attrs: BTreeSet<&str> = e["attributes"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        let got_attrs: BTreeSet<&str> = o.attributes.iter().map(|a| a.name.as_str()).collect();
        if exp_attrs != got_attrs {
            d(format!(
                "{path}: attributes {got_attrs:?}, h5py says {exp_attrs:?}"
            ));
        }
        if kind != "dataset" {
            continue;
        }
        let Some(ds) = &o.dataset else {
            d(format!("{path}: no dataset description"));
            continue;
        };
        let shape = match ds.dataspace.kind {
            DataspaceKind::Scalar | DataspaceKind::Null => None,
            _ => Some(ds.dataspace.dims.clone()),
        };
        if shape != u64s(&e["shape"]) {
            d(format!("{path}: shape {shape:?}, h5py says {}", e["shape"]));
        }
        // h5py reports the in-memory size of variable-length types (a
        // pointer); the file stores length + global heap ID.
        if !ds.datatype.is_variable_length()
            && ds.datatype.size as u64 != e["h5t_size"].as_u64().unwrap_or(0)
        {
            d(format!(
                "{path}: element size {}, h5py says {}",
                ds.datatype.size, e["h5t_size"]
            ));
        }
        let numeric = matches!(
            ds.datatype.class,
            DatatypeClass::FixedPoint { .. } | DatatypeClass::FloatingPoint { .. }
        );
        if numeric && Some(ds.datatype.describe().as_str()) != e["dtype_str"].as_str() {
            d(format!(
                "{path}: dtype {}, h5py says {}",
                ds.datatype.describe(),
                e["dtype_str"]
            ));
        }
        let layout = match ds.layout.class {
            LayoutClass::Compact { .. } => "compact",
            LayoutClass::Contiguous { .. } => "contiguous",
            LayoutClass::Chunked { .. } => "chunked",
            LayoutClass::Virtual { .. } => "virtual",
        };
        if e["layout"].as_str() != Some(layout) {
            d(format!(
                "{path}: layout {layout}, h5py says {}",
                e["layout"]
            ));
        }
        if let LayoutClass::Chunked { dims, .. } = &ds.layout.class {
            if Some(dims.clone()) != u64s(&e["chunks"]) {
                d(format!(
                    "{path}: chunk shape {dims:?}, h5py says {}",
                    e["chunks"]
                ));
            }
            let exp_chunks: BTreeMap<Vec<u64>, (u64, u64, u64)> = e["chunk_list"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .map(|c| {
                            (
                                u64s(&c["offset"]).unwrap(),
                                (
                                    c["addr"].as_u64().unwrap(),
                                    c["size"].as_u64().unwrap(),
                                    c["filter_mask"].as_u64().unwrap(),
                                ),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let got_chunks: BTreeMap<Vec<u64>, (u64, u64, u64)> = ds
                .chunks
                .iter()
                .map(|c| {
                    (
                        c.offset.clone(),
                        (base + c.address, c.size, u64::from(c.filter_mask)),
                    )
                })
                .collect();
            if exp_chunks != got_chunks {
                d(format!(
                    "{path}: {} chunks {:?}..., h5py lists {} {:?}...",
                    got_chunks.len(),
                    got_chunks.iter().take(3).collect::<Vec<_>>(),
                    exp_chunks.len(),
                    exp_chunks.iter().take(3).collect::<Vec<_>>()
                ));
            }
            if ds.coverage.chunks_present != Some(exp_chunks.len() as u64) {
                d(format!(
                    "{path}: chunks_present {:?}",
                    ds.coverage.chunks_present
                ));
            }
        }
    }
    // Soft and external links.
    let exp_links: BTreeSet<(String, String)> = exp["links"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|x| {
                    let kind = match x["kind"].as_str().unwrap() {
                        "soft_link" => "soft",
                        "external_link" => "external",
                        other => other,
                    };
                    (x["path"].as_str().unwrap().to_string(), kind.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let got_links: BTreeSet<(String, String)> = inv
        .links
        .iter()
        .map(|l| (l.path.clone(), l.kind.to_string()))
        .collect();
    if exp_links != got_links {
        d(format!("links {got_links:?}, h5py says {exp_links:?}"));
    }
    diffs
}

#[test]
fn every_healthy_fixture_matches_h5py() {
    let mut failures = Vec::new();
    for (_, h5, exp) in fixture_paths() {
        let inv = scan(&h5);
        let name = h5.file_name().unwrap().to_string_lossy().to_string();
        let sb = inv.superblock.as_ref();
        if sb.map(|s| s.offset) != exp["superblock_offset"].as_u64() {
            failures.push(format!(
                "{name}: superblock offset {:?}",
                sb.map(|s| s.offset)
            ));
        }
        if sb.map(|s| u64::from(s.version)) != exp["superblock_version"].as_u64() {
            failures.push(format!(
                "{name}: superblock version {:?}",
                sb.map(|s| s.version)
            ));
        }
        if inv.verdict() != Verdict::Healthy {
            failures.push(format!(
                "{name}: verdict {:?}, problems {:?}",
                inv.verdict(),
                inv.problems
            ));
        }
        for diff in compare(&inv, &exp) {
            failures.push(format!("{name}: {diff}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn empty_and_non_hdf5_files() {
    let inv = scan(&testdata().join("empty.h5"));
    assert_eq!(inv.verdict(), Verdict::Empty);
    let inv = scan(&testdata().join("not_hdf5.txt"));
    assert_eq!(inv.verdict(), Verdict::NotHdf5);
}

/// Every healthy fixture from the wider ecosystem (h5py lzf, PyTables,
/// h5repack, resized datasets, chunks beyond the extent, huge attributes,
/// a custom-precision float, trailing newlines, bzip2 and blosc chunks,
/// virtual datasets) scans
/// healthy; the one with newlines after its stored end of file says so in
/// a note, not a problem.
#[test]
fn ecosystem_fixtures_scan_healthy() {
    for name in [
        "lzf_earliest.h5",
        "lzf_latest.h5",
        "pytables_zlib_fletcher.h5",
        "repack_fletcher_first.h5",
        "resized_earliest.h5",
        "resized_latest.h5",
        "huge_attrs_latest.h5",
        "beyond_extent_earliest.h5",
        "beyond_extent_latest.h5",
        "custom_float_earliest.h5",
        "vlen_fill_earliest.h5",
        "vlen_fill_latest.h5",
        "trailing_bytes.h5",
        "plugins/pytables_bzip2_blosc.h5",
        "plugins/blosc_blosclz.h5",
        "plugins/blosc_lz4.h5",
        "plugins/blosc_lz4hc.h5",
        "plugins/blosc_zlib.h5",
        "plugins/blosc_zstd.h5",
        "plugins/blosc2_copied.h5",
        "vds/vds_earliest.h5",
        "vds/vds_latest.h5",
    ] {
        let inv = scan(&testdata().join(name));
        assert_eq!(
            inv.verdict(),
            Verdict::Healthy,
            "{name}: {:?}",
            inv.problems
        );
        assert_eq!(inv.notes.is_empty(), name != "trailing_bytes.h5", "{name}");
    }
}

/// Only a short run of whitespace after the stored end of file is a note:
/// anything else there (a byte of data, or more than 4 KiB) is what a
/// writer left after its last superblock update, and the file is damaged.
#[test]
fn bytes_after_the_stored_end_are_a_note_only_when_whitespace() {
    let bytes = std::fs::read(testdata().join("trailing_bytes.h5")).unwrap();
    let body = &bytes[..bytes.len() - 2];
    let verdict = |tail: &[u8]| {
        let mut b = body.to_vec();
        b.extend_from_slice(tail);
        let inv = h5salvage::walk::walk("t.h5", &b);
        (inv.verdict(), inv.notes.len(), inv.problems.len())
    };
    assert_eq!(verdict(b""), (Verdict::Healthy, 0, 0));
    assert_eq!(verdict(b"\n"), (Verdict::Healthy, 1, 0));
    assert_eq!(verdict(b" \r\n\t\n"), (Verdict::Healthy, 1, 0));
    assert_eq!(verdict(&[b'\n'; 4096]), (Verdict::Healthy, 1, 0));
    assert_eq!(verdict(&[b'\n'; 4097]), (Verdict::Damaged, 0, 1));
    assert_eq!(verdict(b"\nX\n"), (Verdict::Damaged, 0, 1));
    assert_eq!(verdict(&[0, 0]), (Verdict::Damaged, 0, 1));
}
