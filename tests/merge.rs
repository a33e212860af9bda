//! `merge` end to end on a directory of worker files made at test time by
//! `testdata/killed_worker.py`: healthy, killed with and without flushes,
//! truncated, superblock zeroed, empty, renamed `.corrupted`. What each
//! input contributes equals what `salvage` recovers from it (checked with
//! h5py against a healthy reference), re-running changes nothing, a new
//! worker adds exactly its groups, and a merge killed at any moment leaves
//! the previous OUTPUT as it was.

mod common;

use common::{bin, have_h5py, have_tool, py_script, python, run_python, testdata};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use h5salvage::merge::{expand_inputs, merge, InputVerdict, MergeOptions, MergeReport, UnitResult};
use sha2::{Digest, Sha256};

fn sha256(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

/// One worker of the scenario.
struct Worker {
    file: &'static str,
    prefix: &'static str,
    libver: &'static str,
    configs: u32,
    flush_every: u32,
    kill_after: Option<u32>,
    damage: Damage,
}

#[derive(Clone, Copy, PartialEq)]
enum Damage {
    None,
    /// Cut to this many tenths of its size.
    Truncate(usize),
    /// First 2 KiB zeroed.
    ZeroHead,
    /// 0 bytes.
    Empty,
}

const SCENARIO: &[Worker] = &[
    // Sorts first: a copy of worker_4 whose first 2 KiB are zeroed; carving
    // brings its groups back by name, some partial (the intact copies in
    // worker_4 must win those).
    Worker {
        file: "worker_0_zeroed.h5",
        prefix: "w4_",
        libver: "v108",
        configs: 20,
        flush_every: 0,
        kill_after: None,
        damage: Damage::ZeroHead,
    },
    Worker {
        file: "worker_1.h5",
        prefix: "w1_",
        libver: "earliest",
        configs: 30,
        flush_every: 0,
        kill_after: None,
        damage: Damage::None,
    },
    // A truncated copy of worker_1: the root's member list is cut off, its
    // groups come back without names.
    Worker {
        file: "worker_1_truncated.h5",
        prefix: "w1_",
        libver: "earliest",
        configs: 30,
        flush_every: 0,
        kill_after: None,
        damage: Damage::Truncate(6),
    },
    Worker {
        file: "worker_2.h5",
        prefix: "w2_",
        libver: "latest",
        configs: 30,
        flush_every: 0,
        kill_after: Some(25),
        damage: Damage::None,
    },
    Worker {
        file: "worker_3.h5",
        prefix: "w3_",
        libver: "v110",
        configs: 40,
        flush_every: 5,
        kill_after: Some(33),
        damage: Damage::None,
    },
    Worker {
        file: "worker_4.h5",
        prefix: "w4_",
        libver: "v108",
        configs: 20,
        flush_every: 0,
        kill_after: None,
        damage: Damage::None,
    },
    Worker {
        file: "worker_6.h5",
        prefix: "w6_",
        libver: "earliest",
        configs: 20,
        flush_every: 0,
        kill_after: None,
        damage: Damage::Empty,
    },
    Worker {
        file: "worker_7.h5.corrupted",
        prefix: "w7_",
        libver: "earliest",
        configs: 24,
        flush_every: 4,
        kill_after: Some(22),
        damage: Damage::None,
    },
    Worker {
        file: "worker_8.h5",
        prefix: "w8_",
        libver: "earliest",
        configs: 20,
        flush_every: 0,
        kill_after: Some(15),
        damage: Damage::None,
    },
];

fn run_worker(out: &Path, w: &Worker, killed: bool) {
    let mut cmd = python();
    cmd.arg(testdata().join("killed_worker.py"))
        .arg(out)
        .args(["--libver", w.libver, "--prefix", w.prefix])
        .args(["--configs", &w.configs.to_string()])
        .stdout(std::process::Stdio::null());
    if w.flush_every > 0 {
        cmd.args(["--flush-every", &w.flush_every.to_string()]);
    }
    if let (true, Some(k)) = (killed, w.kill_after) {
        cmd.args(["--kill-self-after", &k.to_string()]);
    }
    let st = cmd.status().unwrap();
    assert_eq!(
        st.success(),
        !(killed && w.kill_after.is_some()),
        "{}",
        w.file
    );
}

/// Writes the scenario's worker files into `runs` and the healthy
/// reference of each (same script and arguments, not killed) into `refs`.
fn scenario(runs: &Path, refs: &Path) {
    std::fs::create_dir_all(runs).unwrap();
    std::fs::create_dir_all(refs).unwrap();
    for w in SCENARIO {
        let path = runs.join(w.file);
        run_worker(&path, w, true);
        let bytes = std::fs::read(&path).unwrap();
        match w.damage {
            Damage::None => {}
            Damage::Truncate(t) => std::fs::write(&path, &bytes[..bytes.len() * t / 10]).unwrap(),
            Damage::ZeroHead => {
                let mut b = bytes;
                b[..2048].fill(0);
                std::fs::write(&path, b).unwrap();
            }
            Damage::Empty => std::fs::write(&path, b"").unwrap(),
        }
        let reference = refs.join(format!("{}.h5", w.prefix));
        if !reference.exists() {
            run_worker(&reference, w, false);
        }
    }
}

fn opts(inputs: &[PathBuf], output: &Path) -> MergeOptions {
    MergeOptions {
        inputs: expand_inputs(inputs, output).unwrap(),
        output: output.to_path_buf(),
        exclude: vec!["init".into()],
        ..MergeOptions::default()
    }
}

/// compare.py REFERENCE VIEW: must pass; returns how many datasets it
/// recovered (equal, partial but right, or under lost+found).
fn recovered(reference: &Path, view: &Path) -> u64 {
    let (ok, text) = run_python(&[
        py_script("compare.py").as_os_str(),
        reference.as_os_str(),
        view.as_os_str(),
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("compare.py: {text}"));
    assert!(ok, "{} vs {}: {v}", reference.display(), view.display());
    ["equal", "partial_ok", "lost_found_datasets"]
        .iter()
        .map(|k| v[k].as_u64().unwrap_or(0))
        .sum()
}

fn listing(file: &Path) -> String {
    let (ok, text) = run_python(&[py_script("listing.py").as_os_str(), file.as_os_str()]);
    assert!(ok, "{text}");
    text
}

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

fn input_report<'a>(rep: &'a MergeReport, file: &str) -> &'a h5salvage::merge::InputReport {
    rep.inputs
        .iter()
        .find(|i| i.input.ends_with(file))
        .unwrap_or_else(|| panic!("{file} not in the report"))
}

