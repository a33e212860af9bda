//! Progress bars: drawn on a terminal (a pty made by `script`), never on a
//! pipe and never with `--json`.

mod common;

use common::{bin, have_h5py, have_tool, python};

use std::path::Path;
use std::process::Command;

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
    let st = python().arg("-c").arg(code).status().unwrap();
    assert!(st.success());
}

fn on_a_terminal(args: &str) -> String {
    let bin = bin();
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
    if !(have_h5py("salvage_draws_a_bar_on_a_terminal_only")
        && have_tool("script", "salvage_draws_a_bar_on_a_terminal_only"))
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("many.h5");
    many_objects(&input);
    let out = dir.path().join("out.h5");
    let args = format!("salvage {} -o {} --force", input.display(), out.display());
    let tty = on_a_terminal(&args);
    // Salvaged as the walk goes (issue 15): the count has no total.
    assert!(tty.contains("writing objects: "), "{tty}");
    // --json on a terminal: no bar.
    let tty_json = on_a_terminal(&format!("{args} --json"));
    assert!(!tty_json.contains("writing objects"), "{tty_json}");
    assert!(tty_json.contains("\"recovered\": 6001"), "{tty_json}");
    // A pipe: no bar, no control characters.
    let piped = Command::new(bin())
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
    if !(have_h5py("merge_draws_a_bar_on_a_terminal_only")
        && have_tool("script", "merge_draws_a_bar_on_a_terminal_only"))
    {
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
    let piped = Command::new(bin())
        .env("H5SALVAGE_PROGRESS_DELAY_MS", "0")
        .args(["merge", "-j", "1", "-o"])
        .arg(&out)
        .arg(&runs)
        .output()
        .unwrap();
    assert_eq!(piped.status.code(), Some(0));
    assert!(piped.stderr.is_empty(), "{:?}", piped.stderr);
}
