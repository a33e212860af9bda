//! The native writer on damaged inputs (truncated, zeroed pages, flipped
//! header bytes, killed workers and appenders, stray and placed chunks):
//! each is salvaged (or merged) twice, by the native writer and with
//! `H5SALVAGE_WRITER=libhdf5`, and the two outputs must be the same file to
//! h5py: objects, values, dtypes, links and every attribute including the
//! h5salvage_* marks (compare_h5.py --marks, both ways), with the same
//! report. The native one must have been taken (`H5SALVAGE_WRITER_LOG`),
//! be read by h5dump (libhdf5 1.10) and be healthy to our own scan.
//! Everything that runs libhdf5 or h5py on a damaged file has a timeout.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use common::{
    check_python, h5dump_reads, have_h5py, have_tool, py_script, python_timed, scan_healthy,
    testdata, worker,
};

/// Seconds any one child may take (libhdf5 can loop on damaged files).
const LIMIT: &str = "300";

/// What one run of `h5salvage` gave: exit code, stdout, stderr.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// `h5salvage ARGS` under `timeout`, the writer log on; `libhdf5` forces
/// that backend.
fn h5salvage(args: &[&std::ffi::OsStr], libhdf5: bool) -> Run {
    let o = common::h5salvage_with_writer(args, libhdf5);
    Run {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// compare_h5.py A B --marks, both ways: the same objects, values and
/// attributes (h5salvage_* included) on both sides.
fn same_files(a: &Path, b: &Path, what: &str) {
    for (x, y) in [(a, b), (b, a)] {
        let o = python_timed(600)
            .arg(py_script("compare_h5.py"))
            .arg(x)
            .arg(y)
            .arg("--marks")
            .output()
            .expect("python3");
        assert!(
            o.status.success(),
            "{what}: {} vs {}:\n{}{}",
            x.display(),
            y.display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// A salvage report without the output's name (which differs).
fn report(text: &str, what: &str) -> Value {
    let mut v: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: report: {e}: {text}"));
    common::comparable_report(&mut v);
    v
}

/// Checks on an output the native writer wrote; `dump`: h5dump must read
/// it (false where the input holds filters libhdf5 1.10 lacks).
fn native_output_ok(out: &Path, dump: bool) {
    scan_healthy(out);
    if dump
        && have_tool(
            "h5dump",
            "native outputs of damaged inputs read by libhdf5 1.10",
        )
    {
        h5dump_reads(out);
    }
}

/// h5dump reads all of `input` (filters libhdf5 1.10 lacks, such as lzf,
/// stop it on the input too).
fn dumpable(input: &Path) -> bool {
    Command::new("timeout")
        .arg(LIMIT)
        .arg("h5dump")
        .arg(input)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// How a salvage of one damaged input went.
#[derive(Debug, PartialEq)]
enum Taken {
    Native,
    Libhdf5(String),
    NoOutput,
}

/// Salvages `input` (with `flags`) with both writers into `dir`; the
/// outputs and reports must agree. Says which writer the default run took.
/// `dump`: see [`native_output_ok`].
fn salvage_both(input: &Path, flags: &[&str], dir: &Path, dump: bool) -> Taken {
    let what = input.display().to_string();
    let stem = input.file_stem().unwrap().to_string_lossy().to_string();
    let nat = dir.join(format!("{stem}.native.h5"));
    let lib = dir.join(format!("{stem}.libhdf5.h5"));
    let run = |out: &Path, libhdf5: bool| {
        let mut args: Vec<&std::ffi::OsStr> = vec!["salvage".as_ref(), "--json".as_ref()];
        args.extend(flags.iter().map(std::ffi::OsStr::new));
        args.extend([input.as_os_str(), "-o".as_ref(), out.as_os_str()]);
        h5salvage(&args, libhdf5)
    };
    let (n, l) = (run(&nat, false), run(&lib, true));
    assert_eq!(
        n.code, l.code,
        "{what}: exit codes\n{}\n{}",
        n.stderr, l.stderr
    );
    assert!(
        matches!(n.code, Some(0 | 1 | 3)),
        "{what}: exit {:?}: {}",
        n.code,
        n.stderr
    );
    if n.code == Some(3) {
        assert!(!nat.exists() && !lib.exists(), "{what}");
        return Taken::NoOutput;
    }
    assert_eq!(
        report(&n.stdout, &what),
        report(&l.stdout, &what),
        "{what}: the reports differ"
    );
    same_files(&lib, &nat, &what);
    if n.stderr.contains("writer: native:") {
        native_output_ok(&nat, dump);
        return Taken::Native;
    }
    let why = n
        .stderr
        .lines()
        .find(|l| l.contains("writer: libhdf5 from"))
        .unwrap_or_else(|| panic!("{what}: no writer log: {}", n.stderr));
    Taken::Libhdf5(why.to_string())
}

/// The damaged variants of sweep_damage.py (truncated at 10-99 %, zeroed
/// pages, one flipped byte past metadata signatures) written to `dir`.
fn variants(orig: &Path, dir: &Path, kinds: &str) -> Vec<PathBuf> {
    let text = check_python(&[
        py_script("damage_variants.py").as_os_str(),
        orig.as_os_str(),
        dir.as_os_str(),
        "--only".as_ref(),
        kinds.as_ref(),
    ]);
    text.lines().map(PathBuf::from).collect()
}

/// `orig` with 20 bytes past its first 2 KiB flipped (xor 0x5a) at
/// pseudo-random places, as tests/salvage.rs damages it: on
/// worker_earliest.h5 one lands in a compound datatype's member offsets,
/// which libhdf5 refuses (the object is lost there; the native writer must
/// not write it either).
fn flipped(orig: &Path, dir: &Path) -> PathBuf {
    let mut b = std::fs::read(orig).unwrap();
    let n = b.len() as u64;
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..20 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        b[(2048 + rng % (n - 2048)) as usize] ^= 0x5a;
    }
    let stem = orig.file_stem().unwrap().to_string_lossy();
    let out = dir.join(format!("{stem}.flip20.h5"));
    std::fs::write(&out, b).unwrap();
    out
}

/// A file written by killed_worker.py or killed_appender.py (testdata/),
/// which may end in its own SIGKILL.
fn generated(script: &str, out: &Path, args: &[&str]) -> PathBuf {
    let o = python_timed(600)
        .arg(testdata().join(script))
        .arg(out)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        o.status.success() || o.status.code() == Some(137) || {
            use std::os::unix::process::ExitStatusExt;
            o.status.signal() == Some(9)
        },
        "{script} {args:?}: {:?} {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    out.to_path_buf()
}

/// Truncated, zeroed and flipped variants of the worker fixtures and of
/// fixtures with resized, filtered, and many-member datasets: wherever
/// the native writer takes them, its output is the libhdf5 backend's. The
/// worker variants must all be native (what they hold is its subset).
#[test]
fn damaged_variants_are_written_natively_and_exactly() {
    if !have_h5py("damaged_variants_are_written_natively_and_exactly") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("worker_earliest.h5", "trunc,zero,flip", true),
        ("worker_latest.h5", "trunc,zero,flip", true),
        ("resized_latest.h5", "trunc,flip", false),
        ("filters_earliest.h5", "trunc", false),
        ("many_members_earliest.h5", "trunc", false),
    ];
    let mut native = 0;
    for (name, kinds, all_native) in cases {
        let orig = testdata().join(name);
        let dump = dumpable(&orig);
        let flip = flipped(&orig, dir.path());
        let mut all = variants(&orig, dir.path(), kinds);
        all.push(flip.clone());
        for v in all {
            match salvage_both(&v, &[], dir.path(), dump) {
                Taken::Native => native += 1,
                Taken::Libhdf5(why) => {
                    // Among the sweep's worker variants only an input
                    // without a superblock leaves the native writer (20
                    // random flips may make anything: a second hard link,
                    // a datatype libhdf5 refuses).
                    assert!(
                        !all_native || v == flip || why.contains("no superblock"),
                        "{}: {why}",
                        v.display()
                    );
                }
                Taken::NoOutput => {}
            }
        }
    }
    assert!(native >= 40, "only {native} variants were written natively");
}

/// Killed workers (never flushed, flushed now and then) and killed
/// appenders (chunks with no index: stray under /lost+found, or placed by
/// allocation order with a template; unfiltered ones cut from the
/// allocation chain) are written natively, exactly as libhdf5 writes them.
#[test]
fn killed_writers_are_written_natively_and_exactly() {
    if !have_h5py("killed_writers_are_written_natively_and_exactly") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let w = "killed_worker.py";
    let a = "killed_appender.py";
    let worker = |name: &str, args: &[&str]| generated(w, &d.join(name), args);
    let appender = |name: &str, args: &[&str]| generated(a, &d.join(name), args);
    let kill = ["--configs", "200", "--kill-self-after", "150"];
    let cases: Vec<(PathBuf, Vec<String>)> = vec![
        (
            worker("kw_e.h5", &[&["--libver", "earliest"][..], &kill].concat()),
            vec![],
        ),
        (
            worker("kw_l.h5", &[&["--libver", "latest"][..], &kill].concat()),
            vec![],
        ),
        (
            worker(
                "kw_flushed.h5",
                &[&["--libver", "earliest", "--flush-every", "40"][..], &kill].concat(),
            ),
            vec![],
        ),
        (
            appender(
                "ap_gz.h5",
                &["--writer", "h5py", "--kill-after-steps", "3000"],
            ),
            vec![],
        ),
        (
            appender(
                "ap_latest.h5",
                &[
                    "--writer",
                    "h5py",
                    "--libver",
                    "latest",
                    "--unlimited",
                    "all",
                    "--kill-after-steps",
                    "3000",
                ],
            ),
            vec![],
        ),
        (
            appender(
                "ap_fletcher.h5",
                &[
                    "--writer",
                    "h5py",
                    "--filter",
                    "shuffle-gzip-fletcher32",
                    "--rank",
                    "2",
                    "--kill-after-steps",
                    "3000",
                ],
            ),
            vec![],
        ),
    ];
    let gz_t = appender("ap_gz_t.h5", &["--writer", "h5py", "--steps", "20"]);
    let none = appender(
        "ap_none.h5",
        &[
            "--writer",
            "h5py",
            "--filter",
            "none",
            "--kill-after-steps",
            "3000",
        ],
    );
    let none_t = appender(
        "ap_none_t.h5",
        &["--writer", "h5py", "--filter", "none", "--steps", "20"],
    );
    let t = |p: &Path| vec!["--template".to_string(), p.display().to_string()];
    let mut cases = cases;
    cases.push((cases[3].0.clone(), t(&gz_t)));
    cases.push((none.clone(), t(&none_t)));
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    for (i, (input, flags)) in cases.iter().enumerate() {
        // One output directory per case: the same input is salvaged twice.
        let o = out.join(i.to_string());
        std::fs::create_dir_all(&o).unwrap();
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let taken = salvage_both(input, &flags, &o, true);
        assert_eq!(taken, Taken::Native, "{} {flags:?}", input.display());
    }
}

/// A merge of bench-like healthy workers with a killed one and a
/// truncated one stays in the native writer from the first input to the
/// last, and its output is the libhdf5 backend's.
#[test]
fn merge_of_healthy_and_damaged_workers_stays_native_and_exact() {
    if !have_h5py("merge_of_healthy_and_damaged_workers_stays_native_and_exact") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for libver in ["earliest", "latest"] {
        let mut inputs = Vec::new();
        for i in 0..2u32 {
            inputs.push(worker(d, libver, 100, i * 100));
        }
        inputs.push(generated(
            "killed_worker.py",
            &d.join(format!("k_{libver}.h5")),
            &[
                "--libver",
                libver,
                "--configs",
                "300",
                "--kill-self-after",
                "200",
            ],
        ));
        // The first healthy one cut to 60 % of its size (as bench/run).
        let bytes = std::fs::read(&inputs[0]).unwrap();
        let cut = d.join(format!("t_{libver}.h5"));
        std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10]).unwrap();
        inputs.push(cut);
        let nat = d.join(format!("merged_{libver}.native.h5"));
        let lib = d.join(format!("merged_{libver}.libhdf5.h5"));
        let merge = |out: &Path, libhdf5: bool| {
            let mut args: Vec<&std::ffi::OsStr> = vec!["merge".as_ref()];
            args.extend(inputs.iter().map(|p| p.as_os_str()));
            args.extend(["-o".as_ref(), out.as_os_str()]);
            h5salvage(&args, libhdf5)
        };
        let (n, l) = (merge(&nat, false), merge(&lib, true));
        assert_eq!(n.code, l.code, "{}\n{}", n.stderr, l.stderr);
        assert!(matches!(n.code, Some(0 | 1)), "{:?}: {}", n.code, n.stderr);
        assert!(!n.stderr.contains("libhdf5 from"), "{libver}: {}", n.stderr);
        for input in &inputs {
            let name = input.display().to_string();
            assert!(
                n.stderr.contains(&format!("writer: native: {name}")),
                "{name}: {}",
                n.stderr
            );
        }
        same_files(&lib, &nat, &format!("merge {libver}"));
        native_output_ok(&nat, true);
    }
}

/// A contiguous dataset cut by a truncation: the native writer writes the
/// elements present and leaves the rest as libhdf5 does when it allocates
/// the storage at that write: the fill value where one is defined and
/// written at allocation or if set, zeros when it is never written or
/// not defined.
#[test]
fn cut_contiguous_data_reads_as_libhdf5_leaves_it() {
    if !have_h5py("cut_contiguous_data_reads_as_libhdf5_leaves_it") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let code = r#"
import sys, h5py, numpy as np
out, fill_time, fill = sys.argv[1], sys.argv[2], sys.argv[3]
with h5py.File(out, "w", libver="earliest") as f:
    f.create_group("g").attrs["a"] = 1
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.CONTIGUOUS)
    if fill != "none":
        dcpl.set_fill_value(np.array(int(fill), dtype="<i4"))
    if fill_time != "default":
        dcpl.set_fill_time({"never": h5py.h5d.FILL_TIME_NEVER, "alloc": h5py.h5d.FILL_TIME_ALLOC}[fill_time])
    space = h5py.h5s.create_simple((100000,))
    d = h5py.h5d.create(f.id, b"d", h5py.h5t.STD_I32LE, space, dcpl=dcpl)
    d.write(h5py.h5s.ALL, h5py.h5s.ALL, np.arange(1, 100001, dtype="<i4"))
"#;
    let last = r#"
import sys, h5py
d = h5py.File(sys.argv[1], "r")["d"]
print(int(d[1000]), int(d[-1]), d.attrs["h5salvage_status"])
"#;
    for (fill_time, fill, tail) in [
        ("default", "7", "7"),
        ("alloc", "7", "7"),
        ("never", "7", "0"),
        ("default", "none", "0"),
    ] {
        let whole = dir.path().join(format!("{fill_time}_{fill}.h5"));
        check_python(&[
            "-c".as_ref(),
            code.as_ref(),
            whole.as_os_str(),
            fill_time.as_ref(),
            fill.as_ref(),
        ]);
        // Cut 150 000 bytes short: the dataset (400 000 bytes, last in the
        // file) loses its last 37 500 elements.
        let bytes = std::fs::read(&whole).unwrap();
        let cut = dir.path().join(format!("cut_{fill_time}_{fill}.h5"));
        std::fs::write(&cut, &bytes[..bytes.len() - 150_000]).unwrap();
        let o = dir.path().join(format!("o_{fill_time}_{fill}"));
        std::fs::create_dir_all(&o).unwrap();
        let taken = salvage_both(&cut, &[], &o, true);
        assert_eq!(taken, Taken::Native, "{fill_time} {fill}");
        let nat = o.join(format!("cut_{fill_time}_{fill}.native.h5"));
        let got = check_python(&["-c".as_ref(), last.as_ref(), nat.as_os_str()]);
        assert_eq!(
            got.trim(),
            format!("1001 {tail} partial"),
            "{fill_time} {fill}"
        );
    }
}