/// Every input contributes what `salvage` recovers from it (its groups
/// other than `init`), with identical bytes; the healthy worker's groups are
/// all there, intact, although a partial copy of them sorts first; inputs
/// are not modified.
#[test]
fn merge_keeps_everything_salvage_recovers() {
    if !have_h5py("merge_keeps_everything_salvage_recovers") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (runs, refs) = (dir.path().join("runs"), dir.path().join("refs"));
    scenario(&runs, &refs);
    let hashes: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.clone(), sha256(&p)))
        .collect();
    let out = dir.path().join("merged.h5");
    let rep = merge(&opts(std::slice::from_ref(&runs), &out)).unwrap();
    assert_eq!(rep.inputs.len(), SCENARIO.len(), "{:?}", rep.inputs);
    assert_eq!(rep.exit_code(), 1, "partial and lost inputs");
    for (p, h) in &hashes {
        assert_eq!(&sha256(p), h, "{} modified", p.display());
    }
    let healthy = input_report(&rep, "worker_1.h5");
    assert_eq!((healthy.found, healthy.merged), (30, 30), "{healthy:?}");
    assert_eq!(healthy.verdict, InputVerdict::Complete);
    // Groups in both copies of worker_4: the intact copy wins over a
    // partial one that sorts first; between intact ones the first input.
    let zeroed = input_report(&rep, "worker_0_zeroed.h5");
    let partial_lost: Vec<&str> = zeroed
        .units
        .iter()
        .filter(|u| u.result == UnitResult::SkippedDuplicate)
        .map(|u| u.dest.as_str())
        .collect();
    assert!(!partial_lost.is_empty(), "{zeroed:?}");
    for dest in &partial_lost {
        assert!(
            rep.conflicts
                .iter()
                .any(|c| c.starts_with(&format!("{dest}: copy from"))
                    && c.contains("worker_4.h5 (intact) kept")),
            "{dest}: {:?}",
            rep.conflicts
        );
    }
    let w4: Vec<_> = rep
        .inputs
        .iter()
        .flat_map(|i| &i.units)
        .filter(|u| u.dest.starts_with("/w4_") && u.result == UnitResult::Merged)
        .collect();
    assert_eq!(w4.len(), 20, "{w4:?}");
    assert_eq!(
        input_report(&rep, "worker_6.h5").verdict,
        InputVerdict::Nothing
    );
    for w in SCENARIO {
        let input = runs.join(w.file);
        let reference = refs.join(format!("{}.h5", w.prefix));
        let view = dir.path().join(format!("view_{}.h5", w.file));
        let shown = input.display().to_string();
        let (ok, text) = run_python(&[
            py_script("merge_view.py").as_os_str(),
            out.as_os_str(),
            view.as_os_str(),
            "merge".as_ref(),
            shown.as_ref(),
            stem(&input).as_ref(),
        ]);
        assert!(ok, "{text}");
        let merged = recovered(&reference, &view);
        // The same input salvaged alone.
        let alone = dir.path().join(format!("alone_{}.h5", w.file));
        let salvaged = match h5salvage::salvage::salvage(&input, &alone, false) {
            Ok(_) => {
                let view = dir.path().join(format!("alone_view_{}.h5", w.file));
                let (ok, text) = run_python(&[
                    py_script("merge_view.py").as_os_str(),
                    alone.as_os_str(),
                    view.as_os_str(),
                    "salvage".as_ref(),
                ]);
                assert!(ok, "{text}");
                recovered(&reference, &view)
            }
            Err(_) => 0,
        };
        let r = input_report(&rep, w.file);
        if r.duplicate == 0 {
            assert_eq!(merged, salvaged, "{}: {r:?}", w.file);
        } else {
            assert!(merged <= salvaged, "{}", w.file);
        }
        eprintln!(
            "{}: {} datasets merged, {} by salvage alone; {r:?}",
            w.file, merged, salvaged
        );
    }
    // Killed after flushing: every flushed config is there.
    let names = listing(&out);
    for i in 0..30 {
        assert!(
            names.contains(&format!("/w3_config_{i:04} Group")),
            "w3 {i}"
        );
    }
    for i in 0..20 {
        assert!(
            names.contains(&format!("/w7_config_{i:04} Group")),
            "w7 {i}"
        );
    }
    for i in 0..30 {
        assert!(
            names.contains(&format!("/w1_config_{i:04} Group")),
            "w1 {i}"
        );
    }
}

