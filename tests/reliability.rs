//! Reliability (issue 16): concurrent runs into one OUTPUT lose nothing, a
//! killed run's lock is no obstacle, an OUTPUT replaced behind a run's back
//! is not overwritten, an input that changes while it is read (mapped or
//! copied) is a clear error and never a signal, and a file a live writer
//! holds open is reported as such and skipped by `merge`.
//!
//! Timing is made deterministic with the binary's debug-build hook
//! `H5SALVAGE_TEST_PAUSE_AFTER_OPEN` (the first input opened creates the
//! named file and waits until the test removes it); worker files are made
//! at test time by `testdata/killed_worker.py` and
//! `testdata/live_worker.py`.

mod common;

use common::{bin, have_h5py, python, testdata};

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A healthy worker file with `configs` groups `{prefix}config_NNNN`.
fn worker(out: &Path, prefix: &str, configs: u32) {
    let st = python()
        .arg(testdata().join("killed_worker.py"))
        .arg(out)
        .args(["--libver", "earliest", "--prefix", prefix])
        .args(["--configs", &configs.to_string()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "{}", out.display());
}

/// Paths of the groups at the root of `file`, read with the crate's own
/// reader.
fn root_groups(file: &Path) -> BTreeSet<String> {
    let inv = h5salvage::scan_path(file).unwrap();
    inv.objects
        .iter()
        .filter(|o| o.path.matches('/').count() == 1 && o.path != "/")
        .map(|o| o.path.clone())
        .collect()
}

/// What is left beside outputs in `dir`: temporary and lock files.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".h5salvage-"))
        .collect()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Waits (bounded) until `flag` exists: the child paused after opening.
fn wait_for(flag: &Path, child: &mut Child) {
    let t = Instant::now();
    while !flag.exists() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("child exited before pausing: {st:?}");
        }
        assert!(t.elapsed() < Duration::from_secs(60), "child never paused");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for a child with a time limit (libhdf5 may loop on bad files).
fn wait_bounded(mut child: Child, limit: Duration) -> Output {
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > limit {
            let _ = child.kill();
            panic!("child ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn paused(args: &[&std::ffi::OsStr], flag: &Path) -> Child {
    paused_at(args, flag, 1)
}

/// Runs the binary paused after the `nth` file it opens.
fn paused_at(args: &[&std::ffi::OsStr], flag: &Path, nth: usize) -> Child {
    Command::new(bin())
        .args(args)
        .env("H5SALVAGE_TEST_PAUSE_AFTER_OPEN", flag)
        .env("H5SALVAGE_TEST_PAUSE_AT_OPEN", nth.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// 2, 3 and 4 merges started together into one OUTPUT (which holds worker
/// 0's groups), several trials with fixed seeds: every group a run reports
/// merged is in the final OUTPUT, with worker 0's; a run that does not get
/// the lock in time (`--wait-lock 0`) exits 2 with one line saying why and
/// adds nothing it claims.
#[test]
fn concurrent_merges_lose_nothing() {
    if !have_h5py("concurrent_merges_lose_nothing") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    std::fs::create_dir(&runs).unwrap();
    let workers: Vec<PathBuf> = (0..5)
        .map(|k| {
            let p = runs.join(format!("worker_{k}.h5"));
            worker(&p, &format!("w{k}_"), 6);
            p
        })
        .collect();
    let base = dir.path().join("base.h5");
    let o = Command::new(bin())
        .args(["merge", "-o"])
        .arg(&base)
        .arg(&workers[0])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let base_groups = root_groups(&base);
    assert_eq!(base_groups.len(), 6);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut refused = 0;
    for (trial, (k, wait)) in [(2, "300"), (3, "300"), (4, "300"), (4, "0"), (3, "0")]
        .into_iter()
        .enumerate()
    {
        let tdir = dir.path().join(format!("trial_{trial}"));
        std::fs::create_dir(&tdir).unwrap();
        let out = tdir.join("out.h5");
        std::fs::copy(&base, &out).unwrap();
        let mut order: Vec<usize> = (1..=k).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        let children: Vec<(usize, Child)> = order
            .iter()
            .map(|&w| {
                std::thread::sleep(Duration::from_millis(next() % 15));
                let c = Command::new(bin())
                    .args(["merge", "--json", "--wait-lock", wait, "-o"])
                    .arg(&out)
                    .arg(&workers[w])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                (w, c)
            })
            .collect();
        let final_groups = |out: &Path| root_groups(out);
        let mut claimed = BTreeSet::new();
        let mut expected = base_groups.clone();
        for (w, c) in children {
            let o = wait_bounded(c, Duration::from_secs(300));
            let (stdout, stderr) = text(&o);
            match o.status.code() {
                Some(0) => {
                    let rep: serde_json::Value = serde_json::from_str(&stdout).unwrap();
                    assert_eq!(rep["written"], true, "trial {trial}: {stdout}");
                    for u in rep["inputs"][0]["units"].as_array().unwrap() {
                        assert_eq!(u["result"], "merged", "trial {trial}: {u}");
                        claimed.insert(u["dest"].as_str().unwrap().to_string());
                    }
                    expected.extend((0..6).map(|i| format!("/w{w}_config_{i:04}")));
                }
                Some(2) => {
                    assert_eq!(wait, "0", "trial {trial}: {stderr}");
                    assert_eq!(stderr.lines().count(), 1, "{stderr}");
                    assert!(
                        stderr.contains("in use by another h5salvage run"),
                        "{stderr}"
                    );
                    refused += 1;
                }
                other => panic!("trial {trial}: worker {w}: exit {other:?}: {stderr}"),
            }
        }
        let got = final_groups(&out);
        for g in &claimed {
            assert!(
                got.contains(g),
                "trial {trial}: {g} reported merged, missing"
            );
        }
        assert_eq!(got, expected, "trial {trial}");
        if wait != "0" {
            assert_eq!(claimed.len(), 6 * k, "trial {trial}");
        }
        assert_eq!(leftovers(&tdir), Vec::<String>::new(), "trial {trial}");
        eprintln!(
            "trial {trial}: {k} merges (wait {wait} s): {} groups claimed, all present",
            claimed.len()
        );
    }
    eprintln!("{refused} run(s) refused the lock with --wait-lock 0");
    // The last OUTPUT opens in h5py with every group.
    let out = dir.path().join("trial_2/out.h5");
    let o = python()
        .args([
            "-c",
            "import h5py,sys; f=h5py.File(sys.argv[1],'r'); print(len(f))",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "30");
}

/// A merge killed (SIGKILL) while it holds OUTPUT's lock: while it lives,
/// others wait for it and give up with one line (exit 2); once it is dead
/// the next run takes the lock at once and adds its groups.
#[test]
fn killed_lock_holder_does_not_block_the_next_run() {
    if !have_h5py("killed_lock_holder_does_not_block_the_next_run") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (w1, w2) = (dir.path().join("w1.h5"), dir.path().join("w2.h5"));
    worker(&w1, "a_", 4);
    worker(&w2, "b_", 4);
    let out = dir.path().join("out").join("merged.h5");
    std::fs::create_dir(out.parent().unwrap()).unwrap();
    let flag = dir.path().join("paused");
    let mut holder = paused(
        &[
            "merge".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
            w1.as_os_str(),
        ],
        &flag,
    );
    wait_for(&flag, &mut holder);
    let pid = holder.id();
    // No wait: one line, naming the holder.
    let o = Command::new(bin())
        .args(["merge", "--wait-lock", "0", "-o"])
        .arg(&out)
        .arg(&w2)
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("(pid {pid})")), "{err}");
    // A short wait: the waiting notice, then the reason.
    let t = Instant::now();
    let o = Command::new(bin())
        .args(["salvage", "--wait-lock", "1", "-o"])
        .arg(&out)
        .arg(&w2)
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(t.elapsed() >= Duration::from_secs(1));
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].contains("waiting up to 1 s"), "{err}");
    assert!(lines[1].contains("gave up after waiting 1 s"), "{err}");
    holder.kill().unwrap();
    let st = holder.wait().unwrap();
    assert_eq!(st.signal(), Some(9));
    assert!(!out.exists());
    // The lock file of the dead run remains; its lock does not.
    assert_eq!(leftovers(out.parent().unwrap()).len(), 2, "lock + temp");
    let t = Instant::now();
    let o = Command::new(bin())
        .args(["merge", "--wait-lock", "30", "-o"])
        .arg(&out)
        .arg(&w2)
        .output()
        .unwrap();
    let (stdout, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}{err}");
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(!err.contains("waiting"), "{err}");
    assert!(
        stdout.contains("interrupted run"),
        "stale temp not noted: {stdout}"
    );
    let got = root_groups(&out);
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|g| g.starts_with("/b_")), "{got:?}");
    assert_eq!(leftovers(out.parent().unwrap()), Vec::<String>::new());
}

