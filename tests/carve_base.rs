//! Carving never reads from the wrong place: without a superblock the base
//! address (a user block moves it) is inferred from the carved structures
//! and data is read only through a confirmed one; data of a damaged file
//! that lies in all-zero 4 KiB pages is marked unverified, not recovered.
//! Damaged files are made from healthy h5py files (testdata/carve_base.py,
//! testdata/userblock*.h5) at test time; outputs are checked with h5py.

mod common;

use common::{bin, have_h5py, py_script, run_python, testdata};

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use h5salvage::salvage::{salvage, Recovery, SalvageReport};
use serde_json::Value;

/// testdata/carve_base.py with `args`; its stdout.
fn generate(args: &[&str]) -> String {
    let script = testdata().join("carve_base.py");
    let mut a: Vec<&OsStr> = vec![script.as_os_str()];
    a.extend(args.iter().map(OsStr::new));
    let (ok, out) = run_python(&a);
    assert!(ok, "carve_base.py {args:?}: {out}");
    out
}

/// tests/py/same_values.py: A's objects equal B's (pairs of paths, or the
/// two roots). Panics with the mismatches.
fn same_values(a: &Path, b: &Path, pairs: &[(&str, &str)]) -> u64 {
    let script = py_script("same_values.py");
    let mut args: Vec<&OsStr> = vec![script.as_os_str(), a.as_os_str(), b.as_os_str()];
    for (pa, pb) in pairs {
        args.extend([OsStr::new("--pair"), OsStr::new(pa), OsStr::new(pb)]);
    }
    let (ok, out) = run_python(&args);
    assert!(ok, "{} vs {}: {out}", a.display(), b.display());
    let v: Value = serde_json::from_str(out.trim()).expect(&out);
    v["compared"].as_u64().unwrap()
}

/// Reads attribute `name` of `path` in `file` with h5py ("" if absent).
fn attr(file: &Path, path: &str, name: &str) -> String {
    let code = "import sys, h5py\n\
                f = h5py.File(sys.argv[1], 'r')\n\
                v = f[sys.argv[2]].attrs.get(sys.argv[3], b'')\n\
                print(v.decode() if isinstance(v, bytes) else v)";
    let (ok, out) = run_python(&[
        OsStr::new("-c"),
        OsStr::new(code),
        file.as_os_str(),
        OsStr::new(path),
        OsStr::new(name),
    ]);
    assert!(ok, "{out}");
    out.trim_end().to_string()
}

