//! Carving throughput (issue 4 / issue 7 benchmark).
//!
//! ```sh
//! cargo run --release --example carve_bench -- FILE [--bytes N] [--reps R] [--carve-bytes N]
//! ```
//!
//! Reads FILE into memory, repeats it in memory until the buffer holds at
//! least `--bytes` (default 1 GiB), and times, each `--reps` times (default
//! 3, the median is reported):
//!
//! - `memmem`: one `memchr::memmem::find_iter` pass for one 4-byte
//!   signature (`OHDR`), the memory-bandwidth reference;
//! - `find_signatures`: the signature pass over all 19 signatures;
//! - `carve`: the whole `h5salvage::carve::carve` (signature pass,
//!   validation, reconstruction) over the first `--carve-bytes` of the same
//!   buffer (default: all of it).
//!
//! Prints one human line per measurement (median wall time, and the median
//! CPU time of all threads) and, last, one JSON line.

use h5salvage::read::timing::process_cpu_s;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median wall time, median CPU time (all threads) and the last result.
fn time<T>(reps: usize, mut f: impl FnMut() -> T) -> (f64, f64, T) {
    let mut times = Vec::with_capacity(reps);
    let mut cpus = Vec::with_capacity(reps);
    let mut last = None;
    for _ in 0..reps {
        let (t, c) = (Instant::now(), process_cpu_s());
        let out = std::hint::black_box(f());
        times.push(t.elapsed().as_secs_f64());
        cpus.push(process_cpu_s() - c);
        last = Some(out);
    }
    (median(times), median(cpus), last.expect("reps >= 1"))
}

fn parse_u64(s: Option<String>, what: &str) -> u64 {
    s.and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{what} needs a number"))
}

fn main() {
    let mut file = None;
    let mut target: u64 = 1 << 30;
    let mut carve_bytes: Option<u64> = None;
    let mut reps: usize = 3;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bytes" => target = parse_u64(args.next(), "--bytes"),
            "--carve-bytes" => carve_bytes = Some(parse_u64(args.next(), "--carve-bytes")),
            "--reps" => reps = parse_u64(args.next(), "--reps").max(1) as usize,
            _ => file = Some(a),
        }
    }
    let file = file.expect("usage: carve_bench FILE [--bytes N] [--reps R] [--carve-bytes N]");
    let one = std::fs::read(&file).expect("read FILE");
    assert!(!one.is_empty(), "FILE is empty");
    let copies = target.div_ceil(one.len() as u64).max(1) as usize;
    let mut buf = Vec::with_capacity(copies * one.len());
    for _ in 0..copies {
        buf.extend_from_slice(&one);
    }
    let gb = buf.len() as f64 / 1e9;
    eprintln!(
        "buffer: {} bytes ({copies} copies of {file}, {} bytes)",
        buf.len(),
        one.len()
    );

    // Warm the pages and the searchers once.
    let _ = memchr::memmem::find_iter(&buf, b"OHDR").count();
    let _ = h5salvage::carve::find_signatures(&one);

    let (t_memmem, c_memmem, n_memmem) =
        time(reps, || memchr::memmem::find_iter(&buf, b"OHDR").count());
    println!(
        "memmem OHDR      {t_memmem:8.3} s  {:6.2} GB/s  {n_memmem} hits  (CPU {c_memmem:.3} s)",
        gb / t_memmem
    );
    let (t_sig, c_sig, hits) = time(reps, || h5salvage::carve::find_signatures(&buf).len());
    println!(
        "find_signatures  {t_sig:8.3} s  {:6.2} GB/s  {hits} hits  ({:.2} x memmem, CPU {c_sig:.3} s)",
        gb / t_sig,
        t_memmem / t_sig
    );
    let cb = carve_bytes.map_or(buf.len(), |n| (n as usize).min(buf.len()));
    let cgb = cb as f64 / 1e9;
    let (t_carve, c_carve, objects) = time(reps, || {
        h5salvage::carve::carve(&file, &buf[..cb]).objects.len()
    });
    println!(
        "carve            {t_carve:8.3} s  {:6.2} GB/s  {objects} objects over {cb} bytes  ({:.2} x memmem, CPU {c_carve:.3} s)",
        cgb / t_carve,
        (cgb / t_carve) / (gb / t_memmem)
    );
    println!(
        "{}",
        serde_json::json!({
            "file": file,
            "file_bytes": one.len(),
            "buffer_bytes": buf.len(),
            "reps": reps,
            "memmem_s": t_memmem,
            "memmem_gbps": gb / t_memmem,
            "memmem_hits": n_memmem,
            "find_signatures_s": t_sig,
            "find_signatures_gbps": gb / t_sig,
            "find_signatures_hits": hits,
            "carve_bytes": cb,
            "carve_s": t_carve,
            "carve_gbps": cgb / t_carve,
            "memmem_cpu_s": c_memmem,
            "find_signatures_cpu_s": c_sig,
            "carve_cpu_s": c_carve,
            "carve_objects": objects,
        })
    );
}