/// A second run adds nothing and leaves OUTPUT byte for byte as it was; a
/// new worker file adds exactly its groups.
#[test]
fn rerun_changes_nothing_and_a_new_worker_adds_its_groups() {
    if !have_h5py("rerun_changes_nothing_and_a_new_worker_adds_its_groups") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (runs, refs) = (dir.path().join("runs"), dir.path().join("refs"));
    scenario(&runs, &refs);
    let out = dir.path().join("merged.h5");
    let first = merge(&opts(std::slice::from_ref(&runs), &out)).unwrap();
    assert!(first.written);
    let (sha, before) = (sha256(&out), listing(&out));
    let again = merge(&opts(std::slice::from_ref(&runs), &out)).unwrap();
    assert!(!again.written, "{again:?}");
    assert_eq!(sha256(&out), sha, "OUTPUT changed");
    for (a, b) in first.inputs.iter().zip(&again.inputs) {
        assert_eq!(b.merged + b.partial, 0, "{b:?}");
        assert_eq!(b.present, a.merged + a.partial + a.duplicate, "{b:?}");
    }
    let leftover: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("h5salvage-tmp"))
        .collect();
    assert!(leftover.is_empty(), "{leftover:?}");
    // A new worker.
    let new = Worker {
        file: "worker_9.h5",
        prefix: "w9_",
        libver: "latest",
        configs: 12,
        flush_every: 0,
        kill_after: None,
        damage: Damage::None,
    };
    run_worker(&runs.join(new.file), &new, false);
    let third = merge(&opts(std::slice::from_ref(&runs), &out)).unwrap();
    assert!(third.written);
    let r = input_report(&third, "worker_9.h5");
    assert_eq!((r.found, r.merged), (12, 12), "{r:?}");
    for i in third
        .inputs
        .iter()
        .filter(|i| !i.input.ends_with("worker_9.h5"))
    {
        assert_eq!(i.merged + i.partial, 0, "{i:?}");
    }
    let after = listing(&out);
    let old: Vec<&str> = before.lines().collect();
    let added: Vec<&str> = after.lines().filter(|l| !old.contains(l)).collect();
    assert!(old.iter().all(|l| after.lines().any(|m| m == *l)));
    assert!(!added.is_empty());
    assert!(
        added.iter().all(|l| l.starts_with("/w9_config_")),
        "{added:?}"
    );
    // 12 groups and their 5 datasets each.
    assert_eq!(added.len(), 12 * 6, "{added:?}");
}

