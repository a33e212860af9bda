//! Files closed with a metadata cache image (`MDCI`, issue 11): libhdf5
//! keeps the serialized metadata in the image block, not at the entries'
//! own addresses. Healthy such files scan intact (with a note) and salvage
//! whole, checked against h5py; a damaged image is a recorded problem,
//! never a panic or a wrong value. Fixtures: testdata/unsupported/
//! generate_mdci.py (h5py's libhdf5, HDF5 2.0).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{bin, check_python, compare, have_h5py, py_script, testdata};
use h5salvage::format::lookup3;
use h5salvage::inventory::{ProblemKind, Verdict};
use h5salvage::salvage::{salvage, Recovery};
use h5salvage::CarveMode;

fn fixture(name: &str) -> PathBuf {
    testdata().join("unsupported").join(name)
}

/// mdci_110.h5: written by libhdf5 1.10 (generate_mdci_110.c), the others by
/// HDF5 2.0 (generate_mdci.py).
const FIXTURES: [&str; 3] = ["mdci_110.h5", "mdci_latest.h5", "mdci_objects.h5"];

/// Where the image block lies (absolute offset, length): found by its
/// signature, the length read from its header.
fn block(bytes: &[u8]) -> (usize, usize) {
    let at = bytes.windows(4).position(|w| w == b"MDCI").unwrap();
    let len = u64::from_le_bytes(bytes[at + 6..at + 14].try_into().unwrap());
    (at, len as usize)
}

#[test]
fn cache_image_files_scan_intact() {
    for name in FIXTURES {
        let path = fixture(name);
        let o = Command::new(bin()).arg("scan").arg(&path).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{name}: {text}");
        assert!(text.contains("verdict: HEALTHY"), "{name}: {text}");
        assert!(text.contains("read from the cache image"), "{name}: {text}");

        let bytes = std::fs::read(&path).unwrap();
        let inv = h5salvage::scan_bytes(name, &bytes, CarveMode::Auto);
        assert_eq!(
            inv.verdict(),
            Verdict::Healthy,
            "{name}: {:?}",
            inv.problems
        );
        assert!(inv.carving.is_none(), "{name}: carved");
        let ci = inv.cache_image.expect("cache image recorded");
        assert!(
            ci.entries > 0 && ci.relocated == ci.entries,
            "{name}: {ci:?}"
        );
        assert!(inv
            .objects
            .iter()
            .all(|o| o.path.starts_with('/') && !o.path.starts_with("/lost+found")));
        assert!(inv.objects.iter().any(|o| o.path == "/"));
        // The walk on the file's own bytes, without the image, finds the
        // root header gone: the image is what makes it healthy.
        let raw = h5salvage::walk::walk(name, &bytes);
        assert_ne!(raw.verdict(), Verdict::Healthy, "{name}");
    }
}

#[test]
fn cache_image_files_salvage_whole() {
    let dir = tempfile::tempdir().unwrap();
    let check = have_h5py("cache_image_files_salvage_whole");
    for name in FIXTURES {
        let input = fixture(name);
        let out = dir.path().join(name);
        let before = std::fs::read(&input).unwrap();
        let rep = salvage(&input, &out, false).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            std::fs::read(&input).unwrap(),
            before,
            "{name}: input modified"
        );
        assert_eq!(rep.lost, 0, "{name}: {:?}", rep.objects);
        assert_eq!(rep.attributes_lost, 0, "{name}");
        for o in &rep.objects {
            assert_eq!(o.result, Recovery::Recovered, "{name}: {o:?}");
        }
        let cli_out = dir.path().join(format!("cli_{name}"));
        let st = Command::new(bin())
            .arg("salvage")
            .arg(&input)
            .arg("-o")
            .arg(&cli_out)
            .output()
            .unwrap();
        assert!(st.status.success(), "{name}: {st:?}");
        if check {
            // Every group, dataset, attribute and link as h5py reads it.
            check_python(&[
                py_script("compare_h5.py").as_os_str(),
                input.as_os_str(),
                out.as_os_str(),
            ]);
            let (ok, v) = compare(&input, &out, true);
            assert!(ok, "{name}: {v}");
        }
    }
    if check {
        // Not vacuous: the objects fixture has datasets and attributes.
        let out = dir.path().join("mdci_objects.h5");
        let (_, v) = compare(&fixture("mdci_objects.h5"), &out, true);
        assert_eq!(v["datasets"], 4, "{v}");
        assert!(v["attributes"].as_u64().unwrap() >= 8, "{v}");
    }
}