/// Every attribute named `name` anywhere in `file`, as "path: value" lines.
fn marks(file: &Path, name: &str) -> Vec<String> {
    let code = "import sys, h5py\n\
                f = h5py.File(sys.argv[1], 'r')\n\
                out = []\n\
                def v(n, o):\n\
                \x20   if sys.argv[2] in o.attrs: out.append('/' + n)\n\
                f.visititems(v)\n\
                print('\\n'.join(out))";
    let (ok, out) = run_python(&[
        OsStr::new("-c"),
        OsStr::new(code),
        file.as_os_str(),
        OsStr::new(name),
    ]);
    assert!(ok, "{out}");
    out.lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Zeroes the superblock at `at` (spec II.A: version 0 is 24 bytes, four
/// addresses and the root's symbol table entry, a length, an address and
/// 24 bytes; version 1 adds 4 bytes; versions 2 and 3 are 12 bytes, four
/// addresses and a checksum).
fn zero_superblock(bytes: &mut [u8], at: usize) {
    assert_eq!(
        &bytes[at..at + 8],
        b"\x89HDF\r\n\x1a\n",
        "no superblock at {at}"
    );
    let len = match bytes[at + 8] {
        v @ (0 | 1) => {
            let (o, l) = (usize::from(bytes[at + 13]), usize::from(bytes[at + 14]));
            24 + 4 * usize::from(v) + 4 * o + l + o + 24
        }
        _ => 12 + 4 * usize::from(bytes[at + 9]) + 4,
    };
    bytes[at..at + len].fill(0);
}

fn salvage_bytes(dir: &Path, name: &str, bytes: &[u8]) -> (PathBuf, SalvageReport) {
    let input = dir.join(name);
    std::fs::write(&input, bytes).unwrap();
    let out = dir.join(format!("{name}.out.h5"));
    let rep = salvage(&input, &out, false).unwrap_or_else(|e| panic!("{name}: {e}"));
    (out, rep)
}

/// Root header address (relative) of a healthy file.
fn root_address(bytes: &[u8]) -> u64 {
    let inv = h5salvage::walk::walk("orig", bytes);
    inv.superblock.unwrap().root_address.unwrap()
}

/// A file with a `ub`-byte user block and its superblock zeroed gives back
/// exactly what the same file without the user block does, and its values
/// are the original's; the sizes of offsets/lengths inferred are `sizes`.
fn user_block_case(orig: &Path, ub: usize, sizes: (u8, u8)) {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(orig).unwrap();
    let name = orig.file_name().unwrap().to_string_lossy().to_string();
    let root_addr = root_address(&bytes);
    let mut with_ub = bytes.clone();
    zero_superblock(&mut with_ub, ub);
    let mut without = bytes[ub..].to_vec();
    zero_superblock(&mut without, 0);

    let (out_ub, rep_ub) = salvage_bytes(dir.path(), "ub.h5", &with_ub);
    let (out_no, rep_no) = salvage_bytes(dir.path(), "no_ub.h5", &without);
    let counts = |r: &SalvageReport| (r.recovered, r.partial, r.lost, r.unverified);
    assert_eq!(counts(&rep_ub), counts(&rep_no), "{name}");
    let paths = |r: &SalvageReport| {
        let mut p: Vec<(String, &str)> = r
            .objects
            .iter()
            .map(|o| (o.path.clone(), o.result.as_str()))
            .collect();
        p.sort();
        p
    };
    assert_eq!(paths(&rep_ub), paths(&rep_no), "{name}");
    assert!(rep_ub.recovered > 0, "{name}: nothing recovered");
    // The root group comes back (without its name) with everything below it.
    let lost_root = format!("/lost+found/group_at_{root_addr:#x}");
    assert!(
        rep_ub.objects.iter().any(|o| o.path == lost_root),
        "{name}: {lost_root} not recovered: {:?}",
        paths(&rep_ub)
    );
    let n = same_values(orig, &out_ub, &[("/", &lost_root)]);
    assert!(n >= 4, "{name}: only {n} objects compared");
    same_values(&out_no, &out_ub, &[]);
    let inferred = attr(&out_ub, "/", "h5salvage_inferred");
    let want = format!(
        "base address inferred as {ub} (sizes of offsets/lengths {}/{})",
        sizes.0, sizes.1
    );
    assert!(inferred.contains(&want), "{name}: {inferred:?}");
    assert!(attr(&out_no, "/", "h5salvage_inferred").contains("base address inferred as 0 "));
}

#[test]
fn user_block_fixtures_without_superblock_read_from_the_right_place() {
    if !have_h5py("user_block_fixtures_without_superblock_read_from_the_right_place") {
        return;
    }
    user_block_case(&testdata().join("userblock512.h5"), 512, (8, 8));
    user_block_case(&testdata().join("userblock4096.h5"), 4096, (8, 8));
}

#[test]
fn user_block_workers_without_superblock_read_from_the_right_place() {
    if !have_h5py("user_block_workers_without_superblock_read_from_the_right_place") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (libver, ub) in [("earliest", 512usize), ("latest", 512), ("earliest", 2048)] {
        let f = dir.path().join(format!("worker_{libver}_{ub}.h5"));
        generate(&[
            "worker",
            f.to_str().unwrap(),
            "--libver",
            libver,
            "--userblock",
            &ub.to_string(),
            "--configs",
            "20",
        ]);
        user_block_case(&f, ub, (8, 8));
    }
}

/// Files written with 4-byte offsets (and 4- or 8-byte lengths), whose
/// superblock (the only place that states the sizes) is zeroed: the sizes
/// are inferred with the base, and the values come back.
#[test]
fn sizes_of_offsets_and_lengths_are_inferred_without_superblock() {
    if !have_h5py("sizes_of_offsets_and_lengths_are_inferred_without_superblock") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (o, l, libver, ub) in [
        (4u8, 4u8, "earliest", 1024usize),
        (4, 8, "earliest", 512),
        (4, 4, "latest", 1024),
        (8, 4, "latest", 0),
    ] {
        let f = dir.path().join(format!("sizes_{o}{l}_{libver}_{ub}.h5"));
        generate(&[
            "sizes",
            f.to_str().unwrap(),
            "--offsets",
            &o.to_string(),
            "--lengths",
            &l.to_string(),
            "--libver",
            libver,
            "--userblock",
            &ub.to_string(),
        ]);
        user_block_case(&f, ub, (o, l));
        // The healthy file walks whole too (symbol table entries hold a
        // length and an address: 4/8 files were misread before).
        let out = dir
            .path()
            .join(format!("sizes_{o}{l}_{libver}_{ub}.out.h5"));
        let rep = salvage(&f, &out, false).unwrap();
        assert_eq!((rep.partial, rep.lost), (0, 0), "{:?}", rep.objects);
        assert!(same_values(&f, &out, &[]) >= 11);
    }
}

#[test]
fn no_confirmed_base_writes_no_data_at_an_address() {
    if !have_h5py("no_confirmed_base_writes_no_data_at_an_address") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let orig = std::fs::read(testdata().join("userblock512.h5")).unwrap();
    // (a) Nothing confirms any base: the superblock and every structure
    // that points somewhere are gone; the headers (found by the byte scan)
    // still describe contiguous and chunked data.
    let mut none = orig.clone();
    zero_superblock(&mut none, 512);
    for sig in [&b"TREE"[..], b"HEAP", b"SNOD"] {
        let at: Vec<usize> = memchr::memmem::find_iter(&none, sig).collect();
        for a in at {
            none[a..a + 4].fill(0);
        }
    }
    // (b) Two bases confirmed alike: the same file (user block stripped)
    // twice, at 0 and at 16384.
    let mut two = orig[512..].to_vec();
    zero_superblock(&mut two, 0);
    two.resize(16384, 0);
    two.extend_from_slice(&two.clone()[..orig.len() - 512]);
    for (name, bytes, word) in [
        ("none.h5", none, "not confirmed"),
        ("two.h5", two, "ambiguous"),
    ] {
        let inv = h5salvage::pipeline::scan_bytes(name, &bytes, h5salvage::CarveMode::Auto);
        let inf = inv.inferred.clone().expect(name);
        assert!(!inf.confirmed, "{name}: {inf:?}");
        let (out, rep) = salvage_bytes(dir.path(), name, &bytes);
        let datasets: Vec<_> = rep.objects.iter().filter(|o| o.kind == "dataset").collect();
        assert!(!datasets.is_empty(), "{name}: no dataset carved");
        for d in datasets {
            assert_eq!(
                d.result,
                Recovery::Partial,
                "{name}: {} {:?}",
                d.path,
                d.reasons
            );
            let missing = attr(&out, &d.path, "h5salvage_missing");
            assert!(
                missing.contains("not read"),
                "{name}: {}: {missing}",
                d.path
            );
        }
        let inferred = attr(&out, "/", "h5salvage_inferred");
        assert!(inferred.contains(word), "{name}: {inferred}");
        // The vlen string attribute "text" is heap addresses: not written.
        assert!(marks(&out, "text").is_empty(), "{name}");
        if name == "two.h5" {
            assert!(rep.objects.iter().any(|o| o
                .reasons
                .iter()
                .any(|r| r.starts_with("attribute \"text\" lost: its values are addresses"))));
        }
    }
}

/// Offsets (absolute) of 4 KiB pages of `bytes` holding a `SNOD` and some
/// of the data of a dataset in `layout` ({path, offset, nbytes}).
fn pages_with_snod_and_data(bytes: &[u8], layout: &[Value]) -> Vec<u64> {
    let mut out = Vec::new();
    for (p, page) in bytes.chunks(4096).enumerate() {
        let start = (p * 4096) as u64;
        let end = start + page.len() as u64;
        let snod = memchr::memmem::find(page, b"SNOD").is_some();
        let data = layout.iter().any(|d| {
            let o = d["offset"].as_u64().unwrap();
            o < end && o + d["nbytes"].as_u64().unwrap() > start
        });
        if snod && data && p > 0 {
            out.push(start);
        }
    }
    out
}

#[test]
fn data_in_a_zeroed_page_is_unverified_not_recovered() {
    if !have_h5py("data_in_a_zeroed_page_is_unverified_not_recovered") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let orig = dir.path().join("groups.h5");
    let layout: Vec<Value> =
        serde_json::from_str(generate(&["groups", orig.to_str().unwrap()]).trim()).unwrap();
    let bytes = std::fs::read(&orig).unwrap();
    let healthy = h5salvage::pipeline::scan_bytes("groups", &bytes, h5salvage::CarveMode::Auto);
    assert!(healthy.zeroed_ranges.is_empty());
    let pages = pages_with_snod_and_data(&bytes, &layout);
    assert!(
        !pages.is_empty(),
        "no page holds a symbol table and raw data"
    );
    let page = pages[0];
    let mut dmg = bytes.clone();
    dmg[page as usize..page as usize + 4096].fill(0);

    // scan --json lists the page.
    let dmg_path = dir.path().join("dmg.h5");
    std::fs::write(&dmg_path, &dmg).unwrap();
    let o = Command::new(bin())
        .args(["scan", "--json"])
        .arg(&dmg_path)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["zeroed_ranges"],
        serde_json::json!([{"offset": page, "length": 4096}])
    );
    assert_eq!(v["verdict"], "damaged");

    let inv = h5salvage::pipeline::scan_bytes("dmg", &dmg, h5salvage::CarveMode::Auto);
    let (out, rep) = salvage_bytes(dir.path(), "dmg_salvaged.h5", &dmg);
    let orig_inv = h5salvage::walk::walk("orig", &bytes);
    let mut unverified = 0;
    let mut compared = Vec::new();
    for d in &layout {
        let path = d["path"].as_str().unwrap();
        let (off, n) = (d["offset"].as_u64().unwrap(), d["nbytes"].as_u64().unwrap());
        let was = orig_inv.object(path).unwrap();
        let header_hit = was
            .header_spans
            .iter()
            .any(|&(s, e)| s < page + 4096 && e > page);
        // Where the damaged file's inventory put this header.
        let now = inv
            .objects
            .iter()
            .find(|o| o.address == was.address && o.hard_link_of.is_none());
        let outcome = now.and_then(|now| rep.objects.iter().find(|o| o.path == now.path));
        let (Some(now), Some(outcome)) = (now, outcome.filter(|o| o.result != Recovery::Lost))
        else {
            assert!(header_hit, "{path}: header outside the page not recovered");
            continue;
        };
        if off < page + 4096 && off + n > page {
            assert_eq!(
                outcome.result,
                Recovery::Unverified,
                "{path} at {}",
                now.path
            );
            let mark = attr(&out, &now.path, "h5salvage_unverified");
            assert!(
                mark.contains(&format!("{page:#x}..{:#x}", page + 4096)),
                "{path}: {mark:?}"
            );
            unverified += 1;
        } else {
            assert_eq!(
                outcome.result,
                Recovery::Recovered,
                "{path} at {}",
                now.path
            );
            compared.push((path.to_string(), now.path.clone()));
        }
    }
    assert!(unverified > 0);
    assert_eq!(rep.unverified, unverified);
    let pairs: Vec<(&str, &str)> = compared
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(same_values(&orig, &out, &pairs), pairs.len() as u64);
    // Only the datasets in the page carry the mark.
    assert_eq!(marks(&out, "h5salvage_unverified").len() as u64, unverified);
    // The CLI's account: exit 1, the count on the summary line.
    let o = Command::new(bin())
        .args(["salvage", "--force", "-o"])
        .arg(dir.path().join("cli.h5"))
        .arg(&dmg_path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(&format!("{unverified} unverified")), "{text}");
}

#[test]
fn healthy_zero_data_stays_healthy_and_unmarked() {
    if !have_h5py("healthy_zero_data_stays_healthy_and_unmarked") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let orig = dir.path().join("zeros.h5");
    generate(&["zeros", orig.to_str().unwrap()]);
    let o = Command::new(bin())
        .args(["scan", "--json"])
        .arg(&orig)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdict"], "healthy");
    assert!(
        !v["zeroed_ranges"].as_array().unwrap().is_empty(),
        "24 KiB of zeros hold whole zero pages"
    );
    let out = dir.path().join("zeros_salvaged.h5");
    let o = Command::new(bin())
        .args(["salvage", "-o"])
        .arg(&out)
        .arg(&orig)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(marks(&out, "h5salvage_unverified").is_empty());
    assert_eq!(same_values(&orig, &out, &[]), 3);
}