/// The merge binary is killed at fixed-seed moments while it adds to an
/// existing OUTPUT: OUTPUT is each time either the previous one, byte for
/// byte and readable by h5py, or complete. A final run completes the job
/// and equals a merge done in one go.
#[test]
fn killed_merge_leaves_the_previous_output() {
    if !have_h5py("killed_merge_leaves_the_previous_output") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (runs, refs) = (dir.path().join("runs"), dir.path().join("refs"));
    scenario(&runs, &refs);
    let out = dir.path().join("merged.h5");
    // A previous OUTPUT: the healthy worker alone.
    let rep = merge(&opts(&[runs.join("worker_1.h5")], &out)).unwrap();
    assert_eq!(rep.exit_code(), 0);
    let (sha, before) = (sha256(&out), listing(&out));
    let bin = bin();
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut completed = 0;
    for _ in 0..6 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = 5 + seed % 200;
        let mut child = Command::new(bin)
            .args(["merge", "-o"])
            .arg(&out)
            .arg(&runs)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let done = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        let writing = std::fs::read_dir(dir.path()).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .contains("h5salvage-tmp")
        });
        eprintln!("killed after {delay} ms; temporary copy present: {writing}");
        if sha256(&out) == sha {
            assert_eq!(listing(&out), before, "after {delay} ms");
        } else {
            // The rename happened: the merge was complete.
            completed += 1;
            eprintln!("merge completed within {delay} ms (exited: {done})");
            break;
        }
    }
    let status = Command::new(bin)
        .args(["merge", "-o"])
        .arg(&out)
        .arg(&runs)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1), "partial and lost inputs remain");
    // The same merge in one go.
    let direct = dir.path().join("direct.h5");
    merge(&opts(&[runs.join("worker_1.h5")], &direct)).unwrap();
    merge(&opts(std::slice::from_ref(&runs), &direct)).unwrap();
    assert_eq!(listing(&out), listing(&direct));
    let leftover: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("h5salvage-tmp"))
        .collect();
    assert!(leftover.is_empty(), "stale temporary files: {leftover:?}");
    eprintln!("{completed} run(s) completed before the kill");
}

/// --remove-merged deletes only inputs read back equal from OUTPUT;
/// --quarantine moves the ones nothing came from; --json and exit codes.
#[test]
fn remove_merged_and_quarantine() {
    if !have_h5py("remove_merged_and_quarantine") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (runs, refs) = (dir.path().join("runs"), dir.path().join("refs"));
    scenario(&runs, &refs);
    let out = dir.path().join("merged.h5");
    let q = dir.path().join("quarantine");
    let o = Command::new(bin())
        .args(["merge", "--json", "--remove-merged", "--quarantine"])
        .arg(&q)
        .arg("-o")
        .arg(&out)
        .arg(&runs)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["inputs"].as_array().unwrap().len(), SCENARIO.len());
    assert!(!runs.join("worker_1.h5").exists(), "healthy input kept");
    assert!(!runs.join("worker_4.h5").exists(), "healthy input kept");
    // Inputs with partial groups stay.
    for kept in ["worker_0_zeroed.h5", "worker_1_truncated.h5"] {
        assert!(runs.join(kept).exists(), "{kept} removed");
    }
    assert!(
        q.join("worker_6.h5").exists(),
        "empty input not quarantined"
    );
    assert!(!runs.join("worker_6.h5").exists());
    // Nothing to merge: exit 3, no OUTPUT.
    let none = dir.path().join("none.h5");
    let st = Command::new(bin())
        .args(["merge", "-o"])
        .arg(&none)
        .arg(q.join("worker_6.h5"))
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(3));
    assert!(!none.exists());
    // Usage: no inputs in a directory.
    let empty_dir = dir.path().join("nothing_here");
    std::fs::create_dir(&empty_dir).unwrap();
    let st = Command::new(bin())
        .args(["merge", "-o"])
        .arg(&none)
        .arg(&empty_dir)
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(2));
}

