//! Hostile files, built here by patching a healthy h5py fixture in the
//! places h5salvage's own parsers locate: huge dataspaces, addresses past the
//! end or wrapping around, a continuation block that points at its own
//! header, a B-tree whose child points back at itself, a group that links to
//! itself, B-tree siblings in a ring, a local heap free list that loops,
//! chunk dimensions of zero and 2^32-1, a NUL in a link name,
//! names with `/` and `..`, a deflate bomb, a 4 GB attribute. Each
//! must end quickly with a report, `salvage` must not panic, and nothing it
//! writes may escape the output or pass off invented data.

mod common;

use common::{have_h5py, python_code, testdata};

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use h5salvage::follow::object_header::read_all_messages;
use h5salvage::follow::Image;
use h5salvage::format::message::kind;
use h5salvage::format::object_header::RawMessage;
use h5salvage::format::Sizes;
use h5salvage::inventory::{Inventory, Status};
use h5salvage::salvage::Recovery;
use h5salvage::walk::walk;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(testdata().join(name)).unwrap()
}

/// The raw messages of the object at `path` in the healthy file.
fn messages(bytes: &[u8], path: &str) -> (u64, Vec<RawMessage>) {
    let inv = walk("healthy", bytes);
    let o = inv.object(path).unwrap_or_else(|| panic!("{path}"));
    let base = inv.superblock.as_ref().unwrap().base_address;
    let img = Image::new(bytes, base, Sizes::DEFAULT);
    let (_, raws, errs) = read_all_messages(&img, o.address);
    assert!(errs.is_empty());
    (base + o.address, raws)
}

fn message(bytes: &[u8], path: &str, kind: u16) -> RawMessage {
    messages(bytes, path)
        .1
        .into_iter()
        .find(|m| m.kind == kind)
        .unwrap_or_else(|| panic!("{path}: no message {kind}"))
}

fn put_u64(b: &mut [u8], at: u64, v: u64) {
    let at = at as usize;
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Walks and salvages `bytes` in a thread with a time limit; returns the
/// inventory and the salvage result as text.
/// What salvage said of a hostile file: its report (or error) as text, for
/// failure messages, and each object's result, for assertions.
struct Report {
    text: String,
    results: Vec<(String, Recovery)>,
    /// Bytes of the output written (none without one).
    output_len: u64,
}

impl Report {
    /// The result salvage gave the object at `path`, if it listed it.
    fn result(&self, path: &str) -> Option<Recovery> {
        self.results
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, r)| *r)
    }

    fn contains(&self, s: &str) -> bool {
        self.text.contains(s)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn run(label: &str, bytes: Vec<u8>) -> (Inventory, Report) {
    let (tx, rx) = mpsc::channel();
    let l = label.to_string();
    thread::spawn(move || {
        let inv = walk(&l, &bytes);
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("hostile.h5");
        std::fs::write(&input, &bytes).unwrap();
        let out = dir.path().join("out.h5");
        let r = h5salvage::salvage::salvage(&input, &out, false);
        let output_len = std::fs::metadata(&out).map_or(0, |m| m.len());
        let report = match &r {
            Ok(rep) => Report {
                text: format!("{rep:?}"),
                results: rep
                    .objects
                    .iter()
                    .map(|o| (o.path.clone(), o.result))
                    .collect(),
                output_len,
            },
            Err(e) => Report {
                text: format!("error: {e}"),
                results: Vec::new(),
                output_len,
            },
        };
        // Nothing may be written outside the output.
        let entries: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        for e in &entries {
            assert!(e == "hostile.h5" || e == "out.h5", "{l}: stray file {e}");
        }
        let _ = tx.send((inv, report));
    });
    rx.recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("{label}: panicked or did not finish"))
}

