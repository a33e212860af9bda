//! Damaged variants of the healthy fixtures, made here from the bytes:
//! truncations, zeroed pages, a zeroed first 2 KiB, flipped bytes and a stale
//! v3 "open for write" flag. The scanner must never panic or hang, and must
//! report truncation, checksum failures and missing chunks correctly.

mod common;

use common::testdata;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use h5salvage::format::lookup3::hashlittle;
use h5salvage::format::{object_header, Sizes};
use h5salvage::inventory::{Inventory, ProblemKind, Status, Verdict};
use h5salvage::walk::walk;

fn fixture(name: &str) -> Vec<u8> {
    let p = testdata().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const FIXTURES: &[&str] = &[
    "rich_earliest.h5",
    "rich_v108.h5",
    "rich_v110.h5",
    "rich_latest.h5",
    "worker_earliest.h5",
    "worker_latest.h5",
    "userblock512.h5",
    "userblock4096.h5",
];

/// Walks in a thread; a walk that takes longer than a minute is a hang.
fn walk_bounded(label: String, bytes: Vec<u8>) -> Inventory {
    let (tx, rx) = mpsc::channel();
    let l = label.clone();
    thread::spawn(move || {
        let inv = walk(&l, &bytes);
        let _ = tx.send(inv);
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(inv) => inv,
        Err(_) => panic!("{label}: walk did not finish (hang) or panicked"),
    }
}

fn all_problems(inv: &Inventory) -> String {
    let mut s: Vec<String> = inv.problems.iter().map(|p| p.to_string()).collect();
    for o in &inv.objects {
        s.extend(o.problems.iter().map(|p| format!("{}: {p}", o.path)));
    }
    s.join("\n")
}

#[test]
fn truncations_are_reported_and_chunks_accounted() {
    for name in FIXTURES {
        let bytes = fixture(name);
        let healthy = walk(name, &bytes);
        assert_eq!(
            healthy.verdict(),
            Verdict::Healthy,
            "{name}: {}",
            all_problems(&healthy)
        );
        let len = bytes.len();
        let mut cuts: Vec<usize> = (1..40).map(|i| len * i / 40).collect();
        cuts.extend([1, 7, 8, 95, 96, 200, 511, 512, 1000, 2048, 4096, len - 1]);
        cuts.retain(|&c| c > 0 && c < len);
        for cut in cuts {
            let label = format!("{name} cut at {cut}");
            let inv = walk_bounded(label.clone(), bytes[..cut].to_vec());
            assert_ne!(inv.verdict(), Verdict::Healthy, "{label}");
            if let Some(sb) = &inv.superblock {
                assert!(
                    inv.problems
                        .iter()
                        .any(|p| p.kind == ProblemKind::Truncated),
                    "{label}: truncation not reported (stored eof {})",
                    sb.stored_file_size()
                );
            }
            // Every dataset found: a chunk is present iff its bytes are
            // before the cut, exactly as in the healthy file.
            for o in &inv.objects {
                let (Some(ds), Some(h)) = (&o.dataset, healthy.object(&o.path)) else {
                    continue;
                };
                let Some(hds) = &h.dataset else { continue };
                if !ds.coverage.index_complete {
                    assert_ne!(o.status, Status::Intact, "{label}: {}", o.path);
                    continue;
                }
                let base = healthy.superblock.as_ref().unwrap().base_address;
                let expect_present = hds
                    .chunks
                    .iter()
                    .filter(|c| base + c.address + c.size <= cut as u64)
                    .count() as u64;
                assert_eq!(
                    ds.coverage.chunks_present.unwrap_or(0),
                    if hds.chunks.is_empty() {
                        0
                    } else {
                        expect_present
                    },
                    "{label}: {}",
                    o.path
                );
                if ds.coverage.chunks_present < ds.coverage.chunks_total {
                    assert_eq!(o.status, Status::Partial, "{label}: {}", o.path);
                }
                // Contiguous data cut by the truncation (never-written
                // datasets have no bytes in the healthy file either).
                if ds.coverage.bytes_present < hds.coverage.bytes_present {
                    assert_eq!(o.status, Status::Partial, "{label}: {}", o.path);
                    assert!(
                        o.problems.iter().any(|p| p.kind == ProblemKind::Truncated),
                        "{label}: {}",
                        o.path
                    );
                }
            }
        }
    }
}

#[test]
fn zero_bytes_and_first_2k_zeroed() {
    let inv = walk_bounded("empty".into(), Vec::new());
    assert_eq!(inv.verdict(), Verdict::Empty);
    for name in ["rich_earliest.h5", "worker_latest.h5"] {
        let mut bytes = fixture(name);
        bytes[..2048].fill(0);
        let inv = walk_bounded(format!("{name} first 2 KiB zeroed"), bytes);
        assert!(inv.superblock.is_none());
        assert!(
            inv.problems
                .iter()
                .any(|p| p.kind == ProblemKind::BadSignature),
            "{}",
            all_problems(&inv)
        );
    }
}

#[test]
fn zeroed_pages_never_panic_and_are_noticed() {
    for name in FIXTURES {
        let bytes = fixture(name);
        let healthy = walk(name, &bytes);
        for page in 0..bytes.len().div_ceil(4096) {
            let mut b = bytes.clone();
            let end = ((page + 1) * 4096).min(b.len());
            if b[page * 4096..end].iter().all(|&x| x == 0) {
                continue;
            }
            b[page * 4096..end].fill(0);
            let label = format!("{name} page {page} zeroed");
            let inv = walk_bounded(label.clone(), b);
            // Whatever was lost, nothing found may claim more than the
            // healthy file had.
            assert!(inv.objects.len() <= healthy.objects.len() + 1, "{label}");
        }
    }
}

#[test]
fn flipped_bytes_never_panic() {
    let mut rng = 0x2545F4914F6CDD1Du64;
    for name in FIXTURES {
        let bytes = fixture(name);
        // Every byte of the first 4 KiB (superblock and early metadata), then
        // random positions.
        let mut positions: Vec<usize> = (0..bytes.len().min(4096)).collect();
        for _ in 0..2000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            positions.push((rng % bytes.len() as u64) as usize);
        }
        for (i, pos) in positions.into_iter().enumerate() {
            let mut b = bytes.clone();
            b[pos] ^= 1 << (i % 8);
            let _ = walk_bounded(format!("{name} flip at {pos}"), b);
        }
    }
}

/// Sets the v3 superblock's "open for write" flag and re-seals its checksum,
/// as a killed writer leaves it: everything must still be read, and the flag
/// reported.
#[test]
fn stale_open_for_write_flag_is_reported_and_ignored() {
    let name = "rich_latest.h5";
    let mut bytes = fixture(name);
    assert_eq!(bytes[8], 3, "{name} should have a v3 superblock");
    let healthy = walk(name, &bytes);
    bytes[11] |= 0x1 | 0x4;
    let len = 12 + 4 * 8; // v3 superblock with 8-byte offsets, before the checksum
    let c = hashlittle(&bytes[..len], 0);
    bytes[len..len + 4].copy_from_slice(&c.to_le_bytes());
    let inv = walk_bounded("stale flag".into(), bytes);
    assert!(inv.superblock.as_ref().unwrap().open_for_write());
    assert_eq!(inv.superblock.as_ref().unwrap().checksum_ok, Some(true));
    assert!(inv
        .problems
        .iter()
        .any(|p| p.kind == ProblemKind::NotClosed));
    assert_eq!(inv.verdict(), Verdict::Damaged);
    assert_eq!(inv.objects.len(), healthy.objects.len());
    assert!(inv.objects.iter().all(|o| o.status == Status::Intact));
}

/// A flipped byte inside a checksummed v2 object header must be reported as
/// a checksum failure on that object.
#[test]
fn checksum_failures_are_reported() {
    let name = "rich_latest.h5";
    let bytes = fixture(name);
    let healthy = walk(name, &bytes);
    let base = healthy.superblock.as_ref().unwrap().base_address;
    let mut checked = 0;
    for o in healthy
        .objects
        .iter()
        .filter(|o| o.hard_link_of.is_none())
        .take(20)
    {
        let at = (base + o.address) as usize;
        if &bytes[at..at + 4] != b"OHDR" {
            continue;
        }
        let (prefix, _) =
            object_header::parse_header(&bytes[at..], at as u64, Sizes::DEFAULT).unwrap();
        // Flip a bit of the stored checksum (right after chunk 0): every
        // field still parses, only the checksum can tell.
        let sum = (prefix.chunk0_address_abs + prefix.chunk0_len) as usize;
        let mut b = bytes.clone();
        b[sum] ^= 0x10;
        let inv = walk_bounded(format!("{name} {} checksum flipped", o.path), b);
        let got = inv.object(&o.path).expect("object still reached");
        assert_ne!(got.status, Status::Intact, "{}", o.path);
        assert!(
            got.problems
                .iter()
                .any(|p| matches!(p.kind, ProblemKind::Checksum | ProblemKind::HeaderChecksum)),
            "{}: {:?}",
            o.path,
            got.problems
        );
        checked += 1;
    }
    assert!(checked > 3, "only {checked} OHDR headers checked");
}