/// The recipe past one machine: salvage each file on its own, then merge
/// the salvaged files. A group salvage marked partial still loses to an
/// intact copy in another salvaged file, and every byte is right.
#[test]
fn merge_of_salvaged_files_keeps_partial_marks() {
    if !have_h5py("merge_of_salvaged_files_keeps_partial_marks") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (runs, refs) = (dir.path().join("runs"), dir.path().join("refs"));
    std::fs::create_dir_all(&runs).unwrap();
    std::fs::create_dir_all(&refs).unwrap();
    let healthy = &SCENARIO[5];
    let zeroed = &SCENARIO[0];
    assert_eq!(
        (healthy.file, zeroed.file),
        ("worker_4.h5", "worker_0_zeroed.h5")
    );
    run_worker(&runs.join(healthy.file), healthy, false);
    let mut b = std::fs::read(runs.join(healthy.file)).unwrap();
    b[..2048].fill(0);
    std::fs::write(runs.join(zeroed.file), b).unwrap();
    let salvaged = dir.path().join("salvaged");
    std::fs::create_dir(&salvaged).unwrap();
    for w in [zeroed, healthy] {
        h5salvage::salvage::salvage(&runs.join(w.file), &salvaged.join(w.file), false).unwrap();
    }
    let out = dir.path().join("merged.h5");
    let rep = merge(&opts(std::slice::from_ref(&salvaged), &out)).unwrap();
    let z = input_report(&rep, zeroed.file);
    let lost_to_intact: Vec<&str> = z
        .units
        .iter()
        .filter(|u| u.result == UnitResult::SkippedDuplicate)
        .map(|u| u.dest.as_str())
        .collect();
    assert!(!lost_to_intact.is_empty(), "{z:?}");
    assert!(lost_to_intact.iter().all(|d| d.starts_with("/w4_")));
    let h = input_report(&rep, healthy.file);
    // It gives the groups whose copy in the zeroed file is partial, and
    // those the zeroed file lost altogether.
    for d in &lost_to_intact {
        assert!(
            h.units
                .iter()
                .any(|u| &u.dest == d && u.result == UnitResult::Merged),
            "{d}: {h:?}"
        );
    }
    let reference = refs.join("w4.h5");
    run_worker(&reference, healthy, false);
    for w in [zeroed, healthy] {
        let input = salvaged.join(w.file);
        let view = dir.path().join(format!("view_{}", w.file));
        let shown = input.display().to_string();
        let (ok, text) = run_python(&[
            py_script("merge_view.py").as_os_str(),
            out.as_os_str(),
            view.as_os_str(),
            "merge".as_ref(),
            shown.as_ref(),
            stem(&input).as_ref(),
        ]);
        assert!(ok, "{text}");
        assert!(recovered(&reference, &view) > 0, "{}", w.file);
    }
    let names = listing(&out);
    for i in 0..20 {
        let line = names
            .lines()
            .find(|l| l.starts_with(&format!("/w4_config_{i:04} Group")))
            .unwrap_or_else(|| panic!("w4_config_{i:04} missing"));
        assert!(!line.contains("h5salvage_status"), "{line}");
    }
}