/// `body` followed by its lookup3 checksum.
fn seal(mut body: Vec<u8>) -> Vec<u8> {
    let c = lookup3::hashlittle(&body, 0);
    body.extend(c.to_le_bytes());
    body
}

/// Damaged copies of the objects fixture: (name, bytes).
fn damaged() -> Vec<(&'static str, Vec<u8>)> {
    let good = std::fs::read(fixture("mdci_objects.h5")).unwrap();
    let (at, len) = block(&good);
    let mut v = Vec::new();
    let mut b = good.clone();
    b[at + len - 1] ^= 0xff;
    v.push(("block checksum", b));
    let mut b = good.clone();
    b[at + 200] ^= 0x01;
    v.push(("byte inside an entry", b));
    // A hostile entry count, the checksum made right again.
    let mut b = good.clone();
    let mut blk = b[at..at + len - 4].to_vec();
    blk[14..18].copy_from_slice(&u32::MAX.to_le_bytes());
    b[at..at + len].copy_from_slice(&seal(blk));
    v.push(("entry count", b));
    // An entry's object header damaged, the block's checksum made right:
    // that entry's own checksum catches it.
    let mut b = good.clone();
    let ohdr = at + b[at..].windows(4).position(|w| w == b"OHDR").unwrap();
    b[ohdr + 12] ^= 0x01;
    let blk = b[at..at + len - 4].to_vec();
    b[at..at + len].copy_from_slice(&seal(blk));
    v.push(("entry checksum", b));
    // The file cut inside the block.
    v.push(("truncated", good[..at + len / 2].to_vec()));
    v
}

#[test]
fn damaged_cache_image_is_a_problem_never_a_wrong_value() {
    let dir = tempfile::tempdir().unwrap();
    let check = have_h5py("damaged_cache_image_is_a_problem_never_a_wrong_value");
    let original = fixture("mdci_objects.h5");
    let mut recovered = 0;
    for (name, bytes) in damaged() {
        let inv = h5salvage::scan_bytes(name, &bytes, CarveMode::Auto);
        assert_eq!(inv.verdict(), Verdict::Damaged, "{name}");
        let image_problems: Vec<_> = inv
            .problems
            .iter()
            .filter(|p| p.structure.starts_with("metadata cache image"))
            .collect();
        assert!(!image_problems.is_empty(), "{name}: {:?}", inv.problems);
        if name.contains("checksum") {
            assert!(
                image_problems
                    .iter()
                    .any(|p| p.kind == ProblemKind::Checksum),
                "{name}: {image_problems:?}"
            );
        }
        let input = dir.path().join(format!("{}.h5", name.replace(' ', "_")));
        std::fs::write(&input, &bytes).unwrap();
        let out = dir
            .path()
            .join(format!("{}.out.h5", name.replace(' ', "_")));
        let rep = match salvage(&input, &out, false) {
            Ok(r) => r,
            Err(e) => panic!("{name}: {e}"),
        };
        recovered += rep
            .objects
            .iter()
            .filter(|o| o.result == Recovery::Recovered)
            .count();
        if check {
            let (ok, v) = compare(&original, &out, false);
            assert!(ok, "{name}: {v}");
        }
    }
    // Not vacuous: the damaged copies still give objects back (headers
    // carved from the block, data at its own addresses).
    assert!(recovered >= 3, "{recovered}");
}

/// The map draws the image block as a cache image (not unclaimed bytes).
#[test]
fn image_block_is_claimed() {
    use h5salvage::report::map::{regions, RegionKind};
    let bytes = std::fs::read(fixture("mdci_objects.h5")).unwrap();
    let (at, len) = block(&bytes);
    let inv = h5salvage::scan_bytes("objects", &bytes, CarveMode::Auto);
    let r = regions(&inv, &bytes);
    assert!(
        r.iter().any(|r| r.kind == RegionKind::CacheImage
            && (r.start, r.end) == (at as u64, (at + len) as u64)),
        "{r:?}"
    );
}

