//! The decode floor of a data-heavy file (issue 15): what verifying every
//! chunk costs on this machine, with nothing written.
//!
//! ```sh
//! cargo run --release --example decode_floor -- FILE [--reps R]
//! ```
//!
//! Walks FILE as `salvage` does (no carving), then `--reps` times (default
//! 5, after one untimed run) verifies every listed chunk of every dataset
//! with `h5salvage::read::decode_all`: the same checks, decoder and
//! per-thread buffers as `salvage`, on all the threads of the rayon pool,
//! keeping nothing. Prints one human line and, last, one JSON line: the
//! chunks, stored and decoded bytes, and the median wall time and CPU time
//! (all threads) of the decoding alone. `bench/run` turns the CPU time
//! divided by the number of cores into the floor any `salvage` that
//! verifies every chunk has on this machine.

use h5salvage::read::timing::process_cpu_s as cpu_now;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut file = None;
    let mut reps = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => {
                reps = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&r| r > 0)
                    .expect("--reps needs a positive number")
            }
            _ => file = Some(a),
        }
    }
    let file = file.expect("usage: decode_floor FILE [--reps R]");
    let input = h5salvage::Input::open(std::path::Path::new(&file)).expect("cannot open FILE");
    let inv = input
        .inventory(&file, h5salvage::CarveMode::Never)
        .expect("FILE changed while it was read");
    let image = inv.image(input.bytes());
    let datasets: Vec<_> = inv
        .objects
        .iter()
        .filter_map(|o| o.dataset.as_deref())
        .collect();
    let mut walls = Vec::with_capacity(reps);
    let mut cpus = Vec::with_capacity(reps);
    let mut totals = h5salvage::read::decode_all(&image, &datasets);
    for _ in 0..reps {
        let (t, c) = (Instant::now(), cpu_now());
        totals = std::hint::black_box(h5salvage::read::decode_all(&image, &datasets));
        walls.push(t.elapsed().as_secs_f64());
        cpus.push(cpu_now() - c);
    }
    let (wall, cpu) = (median(walls), median(cpus));
    let threads = rayon::current_num_threads();
    println!(
        "decode floor: {} chunks ({} failed), {:.1} MB stored -> {:.1} MB decoded; \
         median of {reps}: {wall:.3} s wall, {cpu:.3} s CPU over {threads} threads \
         ({:.0} MB/s stored per core)",
        totals.chunks,
        totals.failed,
        totals.stored as f64 / 1e6,
        totals.decoded as f64 / 1e6,
        totals.stored as f64 / 1e6 / cpu.max(1e-9),
    );
    println!(
        "{{\"chunks\": {}, \"failed\": {}, \"stored_bytes\": {}, \"decoded_bytes\": {}, \
         \"wall_s\": {wall:.6}, \"cpu_s\": {cpu:.6}, \"threads\": {threads}, \"reps\": {reps}}}",
        totals.chunks, totals.failed, totals.stored, totals.decoded
    );
}