/// The README's recipe past one machine: `salvage` per file under GNU
/// parallel, then one `merge` of the salvaged files. Every named group the
/// direct merge holds is there too. Needs GNU parallel (installed by
/// .ci/run); skipped elsewhere without it.
#[test]
fn gnu_parallel_recipe_matches_the_direct_merge() {
    if !have_h5py("gnu_parallel_recipe_matches_the_direct_merge") {
        return;
    }
    if !have_tool("parallel", "the GNU parallel recipe") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (runs, refs) = (dir.path().join("runs"), dir.path().join("refs"));
    scenario(&runs, &refs);
    let salvaged = dir.path().join("salvaged");
    std::fs::create_dir(&salvaged).unwrap();
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    inputs.sort();
    let bin = bin();
    let status = Command::new("parallel")
        .args(["--will-cite", "-j", "2", bin, "salvage", "{}", "-o"])
        .arg(format!("{}/{{/}}", salvaged.display()))
        .arg(":::")
        .args(&inputs)
        .status()
        .unwrap();
    // Exit codes 1 (partial) and 3 (nothing recoverable) are expected for
    // damaged workers; parallel reports how many jobs failed.
    assert!(status.code().is_some(), "{status:?}");
    let recipe = dir.path().join("recipe.h5");
    let o = Command::new(bin)
        .args(["merge", "-o"])
        .arg(&recipe)
        .arg(&salvaged)
        .output()
        .unwrap();
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let direct = dir.path().join("direct.h5");
    merge(&opts(std::slice::from_ref(&runs), &direct)).unwrap();
    let names = |file: &Path| -> std::collections::BTreeSet<String> {
        listing(file)
            .lines()
            .filter_map(|l| l.split(' ').next())
            .filter(|p| p.matches('/').count() == 1 && !p.starts_with("/lost+found"))
            .map(str::to_string)
            .collect()
    };
    let (d, r) = (names(&direct), names(&recipe));
    assert!(!d.is_empty());
    let missing: Vec<&String> = d.difference(&r).collect();
    assert!(
        missing.is_empty(),
        "groups missing from the recipe's merge: {missing:?}"
    );
}

/// Two inputs hold the same unit, written by `script` (python; argv[1] the
/// file, argv[2] its parameter) with parameters `params`: the first input
/// goes into OUTPUT whole and is removed by --remove-merged; the second
/// differs in `what`, which is not in OUTPUT, so it must be kept.
fn remove_merged_keeps_the_second(script: &str, params: [&str; 2], what: &str) {
    if !have_h5py("remove_merged_keeps_the_second") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.h5"), dir.path().join("b.h5"));
    for (file, param) in [(&a, params[0]), (&b, params[1])] {
        let (ok, text) = run_python(&[
            "-c".as_ref(),
            script.as_ref(),
            file.as_os_str(),
            param.as_ref(),
        ]);
        assert!(ok, "{text}");
    }
    let out = dir.path().join("merged.h5");
    let mut o = opts(&[a.clone(), b.clone()], &out);
    o.remove_merged = true;
    let rep = merge(&o).unwrap();
    assert!(!a.exists(), "a.h5 is in the output in full");
    assert!(
        b.exists(),
        "b.h5 removed although {what} not in the output: {:?}",
        input_report(&rep, "b.h5")
    );
}

/// Two inputs hold the same unit with the same data but different
/// attribute values: the second copy is a duplicate, its values are not in
/// OUTPUT, so --remove-merged must keep it.
#[test]
fn remove_merged_keeps_an_input_whose_attributes_differ() {
    remove_merged_keeps_the_second(
        "import h5py, numpy as np, sys\n\
             with h5py.File(sys.argv[1], 'w') as f:\n\
             \x20   g = f.create_group('g')\n\
             \x20   g.attrs['run'] = int(sys.argv[2])\n\
             \x20   x = g.create_dataset('x', data=np.arange(10, dtype='<i4'))\n\
             \x20   x.attrs['seed'] = int(sys.argv[2]) * 10\n",
        ["1", "2"],
        "its attribute values are",
    );
}

/// Two inputs hold the same unit whose compound dataset has a
/// variable-length string member: equal strings, different integers. The
/// second copy's integers are not in OUTPUT, so --remove-merged must keep it.
#[test]
fn remove_merged_compares_the_fixed_members_of_vlen_compounds() {
    remove_merged_keeps_the_second(
        "import h5py, numpy as np, sys\n\
             t = np.dtype([('n', '<i4'), ('s', h5py.string_dtype())])\n\
             v = np.array([(int(sys.argv[2]) + i, 'w%d' % i) for i in range(4)], dtype=t)\n\
             with h5py.File(sys.argv[1], 'w') as f:\n\
             \x20   f.create_group('g').create_dataset('x', data=v)\n",
        ["0", "100"],
        "its integers are",
    );
}

/// Two inputs hold the same unit, the second with a soft link the first
/// lacks: the link is not in OUTPUT, so --remove-merged must keep it.
#[test]
fn remove_merged_keeps_an_input_whose_links_are_not_in_the_output() {
    remove_merged_keeps_the_second(
        "import h5py, numpy as np, sys\n\
             with h5py.File(sys.argv[1], 'w') as f:\n\
             \x20   g = f.create_group('g')\n\
             \x20   g.create_dataset('x', data=np.arange(10, dtype='<i4'))\n\
             \x20   if sys.argv[2] == '1':\n\
             \x20       g['alias'] = h5py.SoftLink('/g/x')\n",
        ["0", "1"],
        "its soft link is",
    );
}