/// Every byte of the block's header and entry records changed, the
/// checksum made right again so that the parser sees the hostile value:
/// scanning never panics, and an entry count or size the block cannot
/// hold is a problem.
#[test]
fn hostile_image_fields_are_bounded() {
    let good = std::fs::read(fixture("mdci_latest.h5")).unwrap();
    let (at, len) = block(&good);
    let mut problems = 0;
    for i in at + 4..at + len - 4 {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = good.clone();
            b[i] ^= flip;
            let blk = b[at..at + len - 4].to_vec();
            b[at..at + len].copy_from_slice(&seal(blk));
            let inv = h5salvage::scan_bytes("hostile", &b, CarveMode::Never);
            let ci = inv.cache_image.expect("cache image recorded");
            assert!(
                ci.relocated <= ci.entries && ci.entries <= 3,
                "byte {i}: {ci:?}"
            );
            problems += usize::from(inv.verdict() != Verdict::Healthy);
        }
    }
    assert!(problems > 100, "{problems}");
}

/// Extensible array and v2 B-tree chunk indexes, dense attributes and a
/// dense group in the image: HDF5 2.0 cannot read such a cache image back
/// (h5py fails with "non-parent entry has children"), so the output is
/// compared with the same content written without an image
/// (mdci_dense_plain.h5). The salvaged file is one h5py reads.
#[test]
fn dense_structures_in_the_image_salvage_as_their_twin() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("mdci_dense.h5");
    let inv = h5salvage::scan_bytes("dense", &std::fs::read(&input).unwrap(), CarveMode::Auto);
    assert_eq!(inv.verdict(), Verdict::Healthy, "{:?}", inv.problems);
    assert!(inv.cache_image.is_some_and(|c| c.relocated > 40));
    let out = dir.path().join("dense.h5");
    let rep = salvage(&input, &out, false).unwrap();
    assert_eq!(rep.lost, 0, "{:?}", rep.objects);
    assert_eq!(rep.objects.len(), 25);
    assert!(rep.objects.iter().all(|o| o.result == Recovery::Recovered));
    if have_h5py("dense_structures_in_the_image_salvage_as_their_twin") {
        let twin = fixture("mdci_dense_plain.h5");
        check_python(&[
            py_script("compare_h5.py").as_os_str(),
            twin.as_os_str(),
            out.as_os_str(),
        ]);
        let (ok, v) = compare(&twin, &out, true);
        assert!(ok, "{v}");
        assert_eq!(
            (v["datasets"].as_u64(), v["attributes"].as_u64()),
            (Some(2), Some(40)),
            "{v}"
        );
    }
}

/// `generate_mdci.py MODE DIR/MODE.h5` (a file made at test time, not
/// kept): its path.
fn generate(dir: &Path, mode: &str) -> PathBuf {
    let path = dir.join(format!("{mode}.h5"));
    check_python(&[
        fixture("generate_mdci.py").as_os_str(),
        std::ffi::OsStr::new(mode),
        path.as_os_str(),
    ]);
    path
}

/// A file large enough to be mapped (above `pipeline::COPY_LIMIT`): the
/// image is put back in a private copy-on-write mapping, and stays there
/// after the scan handed the pages it read back to the kernel.
#[test]
fn mapped_file_with_a_cache_image() {
    if !have_h5py("mapped_file_with_a_cache_image") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = generate(dir.path(), "big");
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > h5salvage::pipeline::COPY_LIMIT, "{len}");
    let raw = std::fs::read(&path).unwrap();
    let input = h5salvage::Input::open(&path).unwrap();
    let inv = input.inventory("big", CarveMode::Auto).unwrap();
    assert_eq!(inv.verdict(), Verdict::Healthy, "{:?}", inv.problems);
    let ci = inv.cache_image.unwrap();
    assert!(ci.relocated > 0 && ci.relocated == ci.entries, "{ci:?}");
    let root = inv.superblock.as_ref().unwrap().root_address.unwrap() as usize;
    // Pages handed back explicitly: a private mapping's are kept (handing
    // them back would drop the image put back there and read the file's).
    h5salvage::pipeline::release(input.bytes());
    assert_eq!(&input.bytes()[root..root + 4], b"OHDR");
    assert_ne!(&raw[root..root + 4], b"OHDR", "the file's own bytes");
    assert!(inv.object("/big").is_some() && inv.object("/g").is_some());
    drop(input);
    assert_eq!(std::fs::read(&path).unwrap(), raw, "input modified");
}

