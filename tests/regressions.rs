//! Inputs that once crashed or hung something (fuzz findings, hand-made
//! hostile files), replayed on every test run: each must be walked,
//! reported and salvaged to a temporary output within a minute, without a
//! panic. Findings of the targets with structured input (not a file) sit
//! in `tests/regressions/TARGET/` and are replayed through that target's
//! entry point in `h5salvage::fuzzing`.

mod common;

use common::{root, testdata};

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

#[test]
fn regression_inputs_are_walked_without_panic() {
    let dir = root().join("tests/regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/regressions") {
        let path = entry.unwrap().path();
        if path.is_dir() || path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let name = path.display().to_string();
        let (tx, rx) = mpsc::channel();
        let label = name.clone();
        let input = path.clone();
        let out = tempfile::tempdir().unwrap();
        let output = out.path().join("out.h5");
        thread::spawn(move || {
            let inv = h5salvage::walk::walk(&label, &bytes);
            let _ = h5salvage::report::json(&inv);
            // Salvage runs libhdf5 on what the walk found (the salvage fuzz
            // target found a buffer over-read there).
            let _ = h5salvage::salvage::salvage(&input, &output, true);
            let _ = tx.send(inv.verdict());
        });
        let verdict = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{name}: walk or salvage panicked or hung"));
        assert_ne!(verdict, h5salvage::inventory::Verdict::Healthy, "{name}");
        n += 1;
    }
    assert!(n > 0, "no regression inputs found");
}

/// Runs `entry` on every input in `tests/regressions/{target}/` (a missing
/// directory: no findings yet), each within a minute and without a panic;
/// returns how many were replayed.
fn replay(target: &str, entry: fn(&[u8])) -> usize {
    let dir = root().join("tests/regressions").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut n = 0;
    for entry_path in entries {
        let path = entry_path.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            entry(&bytes);
            let _ = tx.send(());
        });
        rx.recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{}: {target} panicked or hung", path.display()));
        n += 1;
    }
    n
}

#[test]
fn structured_fuzz_findings_replay_without_panic() {
    replay("filters", h5salvage::fuzzing::filters);
    replay("vlen", h5salvage::fuzzing::vlen);
    replay("carve_base", h5salvage::fuzzing::carve_base);
    replay("chunks", h5salvage::fuzzing::chunks);
}

/// The entry points themselves accept their documented layouts: a real
/// lzf chunk decodes through `fuzzing::filters` (its assertions hold), and
/// an input whose only superblock signature is broken is carved with an
/// inferred base.
#[test]
fn fuzz_entry_points_take_their_layouts() {
    // One lzf filter with no client data, mask 0, 1-byte elements, chunk of
    // 6 bytes: "abc" as a literal run then a back-reference of 3 at
    // distance 3.
    let input = [1, 3, 0, 0, 1, 6, 0, 2, b'a', b'b', b'c', 1 << 5, 2];
    h5salvage::fuzzing::filters(&input);
    let stored = &input[7..];
    assert_eq!(
        h5salvage::read::filters::lzf_decompress(stored, 6).unwrap(),
        b"abcabc"
    );
    let file = std::fs::read(testdata().join("userblock512.h5")).unwrap();
    h5salvage::fuzzing::carve_base(&file);
    let mut broken = file.clone();
    broken[512] = 0;
    let inv = h5salvage::carve::carve("t", &broken);
    assert!(inv.superblock.is_none());
    let inferred = inv.inferred.expect("base inferred without a superblock");
    assert_eq!(inferred.base_address, 512);
}