/// A resumed merge: OUTPUT holds partial copies of some groups (from a
/// damaged copy of a worker); a later merge of the intact worker replaces
/// exactly those, and the result equals a merge of the intact worker alone.
#[test]
fn resumed_merge_replaces_partial_copies_with_intact_ones() {
    if !have_h5py("resumed_merge_replaces_partial_copies_with_intact_ones") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let damaged = dir.path().join("a_zeroed.h5");
    let healthy = dir.path().join("b_healthy.h5");
    let w = &SCENARIO[0];
    run_worker(&healthy, w, false);
    let mut b = std::fs::read(&healthy).unwrap();
    b[..2048].fill(0);
    std::fs::write(&damaged, b).unwrap();
    let out = dir.path().join("merged.h5");
    let first = merge(&opts(std::slice::from_ref(&damaged), &out)).unwrap();
    let r = input_report(&first, "a_zeroed.h5");
    assert!(
        r.partial > 0,
        "the zeroed copy gave no partial group: {r:?}"
    );
    // Nameless groups (under /lost+found) have nothing to be replaced by.
    let named_partial = r
        .units
        .iter()
        .filter(|u| u.result == UnitResult::Partial && !u.dest.starts_with("/lost+found/"))
        .count() as u64;
    assert!(named_partial > 0, "{r:?}");
    let second = merge(&opts(std::slice::from_ref(&healthy), &out)).unwrap();
    let replaced = second
        .notes
        .iter()
        .filter(|n| n.contains("was replaced by the intact copy"))
        .count() as u64;
    assert_eq!(replaced, named_partial, "{:?}", second.notes);
    let r2 = input_report(&second, "b_healthy.h5");
    // Replaced ones count as merged (with groups the first run lost).
    assert!(r2.merged >= named_partial, "{r2:?}");
    assert_eq!(
        (r2.merged + r2.present, r2.partial),
        (r2.found, 0),
        "{r2:?}"
    );
    // Nothing partial is left, and the named groups are those of a merge
    // of the healthy worker alone, with the same data.
    let alone = dir.path().join("alone.h5");
    merge(&opts(std::slice::from_ref(&healthy), &alone)).unwrap();
    let named = |f: &Path| -> Vec<String> {
        listing(f)
            .lines()
            .filter(|l| l.starts_with("/w4_"))
            // Which input each came from differs, by design.
            .map(|l| match l.find("h5salvage_source=") {
                Some(a) => {
                    let end = l[a..].find([',', ']']).map_or(l.len(), |e| a + e + 1);
                    format!("{}{}", &l[..a], &l[end..])
                }
                None => l.to_string(),
            })
            .collect()
    };
    assert_eq!(named(&out), named(&alone));
    let (ok, text) = run_python(&[
        std::ffi::OsStr::new("-c"),
        std::ffi::OsStr::new(
            "import h5py,sys\nf=h5py.File(sys.argv[1],'r')\nbad=[]\n\
             f.visititems(lambda n,o: bad.append(n) if n.startswith('w4_') and 'h5salvage_status' in o.attrs else None)\n\
             print(bad); sys.exit(1 if bad else 0)",
        ),
        out.as_os_str(),
    ]);
    assert!(ok, "partial marks left: {text}");
}