/// `scan --json` says where the metadata came from.
#[test]
fn json_report_names_the_cache_image() {
    let o = Command::new(bin())
        .args(["scan", "--json"])
        .arg(fixture("mdci_latest.h5"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let v = if v.is_array() { v[0].clone() } else { v };
    assert_eq!(v["verdict"], "healthy", "{v}");
    assert_eq!(
        v["cache_image"]["block"],
        serde_json::json!([0x9e9, 0x229]),
        "{v}"
    );
    assert_eq!(v["cache_image"]["relocated"], 3, "{v}");
    assert_eq!(v["notes"].as_array().unwrap().len(), 1, "{v}");
}

/// A file changed after it was first closed, then closed with an image:
/// the changed headers are stale at their own addresses. With the block's
/// checksum broken, the entries that verify themselves (object headers)
/// are still taken from the image, never the stale copies: the attributes
/// come back with their new values, not the old ones.
#[test]
fn stale_entries_are_not_read_when_the_block_is_damaged() {
    if !have_h5py("stale_entries_are_not_read_when_the_block_is_damaged") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let original = generate(dir.path(), "stale");
    let mut bytes = std::fs::read(&original).unwrap();
    let (at, len) = block(&bytes);
    bytes[at + len - 1] ^= 0xff;
    let inv = h5salvage::scan_bytes("stale", &bytes, CarveMode::Auto);
    assert!(
        inv.problems.iter().any(|p| p.kind == ProblemKind::Checksum),
        "{:?}",
        inv.problems
    );
    assert!(inv.cache_image.is_some_and(|c| c.relocated > 0));
    let input = dir.path().join("damaged.h5");
    std::fs::write(&input, &bytes).unwrap();
    let out = dir.path().join("out.h5");
    let rep = salvage(&input, &out, false).unwrap();
    assert_eq!(rep.lost, 0, "{:?}", rep.objects);
    let (ok, v) = compare(&original, &out, true);
    assert!(ok, "{v}");
    assert_eq!(v["attributes"], 4, "{v}");
}

/// The entries of the (verified) image block at `at`, `len` bytes.
fn entries(
    bytes: &[u8],
    at: usize,
    len: usize,
) -> Vec<h5salvage::format::cache_image::CacheImageEntry> {
    h5salvage::format::cache_image::parse(
        &bytes[at..at + len],
        at as u64,
        h5salvage::format::Sizes::DEFAULT,
    )
    .unwrap()
    .entries
}

/// The place in `bytes` of the address field of the image entry whose own
/// address is `addr` (the field before its size; the block's `(at, len)`).
fn entry_address_field(bytes: &[u8], at: usize, len: usize, addr: u64, size: u64) -> usize {
    let entries = entries(bytes, at, len);
    let e = entries.iter().find(|e| e.address == addr).unwrap();
    assert_eq!(e.size, size);
    let mut field = addr.to_le_bytes().to_vec();
    field.extend(size.to_le_bytes());
    let upto = at + e.image_offset as usize;
    at + bytes[at..upto]
        .windows(16)
        .rposition(|w| w == field)
        .unwrap()
}

/// H1: the block fails its checksum and an entry's address (covered by no
/// checksum) was damaged to point into a dataset of zeros: the entry
/// verifies itself and lands on "vacant" bytes, but those zeros are raw
/// data. The dataset is never called intact or recovered, and what was read
/// through the block is unverified.
#[test]
fn damaged_entry_address_over_zero_data_is_never_recovered() {
    if !have_h5py("damaged_entry_address_over_zero_data_is_never_recovered") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = generate(dir.path(), "zeros");
    let mut bytes = std::fs::read(&path).unwrap();
    let inv = h5salvage::scan_bytes("zeros", &bytes, CarveMode::Never);
    assert_eq!(inv.verdict(), Verdict::Healthy, "{:?}", inv.problems);
    let grp = inv.object("/grp").unwrap();
    let (home, size) = (grp.address, grp.header_spans[0].1 - grp.header_spans[0].0);
    let zeros = inv.object("/zeros").unwrap();
    let data = match &zeros.dataset.as_ref().unwrap().layout.class {
        h5salvage::format::message::data_layout::LayoutClass::Contiguous { address, .. } => {
            *address
        }
        c => panic!("{c:?}"),
    };
    let (at, len) = block(&bytes);
    let field = entry_address_field(&bytes, at, len, home, size);
    bytes[field..field + 8].copy_from_slice(&(data + 0x40).to_le_bytes());
    let inv = h5salvage::scan_bytes("zeros", &bytes, CarveMode::Auto);
    let z = inv.object("/zeros").unwrap();
    assert_ne!(z.status, h5salvage::inventory::Status::Intact, "{:?}", z);
    assert!(z.problems.iter().any(|p| p.kind == ProblemKind::Overlap));
    assert!(inv.problems.iter().any(|p| p.kind == ProblemKind::Inferred));
    let input = dir.path().join("bad_address.h5");
    std::fs::write(&input, &bytes).unwrap();
    let rep = salvage(&input, &dir.path().join("out.h5"), false).unwrap();
    let result = |p: &str| rep.objects.iter().find(|o| o.path == p).unwrap().result;
    assert_eq!(result("/zeros"), Recovery::Partial, "{:?}", rep.objects);
    assert_eq!(result("/"), Recovery::Unverified, "{:?}", rep.objects);
    assert_eq!(rep.recovered, 0, "{:?}", rep.objects);
}

/// H2: a file closed with an image, reopened r+ without one, an attribute
/// changed and flushed, the writer killed: the image's (verified) copy of
/// the header holds the old value, its own address the new one. Two
/// versions: a problem, and the newer one (at the address) is salvaged.
#[test]
fn killed_writer_after_reopen_keeps_the_flushed_header() {
    if !have_h5py("killed_writer_after_reopen_keeps_the_flushed_header") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = generate(dir.path(), "killed");
    let inv = h5salvage::scan_path_with(&input, CarveMode::Auto).unwrap();
    assert!(
        inv.problems
            .iter()
            .any(|p| p.kind == ProblemKind::Ambiguous
                && p.structure.starts_with("metadata cache image")),
        "{:?}",
        inv.problems
    );
    let out = dir.path().join("out.h5");
    salvage(&input, &out, false).unwrap();
    let (ok, text) = common::run_python(&[
        "-c",
        "import sys, h5py; print(int(h5py.File(sys.argv[1], 'r')['d'].attrs['v']))",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "2", "the image's copy holds 1");
}

/// M5: `scan_bytes` made the inventory from a patched copy; the file's own
/// bytes handed to `Inventory::image` give an empty image (nothing stale is
/// read through it), `with_cache_image` gives the bytes it was made from.
#[test]
fn raw_bytes_are_not_read_through_a_cache_image_inventory() {
    let raw = std::fs::read(fixture("mdci_objects.h5")).unwrap();
    let inv = h5salvage::scan_bytes("objects", &raw, CarveMode::Auto);
    assert!(inv.cache_image.is_some_and(|c| c.relocated > 0));
    assert!(inv.image(&raw).bytes.is_empty());
    let patched = inv.with_cache_image(&raw);
    assert_eq!(inv.image(&patched).bytes.len(), raw.len());
    let root = inv.superblock.as_ref().unwrap().root_address.unwrap() as usize;
    assert_eq!(&patched[root..root + 4], b"OHDR");
    assert_ne!(&raw[root..root + 4], b"OHDR");
}

/// M3: a block failing its checksum, one entry not used (its own address
/// holds other bytes): the carver skips only the used entries' images in
/// the block, and still finds the unused entry's header there.
#[test]
fn unrelocated_entries_in_the_block_are_carved() {
    let mut bytes = std::fs::read(fixture("mdci_objects.h5")).unwrap();
    let (at, len) = block(&bytes);
    let entries = entries(&bytes, at, len);
    let root = h5salvage::scan_bytes("objects", &bytes, CarveMode::Never)
        .superblock
        .unwrap()
        .root_address
        .unwrap();
    let e = entries
        .iter()
        .find(|e| {
            let s = at + e.image_offset as usize;
            e.address != root && &bytes[s..s + 4] == b"OHDR"
        })
        .unwrap();
    let (home, image_at) = (e.address as usize, at as u64 + e.image_offset);
    bytes[home..home + 16].fill(0x55);
    bytes[at + len - 1] ^= 0xff;
    let inv = h5salvage::scan_bytes("objects", &bytes, CarveMode::Auto);
    assert!(inv.relocated.iter().all(|r| r.from != image_at));
    assert!(!inv.relocated.is_empty());
    let patched = inv.with_cache_image(&bytes);
    let copies = |p: usize| {
        inv.relocated
            .iter()
            .any(|r| p as u64 >= r.from && p as u64 - r.from < r.len)
    };
    let expected = patched
        .windows(4)
        .enumerate()
        .filter(|&(p, w)| w == b"OHDR" && !copies(p))
        .count() as u64;
    let hits = inv.carving.as_ref().unwrap().hits["OHDR"];
    assert_eq!(hits, expected);
    assert!(
        patched[at..at + len]
            .windows(4)
            .enumerate()
            .any(|(p, w)| w == b"OHDR" && at as u64 + p as u64 == image_at),
        "the unused entry's header lies in the block"
    );
}