/// An OUTPUT replaced by a process that ignores the lock while a merge
/// works on its copy: the merge does not rename over it (exit 2, one line),
/// and the other process's file stays.
#[test]
fn merge_never_replaces_an_output_changed_behind_its_back() {
    if !have_h5py("merge_never_replaces_an_output_changed_behind_its_back") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (w1, w2) = (dir.path().join("w1.h5"), dir.path().join("w2.h5"));
    worker(&w1, "a_", 3);
    worker(&w2, "b_", 3);
    let out = dir.path().join("merged.h5");
    let o = Command::new(bin())
        .args(["merge", "-o"])
        .arg(&out)
        .arg(&w1)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    // Paused after copying OUTPUT (the first input it opens is OUTPUT,
    // read back for partial marks).
    let flag = dir.path().join("paused");
    let mut child = paused(
        &[
            "merge".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
            w2.as_os_str(),
        ],
        &flag,
    );
    wait_for(&flag, &mut child);
    // Someone else's file takes OUTPUT's name.
    let other = dir.path().join("other.h5");
    std::fs::copy(&w2, &other).unwrap();
    std::fs::rename(&other, &out).unwrap();
    let replaced = std::fs::read(&out).unwrap();
    std::fs::remove_file(&flag).unwrap();
    let o = wait_bounded(child, Duration::from_secs(120));
    let (stdout, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{stdout}{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("replaced or changed by another process"),
        "{err}"
    );
    assert!(!stdout.contains("added"), "{stdout}");
    assert_eq!(std::fs::read(&out).unwrap(), replaced);
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
}

/// The big file (above the 64 MiB in-memory threshold: mapped), made once
/// per test into `dir`.
fn big_worker(dir: &Path) -> PathBuf {
    let p = dir.join("big_source.h5");
    let st = python()
        .arg(testdata().join("live_worker.py"))
        .arg(&p)
        .args(["--configs", "4", "--pad-mib", "68"])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(std::fs::metadata(&p).unwrap().len() > h5salvage::pipeline::COPY_LIMIT);
    p
}

/// Runs `args` (which name `input`) paused after the input is opened,
/// applies `change` to the input, lets it go on; returns its output.
fn changed_while_read(args: &[&std::ffi::OsStr], input: &Path, change: &dyn Fn(&Path)) -> Output {
    changed_at_open(args, input, change, 1)
}

/// [`changed_while_read`], paused after the `nth` file opened.
fn changed_at_open(
    args: &[&std::ffi::OsStr],
    input: &Path,
    change: &dyn Fn(&Path),
    nth: usize,
) -> Output {
    let flag = input.with_extension("paused");
    let mut child = paused_at(args, &flag, nth);
    wait_for(&flag, &mut child);
    change(input);
    std::fs::remove_file(&flag).unwrap();
    wait_bounded(child, Duration::from_secs(180))
}

fn truncate_to(len: u64) -> impl Fn(&Path) {
    move |p: &Path| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .unwrap()
            .set_len(len)
            .unwrap()
    }
}