/// Virtual datasets whose sources lie in the same file (source file "."):
/// in OUTPUT they name their source's copy there. A `/lost+found` entry
/// moves under `/lost+found/<stem>`, its virtual dataset's source with it;
/// a root group keeps its name; a source in an excluded group is not in
/// OUTPUT: that mapping is named as stored, said in `h5salvage_degraded`,
/// and the unit is partial.
#[test]
fn virtual_sources_in_the_same_file_follow_their_unit() {
    if !have_h5py("virtual_sources_in_the_same_file_follow_their_unit") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("w.h5");
    let (ok, text) = run_python(&[
        "-c".as_ref(),
        "import h5py, numpy as np, sys\n\
         with h5py.File(sys.argv[1], 'w') as f:\n\
         \x20   def vds(at, src, n):\n\
         \x20       lay = h5py.VirtualLayout(shape=(n,), dtype='i8')\n\
         \x20       lay[:] = h5py.VirtualSource('.', src, shape=(n,))\n\
         \x20       f.create_virtual_dataset(at, lay, fillvalue=-1)\n\
         \x20   f['lost+found/g1/data'] = np.arange(6)\n\
         \x20   vds('lost+found/g1/vds', '/lost+found/g1/data', 6)\n\
         \x20   f['run/data'] = np.arange(4) * 10\n\
         \x20   vds('run/vds', '/run/data', 4)\n\
         \x20   f['init/x'] = np.arange(3) + 100\n\
         \x20   vds('other/vds', '/init/x', 3)\n"
            .as_ref(),
        input.as_os_str(),
    ]);
    assert!(ok, "{text}");
    let out = dir.path().join("merged.h5");
    let rep = merge(&opts(std::slice::from_ref(&input), &out)).unwrap();
    let ir = input_report(&rep, "w.h5");
    let unit = |d: &str| ir.units.iter().find(|u| u.dest == d).unwrap();
    assert_eq!(
        unit("/lost+found/w/g1").result,
        UnitResult::Merged,
        "{ir:?}"
    );
    assert_eq!(unit("/run").result, UnitResult::Merged, "{ir:?}");
    assert_eq!(unit("/other").result, UnitResult::Partial, "{ir:?}");
    assert_eq!(ir.verdict, InputVerdict::Partial);
    let (ok, text) = run_python(&[
        "-c".as_ref(),
        "import h5py, sys\n\
         with h5py.File(sys.argv[1], 'r') as f:\n\
         \x20   d = f['lost+found/w/g1/vds']\n\
         \x20   assert d.virtual_sources()[0].dset_name == '/lost+found/w/g1/data', d.virtual_sources()\n\
         \x20   assert list(d[()]) == list(range(6)), d[()]\n\
         \x20   assert list(f['run/vds'][()]) == [0, 10, 20, 30]\n\
         \x20   assert 'init' not in f\n\
         \x20   o = f['other/vds']\n\
         \x20   assert o.virtual_sources()[0].dset_name == '/init/x'\n\
         \x20   assert '/init/x' in o.attrs['h5salvage_degraded'], dict(o.attrs)\n"
            .as_ref(),
        out.as_os_str(),
    ]);
    assert!(ok, "{text}");
}

/// An input that is an earlier salvage's output carries its marks: a unit
/// with `h5salvage_unverified` (data in zeroed pages) or
/// `h5salvage_status` is partial in the per-input verdict and the exit
/// code, however whole it reads now; an unmarked unit is merged.
#[test]
fn marks_of_an_earlier_salvage_make_the_unit_partial() {
    if !have_h5py("marks_of_an_earlier_salvage_make_the_unit_partial") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("salvaged.h5");
    let (ok, text) = run_python(&[
        "-c".as_ref(),
        "import h5py, numpy as np, sys\n\
         with h5py.File(sys.argv[1], 'w') as f:\n\
         \x20   f['clean/d'] = np.arange(3)\n\
         \x20   f['zeroed/d'] = np.zeros(3)\n\
         \x20   f['zeroed/d'].attrs['h5salvage_unverified'] = 'data not verified: bytes 4096..8192 all zero'\n\
         \x20   f['cut/d'] = np.arange(2)\n\
         \x20   f['cut/d'].attrs['h5salvage_status'] = 'partial'\n"
            .as_ref(),
        input.as_os_str(),
    ]);
    assert!(ok, "{text}");
    let out = dir.path().join("merged.h5");
    let rep = merge(&opts(std::slice::from_ref(&input), &out)).unwrap();
    let ir = input_report(&rep, "salvaged.h5");
    let unit = |d: &str| ir.units.iter().find(|u| u.dest == d).unwrap();
    assert_eq!(unit("/clean").result, UnitResult::Merged, "{ir:?}");
    for (d, mark) in [
        ("/zeroed", "h5salvage_unverified"),
        ("/cut", "h5salvage_status"),
    ] {
        let u = unit(d);
        assert_eq!(u.result, UnitResult::Partial, "{u:?}");
        assert!(u.reasons.iter().any(|r| r.contains(mark)), "{u:?}");
    }
    assert_eq!(ir.verdict, InputVerdict::Partial);
    assert_eq!(rep.exit_code(), 1);
}
