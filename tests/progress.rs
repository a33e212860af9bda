//! Progress bars: drawn on a terminal (a pty made by `script`), never on a
//! pipe and never with `--json`.

use std::path::Path;
use std::process::Command;

/// h5py builds the input; `script` (util-linux) provides the terminal.
/// Missing either fails the test under CI.
fn have_tools() -> bool {
    let h5py = Command::new("python3")
        .args(["-c", "import h5py, numpy"])
        .status()
        .is_ok_and(|s| s.success());
    let script = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !(h5py && script) {
        assert!(
            std::env::var_os("CI").is_none(),
            "h5py and script are required in CI"
        );
        eprintln!("h5py or script missing: progress not checked");
    }
    h5py && script
}

/// A healthy file with 6001 objects.
fn many_objects(path: &Path) {
    let code = format!(
        "import h5py, numpy as np\n\
         with h5py.File({:?}, 'w') as f:\n\
         \x20   for i in range(3000):\n\
         \x20       g = f.create_group(f'config_{{i:05d}}')\n\
         \x20       g.create_dataset('x', data=np.arange(10))\n",
        path.display().to_string()
    );
    let st = Command::new("python3")
        .arg("-c")
        .arg(code)
        .status()
        .unwrap();
    assert!(st.success());
}

fn on_a_terminal(args: &str) -> String {
    let bin = env!("CARGO_BIN_EXE_h5salvage");
    // No delay before the bar: it must appear however fast the run is.
    let out = Command::new("script")
        .args(["-qec", &format!("{bin} {args}"), "/dev/null"])
        .env("H5SALVAGE_PROGRESS_DELAY_MS", "0")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn salvage_draws_a_bar_on_a_terminal_only() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("many.h5");
    many_objects(&input);
    let out = dir.path().join("out.h5");
    let args = format!("salvage {} -o {} --force", input.display(), out.display());
    let tty = on_a_terminal(&args);
    assert!(tty.contains("writing objects ["), "{tty}");
    assert!(tty.contains("/6001"), "{tty}");
    // --json on a terminal: no bar.
    let tty_json = on_a_terminal(&format!("{args} --json"));
    assert!(!tty_json.contains("writing objects"), "{tty_json}");
    assert!(tty_json.contains("\"recovered\": 6001"), "{tty_json}");
    // A pipe: no bar, no control characters.
    let piped = Command::new(env!("CARGO_BIN_EXE_h5salvage"))
        .env("H5SALVAGE_PROGRESS_DELAY_MS", "0")
        .args(["salvage", "--force", "-o"])
        .arg(&out)
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(piped.status.code(), Some(0));
    assert!(piped.stderr.is_empty(), "{:?}", piped.stderr);
    assert!(!piped.stdout.contains(&0x1b));
}

#[test]
fn merge_draws_a_bar_on_a_terminal_only() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    std::fs::create_dir(&runs).unwrap();
    many_objects(&runs.join("worker_1.h5"));
    for i in 2..=4 {
        std::fs::copy(
            runs.join("worker_1.h5"),
            runs.join(format!("worker_{i}.h5")),
        )
        .unwrap();
    }
    let out = dir.path().join("results.h5");
    let tty = on_a_terminal(&format!(
        "merge -j 1 -o {} {}",
        out.display(),
        runs.display()
    ));
    assert!(tty.contains("merging inputs ["), "{tty}");
    assert!(tty.contains("/4"), "{tty}");
    // Nothing on a pipe.
    std::fs::remove_file(&out).unwrap();
    let piped = Command::new(env!("CARGO_BIN_EXE_h5salvage"))
        .env("H5SALVAGE_PROGRESS_DELAY_MS", "0")
        .args(["merge", "-j", "1", "-o"])
        .arg(&out)
        .arg(&runs)
        .output()
        .unwrap();
    assert_eq!(piped.status.code(), Some(0));
    assert!(piped.stderr.is_empty(), "{:?}", piped.stderr);
}