/// The run ended with exit 2 and the one-line error naming the new size,
/// not by a signal.
fn assert_changed(o: &Output, now: u64, what: &str) {
    let (stdout, err) = text(o);
    assert_eq!(o.status.signal(), None, "{what}: killed by a signal: {err}");
    assert_eq!(o.status.code(), Some(2), "{what}: {stdout}{err}");
    assert_eq!(err.lines().count(), 1, "{what}: {err}");
    assert!(
        err.contains(&format!(
            "input changed while being read: it is now {now} bytes"
        )),
        "{what}: {err}"
    );
    assert!(stdout.is_empty(), "{what}: a report was printed: {stdout}");
}

/// A mapped input truncated by another process after it was mapped (to
/// nothing, and to half: the cut then lies in data salvage reads late)
/// makes `scan`, `salvage` and `merge` fail with one line, exit 2, no
/// OUTPUT and nothing left beside it; the same file unchanged is salvaged.
#[test]
fn mapped_input_truncated_while_read_is_an_error_not_a_signal() {
    if !have_h5py("mapped_input_truncated_while_read_is_an_error_not_a_signal") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let big = big_worker(dir.path());
    let size = std::fs::metadata(&big).unwrap().len();
    let outdir = dir.path().join("out");
    std::fs::create_dir(&outdir).unwrap();
    let input = dir.path().join("input.h5");
    let out = outdir.join("saved.h5");
    let cases: [(&str, u64); 4] = [
        ("scan", 0),
        ("scan", size / 2),
        ("salvage", 0),
        ("salvage", size / 2),
    ];
    for (cmd, len) in cases {
        std::fs::copy(&big, &input).unwrap();
        let args: Vec<&std::ffi::OsStr> = match cmd {
            "scan" => vec!["scan".as_ref(), input.as_os_str()],
            _ => vec![
                "salvage".as_ref(),
                input.as_os_str(),
                "-o".as_ref(),
                out.as_os_str(),
            ],
        };
        let o = changed_while_read(&args, &input, &truncate_to(len));
        assert_changed(&o, len, &format!("{cmd} cut to {len}"));
        assert!(!out.exists());
        assert_eq!(leftovers(&outdir), Vec::<String>::new());
    }
    // merge: the input is an error, nothing is written.
    std::fs::copy(&big, &input).unwrap();
    let merged = outdir.join("merged.h5");
    let o = changed_while_read(
        &[
            "merge".as_ref(),
            "--json".as_ref(),
            "-o".as_ref(),
            merged.as_os_str(),
            input.as_os_str(),
        ],
        &input,
        &truncate_to(size / 2),
    );
    let (stdout, err) = text(&o);
    assert_eq!(o.status.signal(), None, "{err}");
    assert_eq!(o.status.code(), Some(2), "{stdout}{err}");
    let rep: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let e = rep["inputs"][0]["error"].as_str().unwrap_or_default();
    assert!(
        e.contains(&format!("it is now {} bytes", size / 2)),
        "{rep}"
    );
    assert!(!merged.exists());
    assert_eq!(leftovers(&outdir), Vec::<String>::new());
    // merge into an existing OUTPUT, the input cut while its groups are
    // written (third file opened: OUTPUT read back, the input inventoried,
    // the input read again to write): the merge stops, OUTPUT as it was.
    let small = dir.path().join("small.h5");
    worker(&small, "s_", 2);
    let o = Command::new(bin())
        .args(["merge", "-o"])
        .arg(&merged)
        .arg(&small)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let before = std::fs::read(&merged).unwrap();
    std::fs::copy(&big, &input).unwrap();
    let o = changed_at_open(
        &[
            "merge".as_ref(),
            "-j".as_ref(),
            "1".as_ref(),
            "-o".as_ref(),
            merged.as_os_str(),
            input.as_os_str(),
        ],
        &input,
        &truncate_to(size / 2),
        3,
    );
    let (stdout, err) = text(&o);
    assert_eq!(o.status.signal(), None, "{err}");
    assert_eq!(o.status.code(), Some(2), "{stdout}{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "input changed while being read: it is now {} bytes",
            size / 2
        )),
        "{err}"
    );
    assert!(stdout.is_empty(), "{stdout}");
    assert!(std::fs::read(&merged).unwrap() == before, "OUTPUT changed");
    assert_eq!(leftovers(&outdir), Vec::<String>::new());
    // Unchanged (paused and resumed all the same): salvaged whole.
    std::fs::copy(&big, &input).unwrap();
    let args = [
        "salvage".as_ref(),
        input.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ];
    let o = changed_while_read(&args, &input, &|_| {});
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(out.exists());
}