fn problems(inv: &Inventory, path: &str) -> String {
    inv.object(path)
        .map(|o| {
            o.problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[test]
fn dataspace_of_2_pow_60_elements() {
    let mut b = fixture("rich_earliest.h5");
    let m = message(&b, "/datasets/contiguous", kind::DATASPACE);
    // Dataspace v1: version, rank, flags, 5 reserved, then the dims.
    put_u64(&mut b, m.body_offset + 8, 1 << 60);
    let (inv, rep) = run("2^60 elements", b);
    let o = inv.object("/datasets/contiguous").unwrap();
    assert_eq!(o.status, Status::Partial, "{}", problems(&inv, &o.path));
    assert!(
        matches!(
            rep.result("/datasets/contiguous"),
            Some(Recovery::Partial | Recovery::Lost | Recovery::Unverified)
        ),
        "{rep}"
    );
}

#[test]
fn contiguous_address_past_the_end_and_wrapping() {
    for addr in [u64::MAX - 7, 1 << 40] {
        let mut b = fixture("rich_earliest.h5");
        let m = message(&b, "/datasets/contiguous", kind::DATA_LAYOUT);
        // Layout v3 contiguous: version, class, then the address.
        assert_eq!(b[m.body_offset as usize], 3);
        put_u64(&mut b, m.body_offset + 2, addr);
        let (inv, rep) = run("address", b);
        let o = inv.object("/datasets/contiguous").unwrap();
        assert_eq!(o.status, Status::Partial, "{addr:#x}");
        assert!(rep.contains("/datasets/contiguous"), "{rep}");
    }
}

/// A contiguous address damaged into the dataset's own object header: the
/// header bytes are no data (chunks overlapping their header are already
/// distrusted), so the dataset may not be written as recovered.
#[test]
fn contiguous_data_over_its_own_header() {
    let mut b = fixture("rich_earliest.h5");
    let (header, _) = messages(&b, "/datasets/contiguous");
    let m = message(&b, "/datasets/contiguous", kind::DATA_LAYOUT);
    assert_eq!(b[m.body_offset as usize], 3);
    put_u64(&mut b, m.body_offset + 2, header);
    let (inv, rep) = run("contiguous over its header", b);
    let o = inv.object("/datasets/contiguous").unwrap();
    assert_eq!(o.status, Status::Partial, "{}", problems(&inv, &o.path));
    assert!(
        matches!(
            rep.result("/datasets/contiguous"),
            Some(Recovery::Partial | Recovery::Lost | Recovery::Unverified)
        ),
        "{rep}"
    );
}

#[test]
fn continuation_pointing_at_its_own_header() {
    let mut b = fixture("rich_earliest.h5");
    let inv = walk("healthy", &b);
    // Any v1 object with a continuation message.
    let (path, header, m) = inv
        .objects
        .iter()
        .find_map(|o| {
            let (h, raws) = messages(&b, &o.path);
            raws.into_iter()
                .find(|m| m.kind == kind::CONTINUATION)
                .map(|m| (o.path.clone(), h, m))
        })
        .expect("a continuation message");
    put_u64(&mut b, m.body_offset, header);
    let (inv, _) = run("self continuation", b);
    let o = inv.object(&path).unwrap();
    assert_ne!(o.status, Status::Intact, "{path}");
}

#[test]
fn btree_child_pointing_at_itself() {
    let mut b = fixture("rich_earliest.h5");
    let m = message(&b, "/datasets/chunked", kind::DATA_LAYOUT);
    // Layout v3 chunked: version, class, rank, B-tree address.
    let tree = u64::from_le_bytes(b[m.body_offset as usize + 3..][..8].try_into().unwrap());
    assert_eq!(&b[tree as usize..tree as usize + 4], b"TREE");
    // First child pointer: after the 24-byte node header and the first key
    // (chunk size u32, filter mask u32, rank+1 offsets of 8 bytes; rank 2).
    let child = tree + 24 + 8 + 3 * 8;
    put_u64(&mut b, child, tree);
    // And the right sibling pointing back at the node.
    put_u64(&mut b, tree + 16, tree);
    let (inv, _) = run("B-tree cycle", b);
    let o = inv.object("/datasets/chunked").unwrap();
    assert_eq!(o.status, Status::Partial, "{}", problems(&inv, &o.path));
}

#[test]
fn group_that_links_to_itself() {
    let mut b = fixture("worker_earliest.h5");
    let inv = walk("healthy", &b);
    let group = inv.object("/config_0000").unwrap().address;
    // Point the SNOD entry of /config_0000/params at /config_0000 itself.
    let params = inv.object("/config_0000/params").unwrap().address;
    let at = b
        .windows(8)
        .position(|w| w == params.to_le_bytes())
        .expect("SNOD entry") as u64;
    put_u64(&mut b, at, group);
    let (inv, _) = run("self link", b);
    let o = inv.object("/config_0000/params").unwrap();
    assert_eq!(o.hard_link_of.as_deref(), Some("/config_0000"));
}

#[test]
fn names_with_slash_and_dot_dot_stay_inside() {
    let mut b = fixture("worker_earliest.h5");
    // Rename every "params\0" in the local heaps to "../a/\0\0" (same length).
    let mut n = 0;
    while let Some(at) = b.windows(7).position(|w| w == b"params\0") {
        b[at..at + 7].copy_from_slice(b"../a/\0\0");
        n += 1;
    }
    assert!(n >= 10);
    let (inv, rep) = run("names", b);
    assert!(inv.objects.iter().all(|o| !o.path.contains("/../")));
    assert!(
        inv.objects.iter().any(|o| o.path.ends_with("..%2Fa%2F")),
        "{:?}",
        inv.objects.iter().map(|o| &o.path).collect::<Vec<_>>()
    );
    assert!(!rep.text.starts_with("error"), "{rep}");
}

#[test]
fn deflate_bomb_is_refused() {
    use std::io::Write;
    let mut b = fixture("rich_earliest.h5");
    let inv = walk("healthy", &b);
    let ds = inv
        .object("/datasets/chunked_gzip")
        .unwrap()
        .dataset
        .clone()
        .unwrap();
    let c = ds.chunks.iter().max_by_key(|c| c.size).unwrap().clone();
    // Zeros that inflate to far more than a chunk holds, in fewer bytes
    // than the stored chunk.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0u8; (c.size as usize - 64) * 1000])
        .unwrap();
    let bomb = z.finish().unwrap();
    assert!(bomb.len() as u64 <= c.size, "{} > {}", bomb.len(), c.size);
    let at = c.address as usize;
    b[at..at + bomb.len()].copy_from_slice(&bomb);
    let (inv, rep) = run("deflate bomb", b);
    assert!(inv.object("/datasets/chunked_gzip").is_some());
    assert_eq!(
        rep.result("/datasets/chunked_gzip"),
        Some(Recovery::Partial),
        "{rep}"
    );
}

#[test]
fn attribute_of_4_gb_declared_size() {
    let mut b = fixture("worker_earliest.h5");
    let m = message(&b, "/config_0000", kind::ATTRIBUTE);
    // Attribute v1: version, reserved, name size u16, datatype size u16,
    // dataspace size u16, name (padded to 8), datatype (padded), dataspace.
    let body = m.body_offset as usize;
    let name = u16::from_le_bytes([b[body + 2], b[body + 3]]) as usize;
    let dt = u16::from_le_bytes([b[body + 4], b[body + 5]]) as usize;
    let pad = |n: usize| n.div_ceil(8) * 8;
    let space = body + 8 + pad(name) + pad(dt);
    // A simple dataspace of rank 1 (v1): dims start 8 bytes in.
    b[space + 1] = 1;
    put_u64(&mut b, space as u64 + 8, 1 << 32);
    let (inv, _) = run("4 GB attribute", b);
    let o = inv.object("/config_0000").unwrap();
    assert_ne!(o.status, Status::Intact, "{}", problems(&inv, &o.path));
}

/// The worker fixture with `/config_0000/params` (32 doubles, contiguous,
/// layout v3) moved to the end of the file and claiming `elements`
/// elements: its data then runs past the end, a dataset cut by truncation.
fn params_claiming(elements: u64) -> Vec<u8> {
    let mut b = fixture("worker_earliest.h5");
    let end = b.len() as u64;
    b.extend((0..=255u8).cycle().take(256));
    let path = "/config_0000/params";
    let s = message(&b, path, kind::DATASPACE);
    let body = s.body_offset;
    // Dataspace v1: dims 8 bytes in (v2: 4); maxima after the dims.
    let dims = if b[body as usize] == 1 { 8 } else { 4 };
    assert_eq!(b[body as usize + 1], 1, "rank 1");
    put_u64(&mut b, body + dims, elements);
    if b[body as usize + 2] & 1 != 0 {
        put_u64(&mut b, body + dims + 8, elements);
    }
    // Layout v3 contiguous: version, class, address, size.
    let l = message(&b, path, kind::DATA_LAYOUT);
    assert_eq!(&b[l.body_offset as usize..][..2], &[3, 1]);
    put_u64(&mut b, l.body_offset + 2, end);
    put_u64(&mut b, l.body_offset + 10, elements * 8);
    b
}

/// A contiguous dataset cut by truncation is written as its prefix, the
/// rest as libhdf5 leaves it allocated (fill); a claim of 256 MiB from a
/// 70 KiB file is not written as 256 MiB of fill (the fill written is
/// bounded by the input's size): its rows the file holds are written as a
/// dataset of that many rows, the shape change said, by both writers.
#[test]
fn cut_contiguous_data_claiming_far_more_than_the_file() {
    let path = "/config_0000/params";
    // 8 MiB claimed: written (prefix and fill), as before.
    let (inv, rep) = run("8 MiB claimed", params_claiming(1 << 20));
    let o = inv.object(path).unwrap();
    assert!(
        problems(&inv, path).contains("missing past the end"),
        "{}",
        problems(&inv, path)
    );
    assert_eq!(o.status, Status::Partial);
    assert_eq!(rep.result(path), Some(Recovery::Partial), "{rep}");
    assert!(rep.output_len >= 8 << 20, "{}", rep.output_len);
    assert!(!rep.contains("above the limit"), "{rep}");
    // 256 MiB claimed: the 32 float64 the file holds (256 bytes appended
    // after its end: 0, 1, ..., 255) come back as 32 rows; nothing more.
    let bytes = params_claiming(1 << 25);
    let (_, rep) = run("256 MiB claimed", bytes.clone());
    assert_eq!(rep.result(path), Some(Recovery::Partial), "{rep}");
    assert!(rep.contains("above the limit"), "{rep}");
    assert!(rep.contains("the 32 rows the file holds"), "{rep}");
    assert!(rep.output_len < 1 << 20, "{} bytes written", rep.output_len);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.h5");
    std::fs::write(&input, &bytes).unwrap();
    for (writer, libhdf5) in [("native", false), ("libhdf5", true)] {
        let out = dir.path().join(format!("{writer}.h5"));
        let args = [
            "salvage".as_ref(),
            input.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ];
        let o = common::h5salvage_with_writer(&args, libhdf5);
        assert_eq!(o.status.code(), Some(1), "{writer}: {o:?}");
        let got = h5salvage::scan_path(&out).unwrap();
        let params = got.object(path).expect("params written");
        let ds = params.dataset.as_deref().unwrap();
        assert_eq!(ds.dataspace.dims, [32], "{writer}");
        let file = std::fs::read(&out).unwrap();
        let image = got.image(&file);
        let h5salvage::read::DatasetData::Contiguous { bytes: data, .. } =
            h5salvage::read::dataset_data(&image, ds)
        else {
            panic!("{writer}: not contiguous");
        };
        let want: Vec<u8> = (0..=255u8).collect();
        assert_eq!(data, want, "{writer}: the rows the file holds");
        if have_h5py("the cut output read by h5py") {
            let got = python_code(
                "import sys, h5py\nwith h5py.File(sys.argv[1], 'r') as f:\n    \
                 d = f['config_0000/params']\n    print(d.shape, d[:].view('u1').tolist() == \
                 list(range(256)), d.attrs['h5salvage_status'])",
                &[&out],
            );
            assert_eq!(got.trim(), "(32,) True partial", "{writer}");
        }
    }
}

/// A chunked dataset allocated early whose extent is made 84,000 times
/// larger: libhdf5 allocates every chunk of the extent when it creates
/// the dataset (128 MiB of a 70 KiB input; 2^40 elements would be
/// terabytes). Above the limit the allocation time is not kept (a note
/// says so) and nothing is allocated for chunks never written.
#[test]
fn early_allocation_of_an_extent_far_larger_than_the_file() {
    let mut b = fixture("rich_earliest.h5");
    let path = "/datasets/chunked_alloc_early";
    let s = message(&b, path, kind::DATASPACE);
    let body = s.body_offset;
    let dims = if b[body as usize] == 1 { 8 } else { 4 };
    assert_eq!(b[body as usize + 1], 2, "rank 2");
    // 20 x 20 int32 in chunks of 5 x 5: 80 bytes a row of the extent.
    let rows = (128u64 << 20) / 80;
    put_u64(&mut b, body + dims, rows);
    if b[body as usize + 2] & 1 != 0 {
        put_u64(&mut b, body + dims + 16, rows);
    }
    let (inv, rep) = run("early allocation", b.clone());
    assert!(inv.object(path).is_some());
    assert!(rep.output_len < 8 << 20, "{} bytes written", rep.output_len);
    assert!(rep.contains("allocation time"), "{rep}");
    // A smaller extent in chunks of one element: 1.3 MiB of data, but
    // 335,540 chunks, each one an index entry and libhdf5's work.
    let l = message(&b, path, kind::DATA_LAYOUT);
    // Layout v3 chunked: version, class, rank + 1, B-tree address, then
    // the chunk dimensions (4 bytes each, the element size last).
    let at = l.body_offset as usize;
    assert_eq!(&b[at..at + 3], &[3, 2, 3]);
    b[at + 11..at + 19].copy_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0]);
    let rows = (128u64 << 20) / 80 / 4 / 25;
    put_u64(&mut b, body + dims, rows);
    if b[body as usize + 2] & 1 != 0 {
        put_u64(&mut b, body + dims + 16, rows);
    }
    let (_, rep) = run("early allocation of one-element chunks", b);
    assert!(rep.contains("allocation time"), "{rep}");
    assert!(rep.output_len < 8 << 20, "{} bytes written", rep.output_len);
}

#[test]
fn thousands_of_nested_groups_are_capped() {
    // A chain of nested groups deeper than the walk follows, written by h5py
    // at test time (skipped without h5py).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep.h5");
    if !have_h5py("thousands_of_nested_groups_are_capped") {
        return;
    }
    python_code(
        "import h5py,sys\nf=h5py.File(sys.argv[1],'w')\ng=f\nfor i in range(600): g=g.create_group('g')\n",
        &[&path],
    );
    let (inv, rep) = run("deep", std::fs::read(&path).unwrap());
    assert!(inv.objects.len() <= 520, "{}", inv.objects.len());
    assert!(inv.objects.iter().any(|o| o.status == Status::Partial));
    assert!(!rep.text.starts_with("error"), "{rep}");
}

/// Offsets of every `sig` in `b`.
fn signatures(b: &[u8], sig: &[u8; 4]) -> Vec<usize> {
    b.windows(4)
        .enumerate()
        .filter(|(_, w)| w == sig)
        .map(|(i, _)| i)
        .collect()
}

fn members_of(inv: &Inventory, group: &str) -> usize {
    let prefix = format!("{group}/");
    inv.objects
        .iter()
        .filter(|o| o.path.starts_with(&prefix) && !o.path[prefix.len()..].contains('/'))
        .count()
}

#[test]
fn btree_siblings_that_form_a_cycle() {
    let mut b = fixture("many_members_earliest.h5");
    let healthy = walk("healthy", &b);
    assert_eq!(members_of(&healthy, "/members"), 1100);
    // Every group B-tree leaf (type 0, level 0): node header is "TREE",
    // type, level, entries used (u16), left sibling, right sibling.
    let leaves: Vec<usize> = signatures(&b, b"TREE")
        .into_iter()
        .filter(|&at| b[at + 4] == 0 && b[at + 5] == 0)
        .collect();
    assert!(leaves.len() >= 2, "{} leaves", leaves.len());
    // Each leaf's siblings point round a ring, the last back at the first.
    for (i, &at) in leaves.iter().enumerate() {
        let next = leaves[(i + 1) % leaves.len()] as u64;
        let prev = leaves[(i + leaves.len() - 1) % leaves.len()] as u64;
        put_u64(&mut b, at as u64 + 8, prev);
        put_u64(&mut b, at as u64 + 16, next);
    }
    let (inv, rep) = run("sibling ring", b);
    // Siblings are not followed (children are), so nothing is lost.
    assert_eq!(members_of(&inv, "/members"), 1100);
    assert!(!rep.text.starts_with("error"), "{rep}");
}

#[test]
fn local_heap_free_list_that_loops() {
    let mut b = fixture("many_members_earliest.h5");
    // Local heap: "HEAP", version, 3 reserved, data segment size, offset
    // of the free list head, data segment address (8-byte lengths and
    // offsets). A free block starts with the offset of the next one.
    let mut looped = 0;
    for at in signatures(&b, b"HEAP") {
        let u = |o: usize| u64::from_le_bytes(b[at + o..at + o + 8].try_into().unwrap());
        let (head, data) = (u(16), u(24));
        if head == u64::MAX || data + head + 16 > b.len() as u64 {
            continue;
        }
        // The head block names itself as the next free block.
        put_u64(&mut b, data + head, head);
        looped += 1;
    }
    assert!(looped > 0, "no local heap with a free list");
    let (inv, rep) = run("free list loop", b);
    // Names are read by offset; the free list is never walked.
    assert_eq!(members_of(&inv, "/members"), 1100);
    assert!(!rep.text.starts_with("error"), "{rep}");
}

#[test]
fn chunk_dimensions_of_zero_and_huge() {
    for dim in [0u32, u32::MAX] {
        let mut b = fixture("rich_earliest.h5");
        let m = message(&b, "/datasets/chunked", kind::DATA_LAYOUT);
        // Layout v3 chunked: version, class, rank, B-tree address, then the
        // chunk dimensions (u32 each).
        let at = m.body_offset as usize;
        assert_eq!((b[at], b[at + 1]), (3, 2));
        let d0 = at + 3 + 8;
        b[d0..d0 + 4].copy_from_slice(&dim.to_le_bytes());
        let (inv, rep) = run("chunk dims", b);
        let o = inv.object("/datasets/chunked").unwrap();
        assert_ne!(
            o.status,
            Status::Intact,
            "{dim}: {}",
            problems(&inv, &o.path)
        );
        assert!(
            matches!(
                rep.result("/datasets/chunked"),
                Some(Recovery::Partial | Recovery::Lost | Recovery::Unverified)
            ),
            "{dim}: {rep}"
        );
    }
}

#[test]
fn link_name_with_a_nul_byte_is_escaped() {
    let mut b = fixture("worker_latest.h5");
    // Link messages (v1) of /config_0000: "...\x06params" + address; make
    // the name "p\0rams".
    let at = b
        .windows(7)
        .position(|w| w == b"\x06params")
        .expect("a link named params");
    b[at + 2] = 0;
    let (inv, rep) = run("nul name", b);
    assert!(
        inv.objects.iter().any(|o| o.path.ends_with("/p%00rams")),
        "{:?}",
        inv.objects.iter().map(|o| &o.path).collect::<Vec<_>>()
    );
    assert!(!rep.text.starts_with("error"), "{rep}");
}