/// A copied (small) input that shrinks or grows while it is read: `scan`
/// and `salvage` say so the same way, exit 2, no OUTPUT.
#[test]
fn copied_input_changed_while_read_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let src = testdata().join("worker_earliest.h5");
    let size = std::fs::metadata(&src).unwrap().len();
    let input = dir.path().join("input.h5");
    let out = dir.path().join("saved.h5");
    let grow = |p: &Path| {
        let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
        f.write_all(&[0u8; 1000]).unwrap();
    };
    let cut = truncate_to(size / 3);
    type Change<'a> = &'a dyn Fn(&Path);
    let cases: [(&str, Change, u64); 4] = [
        ("scan", &cut, size / 3),
        ("scan", &grow, size + 1000),
        ("salvage", &cut, size / 3),
        ("salvage", &grow, size + 1000),
    ];
    for (cmd, change, now) in cases {
        std::fs::copy(&src, &input).unwrap();
        let args: Vec<&std::ffi::OsStr> = match cmd {
            "scan" => vec!["scan".as_ref(), input.as_os_str()],
            _ => vec![
                "salvage".as_ref(),
                input.as_os_str(),
                "-o".as_ref(),
                out.as_os_str(),
            ],
        };
        let o = changed_while_read(&args, &input, change);
        assert_changed(&o, now, &format!("{cmd} to {now} bytes"));
        assert!(!out.exists());
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    }
}

/// A live h5py writer (a child holding the file open, waiting on stdin):
/// scan and salvage say the file is still open for writing (text and
/// JSON); merge skips it unless --include-open, which merges the snapshot.
/// Once the writer closed the file, nothing is said.
#[test]
fn file_open_in_a_live_writer_is_reported_and_skipped_by_merge() {
    if !have_h5py("file_open_in_a_live_writer_is_reported_and_skipped_by_merge") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.h5");
    let done = dir.path().join("done.h5");
    worker(&done, "d_", 3);
    let mut writer = python()
        .arg(testdata().join("live_worker.py"))
        .arg(&live)
        .args(["--configs", "3", "--prefix", "l_", "--hold"])
        .env_remove("HDF5_USE_FILE_LOCKING")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(writer.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let run = |args: &[&std::ffi::OsStr]| {
        let o = Command::new(bin()).args(args).output().unwrap();
        let (a, b) = text(&o);
        (o.status.code(), a, b)
    };
    const OPEN: &str = "still open for writing by another process: this is a snapshot";
    let (_, stdout, _) = run(&["scan".as_ref(), live.as_os_str()]);
    assert!(stdout.contains(OPEN), "{stdout}");
    assert!(stdout.contains(&format!("verdict is of a snapshot: {OPEN}")));
    let (_, stdout, _) = run(&["scan".as_ref(), "--json".as_ref(), live.as_os_str()]);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["open_for_write"], true);
    let (_, stdout, _) = run(&["scan".as_ref(), "--json".as_ref(), done.as_os_str()]);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["open_for_write"], false);
    let saved = dir.path().join("saved.h5");
    let (code, stdout, err) = run(&[
        "salvage".as_ref(),
        live.as_os_str(),
        "-o".as_ref(),
        saved.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{stdout}{err}");
    assert!(stdout.contains(OPEN), "{stdout}");
    // merge: skipped by default.
    let m1 = dir.path().join("m1.h5");
    let (code, stdout, err) = run(&[
        "merge".as_ref(),
        "--json".as_ref(),
        "-o".as_ref(),
        m1.as_os_str(),
        live.as_os_str(),
        done.as_os_str(),
    ]);
    assert_eq!(code, Some(1), "{stdout}{err}");
    let rep: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let of = |name: &str| {
        rep["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["input"].as_str().unwrap().ends_with(name))
            .unwrap()
            .clone()
    };
    assert_eq!(of("live.h5")["verdict"], "skipped (open for writing)");
    assert_eq!(of("live.h5")["open_for_write"], true);
    assert_eq!(of("done.h5")["verdict"], "complete");
    let got = root_groups(&m1);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().all(|g| g.starts_with("/d_")), "{got:?}");
    // --include-open: the snapshot is merged.
    let m2 = dir.path().join("m2.h5");
    let (code, stdout, err) = run(&[
        "merge".as_ref(),
        "--include-open".as_ref(),
        "-o".as_ref(),
        m2.as_os_str(),
        live.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{stdout}{err}");
    assert!(stdout.contains(OPEN), "{stdout}");
    let got = root_groups(&m2);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().all(|g| g.starts_with("/l_")), "{got:?}");
    // The writer closes the file: no longer reported.
    writer.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    assert!(writer.wait().unwrap().success());
    let (code, stdout, _) = run(&["scan".as_ref(), live.as_os_str()]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(!stdout.contains("still open"), "{stdout}");
}

/// Three `salvage` runs of different inputs into one OUTPUT, started
/// together (no --force): exactly one reports success, the others exit 2
/// ("output exists"), and OUTPUT is the successful run's (its
/// `h5salvage_source`).
#[test]
fn concurrent_salvages_report_success_only_for_their_own_output() {
    if !have_h5py("concurrent_salvages_report_success_only_for_their_own_output") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let inputs: Vec<PathBuf> = (0..3)
        .map(|k| {
            let p = dir.path().join(format!("w{k}.h5"));
            worker(&p, &format!("s{k}_"), 4);
            p
        })
        .collect();
    let out = dir.path().join("out").join("saved.h5");
    std::fs::create_dir(out.parent().unwrap()).unwrap();
    let children: Vec<Child> = inputs
        .iter()
        .map(|i| {
            Command::new(bin())
                .args(["salvage", "-o"])
                .arg(&out)
                .arg(i)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut winner = None;
    for (k, c) in children.into_iter().enumerate() {
        let o = wait_bounded(c, Duration::from_secs(300));
        let (stdout, err) = text(&o);
        match o.status.code() {
            Some(0) => {
                assert!(winner.is_none(), "two runs reported success");
                winner = Some(k);
            }
            Some(2) => {
                assert!(err.lines().any(|l| l.contains("output exists")), "{err}");
                assert!(stdout.is_empty(), "{stdout}");
            }
            other => panic!("run {k}: exit {other:?}: {stdout}{err}"),
        }
    }
    let k = winner.expect("one run must succeed");
    let got = root_groups(&out);
    assert_eq!(got.len(), 5, "{got:?}"); // init + 4 configs
    assert!(got.contains(&format!("/s{k}_config_0000")), "{got:?}");
    let inv = h5salvage::scan_path(&out).unwrap();
    let root = inv.object("/").unwrap();
    assert!(root.attributes.iter().any(|a| a.name == "h5salvage_source"));
    assert_eq!(leftovers(out.parent().unwrap()), Vec::<String>::new());
}
